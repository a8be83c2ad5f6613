"""The runner splits a batch into valid and quarantined rows; expectations come from the simulator's ground truth
and from the contract's own pydantic model, never from the runner."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import StringConstraints, TypeAdapter, ValidationError

from connectors.water_quality import WaterQualitySamplesStream, WaterQualitySimulator
from connectors.water_quality.simulator import SimulatorTruth
from contracts.types import BeijingTime
from contracts.water_quality import WaterQualitySample, WaterQualityStation
from quality import MissingReferenceKeysError, runner, validate_frame
from quality.coercion import raw_frame
from quality.gx import batch_definition
from quality.runner import ValidationOutcome, VerdictMemo

STATIONS_KEY = "water_quality.stations"
_TIME = TypeAdapter(BeijingTime)
_STRIPPED = TypeAdapter(Annotated[str, StringConstraints(strip_whitespace=True)])


@pytest.fixture(scope="module")
def truth() -> SimulatorTruth:
    return WaterQualitySimulator(seed=11, api_key="k", stations=8, hours=24).truth


def _stream_frame(records: Sequence[dict[str, object]]) -> pd.DataFrame:
    stream = WaterQualitySamplesStream()
    return pd.DataFrame([stream.post_process(record) for record in records])


def test_every_planted_bad_sample_is_quarantined_with_exactly_its_reason(truth: SimulatorTruth) -> None:
    outcome = validate_frame(
        WaterQualitySample, _stream_frame(truth.samples), known_references={STATIONS_KEY: truth.station_codes()}
    )
    expected = {position: [reason] for position, reason in enumerate(truth.reasons) if reason is not None}
    assert outcome.quarantined == expected
    assert outcome.rows == len(truth.samples)
    assert outcome.valid_count == len(truth.valid_samples())


def test_each_published_factor_has_the_status_and_value_the_simulator_says(truth: SimulatorTruth) -> None:
    outcome = validate_frame(
        WaterQualitySample, _stream_frame(truth.samples), known_references={STATIONS_KEY: truth.station_codes()}
    )
    expected = truth.published_outcomes()
    rows = outcome.valid.astype(object).where(outcome.valid.notna(), None).to_dict("records")
    assert len(rows) == len(expected)
    for row in rows:
        factors = expected[(row["station_code"], row["sampled_at"].to_pydatetime())]
        for name, factor in factors.items():
            assert row[f"{name}_status"] == factor.status, (row["station_code"], row["sampled_at"], name)
            published = None if factor.value is None else pytest.approx(factor.value, rel=1e-9)
            assert row[name] == published, (row["station_code"], row["sampled_at"], name)
        WaterQualitySample.model_validate(row)  # a published row is a valid contract row, withheld values and all
    assert list(outcome.valid.columns) == list(WaterQualitySample.model_fields)


def test_withheld_factors_carry_the_reasons_the_simulator_planted(truth: SimulatorTruth) -> None:
    outcome = validate_frame(
        WaterQualitySample, _stream_frame(truth.samples), known_references={STATIONS_KEY: truth.station_codes()}
    )
    expected: dict[int, dict[str, list[str]]] = {}
    for position, factors in enumerate(truth.outcomes):
        for name, factor in (factors or {}).items():
            reasons = list(factor.reasons) or (
                [f"{name}_below_detection"] if factor.status == "below_detection" else []
            )
            if reasons:
                expected.setdefault(position, {})[name] = reasons
    assert outcome.withheld == expected
    assert any(reasons == ["ph_out_of_range"] for factors in expected.values() for reasons in factors.values())


def test_results_count_the_rows_each_check_rejected_and_list_the_checks_that_passed(truth: SimulatorTruth) -> None:
    outcome = validate_frame(
        WaterQualitySample, _stream_frame(truth.samples), known_references={STATIONS_KEY: truth.station_codes()}
    )
    counted = {reason: count for reason, count in outcome.results.items() if count}
    planted = Counter(reason for reason in truth.reasons if reason)
    planted.update(reason for factors in truth.outcomes for f in (factors or {}).values() for reason in f.reasons)
    assert counted == dict(planted)
    assert outcome.results["station_code_bad_format"] == 0
    assert outcome.results["sampled_at_not_on_the_hour"] == 0


def test_a_reference_without_known_keys_is_a_caller_error(truth: SimulatorTruth) -> None:
    with pytest.raises(MissingReferenceKeysError, match=STATIONS_KEY):
        validate_frame(WaterQualitySample, _stream_frame(truth.samples[:3]))


def _station(**overrides: object) -> dict[str, object]:
    record: dict[str, object] = {
        "station_code": "44010001",
        "name": "猎德",
        "river": "珠江",
        "district": "天河区",
        "water_body_type": "river",
        "longitude": 113.33,
        "latitude": 23.12,
        "updated_at": "2026-11-20 08:00:00",
        "target_class": "III",
    }
    return record | overrides


def test_times_without_offset_are_beijing_time_and_an_explicit_offset_is_kept() -> None:
    frame = pd.DataFrame(
        [
            _station(station_code="44010001", updated_at="2026-11-20 08:00:00"),
            _station(station_code="44010002", updated_at="2026-11-20T08:00:00Z"),
            _station(station_code="44010003", updated_at="2026-11-20T08:00:00+09:00"),
            _station(station_code="44010004", updated_at="yesterday"),
        ]
    )
    outcome = validate_frame(WaterQualityStation, frame)
    assert outcome.valid["updated_at"].tolist() == [
        datetime(2026, 11, 20, 0, tzinfo=UTC),
        datetime(2026, 11, 20, 8, tzinfo=UTC),
        datetime(2026, 11, 19, 23, tzinfo=UTC),
    ]
    assert outcome.quarantined == {3: ["updated_at_not_a_time"]}


@pytest.mark.parametrize(
    "odd_one", [None, "2026-02-29 08:00:00", "2026-11-20 08:00:60"], ids=["all plain", "29 February", "60th second"]
)
def test_times_read_alike_whether_the_batch_is_parsed_in_one_go_or_value_by_value(odd_one: str | None) -> None:
    """A batch of plain times is cast in one go; one value of their shape that is no time (2026 has no 29
    February, a minute no 60th second) sends the batch the slower way. Both must read every value as the contract
    does."""
    times = ["2026-11-20 08:00:00", "2026-11-20T09:30:00", " 2026-11-20 08:00:00", "2026-11-20 08:00+09:00", odd_one]
    frame = pd.DataFrame([_station(station_code=f"4401000{n}", updated_at=t) for n, t in enumerate(times)])
    outcome = validate_frame(WaterQualityStation, frame)
    expected = {}
    for position, record in enumerate(frame.to_dict("records")):
        with contextlib.suppress(ValidationError):
            expected[position] = WaterQualityStation.model_validate(record).updated_at
    assert sorted(expected) == [0, 1, 2, 3]
    assert outcome.valid["updated_at"].tolist() == list(expected.values())
    assert outcome.quarantined == {4: ["updated_at_missing" if odd_one is None else "updated_at_not_a_time"]}


def test_of_records_sharing_a_key_the_latest_update_is_kept_whatever_the_feed_order() -> None:
    frame = pd.DataFrame(
        [
            _station(name="corrected", updated_at="2026-11-20 09:00:00"),
            _station(name="first", updated_at="2026-11-20 08:00:00"),
            _station(station_code="44010009"),
            _station(name="resent", updated_at="2026-11-20 08:00:00"),
        ]
    )
    outcome = validate_frame(WaterQualityStation, frame)
    assert outcome.quarantined == {1: ["duplicate_key"], 3: ["duplicate_key"]}
    assert outcome.valid["name"].tolist() == ["corrected", "猎德"]


@pytest.mark.parametrize("stations", [2, 7], ids=["dense keys", "sparse keys"])
def test_a_resent_sample_is_a_duplicate_however_sparse_the_batch_keys(stations: int) -> None:
    """Few stations by many hours fill the key space; a station per hour leaves it mostly empty. Both count."""
    codes = [f"4401000{n}" for n in range(stations)]
    records = [
        {"station_code": codes[n % stations], "sampled_at": f"2026-11-20 {n:02d}:00:00", "ph": 7.2}
        | {"updated_at": f"2026-11-20 {n + 1:02d}:10:00"}
        for n in range(7)
    ]
    resent = records[3] | {"updated_at": "2026-11-20 05:00:00", "ph": 7.3}
    outcome = validate_frame(
        WaterQualitySample, pd.DataFrame([*records, resent]), known_references={STATIONS_KEY: codes}
    )
    assert outcome.quarantined == {3: ["duplicate_key"]}
    assert outcome.valid["ph"].tolist() == [7.2] * 6 + [7.3]


def test_of_equal_updates_of_one_key_the_last_sent_is_kept() -> None:
    frame = pd.DataFrame([_station(name="first"), _station(name="second")])
    outcome = validate_frame(WaterQualityStation, frame)
    assert outcome.quarantined == {0: ["duplicate_key"]}
    assert outcome.valid["name"].tolist() == ["second"]


def test_across_chunks_only_the_latest_row_of_a_key_stays_valid_and_only_it_is_kept() -> None:
    """Three chunks, each validated alone with its own categories: 44010001 of chunk 1 is corrected in chunk 3,
    and 44010002 of chunk 1 is sent again in chunk 2 with an older update. Of each, the later version stays: in
    chunk 3 for the first, in chunk 1 for the second; the rows it supersedes are quarantined as ``duplicate_key``
    at their positions in the stream."""
    chunks = [
        [_station(name="first"), _station(station_code="44010002", updated_at="2026-11-20 09:00:00")],
        [_station(station_code="44010003"), _station(station_code="44010002", name="older")],
        [_station(station_code="44010004"), _station(name="corrected", updated_at="2026-11-20 10:00:00")],
    ]
    merged = runner.ChunkedOutcome(WaterQualityStation)
    valid = []
    for records in chunks:
        outcome = validate_frame(WaterQualityStation, pd.DataFrame(records))
        merged.add(outcome)
        valid.append(outcome.valid)
    doubtful = merged.doubtful()
    assert {part: rows.tolist() for part, rows in doubtful.items()} == {0: [0, 1], 1: [1], 2: [1]}
    dropped = merged.supersede({part: valid[part].iloc[rows] for part, rows in doubtful.items()})

    assert {part: rows.tolist() for part, rows in dropped.items()} == {0: [0], 1: [1]}
    assert merged.quarantined == {0: ["duplicate_key"], 3: ["duplicate_key"]}
    assert merged.results["duplicate_key"] == 2
    kept = pd.concat([frame.drop(index=dropped.get(part, [])) for part, frame in enumerate(valid)])
    assert kept[["station_code", "name"]].values.tolist() == [
        ["44010002", "猎德"],
        ["44010003", "猎德"],
        ["44010004", "猎德"],
        ["44010001", "corrected"],
    ]
    assert [merged.positions(part).tolist() for part in range(3)] == [[1], [2], [4, 5]]
    assert merged.valid_count == 4


def test_chunks_that_share_no_key_leave_nothing_to_read_back() -> None:
    merged = runner.ChunkedOutcome(WaterQualityStation)
    for code in ("44010001", "44010002"):
        merged.add(validate_frame(WaterQualityStation, pd.DataFrame([_station(station_code=code)])))
    assert merged.doubtful() == {}
    assert merged.supersede({}) == {}
    assert (merged.valid_count, merged.quarantined) == (2, {})


def test_keys_that_differ_only_in_surrounding_space_are_one_key() -> None:
    frame = pd.DataFrame([_station(station_code="44010001"), _station(station_code=" 44010001 ")])
    assert validate_frame(WaterQualityStation, frame).quarantined == {0: ["duplicate_key"]}


def test_rows_missing_part_of_their_key_are_missing_not_duplicates() -> None:
    frame = pd.DataFrame([_station(station_code=None), _station(station_code=None), _station()])
    assert validate_frame(WaterQualityStation, frame).quarantined == {
        0: ["station_code_missing"],
        1: ["station_code_missing"],
    }


def test_a_naive_time_is_utc_plus_8_in_any_year_as_the_contract_reads_it() -> None:
    """The tz database's Asia/Shanghai had daylight saving in 1986-1991; the standards' Beijing time did not."""
    times = ["1988-06-01 12:00:00", "1990-08-15 00:30:00", "2026-11-20 08:00:00"]
    frame = pd.DataFrame([_station(station_code=f"4401000{n}", updated_at=t) for n, t in enumerate(times)])
    outcome = validate_frame(WaterQualityStation, frame)
    expected = [WaterQualityStation.model_validate(record).updated_at for record in frame.to_dict("records")]
    assert outcome.valid["updated_at"].tolist() == expected
    assert expected[0] == datetime(1988, 6, 1, 4, tzinfo=UTC)


def test_an_empty_batch_gives_an_empty_frame_of_the_contract_columns() -> None:
    outcome = validate_frame(WaterQualitySample, pd.DataFrame(), known_references={STATIONS_KEY: []})
    assert (outcome.rows, outcome.quarantined) == (0, {})
    assert list(outcome.valid.columns) == list(WaterQualitySample.model_fields)
    assert str(outcome.valid["sampled_at"].dtype) == "datetime64[us, UTC]"


def test_nan_infinity_and_overflowing_numbers_are_not_finite_and_other_text_is_not_a_number() -> None:
    frame = _longitudes("NaN", "-Infinity", "1e400", "7,3", "abc")
    assert validate_frame(WaterQualityStation, frame).quarantined == {
        0: ["longitude_not_finite"],
        1: ["longitude_not_finite"],
        2: ["longitude_not_finite"],
        3: ["longitude_not_a_number"],
        4: ["longitude_not_a_number"],
    }


def _longitudes(*values: object) -> pd.DataFrame:
    return pd.DataFrame(
        [_station(station_code=f"4401000{n}", longitude=value) for n, value in enumerate(values)], dtype=object
    )


def test_booleans_are_no_numbers_though_a_hash_table_takes_true_for_1() -> None:
    outcome = validate_frame(WaterQualityStation, _longitudes(1, True, 1.0, False, 0, 0.0, 113.3))
    numbers, no_numbers = ["longitude_out_of_range"], ["longitude_not_a_number"]
    assert outcome.quarantined == {0: numbers, 1: no_numbers, 2: numbers, 3: no_numbers, 4: numbers, 5: numbers}


def test_a_json_list_or_object_is_no_number() -> None:
    outcome = validate_frame(WaterQualityStation, _longitudes([113.3], 113.3, {"value": 113.3}))
    assert outcome.quarantined == {0: ["longitude_not_a_number"], 2: ["longitude_not_a_number"]}


def test_a_value_that_cannot_be_typed_is_reported_once_not_also_as_missing() -> None:
    frame = pd.DataFrame([_station(longitude="east"), _station(station_code="44010002", longitude=None)])
    outcome = validate_frame(WaterQualityStation, frame)
    assert outcome.quarantined == {0: ["longitude_not_a_number"], 1: ["longitude_missing"]}


def test_text_no_database_stores_is_bad_text_in_any_text_field() -> None:
    frame = pd.DataFrame(
        [
            _station(station_code="44010001", name="猎德\x00"),
            _station(station_code="44010002", river="珠江\ud800"),
            _station(station_code="44010003", water_body_type="\udfff"),
            _station(station_code="44010004", name="line\u2028break and next\x85line"),
        ],
        dtype=object,
    )
    outcome = validate_frame(WaterQualityStation, frame)
    assert outcome.quarantined == {
        0: ["name_bad_text"],
        1: ["river_bad_text"],
        2: ["water_body_type_bad_text"],
    }
    assert outcome.valid["name"].tolist() == ["line\u2028break and next\x85line"]


@pytest.mark.parametrize(
    ("stamp", "reason"),
    [
        ("0001-01-01 00:00:00", "updated_at_implausible"),  # year 0 in UTC: the bulk path reads it
        ("0001-01-01T00:00:00+14:00", "updated_at_implausible"),  # the same, off the bulk path
        ("1900-01-01 07:59:59", "updated_at_implausible"),  # a second before the floor
        ("9999-12-31T23:00:00-12:00", "updated_at_not_a_time"),  # past 9999 in UTC: no time anything can hold
        ("2026-11-20 08:10:01", "updated_at_implausible"),  # a second after the run's latest plausible time
    ],
)
def test_a_time_that_cannot_be_true_is_refused_and_never_raises(stamp: str, reason: str) -> None:
    not_after = datetime(2026, 11, 20, 0, 10, tzinfo=UTC)
    frame = pd.DataFrame(
        [
            _station(station_code="44010001", updated_at=stamp),
            _station(station_code="44010002", updated_at="1900-01-01 08:00:00"),  # the floor itself
            _station(station_code="44010003", updated_at="2026-11-20 08:10:00"),  # just in time
        ],
        dtype=object,
    )
    outcome = validate_frame(WaterQualityStation, frame, not_after=not_after)
    assert outcome.quarantined == {0: [reason]}
    assert outcome.valid["updated_at"].tolist() == [datetime(1900, 1, 1, tzinfo=UTC), not_after]


@pytest.mark.parametrize("stamps", [[1764547200, 1764550800], [1764547200.5, None], [True, False]])
def test_a_time_column_of_numbers_only_is_not_a_time(stamps: list[object]) -> None:
    """A source sending epoch seconds in every record: the whole column is numbers, never text."""
    frame = pd.DataFrame([_station(station_code=f"4401000{n}", updated_at=s) for n, s in enumerate(stamps)])
    outcome = validate_frame(WaterQualityStation, frame)
    expected = {n: ["updated_at_missing" if s is None else "updated_at_not_a_time"] for n, s in enumerate(stamps)}
    assert outcome.quarantined == expected


def test_integers_no_float_holds_are_not_finite() -> None:
    outcome = validate_frame(WaterQualityStation, _longitudes(10**400, -(10**400), 113))
    assert outcome.quarantined == {0: ["longitude_not_finite"], 1: ["longitude_not_finite"]}


def test_units_and_unknown_fields_holding_anything_are_judged_without_raising() -> None:
    """A lone surrogate in a column name or a unit, a JSON object or a number for a unit (Great Expectations fails
    comparing a dict and an int with text), an object in an unknown field: none is a contract field's value, but
    units reach the checks' tables and unknown fields the batch's columns."""
    stream = WaterQualitySamplesStream()
    odd_units: list[object] = [{}, -94207, "\ud800"]
    records = [
        {
            "station_code": "44010001",
            "sampled_at": f"2026-11-20 0{hour}:00:00",
            "updated_at": "2026-11-20 09:10:00",
            "factors": {"w01001": {"value": 7.4, "flag": "N", "unit": unit}},
        }
        for hour, unit in enumerate(["dimensionless", *odd_units])
    ]
    rows = [stream.post_process(record) | {"remark": {"by": ["x"]}, "\udfff": 1} for record in records]
    outcome = validate_frame(WaterQualitySample, raw_frame(rows), known_references={STATIONS_KEY: ["44010001"]})
    assert outcome.quarantined == {}
    assert outcome.withheld == {row: {"ph": ["ph_wrong_unit"]} for row in range(1, 1 + len(odd_units))}
    assert outcome.valid["ph"].tolist()[0] == 7.4
    assert outcome.valid["ph"].isna().tolist() == [False, True, True, True]


def test_progress_bars_stay_off(capfd: pytest.CaptureFixture[str]) -> None:
    validate_frame(WaterQualityStation, pd.DataFrame([_station()]))
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err + captured.out


_NUMBERS = st.one_of(
    st.floats(min_value=-200, max_value=200, allow_nan=False),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "7.25", "7,3", "", "abc", True, None]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([10**400, -(10**400), 10**20, 5e-324, -0.0, "1e-400", "1" * 500]),
)
_UNSTORABLE_TEXT = st.sampled_from(["\x00", "4401\x000001", "\ud800", "river \udfff", " \ud83d "])
"""Text no database stores: NUL, and lone surrogates (what ``json.loads`` makes of the escape ``"\\ud800"``)."""
_TEXT = st.one_of(
    st.text(alphabet="0123456789 ", min_size=0, max_size=10),
    st.text(min_size=0, max_size=70),
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cs", "Zl", "Zp"]), max_size=5),
    _UNSTORABLE_TEXT,
    st.sampled_from([None, 12345678, "44010001", " 44010001 ", "line\u2028break", "next\x85line"]),
)
_ODD_TIMES = st.sampled_from(
    [
        "9999-12-31T23:00:00-12:00",
        "0001-01-01T00:00:00+14:00",
        "0001-01-01 00:00:00",
        "1899-12-31 23:59:59",
        "1900-01-01T00:00:00Z",
        "9999-12-31 23:59:59",
        "2026-11-20T08:00:00+23:59",
        "2026-11-20T08:00:00-00:30",
        "2026-11-20\x0008:00:00",
        "2026-11-20 08:00:00\ud800",
    ]
)
"""Offsets that overflow on the way to UTC, times before a floor, at the floor, and text around a time."""
_TIMES = st.one_of(
    st.datetimes(min_value=datetime(1980, 1, 1), max_value=datetime(2035, 1, 1)).map(  # noqa: DTZ001 - naive on purpose
        lambda value: value.strftime("%Y-%m-%d %H:%M:%S")
    ),
    st.sampled_from(["2026-11-20T08:00:00+08:00", "2026-11-20T08:00:00Z", "2026-13-40 99:00:00", "", None, 5]),
    _ODD_TIMES,
)
_JSON_ODDITIES = st.sampled_from([True, False, 0, 1, 1.0, 0.0, [7.25], {"value": 7.25}, [[[[]]]], {"": {"": None}}])
"""Values a hash table confuses (``True == 1 == 1.0``) or refuses (a JSON list or object)."""
_ANY_VALUE = st.one_of(_NUMBERS, _TEXT, _TIMES, _JSON_ODDITIES, st.sampled_from(["river", "lake", "sea", "  lake ", 3]))
_STATION_RECORDS = st.builds(
    lambda code, overrides: _station(station_code=code) | overrides,
    st.sampled_from(["44010001", "44010002", "44010003", " 44010004"]),
    st.dictionaries(st.sampled_from(sorted(WaterQualityStation.model_fields)), _ANY_VALUE, max_size=2),
)
"""Mostly valid stations with up to two fields replaced by anything at all, so each record has a verdict to get
right (a fully random record is refused for many reasons at once and tests little)."""
_NOT_AFTER = st.one_of(
    st.none(), st.sampled_from([datetime(2026, 11, 20, 0, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)])
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_STATION_RECORDS, min_size=1, max_size=40), _NOT_AFTER)
def test_the_vectorized_suite_refuses_exactly_what_the_contract_model_refuses(
    records: list[dict[str, object]], not_after: datetime | None
) -> None:
    """Per record, pydantic is the reference (told the run's latest plausible time as context); on top, of records
    sharing a key all but the latest are refused."""
    outcome = validate_frame(WaterQualityStation, pd.DataFrame(records, dtype=object), not_after=not_after)
    refused: set[int] = set()
    latest: dict[str, tuple[float, int]] = {}
    for position, record in enumerate(records):
        try:
            WaterQualityStation.model_validate(record, context={"not_after": not_after})
        except ValidationError:
            refused.add(position)
        code = _key(record["station_code"])
        if code is not None:
            try:
                stamp = _TIME.validate_python(record["updated_at"]).timestamp()
            except ValidationError:
                stamp = float("-inf")
            latest[code] = max(latest.get(code, (float("-inf"), -1)), (stamp, position))
    keep = {position for _, position in latest.values()}
    refused |= {n for n, r in enumerate(records) if _key(r["station_code"]) is not None and n not in keep}
    assert set(outcome.quarantined) == refused


def _key(code: object) -> str | None:
    """A record's key as the model reads its text (stripped of white space); none if it is no text a database
    stores (NUL, a lone surrogate), since such a record has no key to share."""
    try:
        text = _STRIPPED.validate_python(code)
    except ValidationError:
        return None
    return None if "\x00" in text or any("\ud800" <= char <= "\udfff" for char in text) else text


def _same_outcome(left: ValidationOutcome, right: ValidationOutcome) -> None:
    assert left.quarantined == right.quarantined
    assert left.withheld == right.withheld
    assert left.results == right.results
    pd.testing.assert_frame_equal(left.valid, right.valid)


def test_a_stream_judged_in_chunks_with_a_memo_gets_the_verdicts_of_each_chunk_judged_alone(
    truth: SimulatorTruth,
) -> None:
    frame = _stream_frame(truth.samples)
    known = {STATIONS_KEY: truth.station_codes()}
    half = len(frame) // 2
    memo = VerdictMemo()
    for chunk in (frame.iloc[:half].reset_index(drop=True), frame.iloc[half:].reset_index(drop=True)):
        alone = validate_frame(WaterQualitySample, chunk, known_references=known)
        assert alone.quarantined  # bad samples in each chunk: failing verdicts are remembered and reused
        _same_outcome(validate_frame(WaterQualitySample, chunk, known_references=known, memo=memo), alone)


def test_a_chunk_whose_values_were_all_judged_before_is_decided_without_great_expectations(
    truth: SimulatorTruth, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = _stream_frame(truth.samples)
    known = {STATIONS_KEY: truth.station_codes()}
    memo = VerdictMemo(limit=len(frame) * 10)  # every stack remembered, the times and values too
    first = validate_frame(WaterQualitySample, frame, known_references=known, memo=memo)
    assert first.quarantined  # the simulator planted bad samples: the memo holds failing verdicts too

    def no_gx() -> None:
        raise AssertionError("Great Expectations ran for values the memo had judged")

    monkeypatch.setattr(runner, "batch_definition", no_gx)
    _same_outcome(validate_frame(WaterQualitySample, frame, known_references=known, memo=memo), first)


def test_presence_is_remembered_whatever_value_stands_for_it(
    truth: SimulatorTruth, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A not-null check judges one present value for a column; another chunk (or a link table's column of ids
    judged in their own stream) puts another value first, and GX need not judge presence again for it."""
    frame = _stream_frame(truth.samples)
    known = {STATIONS_KEY: truth.station_codes()}
    memo = VerdictMemo(limit=len(frame) * 10, capacity=len(frame) * 100)
    validate_frame(WaterQualitySample, frame, known_references=known, memo=memo)
    reversed_frame = frame.iloc[::-1].reset_index(drop=True)  # every column's first value is another one now
    alone = validate_frame(WaterQualitySample, reversed_frame, known_references=known)

    def no_gx() -> None:
        raise AssertionError("Great Expectations ran for values the memo had judged")

    monkeypatch.setattr(runner, "batch_definition", no_gx)
    _same_outcome(validate_frame(WaterQualitySample, reversed_frame, known_references=known, memo=memo), alone)


def test_a_full_memo_remembers_nothing_more(truth: SimulatorTruth, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _stream_frame(truth.samples)
    known = {STATIONS_KEY: truth.station_codes()}
    memo = VerdictMemo(limit=len(frame) * 10, capacity=0)
    first = validate_frame(WaterQualitySample, frame, known_references=known, memo=memo)
    validations = Counter[str]()

    def counted() -> object:
        validations["gx"] += 1
        return batch_definition()

    monkeypatch.setattr(runner, "batch_definition", counted)
    _same_outcome(validate_frame(WaterQualitySample, frame, known_references=known, memo=memo), first)
    assert validations["gx"] == 1  # nothing was remembered: GX judged the same values again
