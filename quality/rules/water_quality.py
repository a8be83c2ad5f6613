"""Rules of the water-quality datasets beyond their contracts (HJ 212-2017 hourly data)."""

from __future__ import annotations

from contracts.types import CLOCK_TOLERANCE
from quality.coercion import EncodedBatch, EncodedColumn, encode_values
from quality.domain import DomainRule, domain_rule
from quality.suite import Check, DerivedColumn

__all__: list[str] = []

_HOUR_US = 3_600_000_000


def _seconds_past_the_hour(batch: EncodedBatch) -> EncodedColumn:
    """Seconds past the full hour (UTC and Beijing time share their full hours); null where there is no time."""
    import pandas as pd

    return batch.columns["sampled_at"].mapped(lambda times: pd.Series((times.array.asi8 % _HOUR_US) / 1_000_000))


def _reported_after_hour_end_s(batch: EncodedBatch) -> EncodedColumn:
    """Seconds from the end of the sampled hour to the report; null where either time is missing."""
    import pandas as pd

    delay = batch.columns["updated_at"].rows() - (batch.columns["sampled_at"].rows() + pd.Timedelta(hours=1))
    return encode_values(delay.dt.total_seconds())


@domain_rule("water_quality.samples")
def _hourly_samples() -> DomainRule:
    """HJ 212-2017 hourly data (CN 2061) is stamped at the start of its hour and can only be reported once that
    hour is over; anything else is a clock fault, or a sample of another kind filed as hourly. Logger clocks drift
    (REFERENCE trap 20): the contract's ``HourStart`` has already moved stamps within ``CLOCK_TOLERANCE`` of the
    hour onto it, and a report that far before the hour's end is a fast clock, not a sample of the future."""
    return DomainRule(
        "hourly_samples",
        checks=(
            Check(
                "sampled_at_not_on_the_hour",
                "between",
                "_sampled_at_seconds_past_the_hour",
                {"min_value": 0, "max_value": 0},
                "sampled_at",
                "HJ 212-2017: hourly data is stamped at the interval start (08:00:00 covers 08:00-09:00)",
            ),
            Check(
                "updated_before_sample_ended",
                "between",
                "_reported_after_hour_end_s",
                {"min_value": -CLOCK_TOLERANCE.total_seconds()},
                "updated_at",
                "an hourly sample cannot be reported before its hour is over (give or take a drifting clock)",
            ),
        ),
        derived=(
            DerivedColumn("_sampled_at_seconds_past_the_hour", _seconds_past_the_hour),
            DerivedColumn("_reported_after_hour_end_s", _reported_after_hour_end_s),
        ),
    )
