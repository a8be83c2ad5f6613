"""GB 3838-2002 classing on a table of boundary cases read off REFERENCE 4.1, and two properties of the single-factor
method: the worst factor sets the class, and worsening one factor never improves it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quality.gb3838 import CLASSES, WaterBody, classify, meets_target

PH, DO, CODMN, COD, BOD5, NH3N, TP, TN = "w01001", "w01009", "w01019", "w01018", "w01017", "w21003", "w21011", "w21001"

# (code, value, water body, expected class): each limit of REFERENCE 4.1 exactly, and just beyond it.
BOUNDARIES = [
    (PH, 5.99, "river", "劣V"),
    (PH, 6.0, "river", "I"),
    (PH, 9.0, "river", "I"),
    (PH, 9.01, "lake", "劣V"),
    (DO, 7.5, "river", "I"),  # DO must reach its limit: on it is the better class
    (DO, 7.49, "river", "II"),
    (DO, 6.0, "river", "II"),
    (DO, 5.0, "river", "III"),
    (DO, 4.99, "river", "IV"),
    (DO, 3.0, "river", "IV"),
    (DO, 2.0, "river", "V"),
    (DO, 1.99, "river", "劣V"),
    (CODMN, 2.0, "river", "I"),
    (CODMN, 2.01, "river", "II"),
    (CODMN, 15.0, "river", "V"),
    (CODMN, 15.1, "river", "劣V"),
    (COD, 15.0, "river", "I"),  # classes I and II share 15
    (COD, 15.1, "river", "III"),
    (BOD5, 3.0, "river", "I"),
    (BOD5, 3.1, "river", "III"),
    (NH3N, 0.15, "river", "I"),
    (NH3N, 0.151, "river", "II"),
    (NH3N, 0.5, "lake", "II"),
    (NH3N, 1.0, "river", "III"),
    (NH3N, 1.5, "river", "IV"),
    (NH3N, 2.0, "river", "V"),
    (NH3N, 2.001, "river", "劣V"),
    (TP, 0.02, "river", "I"),
    (TP, 0.02, "lake", "II"),  # lakes and reservoirs: 0.01 / 0.025 / 0.05 / 0.1 / 0.2
    (TP, 0.01, "lake", "I"),
    (TP, 0.025, "lake", "II"),
    (TP, 0.026, "lake", "III"),
    (TP, 0.1, "river", "II"),
    (TP, 0.1, "lake", "IV"),
    (TP, 0.2, "lake", "V"),
    (TP, 0.201, "lake", "劣V"),
    (TP, 0.4, "river", "V"),
    (TP, 0.401, "river", "劣V"),
]


@pytest.mark.parametrize(("code", "value", "waterbody", "expected"), BOUNDARIES)
def test_a_value_on_a_limit_belongs_to_the_better_class(
    code: str, value: float, waterbody: WaterBody, expected: str
) -> None:
    result = classify({code: value}, waterbody)
    assert result.water_class == expected
    assert result.deciding_factors == (code,)


def test_the_worked_example_is_iii_as_a_river_and_v_as_a_lake() -> None:
    """REFERENCE 4.3: the same water, TP 0.118 deciding under each body's limits; TN (flag M) not assessed."""
    values = {PH: 7.31, DO: 6.75, CODMN: 3.2, NH3N: 0.405, TP: 0.118, TN: 1.62}
    river, lake = classify(values, "river"), classify(values, "lake")
    assert (river.water_class, river.deciding_factors) == ("III", (TP,))
    assert (lake.water_class, lake.deciding_factors) == ("V", (TP,))
    assert river.factor_classes == {PH: "I", DO: "II", CODMN: "II", NH3N: "II", TP: "III"}


def test_total_nitrogen_is_left_out_unless_asked_for_a_lake() -> None:
    values = {NH3N: 0.1, TN: 1.8}
    assert classify(values, "lake").water_class == "I"
    assert classify(values, "river").water_class == "I"
    with_tn = classify(values, "lake", include_total_nitrogen=True)
    assert (with_tn.water_class, with_tn.deciding_factors) == ("V", (TN,))
    with pytest.raises(ValueError, match="lakes and reservoirs only"):
        classify(values, "river", include_total_nitrogen=True)


@pytest.mark.parametrize("status", ["invalid", "over_range", "below_detection", "rejected", None])
def test_only_valid_values_take_part(status: str | None) -> None:
    values = {DO: 8.0, NH3N: 1.8}
    result = classify(values, "river", statuses={DO: "valid", NH3N: status})
    assert (result.water_class, result.deciding_factors) == ("I", (DO,))
    assert classify(values, "river", statuses={DO: "valid", NH3N: "valid"}).water_class == "V"


def test_missing_null_and_unassessed_factors_do_not_take_part() -> None:
    assert classify({DO: 6.5, NH3N: None, "w01010": 35.0, "w01014": 60_000.0}, "river").water_class == "II"
    assert classify({NH3N: float("nan"), DO: 8.0}, "river").water_class == "I"
    nothing = classify({"w01010": 21.0}, "river")
    assert (nothing.water_class, nothing.deciding_factors) == (None, ())


def test_every_factor_at_the_worst_class_decides() -> None:
    result = classify({NH3N: 1.2, CODMN: 8.0, DO: 7.9}, "river")
    assert (result.water_class, result.deciding_factors) == ("IV", (CODMN, NH3N))


def test_meets_target_means_as_good_or_better() -> None:
    assert meets_target("II", "III") is True
    assert meets_target("III", "III") is True
    assert meets_target("劣V", "V") is False
    assert meets_target(None, "III") is None
    assert meets_target("II", None) is None


def test_an_unknown_water_body_is_refused() -> None:
    with pytest.raises(ValueError, match="river"):
        classify({DO: 8.0}, "sea")  # type: ignore[arg-type]


_FACTORS = [PH, DO, CODMN, COD, BOD5, NH3N, TP]
_readings = st.dictionaries(
    st.sampled_from(_FACTORS), st.floats(min_value=0, max_value=50, allow_nan=False), min_size=1
)
_bodies = st.sampled_from(["river", "lake"])


@settings(max_examples=150)
@given(_readings, _bodies)
def test_the_worst_single_factor_class_wins(values: dict[str, float], waterbody: WaterBody) -> None:
    alone = {code: classify({code: value}, waterbody).water_class for code, value in values.items()}
    worst = max(alone.values(), key=lambda found: CLASSES.index(found or "I"))
    result = classify(values, waterbody)
    assert result.water_class == worst
    assert set(result.deciding_factors) == {code for code, found in alone.items() if found == worst}


def _worsened(code: str, value: float, step: float) -> float:
    """``value`` made worse for water by ``step``: less oxygen, pH further from neutral, more of anything else."""
    if code == DO:
        return max(0.0, value - step)
    if code == PH:
        return value + step if value >= 7 else max(0.0, value - step)
    return value + step


@settings(max_examples=150)
@given(_readings, _bodies, st.data(), st.floats(min_value=0, max_value=20, allow_nan=False))
def test_worsening_one_factor_never_improves_the_class(
    values: dict[str, float], waterbody: WaterBody, data: st.DataObject, step: float
) -> None:
    code = data.draw(st.sampled_from(sorted(values)))
    before = classify(values, waterbody).water_class
    after = classify({**values, code: _worsened(code, values[code], step)}, waterbody).water_class
    assert before is not None
    assert after is not None
    assert CLASSES.index(after) >= CLASSES.index(before)
