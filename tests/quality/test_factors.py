"""Each factor is judged as station engineers judge an analyser: what a test expects here follows from the rules of
the issue and REFERENCE traps 17-20 (flags, units, detection limits, drifting clocks), written out per case."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from fractions import Fraction

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.units import conversion, convert
from contracts.water_quality import WaterQualitySample
from quality import ValidationOutcome, validate_frame

STATIONS = {"water_quality.stations": ["44010001", "44010002"]}
FACTOR_BY_NAME = {factor.name: factor for factor in WaterQualitySample.factors()}


def _sample(**fields: object) -> dict[str, object]:
    """A clean hourly sample of station 44010001 with pH and ammonia, each flagged N in the contract's unit."""
    row: dict[str, object] = {
        "station_code": "44010001",
        "sampled_at": "2026-11-20 08:00:00",
        "updated_at": "2026-11-20 09:04:00",
        "ph": 7.3,
        "ph_flag": "N",
        "ph_unit": "dimensionless",
        "ammonia_nitrogen": 0.41,
        "ammonia_nitrogen_flag": "N",
        "ammonia_nitrogen_unit": "mg/L",
    }
    return row | fields


def _judge(*rows: dict[str, object]) -> ValidationOutcome:
    """Rows as a connector hands them over: every row has every column (None where nothing was sent)."""
    columns = list(dict.fromkeys(name for row in rows for name in row))
    frame = pd.DataFrame([[row.get(name) for name in columns] for row in rows], columns=columns, dtype=object)
    return validate_frame(WaterQualitySample, frame, known_references=STATIONS)


def _published(outcome: ValidationOutcome, column: str) -> list[object]:
    return [None if pd.isna(value) else value for value in outcome.valid[column].tolist()]


def test_a_bad_factor_is_withheld_and_the_rest_of_the_sample_is_published() -> None:
    outcome = _judge(_sample(ph=15.2))
    assert outcome.quarantined == {}
    assert _published(outcome, "ph") == [None]
    assert _published(outcome, "ph_status") == ["rejected"]
    assert _published(outcome, "ph_flag") == ["N"]
    assert _published(outcome, "ammonia_nitrogen") == [0.41]
    assert _published(outcome, "ammonia_nitrogen_status") == ["valid"]
    assert outcome.withheld == {0: {"ph": ["ph_out_of_range"]}}
    assert outcome.results["ph_out_of_range"] == 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [("NaN", "ph_not_finite"), ("7,3", "ph_not_a_number"), ([7.2], "ph_not_a_number"), (True, "ph_not_a_number")],
)
def test_a_value_that_is_no_number_withholds_only_its_factor(value: object, reason: str) -> None:
    outcome = _judge(_sample(ph=value))
    assert outcome.quarantined == {}
    assert outcome.withheld == {0: {"ph": [reason]}}
    assert _published(outcome, "ammonia_nitrogen_status") == ["valid"]


@pytest.mark.parametrize(
    ("flag", "status", "kept"),
    [
        ("N", "valid", True),
        ("S", "valid", True),
        ("T", "over_range", True),
        ("F", "invalid", True),
        ("M", "invalid", True),
        ("D", "invalid", True),
        ("C", "invalid", True),
        ("B", "invalid", True),
        ("P", "invalid", True),  # 2005-protocol loggers
        ("H", "invalid", True),  # a vendor's letter
        (None, "valid", True),
        ("n", "rejected", False),
        ("NN", "rejected", False),
        (5, "rejected", False),
    ],
)
def test_the_data_flag_says_what_a_value_is_worth(flag: object, status: str, kept: bool) -> None:
    outcome = _judge(_sample(ammonia_nitrogen=2.5, ammonia_nitrogen_flag=flag))
    assert outcome.quarantined == {}
    assert _published(outcome, "ammonia_nitrogen_status") == [status]
    assert _published(outcome, "ammonia_nitrogen") == [2.5 if kept else None]
    published_flag = flag if kept else None
    assert _published(outcome, "ammonia_nitrogen_flag") == [published_flag]
    assert _published(outcome, "ph_status") == ["valid"]


def test_a_flagged_factor_without_a_value_is_invalid_and_one_never_sent_has_no_status() -> None:
    outcome = _judge(_sample(ammonia_nitrogen=None, ammonia_nitrogen_flag="F", ph=None, ph_flag=None, ph_unit=None))
    assert _published(outcome, "ammonia_nitrogen_status") == ["invalid"]
    assert _published(outcome, "ph_status") == [None]
    assert _published(outcome, "turbidity_status") == [None]


