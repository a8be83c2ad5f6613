"""The simulator's ground truth is itself checked: deterministic, realistic, every bad kind planted with exactly one
defect, units as the contract says, NaN sent as a bare token, and ``advance`` adding hours and corrections.

The checks use the contract (pydantic) and literal expectations from the bureau's API description, never our own
connector code, so the other packages' tests can trust this truth.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError

from connectors.water_quality import WaterQualitySimulator
from connectors.water_quality.simulator import BadKind, parse_beijing, sample_key
from contracts.water_quality import FACTOR_CODES, WaterQualitySample, WaterQualityStation

# The bureau's units, as its API description lists them.
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


@pytest.fixture(scope="module")
def default_sim() -> WaterQualitySimulator:
    return WaterQualitySimulator(seed=7, api_key="k", stations=20, hours=48, end=datetime(2026, 11, 23, 0, tzinfo=UTC))


def _contract_row(record: dict[str, object]) -> dict[str, object]:
    """A sample as the contract's aliases expect it, built here without the connector's post_process."""
    row: dict[str, object] = {key: record[key] for key in ("station_code", "sampled_at", "updated_at")}
    factors = record["factors"]
    assert isinstance(factors, dict)
    for code, reading in factors.items():
        row[code] = reading["value"]
        row[f"{code}-Flag"] = reading["flag"]
    return row


def test_the_same_seed_gives_the_same_data_and_another_seed_does_not() -> None:
    first = WaterQualitySimulator(seed=7, api_key="a").truth
    again = WaterQualitySimulator(seed=7, api_key="b").truth
    other = WaterQualitySimulator(seed=8, api_key="a").truth
    assert first == again
    assert first.samples != other.samples


def test_default_sizes_cover_every_bad_kind_with_the_agreed_reason_codes(default_sim: WaterQualitySimulator) -> None:
    truth = default_sim.truth
    assert len(truth.stations) == 20
    assert len(truth.valid_sample_keys()) + sum(1 for p in truth.planted if p.kind is not BadKind.DUPLICATE) == 20 * 48
    assert {p.kind for p in truth.planted} == set(BadKind)
    reasons = {p.reason for p in truth.planted}
    assert {
        "ph_out_of_range",
        "ammonia_nitrogen_out_of_range",
        "unknown_station",
        "sampled_at_missing",
        "duplicate_key",
    } <= reasons
    fields = set(FACTOR_CODES.values())
    assert any(r.endswith("_not_finite") and r.removesuffix("_not_finite") in fields for r in reasons)
    assert any(r.endswith("_wrong_unit") and r.removesuffix("_wrong_unit") in fields for r in reasons)
    assert len(truth.planted) == round(0.02 * 20 * 48)  # the share asked for
    assert Counter(reason is None for reason in truth.reasons)[False] == len(truth.planted)


def test_a_small_simulator_still_plants_every_kind(simulator: WaterQualitySimulator) -> None:
    assert {p.kind for p in simulator.truth.planted} == set(BadKind)


def test_no_bad_share_means_every_sample_is_valid() -> None:
    truth = WaterQualitySimulator(seed=1, api_key="k", stations=3, hours=4, bad_share=0).truth
    assert truth.planted == ()
    assert len(truth.valid_sample_keys()) == len(truth.samples) == 12


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


def test_every_valid_sample_passes_the_contract_with_the_contracts_units(default_sim: WaterQualitySimulator) -> None:
    truth = default_sim.truth
    codes = truth.station_codes()
    contract_units = {spec.alias: spec.unit for spec in WaterQualitySample.field_specs() if spec.alias in FACTOR_CODES}
    assert contract_units == BUREAU_UNITS
    for record in truth.valid_samples():
        WaterQualitySample.model_validate(_contract_row(record))
        assert record["station_code"] in codes
        for code, reading in record["factors"].items():
            assert reading["unit"] == BUREAU_UNITS[code]
            assert isinstance(reading["value"], float | int)
    keys = [sample_key(r) for r in truth.valid_samples()]
    assert len(keys) == len(set(keys))


def test_values_are_realistic_with_a_daily_oxygen_cycle_and_mostly_normal_flags(
    default_sim: WaterQualitySimulator,
) -> None:
    valid = default_sim.truth.valid_samples()
    flags = Counter(reading["flag"] for r in valid for reading in r["factors"].values())
    assert flags["N"] / sum(flags.values()) > 0.9
    assert set(flags) - {"N"}  # some maintenance, calibration, ... hours
    assert set(flags) <= set("NFMSDCTB")

    def mean_oxygen(local_hours: set[int]) -> float:
        values = [
            r["factors"]["w01009"]["value"]
            for r in valid
            if (parse_beijing(r["sampled_at"]).hour + 8) % 24 in local_hours
        ]
        return sum(values) / len(values)

    assert mean_oxygen({14, 15, 16}) > mean_oxygen({2, 3, 4}) + 0.5  # photosynthesis by day
    assert any("w01003" not in r["factors"] for r in valid)  # some stations have no turbidity sensor
    assert {r["sampled_at"][-5:] for r in valid} == {"00:00"}  # interval starts, on the hour


def test_every_planted_record_has_exactly_the_one_defect_its_reason_names(default_sim: WaterQualitySimulator) -> None:
    truth = default_sim.truth
    codes = truth.station_codes()
    for position, record in enumerate(truth.samples):
        reason = truth.reasons[position]
        if reason is None:
            continue
        repaired = copy.deepcopy(record)
        factors = repaired["factors"]
        if reason == "ph_out_of_range":
            assert factors["w01001"]["value"] > 14
            factors["w01001"]["value"] = 7.0
        elif reason == "ammonia_nitrogen_out_of_range":
            assert factors["w21003"]["value"] < 0
            factors["w21003"]["value"] = 0.5
        elif reason == "unknown_station":
            assert record["station_code"] not in codes
        elif reason == "sampled_at_missing":
            assert record["sampled_at"] is None
            repaired["sampled_at"] = "2026-11-22 08:00:00"
        elif reason == "duplicate_key":
            later = truth.samples[position + 1 :]
            (copy_,) = [
                r
                for r, why in zip(later, truth.reasons[position + 1 :], strict=True)
                if why is None
                and r["sampled_at"] == record["sampled_at"]
                and r["station_code"] == record["station_code"]
            ]
            assert copy_["factors"] == record["factors"]
            assert copy_["updated_at"] > record["updated_at"]  # the resent copy supersedes the original
        elif reason.endswith("_not_finite"):
            (code,) = [c for c, reading in factors.items() if reading["value"] == "NaN"]
            assert FACTOR_CODES[code] == reason.removesuffix("_not_finite")
            factors[code]["value"] = 1.0
        elif reason.endswith("_wrong_unit"):
            (code,) = [c for c, reading in factors.items() if reading["unit"] != BUREAU_UNITS[c]]
            assert FACTOR_CODES[code] == reason.removesuffix("_wrong_unit")
            assert factors[code]["unit"] in {"µg/L", "mS/cm"}
            factors[code]["unit"] = BUREAU_UNITS[code]
        else:
            pytest.fail(f"unexpected reason {reason}")
        WaterQualitySample.model_validate(_contract_row(repaired))  # nothing else is wrong with it
        others = {c: r["unit"] for c, r in factors.items()}
        assert others == {c: BUREAU_UNITS[c] for c in factors}


def test_bad_records_are_older_than_the_newest_valid_one(default_sim: WaterQualitySimulator) -> None:
    truth = default_sim.truth
    newest_valid = max(truth.valid_updated_at())
    assert all(parse_beijing(r["updated_at"]) < newest_valid for r, _ in truth.bad_samples())


def test_the_feed_is_in_stable_update_order(default_sim: WaterQualitySimulator) -> None:
    samples = default_sim.truth.samples
    order = [(r["updated_at"], r["station_code"], r["sampled_at"] or "") for r in samples]
    assert order == sorted(order)


def test_advance_adds_an_hour_for_every_station_and_corrects_earlier_samples() -> None:
    sim = WaterQualitySimulator(seed=2, api_key="k", stations=5, hours=6)
    before = sim.truth
    old_end = sim.end
    old_newest = max(parse_beijing(r["updated_at"]) for r in before.samples)
    sim.advance(hours=2, corrections=3)
    after = sim.truth
    assert sim.end == old_end + timedelta(hours=2)
    new_keys = {(code, old_end + timedelta(hours=h)) for code in before.station_codes() for h in (0, 1)}
    assert after.valid_sample_keys() == before.valid_sample_keys() | new_keys
    assert after.bad_samples() == before.bad_samples()
    old = {sample_key(r): r for r in before.valid_samples()}
    changed = [r for r in after.valid_samples() if sample_key(r) in old and r != old[sample_key(r)]]
    assert len(changed) == 3
    for record in changed:
        assert parse_beijing(record["updated_at"]) > old_newest
        assert record["factors"] != old[sample_key(record)]["factors"]
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
        for reading in item["factors"].values()
    )
    assert missing.status_code == 404
    log = running.requests
    assert [(e.path, e.status, e.has_valid_api_key) for e in log] == [
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


def test_contract_validation_refuses_each_unrepaired_value_defect(default_sim: WaterQualitySimulator) -> None:
    """The other side of the repair test: the defect itself is one the contract (or quality) can see."""
    for record, reason in default_sim.truth.bad_samples():
        if reason in {"unknown_station", "duplicate_key"} or reason.endswith("_wrong_unit"):
            continue  # reference, uniqueness and unit checks live in quality, not in the model
        row = _contract_row(record)
        with pytest.raises(ValidationError):
            WaterQualitySample.model_validate({k: (math.nan if v == "NaN" else v) for k, v in row.items()})
