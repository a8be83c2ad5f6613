"""Rules of the flood-control platform's threshold tables beyond their contracts (SL 323 ST_RVFCCH_B).

The observation tables get no rule here: devices write them too (``quality.records`` runs the same rules on the
gateway's micro-batches), and what would be cheap to check there (five-minute stamps, ``DYP`` against ``DRP``) does
not hold for every report a device may send (ad-hoc reports at any minute, a day's total sent apart from the last
period's rain).
"""

from __future__ import annotations

from quality.coercion import EncodedBatch, EncodedColumn, encode_values
from quality.domain import DomainRule, domain_rule
from quality.suite import Check, DerivedColumn

__all__: list[str] = []


def _guaranteed_above_warning_m(batch: EncodedBatch) -> EncodedColumn:
    """GRZ - WRZ per row, in metres; null where either threshold is missing (a null threshold is no threshold)."""
    import pandas as pd

    guaranteed = pd.to_numeric(batch.columns["grz"].rows(), errors="coerce")
    warning = pd.to_numeric(batch.columns["wrz"].rows(), errors="coerce")
    return encode_values(guaranteed - warning)


@domain_rule("hydrology.river_thresholds")
def _levels_in_order() -> DomainRule:
    """A river's guaranteed (safe) level lies above its warning level, both on the station's datum: a guaranteed
    level below the warning level is a typing error (1.52 for 15.2) or a level on another datum, and alarms computed
    from it would be wrong in both directions."""
    return DomainRule(
        "river_levels_in_order",
        checks=(
            Check(
                "grz_below_wrz",
                "between",
                "_grz_above_wrz_m",
                {"min_value": 0},
                "grz",
                "SL 323 ST_RVFCCH_B: the guaranteed level GRZ is not below the warning level WRZ",
            ),
        ),
        derived=(DerivedColumn("_grz_above_wrz_m", _guaranteed_above_warning_m),),
    )