@pytest.mark.parametrize(
    ("value", "status", "published", "reasons"),
    [
        (-0.01, "below_detection", None, ["ammonia_nitrogen_below_detection"]),
        (-0.025, "below_detection", None, ["ammonia_nitrogen_below_detection"]),
        (-0.03, "rejected", None, ["ammonia_nitrogen_out_of_range"]),
        (0.0, "valid", 0.0, None),
        (0.01, "valid", 0.01, None),
    ],
)
def test_small_negatives_are_below_the_detection_limit_not_out_of_range(
    value: float, status: str, published: float | None, reasons: list[str] | None
) -> None:
    """NH3-N's detection limit is 0.025 mg/L: a reading in [-0.025, 0) is below detection."""
    outcome = _judge(_sample(ammonia_nitrogen=value))
    assert outcome.quarantined == {}
    assert _published(outcome, "ammonia_nitrogen_status") == [status]
    assert _published(outcome, "ammonia_nitrogen") == [published]
    assert outcome.withheld == ({0: {"ammonia_nitrogen": reasons}} if reasons else {})


@pytest.mark.parametrize(
    ("field", "unit", "value"),
    [
        ("water_temperature", "℃", 21.5),
        ("water_temperature", "°C", 21.5),
        ("ph", "无量纲", 7.3),
        ("ammonia_nitrogen", "毫克/升", 0.41),
        ("ammonia_nitrogen", "mg/l", 0.41),
        ("ammonia_nitrogen", "MG/L", 0.41),
        ("conductivity", "μS/cm", 412.5),  # Greek mu
        ("conductivity", "µS/cm", 412.5),  # micro sign
        ("conductivity", "us/cm", 412.5),
        ("turbidity", " NTU ", 18.6),
    ],
)
def test_units_are_compared_as_stations_write_them(field: str, unit: str, value: float) -> None:
    outcome = _judge(_sample(**{field: value, f"{field}_flag": "N", f"{field}_unit": unit}))
    assert outcome.withheld == {}
    assert _published(outcome, f"{field}_status") == ["valid"]
    assert _published(outcome, field) == [value]


@pytest.mark.parametrize(
    ("field", "unit", "sent", "stored"),
    [
        ("ammonia_nitrogen", "µg/L", 35.0, 0.035),
        ("ammonia_nitrogen", "ug/l", "120", 0.12),
        ("total_phosphorus", "微克/升", 118, 0.118),
        ("conductivity", "mS/cm", 0.4123, 412.3),
        ("conductivity", "mS/cm", 53.2, 53200.0),  # seawater at an estuary station, within bounds
    ],
)
def test_a_convertible_unit_is_converted_to_the_contracts(field: str, unit: str, sent: object, stored: float) -> None:
    outcome = _judge(_sample(**{field: sent, f"{field}_flag": "N", f"{field}_unit": unit}))
    assert outcome.withheld == {}
    assert _published(outcome, field) == [stored]


def test_a_unit_that_does_not_convert_rejects_its_factor() -> None:
    outcome = _judge(_sample(ammonia_nitrogen_unit="NTU"))
    assert outcome.quarantined == {}
    assert outcome.withheld == {0: {"ammonia_nitrogen": ["ammonia_nitrogen_wrong_unit"]}}
    assert _published(outcome, "ammonia_nitrogen") == [None]


@pytest.mark.parametrize(("field", "value"), [("conductivity", 56_000.0), ("turbidity", 5_200.0)])
def test_real_extremes_are_within_bounds(field: str, value: float) -> None:
    outcome = _judge(_sample(**{field: value, f"{field}_flag": "N"}))
    assert _published(outcome, f"{field}_status") == ["valid"]


@pytest.mark.parametrize("code", ["４４０１０００１", "٤٤٠١٠٠٠١", "4401000١"])
def test_station_codes_are_ascii_digits(code: str) -> None:
    outcome = _judge(_sample(station_code=code))
    assert "station_code_bad_format" in outcome.quarantined[0]


def test_a_stamp_a_second_off_the_hour_is_that_hour_and_a_resend_on_the_hour_supersedes_it() -> None:
    late = _sample(sampled_at="2026-11-20 08:00:01", updated_at="2026-11-20 09:03:00")
    resent = _sample(sampled_at="2026-11-20 08:00:00", updated_at="2026-11-20 09:20:00", ph=7.4)
    outcome = _judge(late, resent)
    assert outcome.quarantined == {0: ["duplicate_key"]}
    assert outcome.valid["sampled_at"].tolist() == [pd.Timestamp(datetime(2026, 11, 20, 0, tzinfo=UTC))]
    assert _published(outcome, "ph") == [7.4]


