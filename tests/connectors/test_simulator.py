"""The simulator's ground truth is itself checked: deterministic, sending what real stations send (4-hourly nutrient
analysers, calibration hours, flags per analyser, dawn DO minimum, salt tides, skipped hours, below-detection
readings, units as loggers write them, clocks a little off), every bad kind planted with exactly one defect, and the
per-factor truth agreeing with the rules applied here, independently, to the raw records.

The checks use literal expectations from the bureau's API description and REFERENCE (units, detection limits,
standards, bounds), the contract's pydantic model and the rules written out below, never our own connector or
quality code, so the other packages' tests can trust this truth.
"""

from __future__ import annotations

import copy
import json
import math
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from connectors.water_quality import WaterQualitySimulator
from connectors.water_quality.simulator import BadKind, FactorOutcome, SimulatorTruth, parse_beijing, sample_key
from contracts.types import BEIJING
from contracts.water_quality import FACTOR_CODES, WaterQualitySample, WaterQualityStation

# The bureau's units, as its API description lists them (the contract's spelling).
BUREAU_UNITS = {
    "w01001": "dimensionless",
    "w01009": "mg/L",
    "w01010": "°C",
    "w01014": "µS/cm",
    "w01019": "mg/L",
    "w21003": "mg/L",
    "w21011": "mg/L",
    "w21001": "mg/L",
    "w01003": "NTU",
}
# How stations write them (REFERENCE trap 17), after NFKC, and what a reading in another unit is multiplied by.
SYNONYMS = {"无量纲": "dimensionless", "mg/l": "mg/L", "毫克/升": "mg/L", "us/cm": "μS/cm", "μg/l": "μg/L"}
CONVERSIONS = {("mg/L", "μg/L"): 0.001, ("μS/cm", "mS/cm"): 1000.0}
# Bounds of the per-factor contract (lead's issue 14 brief) and detection limits.
BOUNDS = {
    "w01001": (0, 14),
    "w01009": (0, 25),
    "w01010": (-5, 45),
    "w01014": (0, 100_000),
    "w01019": (0, 100),
    "w21003": (0, 100),
    "w21011": (0, 50),
    "w21001": (0, 100),
    "w01003": (0, 10_000),
}
DETECTION_LIMITS = {
    "w01009": 0.2,
    "w01019": 0.5,
    "w21003": 0.025,
    "w21011": 0.01,
    "w21001": 0.05,
    "w01003": 1,
    "w01014": 1,
}
NUTRIENTS = ("w01019", "w21003", "w21011", "w21001")
STANDARDS_MG_L = {"w01019": 5.0, "w21003": 1.0, "w21011": 0.2, "w21001": 2.0}  # the analysers' check solutions
CAPS = {"w01019": (20.0,), "w21003": (10.0,), "w21011": (2.0,), "w21001": (20.0,), "w01003": (4000.0, 9999.0)}
DELTA_SITES = ("三沙口", "南沙", "万顷沙")
CLEAN_LAKES = ("麓湖", "芙蓉嶂水库")
GUANGZHOU_DISTRICTS = {
    "越秀区",
    "海珠区",
    "荔湾区",
    "天河区",
    "白云区",
    "黄埔区",
    "番禺区",
    "花都区",
    "南沙区",
    "从化区",
    "增城区",
}
HOURS = 72