@pytest.mark.parametrize(
    ("sampled_at", "updated_at", "reason"),
    [
        ("2026-11-20 07:57:00", "2026-11-20 09:04:00", None),  # 3 min early: the 08:00 value
        ("2026-11-20 08:07:00", "2026-11-20 09:04:00", "sampled_at_not_on_the_hour"),
        ("2026-11-20 08:00:00", "2026-11-20 08:56:00", None),  # reported 4 min before the hour ended: a fast clock
        ("2026-11-20 08:00:00", "2026-11-20 08:50:00", "updated_before_sample_ended"),
    ],
)
def test_drifting_clocks_are_accepted_within_minutes(sampled_at: str, updated_at: str, reason: str | None) -> None:
    outcome = _judge(_sample(sampled_at=sampled_at, updated_at=updated_at))
    assert outcome.quarantined == ({0: [reason]} if reason else {})


def test_the_contract_model_reads_a_drifted_stamp_as_its_hour() -> None:
    model = WaterQualitySample.model_validate(_sample(sampled_at="2026-11-20 21:00:01"))
    assert model.sampled_at == datetime(2026, 11, 20, 13, tzinfo=UTC)


def test_only_what_makes_a_record_unusable_quarantines_it() -> None:
    outcome = _judge(_sample(station_code="44019999", ph=99), _sample(sampled_at=None), _sample(ph="x"))
    assert outcome.quarantined == {0: ["ph_out_of_range", "unknown_station"], 1: ["sampled_at_missing"]}
    assert outcome.withheld == {2: {"ph": ["ph_not_a_number"]}}
    assert outcome.positions.tolist() == [2]


_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-0.1, max_value=0.1),
    st.sampled_from(["NaN", "7.25", "-0.01", "", "abc", True, None, [1.0], 10**400]),
)
_FLAGS = st.one_of(st.sampled_from(["N", "S", "T", "F", "M", "D", "C", "B", "P", "H", "n", "", " N ", None, 1]))
_UNITS = st.sampled_from([None, "mg/L", "mg/l", "µg/L", "ug/l", "NTU", "", "℃", "无量纲", "mS/cm", "µS/cm", "us/cm"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(sorted(FACTOR_BY_NAME)), _VALUES, _FLAGS, _UNITS), min_size=1, max_size=30))
def test_each_factor_gets_the_status_its_own_values_call_for(
    readings: list[tuple[str, object, object, str | None]],
) -> None:
    """One sample per drawn reading. The reference, per factor: the contract's own pydantic types for the value
    (after the unit's conversion) and the flag, then the rules: rejected > invalid flag > below detection > no
    value > T > valid. Every published row also validates as the contract."""
    rows = []
    for hour, (name, value, flag, unit) in enumerate(readings):
        row = _sample(sampled_at=f"2026-11-{hour // 20 + 1:02d} {hour % 20:02d}:00:00")
        row["updated_at"] = f"2026-11-{hour // 20 + 1:02d} {hour % 20 + 1:02d}:05:00"
        rows.append(row | {name: value, f"{name}_flag": flag, f"{name}_unit": unit})
    outcome = _judge(*rows)
    assert outcome.quarantined == {}
    got = [_published(outcome, f"{name}_status")[n] for n, (name, *_) in enumerate(readings)]
    assert got == [_expected_status(*reading) for reading in readings]
    for record in outcome.valid.astype(object).where(outcome.valid.notna(), None).to_dict("records"):
        WaterQualitySample.model_validate(record)


def _expected_status(name: str, value: object, flag: object, unit: object) -> str | None:
    factor = FACTOR_BY_NAME[name]
    factor_conversion = conversion(unit, factor.value.unit or "") if isinstance(unit, str) else Fraction(1)
    number = _number(value)
    if factor_conversion is not None and number is not None and not isinstance(value, bool):
        value = convert(number, factor_conversion)
        number = _number(value)
    limit = factor.value.detection_limit
    below = limit is not None and number is not None and -limit <= number < 0
    letter = flag.strip() if isinstance(flag, str) else flag
    value_ok = _valid(factor.value.name, value)
    if factor_conversion is None or not _valid(f"{name}_flag", flag) or (not value_ok and not below):
        return "rejected"
    if letter not in (None, "N", "S", "T"):
        return "invalid"
    if below:
        return "below_detection"
    if value is None:
        return None
    return "over_range" if letter == "T" else "valid"


def _valid(name: str, value: object) -> bool:
    """Whether the contract's own model takes ``value`` for field ``name`` of an otherwise clean sample."""
    try:
        WaterQualitySample.model_validate(_sample(**{name: value}))
    except ValidationError:
        return False
    return True


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None