@pytest.fixture(scope="module")
def default_sim() -> WaterQualitySimulator:
    return WaterQualitySimulator(seed=7, api_key="k", stations=20, hours=48, end=datetime(2026, 11, 23, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def every_site() -> SimulatorTruth:
    """One station per site, three days: every phenomenon the simulator imitates shows up."""
    return WaterQualitySimulator(seed=11, api_key="k", stations=24, hours=HOURS).truth


def _scale(code: str, unit: object) -> float | None:
    """What a reading in ``unit`` is multiplied by to be in the contract's unit; None if it cannot be converted."""
    if not isinstance(unit, str):
        return None
    spelt = unicodedata.normalize("NFKC", unit).strip()
    spelt = SYNONYMS.get(spelt, spelt)
    target = unicodedata.normalize("NFKC", BUREAU_UNITS[code])
    return 1.0 if spelt == target else CONVERSIONS.get((target, spelt))


def _expected(code: str, reading: dict[str, object] | None) -> tuple[str | None, float | None, tuple[str, ...]]:
    """The per-factor rule of issue 14, applied to the raw reading: (status, published value, reasons)."""
    if reading is None:
        return None, None, ()
    field = FACTOR_CODES[code]
    value, flag = reading["value"], reading["flag"]
    scale = _scale(code, reading["unit"])
    if scale is None:
        return "rejected", None, (f"{field}_wrong_unit",)
    if value == "NaN":
        return "rejected", None, (f"{field}_not_finite",)
    if value is not None:
        assert isinstance(value, float | int)
        value = value * scale
        limit = DETECTION_LIMITS.get(code)
        if limit is not None and -limit <= value < 0:
            return ("below_detection" if flag in ("N", "S", None) else "invalid"), None, ()
        low, high = BOUNDS[code]
        if not low <= value <= high:
            return "rejected", None, (f"{field}_out_of_range",)
    if flag == "T":
        return "over_range", value, ()
    if flag in ("N", "S", None):
        return "valid", value, ()
    return "invalid", value, ()


def _published(truth: SimulatorTruth) -> list[tuple[dict[str, object], dict[str, FactorOutcome]]]:
    return [(r, o) for r, o in zip(truth.samples, truth.outcomes, strict=True) if o is not None]


def _factors(record: Mapping[str, object]) -> dict[str, dict[str, Any]]:
    """The record's raw readings by factor code, as the simulator serves them."""
    factors = record["factors"]
    assert isinstance(factors, dict)
    return factors


def _local_hour(record: dict[str, object]) -> datetime:
    return sample_key(record)[1].astimezone(BEIJING)


def _series(truth: SimulatorTruth, code: str) -> dict[str, dict[datetime, dict[str, object]]]:
    """Station → local sampling hour → the raw reading of ``code``, over published records, spoilt factors left out."""
    series: dict[str, dict[datetime, dict[str, object]]] = defaultdict(dict)
    for record, outcomes in _published(truth):
        reading = _factors(record).get(code)
        if reading is not None and outcomes[FACTOR_CODES[code]].status != "rejected":
            series[str(record["station_code"])][_local_hour(record)] = reading
    return series


def _in_contract_unit(code: str, reading: dict[str, object]) -> float:
    scale = _scale(code, reading["unit"])
    assert scale is not None
    assert isinstance(reading["value"], float | int)
    return reading["value"] * scale


def _stations_named(truth: SimulatorTruth, parts: tuple[str, ...]) -> dict[str, str]:
    return {str(s["station_code"]): str(s["name"]) for s in truth.stations if any(p in str(s["name"]) for p in parts)}


# ---------------------------------------------------------------------------------------------- determinism, sizes


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not() -> None:
    first = WaterQualitySimulator(seed=7, api_key="a").truth
    again = WaterQualitySimulator(seed=7, api_key="b").truth
    other = WaterQualitySimulator(seed=8, api_key="a").truth
    assert first == again
    assert first.samples != other.samples


def test_default_sizes_cover_every_bad_kind_with_the_agreed_reason_codes(default_sim: WaterQualitySimulator) -> None:
    truth = default_sim.truth
    assert len(truth.stations) == 20
    assert {p.kind for p in truth.planted} == set(BadKind)
    record_level = {p.reason for p in truth.planted if p.field is None}
    assert record_level == {"unknown_station", "sampled_at_missing", "duplicate_key"}
    factor_level = {p.reason for p in truth.planted if p.field is not None}
    assert {"ph_out_of_range", "ammonia_nitrogen_out_of_range", "ammonia_nitrogen_wrong_unit"} <= factor_level
    assert {"conductivity_wrong_unit"} <= factor_level
    fields = set(FACTOR_CODES.values())
    assert any(r.endswith("_not_finite") and r.removesuffix("_not_finite") in fields for r in factor_level)
    copies = sum(1 for p in truth.planted if p.kind is BadKind.DUPLICATE)
    assert len(truth.planted) == round(0.02 * (len(truth.samples) - copies))  # the share asked for
    assert sorted(r for r in truth.reasons if r) == sorted(p.reason for p in truth.planted if p.field is None)


def test_a_small_simulator_still_plants_every_kind(simulator: WaterQualitySimulator) -> None:
    assert {p.kind for p in simulator.truth.planted} == set(BadKind)


def test_no_bad_share_means_every_record_is_published_and_no_factor_rejected() -> None:
    truth = WaterQualitySimulator(seed=1, api_key="k", stations=3, hours=4, bad_share=0).truth
    assert truth.planted == ()
    assert truth.reasons == (None,) * len(truth.samples)
    assert len(truth.valid_sample_keys()) == len(truth.samples) > 0
    assert all(o.status != "rejected" for outcomes in truth.outcomes if outcomes for o in outcomes.values())


def test_every_station_is_a_valid_guangzhou_station(default_sim: WaterQualitySimulator) -> None:
    stations = default_sim.truth.stations
    codes = [s["station_code"] for s in stations]
    assert len(set(codes)) == len(codes) == 20
    for station in stations:
        parsed = WaterQualityStation.model_validate(station)
        assert parsed.district in GUANGZHOU_DISTRICTS
        assert 112.9 <= parsed.longitude <= 114.1
        assert 22.5 <= parsed.latitude <= 23.95
    assert {s["water_body_type"] for s in stations} == {"river", "lake"}


# ------------------------------------------------------------------------------------------- what stations send


def test_nutrient_analysers_measure_every_four_hours_and_repeat_the_result_in_between(
    every_site: SimulatorTruth,
) -> None:
    """Between two measuring hours a nutrient's hourly row repeats the last result (value and flag); results change
    only at the station's measuring hours, one phase mod 4. The probe's factors change every hour."""
    for code in NUTRIENTS:
        for station, hours in _series(every_site, code).items():
            changes: set[int] = set()
            repeats = 0
            for hour, reading in hours.items():
                before = hours.get(hour - timedelta(hours=1))
                if before is None or "C" in (reading["flag"], before["flag"]):
                    continue
                if (reading["value"], reading["flag"]) != (before["value"], before["flag"]):
                    changes.add(hour.hour % 4)
                else:
                    repeats += 1
            assert len(changes) == 1, (station, code, changes)
            assert repeats >= HOURS // 2, (station, code)
    ph_changes = Counter(
        hour.hour % 4
        for hours in _series(every_site, "w01001").values()
        for hour, reading in hours.items()
        if (before := hours.get(hour - timedelta(hours=1))) is not None and before["value"] != reading["value"]
    )
    assert set(ph_changes) == {0, 1, 2, 3}


def test_each_nutrient_analyser_checks_its_standard_daily_at_its_own_hour(every_site: SimulatorTruth) -> None:
    for code in NUTRIENTS:
        for station, hours in _series(every_site, code).items():
            checks = {hour: reading for hour, reading in hours.items() if reading["flag"] == "C"}
            (check_hour,) = {hour.hour for hour in checks}  # one hour of the day per analyser
            assert len(checks) == sum(1 for hour in hours if hour.hour == check_hour) >= HOURS // 24 - 1
            for reading in checks.values():
                assert _in_contract_unit(code, reading) == pytest.approx(STANDARDS_MG_L[code]), (station, code)


def test_flags_are_per_analyser_with_rare_faults_and_letters_outside_the_2017_table(
    every_site: SimulatorTruth,
) -> None:
    published = _published(every_site)
    flags = Counter(reading["flag"] for record, _ in published for reading in _factors(record).values())
    assert flags["N"] / sum(flags.values()) > 0.9
    assert set(flags) == set("NFMSDCTBPH")
    assert flags["P"] + flags["H"] < flags["M"] + flags["D"] + flags["F"] + flags["B"]
    mixed = [r for r, _ in published if len({reading["flag"] for reading in _factors(r).values()}) > 1]
    assert len(mixed) > len(published) / 10  # one analyser's flag is not the whole sample's
    for record, _ in published:
        for code, reading in _factors(record).items():
            if reading["flag"] in ("F", "B"):
                assert reading["value"] is None  # stopped or no link: no value
            elif reading["flag"] == "T":
                cap = _in_contract_unit(code, reading)
                assert any(cap == pytest.approx(range_cap) for range_cap in CAPS[code]), (code, cap)
            elif reading["value"] != "NaN":
                assert isinstance(reading["value"], float)


def test_dissolved_oxygen_is_lowest_around_dawn(every_site: SimulatorTruth) -> None:
    by_hour: dict[int, list[float]] = defaultdict(list)
    for hours in _series(every_site, "w01009").values():
        for hour, reading in hours.items():
            if reading["flag"] == "N":
                by_hour[hour.hour].append(_in_contract_unit("w01009", reading))
    means = {hour: sum(values) / len(values) for hour, values in by_hour.items()}
    assert 4 <= min(means, key=means.__getitem__) <= 7
    assert 13 <= max(means, key=means.__getitem__) <= 17


def test_delta_stations_see_semi_diurnal_salt_tides(every_site: SimulatorTruth) -> None:
    delta = _stations_named(every_site, DELTA_SITES)
    assert len(delta) == 3
    highest: dict[str, float] = {}
    for station, hours in _series(every_site, "w01014").items():
        values = {h: _in_contract_unit("w01014", r) for h, r in hours.items() if r["flag"] in ("N", "S")}
        highest[station] = max(values.values())
        if station not in delta:
            assert highest[station] < 2_000
            continue

        def lag_correlation(lag: int, values: dict[datetime, float] = values) -> float:
            pairs = [
                (v, values[h + timedelta(hours=lag)]) for h, v in values.items() if h + timedelta(hours=lag) in values
            ]
            xs, ys = zip(*pairs, strict=True)
            mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
            cov = sum((x - mx) * (y - my) for x, y in pairs)
            return float(cov / math.sqrt(sum((x - mx) ** 2 for x in xs) * sum((y - my) ** 2 for y in ys)))

        assert max(values.values()) > 5 * min(values.values()), delta[station]
        assert max(lag_correlation(12), lag_correlation(13)) > 0.6, delta[station]  # M2: 12.42 h
        assert lag_correlation(6) < 0, delta[station]  # half a tide later the water is fresh
    (wanqingsha,) = [code for code, name in delta.items() if "万顷沙" in name]
    assert highest[wanqingsha] > 50_000


def test_clean_lakes_read_small_negatives_within_the_detection_limit(every_site: SimulatorTruth) -> None:
    clean = _stations_named(every_site, CLEAN_LAKES)
    negatives: dict[str, list[float]] = defaultdict(list)
    for code in ("w21003", "w21011"):
        for station, hours in _series(every_site, code).items():
            for reading in hours.values():
                if reading["value"] is not None and _in_contract_unit(code, reading) < 0:
                    negatives[station].append(_in_contract_unit(code, reading) / DETECTION_LIMITS[code])
    assert set(negatives) == set(clean)
    assert all(-1 <= share < 0 for shares in negatives.values() for share in shares)


def test_each_logger_writes_units_its_own_way(every_site: SimulatorTruth) -> None:
    spellings = {
        (str(record["station_code"]), code): reading["unit"]
        for record, outcomes in _published(every_site)
        for code, reading in _factors(record).items()
        if outcomes[FACTOR_CODES[code]].status != "rejected"
    }
    assert set(spellings.values()) == {
        *BUREAU_UNITS.values(),
        "无量纲",
        "℃",
        "毫克/升",
        "mg/l",
        "\u03bcS/cm",  # Greek mu
        "us/cm",
        "µg/L",
        "mS/cm",
    }
    per_station = Counter(key for record, outcomes in _published(every_site) for key in [str(record["station_code"])])
    assert len(per_station) == 24
    for record, outcomes in _published(every_site):  # one spelling per station and factor, all hours
        for code, reading in _factors(record).items():
            if outcomes[FACTOR_CODES[code]].status != "rejected":
                assert reading["unit"] == spellings[(str(record["station_code"]), code)]


def test_stations_skip_hours_now_and_then() -> None:
    truth = WaterQualitySimulator(seed=11, api_key="k", stations=24, hours=HOURS, bad_share=0).truth
    end = datetime(2026, 11, 23, 0, tzinfo=UTC)  # the default end
    every_hour = {(code, end - timedelta(hours=h)) for code in truth.station_codes() for h in range(1, HOURS + 1)}
    sent = [sample_key(record) for record in truth.samples]
    assert len(sent) == len(set(sent))
    missing = every_hour - set(sent)
    assert set(sent) <= every_hour
    assert 0 < len(missing) < 0.05 * len(every_hour)
    assert len({code for code, _ in missing}) >= 3


def test_stamps_and_clocks_are_off_by_seconds_and_minutes_not_more(every_site: SimulatorTruth) -> None:
    late_stamps, early_reports = 0, 0
    for record in every_site.samples:
        if record["sampled_at"] is None:
            continue
        sampled_at = parse_beijing(str(record["sampled_at"]))
        hour = sample_key(record)[1]
        assert sampled_at.minute == 0
        assert 0 <= sampled_at.second <= 5
        late_stamps += sampled_at.second > 0
        ahead = hour + timedelta(hours=1) - parse_beijing(str(record["updated_at"]))
        assert ahead < timedelta(minutes=5)
        early_reports += ahead > timedelta(0)
    assert late_stamps > 10
    assert early_reports > 10


# --------------------------------------------------------------------------------------------------- the truth


@pytest.mark.parametrize("truth_of", ["default", "every_site"])
def test_each_record_has_a_record_reason_or_a_truth_for_every_factor_that_follows_the_rules(
    truth_of: str, default_sim: WaterQualitySimulator, every_site: SimulatorTruth
) -> None:
    truth = default_sim.truth if truth_of == "default" else every_site
    assert len(truth.outcomes) == len(truth.samples)
    statuses: Counter[str | None] = Counter()
    for record, reason, outcomes in zip(truth.samples, truth.reasons, truth.outcomes, strict=True):
        assert (reason is None) == (outcomes is not None)
        if outcomes is None:
            continue
        assert set(outcomes) == set(FACTOR_CODES.values())
        for code, field in FACTOR_CODES.items():
            status, value, reasons = _expected(code, _factors(record).get(code))
            outcome = outcomes[field]
            assert (outcome.status, outcome.reasons) == (status, reasons), (record, field)
            assert outcome.value == (None if value is None else pytest.approx(value, rel=1e-9)), (record, field)
            statuses[status] += 1
    assert set(statuses) == {None, "valid", "over_range", "invalid", "below_detection", "rejected"}
    assert truth.published_outcomes().keys() == truth.valid_sample_keys()


def test_every_planted_record_has_exactly_the_one_defect_its_reason_names(default_sim: WaterQualitySimulator) -> None:
    truth = default_sim.truth
    codes = truth.station_codes()
    rejected = [
        (record, field)
        for record, outcomes in _published(truth)
        for field, outcome in outcomes.items()
        if outcome.status == "rejected"
    ]
    assert sorted((id(r), f) for r, f in rejected) == sorted(
        (id(record), field)
        for record, outcomes in _published(truth)
        for field in outcomes
        if any(p.record == record and p.field == field for p in truth.planted)
    )
    for position, record in enumerate(truth.samples):
        reason = truth.reasons[position]
        if reason is None:
            continue
        repaired = copy.deepcopy(record)
        if reason == "unknown_station":
            assert record["station_code"] not in codes
            repaired["station_code"] = sorted(codes)[0]
        elif reason == "sampled_at_missing":
            assert record["sampled_at"] is None
            repaired["sampled_at"] = "2026-11-22 08:00:00"
        elif reason == "duplicate_key":
            later = truth.samples[position + 1 :]
            (copy_,) = [
                r
                for r, why in zip(later, truth.reasons[position + 1 :], strict=True)
                if why is None and sample_key(r) == sample_key(record)
            ]
            assert _factors(copy_) == _factors(record)
            assert str(copy_["updated_at"]) > str(
                record["updated_at"]
            )  # the resent copy supersedes the original (Beijing text)
        else:
            pytest.fail(f"unexpected record-level reason {reason}")
        for code, reading in _factors(repaired).items():  # nothing else is wrong with it
            assert _expected(code, reading)[0] != "rejected"
    for plant in truth.planted:
        if plant.field is None:
            continue
        (code,) = [c for c, f in FACTOR_CODES.items() if f == plant.field]
        assert _expected(code, _factors(plant.record)[code])[2] == (plant.reason,)
        others = [c for c in _factors(plant.record) if c != code]
        assert all(_expected(c, _factors(plant.record)[c])[0] != "rejected" for c in others)


def test_contract_validation_refuses_each_unrepaired_value_defect(default_sim: WaterQualitySimulator) -> None:
    """The other side of the repair test: the defect itself is one the contract's model can see."""
    for plant in default_sim.truth.planted:
        if plant.field is None or plant.reason.endswith("_wrong_unit"):
            continue  # reference, uniqueness and unit checks live in quality, not in the model
        (code,) = [c for c, f in FACTOR_CODES.items() if f == plant.field]
        value = _factors(plant.record)[code]["value"]
        with pytest.raises(ValidationError):
            WaterQualitySample.model_validate(
                {
                    "station_code": plant.record["station_code"],
                    "sampled_at": "2026-11-22 08:00:00",
                    "updated_at": "2026-11-22 09:05:00",
                    code: math.nan if value == "NaN" else value,
                }
            )


def test_bad_records_are_older_than_the_newest_valid_one(default_sim: WaterQualitySimulator) -> None:
    truth = default_sim.truth
    newest_valid = max(truth.valid_updated_at())
    assert all(parse_beijing(str(p.record["updated_at"])) < newest_valid for p in truth.planted)


def test_the_feed_is_in_stable_update_order(default_sim: WaterQualitySimulator) -> None:
    samples = default_sim.truth.samples
    order = [(r["updated_at"], r["station_code"], r["sampled_at"] or "") for r in samples]
    assert order == sorted(order)


# ------------------------------------------------------------------------------------------ time passing, the API


def test_advance_adds_an_hour_for_every_station_and_corrects_earlier_samples() -> None:
    sim = WaterQualitySimulator(seed=2, api_key="k", stations=5, hours=6)
    before = sim.truth
    old_end = sim.end
    old_newest = max(parse_beijing(str(r["updated_at"])) for r in before.samples)
    sim.advance(hours=2, corrections=3)
    after = sim.truth
    assert sim.end == old_end + timedelta(hours=2)
    new_keys = {(code, old_end + timedelta(hours=h)) for code in before.station_codes() for h in (0, 1)}
    assert after.valid_sample_keys() == before.valid_sample_keys() | new_keys
    assert after.bad_samples() == before.bad_samples()
    old = {sample_key(r): r for r in before.valid_samples()}
    changed = [r for r in after.valid_samples() if sample_key(r) in old and r != old[sample_key(r)]]
    assert len(changed) == 3
    outcomes = after.published_outcomes()
    for record in changed:
        assert parse_beijing(str(record["updated_at"])) > old_newest
        ph = _factors(record)["w01001"]
        assert ph["value"] != _factors(old[sample_key(record)])["w01001"]["value"]
        assert outcomes[sample_key(record)]["ph"] == ("valid", ph["value"], ())
    assert len(after.samples_since(old_newest + timedelta(seconds=1))) == len(new_keys) + 3


def test_the_api_sends_nan_as_a_bare_token_and_refuses_a_missing_key(
    simulator: WaterQualitySimulator, api_key: str
) -> None:
    with simulator.serve(host="127.0.0.1", port=0) as running:
        url = f"{running.base_url}/api/v1/samples"
        denied = httpx.get(url, params={"page": 1, "page_size": 5})
        answer = httpx.get(url, params={"page": 1, "page_size": 10_000}, headers={"X-Api-Key": api_key})
        missing = httpx.get(f"{running.base_url}/api/v2/nothing", headers={"X-Api-Key": api_key})
    assert denied.status_code == 401
    assert denied.json()["code"] == 401
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    assert b'"value":NaN' in answer.content
    body = json.loads(answer.content)  # Python's default parser turns the token into a float NaN
    assert body["code"] == 0
    assert body["data"]["total"] == len(simulator.truth.samples)
    assert any(
        isinstance(reading["value"], float) and math.isnan(reading["value"])
        for item in body["data"]["items"]
        for reading in _factors(item).values()
    )
    assert missing.status_code == 404
    log = running.requests
    assert [(e.path, e.status, e.authorized) for e in log] == [
        ("/api/v1/samples", 401, False),
        ("/api/v1/samples", 200, True),
        ("/api/v2/nothing", 404, True),
    ]
    assert log[1].query == {"page": "1", "page_size": "10000"}


def test_updated_since_must_be_in_the_bureaus_format(simulator: WaterQualitySimulator, api_key: str) -> None:
    with simulator.serve(host="127.0.0.1", port=0) as running:
        answer = httpx.get(
            f"{running.base_url}/api/v1/samples",
            params={"updated_since": "2026-11-22T08:00:00Z"},
            headers={"X-Api-Key": api_key},
        )
    assert answer.status_code == 400


def test_the_simulator_refuses_sizes_and_times_it_cannot_simulate() -> None:
    with pytest.raises(ValueError, match="on the hour"):
        WaterQualitySimulator(api_key="k", end=datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    with pytest.raises(ValueError, match="aware"):
        WaterQualitySimulator(api_key="k", end=datetime(2026, 11, 23))  # noqa: DTZ001 - the point of the test
    with pytest.raises(ValueError, match="stations"):
        WaterQualitySimulator(api_key="k", stations=0)
    with pytest.raises(ValueError, match="corrected"):
        WaterQualitySimulator(api_key="k", stations=1, hours=1, bad_share=0).advance(corrections=2)


class _Clock:
    """A clock the test moves by hand: live mode must follow it, not the wall clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _served_samples(base_url: str, api_key: str) -> list[dict[str, object]]:
    answer = httpx.get(
        f"{base_url}/api/v1/samples", params={"page": 1, "page_size": 10_000}, headers={"X-Api-Key": api_key}
    )
    assert answer.status_code == 200
    items: list[dict[str, object]] = json.loads(answer.content)["data"]["items"]
    return items


def test_a_live_feed_follows_its_clock_with_new_hours_and_corrections_never_stamped_ahead_of_it() -> None:
    start = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
    clock = _Clock(start)
    # The feed at 09:30 shows hours up to the one that ended at 09:00: its reports (up to 10 min late) are all in.
    sim = WaterQualitySimulator(seed=3, api_key="k", stations=4, hours=6, end=datetime(2026, 11, 23, 9, tzinfo=UTC))
    sim.follow(clock, corrections_per_hour=2)
    with sim.serve() as running:
        first = _served_samples(running.base_url, "k")
        clock.now = start + timedelta(minutes=40)  # 10:10: the 09:00-10:00 hour's reports may still be arriving
        unchanged = _served_samples(running.base_url, "k")
        clock.now = start + timedelta(hours=2, minutes=5)  # 11:35: two more hours are in
        later = _served_samples(running.base_url, "k")

    assert unchanged == first
    stations = sim.truth.station_codes()  # the real stations, not a planted unknown code
    before = {json.dumps(record, sort_keys=True) for record in first}
    after = {json.dumps(record, sort_keys=True) for record in later}
    added = [json.loads(text) for text in after - before]
    replaced = [json.loads(text) for text in before - after]
    new_hours = {datetime(2026, 11, 23, 9, tzinfo=UTC), datetime(2026, 11, 23, 10, tzinfo=UTC)}
    fresh = {sample_key(record) for record in added if sample_key(record)[1] in new_hours}
    assert fresh == {(code, hour) for code in stations for hour in new_hours}
    corrections = [record for record in added if sample_key(record)[1] not in new_hours]
    assert len(corrections) == len(replaced) == 4  # two per hour that passed, each replacing its earlier version
    assert {sample_key(record) for record in corrections} == {sample_key(record) for record in replaced}
    latest = max(parse_beijing(str(record["updated_at"])) for record in later)
    assert latest <= clock.now
