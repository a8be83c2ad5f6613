"""Contracts: metadata, UTC normalisation, NaN refusal, derived field specs, JSON Schema, compatibility."""

from __future__ import annotations

import math
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, ClassVar

import pytest
from pydantic import Field, ValidationError

from contracts import (
    Classification,
    Contract,
    ContractMeta,
    IncompatibleChangeError,
    UnknownContractError,
    all_contracts,
    check_compatible,
    get_contract,
    schema_id,
)
from contracts.types import BeijingTime
from contracts.water_quality import FACTOR_CODES, WaterQualitySample, WaterQualityStation

SAMPLE = {
    "station_code": "44010001",
    "sampled_at": "2026-11-22 08:00:00",
    "updated_at": "2026-11-22 08:20:00",
    "w01001": 7.4,
    "w01001-Flag": "N",
    "w21003": 0.42,
}


def test_registry_lists_every_contract_in_key_order() -> None:
    keys = [(c.meta.key, c.meta.version) for c in all_contracts()]
    assert keys == [
        ("addresses.buildings", "1.0.0"),
        ("addresses.match_rates", "1.0.0"),
        ("addresses.record_links", "1.0.0"),
        ("addresses.standard_addresses", "1.0.0"),
        ("devices.status", "1.0.0"),
        ("drainage.defects", "1.0.0"),
        ("drainage.facilities", "1.0.0"),
        ("drainage.facility_inspections", "1.0.0"),
        ("drainage.household_inspections", "1.0.0"),
        ("drainage.households", "1.0.0"),
        ("drainage.violations", "1.0.0"),
        ("hydrology.district_rainfall", "1.0.0"),
        ("hydrology.flood_alerts", "1.0.0"),
        ("hydrology.rainfall", "1.0.0"),
        ("hydrology.reservoir", "1.0.0"),
        ("hydrology.reservoir_flood_characteristics", "1.0.0"),
        ("hydrology.reservoir_flood_season_limits", "1.0.0"),
        ("hydrology.river", "1.0.0"),
        ("hydrology.river_thresholds", "1.0.0"),
        ("hydrology.station_rainfall", "1.0.0"),
        ("hydrology.stations", "1.0.0"),
        ("hydrology.water_regime", "1.0.0"),
        ("river_chief.chiefs", "1.0.0"),
        ("river_chief.departments", "1.0.0"),
        ("river_chief.lakes", "1.0.0"),
        ("river_chief.offices", "1.0.0"),
        ("river_chief.patrols", "1.0.0"),
        ("river_chief.problem_closure_rates", "1.0.0"),
        ("river_chief.problem_steps", "1.0.0"),
        ("river_chief.problems", "1.0.0"),
        ("river_chief.reservoirs", "1.0.0"),
        ("river_chief.rivers", "1.0.0"),
        ("river_chief.segment_chiefs", "1.0.0"),
        ("river_chief.segment_overview", "1.0.0"),
        ("river_chief.segments", "1.0.0"),
        ("river_chief.small_water_bodies", "1.0.0"),
        ("rural_sewage.effluent_samples", "1.0.0"),
        ("rural_sewage.facilities", "1.0.0"),
        ("rural_sewage.inspections", "1.0.0"),
        ("water_quality.daily_classes", "1.0.0"),
        ("water_quality.hourly_classes", "1.0.0"),
        ("water_quality.samples", "2.0.0"),
        ("water_quality.stations", "1.1.0"),
    ]
    assert get_contract("water_quality.samples") is WaterQualitySample
    assert get_contract("water_quality.stations", "1.1.0") is WaterQualityStation


def test_unknown_contract_names_the_registered_keys() -> None:
    with pytest.raises(
        UnknownContractError,
        match=r"registered: addresses\.buildings, .*devices\.status, .*hydrology\.rainfall, .*stations",
    ):
        get_contract("hydrology.groundwater")


def test_beijing_time_without_offset_is_stored_as_utc() -> None:
    sample = WaterQualitySample.model_validate(SAMPLE)
    assert sample.sampled_at == datetime(2026, 11, 22, 0, 0, tzinfo=UTC)
    assert sample.sampled_at.utcoffset() is not None
    assert sample.sampled_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_an_explicit_offset_is_kept_not_reinterpreted_as_beijing() -> None:
    sample = WaterQualitySample.model_validate({**SAMPLE, "sampled_at": "2026-11-22T08:00:00+00:00"})
    assert sample.sampled_at == datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_hj212_codes_and_field_names_both_validate() -> None:
    by_code = WaterQualitySample.model_validate(SAMPLE)
    by_name = WaterQualitySample.model_validate(
        {
            "station_code": "44010001",
            "sampled_at": "2026-11-22 08:00:00",
            "updated_at": "2026-11-22 08:20:00",
            "ph": 7.4,
            "ph_flag": "N",
            "ammonia_nitrogen": 0.42,
        }
    )
    assert by_code == by_name
    assert FACTOR_CODES["w21003"] == "ammonia_nitrogen"
    assert len(FACTOR_CODES) == 9


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "NaN", "Infinity"])
@pytest.mark.parametrize("code", ["w01001", "w21003"])
def test_nan_and_infinity_are_refused(code: str, bad: object) -> None:
    with pytest.raises(ValidationError, match="finite"):
        WaterQualitySample.model_validate({**SAMPLE, code: bad})


@pytest.mark.parametrize(
    ("code", "value"), [("w01001", 14.5), ("w21003", -0.1), ("w01003", 10_000.5), ("w01014", 100_001)]
)
def test_values_outside_the_contract_range_are_refused(code: str, value: float) -> None:
    with pytest.raises(ValidationError):
        WaterQualitySample.model_validate({**SAMPLE, code: value})


def test_field_specs_carry_bounds_units_flags_and_keys() -> None:
    ph = WaterQualitySample.field_spec("ph")
    assert (ph.minimum, ph.maximum, ph.unit, ph.alias, ph.nullable) == (0, 14, "dimensionless", "w01001", True)
    ammonia = WaterQualitySample.field_spec("ammonia_nitrogen")
    assert (ammonia.minimum, ammonia.unit) == (0, "mg/L")
    flag = WaterQualitySample.field_spec("ph_flag")
    assert (flag.allowed, flag.pattern, flag.factor) == (None, "^[A-Z]$", "ph")  # any letter: P, H mark invalid
    status = WaterQualitySample.field_spec("ph_status")
    assert (status.derived, status.factor) == (True, "ph")
    assert status.allowed == ("valid", "over_range", "invalid", "below_detection", "rejected")
    assert WaterQualitySample.field_spec("ammonia_nitrogen").detection_limit == 0.025
    code = WaterQualitySample.field_spec("station_code")
    assert (code.type, code.nullable, code.pattern) == ("string", False, r"^[0-9]{8}$")
    assert WaterQualitySample.field_spec("sampled_at").type == "datetime"
    assert WaterQualityStation.field_spec("water_body_type").allowed == ("river", "lake")
    with pytest.raises(KeyError, match="no field 'cod'"):
        WaterQualitySample.field_spec("cod")


def test_every_primary_key_and_cursor_field_is_a_required_contract_field() -> None:
    for contract in all_contracts():
        names = {spec.name: spec for spec in contract.field_specs()}
        wanted = [*contract.meta.primary_key, *([contract.meta.cursor_field] if contract.meta.cursor_field else [])]
        for field in wanted:
            assert field in names, f"{contract.meta.key}: {field} is not a field"
            assert not names[field].nullable, f"{contract.meta.key}: {field} may be null"
        for ref in contract.meta.references:
            assert ref.field in names
            get_contract(ref.dataset)


def test_every_version_field_is_a_required_field_whose_values_order() -> None:
    """Publish compares version values to refuse stale rows: a null or a string cannot be ordered as versions."""
    for contract in all_contracts():
        names = {spec.name: spec for spec in contract.field_specs()}
        field = contract.meta.version_field
        assert field in names, f"{contract.meta.key}: version field {field} is not a field"
        assert not names[field].nullable, f"{contract.meta.key}: version field {field} may be null"
        assert names[field].type in {"datetime", "number", "integer"}, f"{contract.meta.key}: {field} does not order"


def test_json_schema_carries_metadata_and_one_property_per_field() -> None:
    schema = WaterQualitySample.json_schema()
    assert schema["$id"] == schema_id("water_quality.samples", "2.0.0")
    assert schema["$id"] == "urn:waterhub:contract:water_quality.samples:2.0.0"
    assert schema["x-waterhub"]["primary_key"] == ["station_code", "sampled_at"]
    assert schema["x-waterhub"]["classification"] == "public"
    assert schema["x-waterhub"]["version_field"] == "updated_at"
    assert schema["x-waterhub"]["references"] == [
        {"field": "station_code", "dataset": "water_quality.stations", "reason": "unknown_station"}
    ]
    assert set(schema["properties"]) == {spec.name for spec in WaterQualitySample.field_specs()}
    assert schema["properties"]["conductivity"]["unit"] == "µS/cm"
    assert schema["properties"]["conductivity"]["anyOf"][0]["minimum"] == 0


def _station_variant(version: str, *, max_longitude: float, extra: bool = False) -> type[Contract]:
    """A station contract variant, built the way a real next version would be written."""

    class Variant(Contract):
        meta: ClassVar[ContractMeta] = ContractMeta(
            key="water_quality.stations",
            version=version,
            owner="ecology-environment-bureau",
            classification=Classification.PUBLIC,
            primary_key=("station_code",),
            version_field="updated_at",
        )
        station_code: Annotated[str, Field(pattern=r"^\d{8}$")]
        longitude: Annotated[float, Field(ge=73, le=max_longitude)]
        updated_at: datetime

    if not extra:
        return Variant

    class WithNote(Variant):
        meta: ClassVar[ContractMeta] = Variant.meta
        note: str | None = None

    return WithNote


def test_a_narrowed_range_needs_a_major_version() -> None:
    old = _station_variant("1.0.0", max_longitude=136)
    with pytest.raises(IncompatibleChangeError, match=r"longitude: range narrowed.*publish it as 2\.0\.0"):
        check_compatible(old, _station_variant("1.1.0", max_longitude=120))
    check_compatible(old, _station_variant("2.0.0", max_longitude=120))


def test_an_added_optional_field_is_a_compatible_minor_change() -> None:
    old = _station_variant("1.0.0", max_longitude=136)
    check_compatible(old, _station_variant("1.1.0", max_longitude=136, extra=True))
    with pytest.raises(IncompatibleChangeError, match="must be greater"):
        check_compatible(old, _station_variant("1.0.0", max_longitude=136, extra=True))


class _Reading(Contract):
    """A contract whose reading time declares its own floor; its report time keeps BeijingTime's."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="test.readings",
        version="1.0.0",
        owner="test",
        classification=Classification.INTERNAL,
        primary_key=("read_at",),
        version_field="read_at",
    )
    read_at: Annotated[BeijingTime, Field(json_schema_extra={"x-earliest": "2000-01-01T00:00:00Z"})]
    reported_at: BeijingTime | None = None
    note: str | None = None


def test_a_time_field_has_the_floor_its_contract_declares_or_1900() -> None:
    assert _Reading.field_spec("read_at").earliest == datetime(2000, 1, 1, tzinfo=UTC)
    assert _Reading.field_spec("reported_at").earliest == datetime(1900, 1, 1, tzinfo=UTC)
    assert _Reading.json_schema()["properties"]["read_at"]["x-earliest"] == "2000-01-01T00:00:00Z"
    assert _Reading.model_validate({"read_at": "2000-01-01T00:00:00Z"}).read_at == datetime(2000, 1, 1, tzinfo=UTC)
    with pytest.raises(
        ValidationError, match=r"read_at: .* is before the earliest plausible time, 2000-01-01T00:00:00"
    ):
        _Reading.model_validate({"read_at": "2000-01-01 07:59:59"})  # Beijing time: 1999-12-31T23:59:59Z
    with pytest.raises(
        ValidationError, match=r"reported_at: .* is before the earliest plausible time, 1900-01-01T00:00:00"
    ):
        _Reading.model_validate({"read_at": "2026-11-20 08:00:00", "reported_at": "0001-01-01 08:00:00"})


@pytest.mark.parametrize(
    "stamp",
    ["9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00", "0001-01-01 00:00:00"],
    ids=["past 9999", "before year 1", "naive, before year 1 in UTC"],
)
def test_a_time_that_leaves_the_years_1_to_9999_on_its_way_to_utc_is_refused(stamp: str) -> None:
    """pydantic reports a ValueError; the OverflowError Python raises would escape validation and stop the run."""
    with pytest.raises(ValidationError, match=r"sampled_at\n.*outside the years 1-9999"):
        WaterQualitySample.model_validate({**SAMPLE, "sampled_at": stamp})


def test_a_time_after_the_latest_plausible_one_the_caller_passes_is_refused() -> None:
    latest = datetime(2026, 11, 22, 0, 20, tzinfo=UTC)
    WaterQualitySample.model_validate(SAMPLE, context={"not_after": latest})  # updated 08:20 Beijing: just in time
    later = {**SAMPLE, "updated_at": "2026-11-22 08:20:01"}
    assert WaterQualitySample.model_validate(later).updated_at == latest.replace(second=1)  # no run, no bound
    with pytest.raises(
        ValidationError, match=r"updated_at: .* is after the latest plausible time, 2026-11-22T00:20:00\+00:00"
    ):
        WaterQualitySample.model_validate(later, context={"not_after": latest})


@pytest.mark.parametrize(
    "text", ["44010001\x00", "\x00", "river\ud800", "\udfff"], ids=["NUL", "only NUL", "high", "low"]
)
def test_text_no_database_stores_is_refused_in_any_text_field(text: str) -> None:
    """pydantic's stripping refuses a lone surrogate itself; NUL is refused by the contract."""
    with pytest.raises(
        ValidationError, match=r"note(: text holding NUL or a lone surrogate|\n.*unable to parse raw data as a unicode)"
    ):
        _Reading.model_validate({"read_at": "2026-11-20 08:00:00", "note": text})
    assert _Reading.model_validate({"read_at": "2026-11-20 08:00:00", "note": "line\u2028break"}).note


def test_a_raised_floor_breaks_consumers() -> None:
    class Later(_Reading):
        meta: ClassVar[ContractMeta] = ContractMeta(
            key="test.readings",
            version="1.1.0",
            owner="test",
            classification=Classification.INTERNAL,
            primary_key=("read_at",),
            version_field="read_at",
        )
        read_at: Annotated[BeijingTime, Field(json_schema_extra={"x-earliest": "2010-01-01T00:00:00Z"})]

    with pytest.raises(IncompatibleChangeError, match="read_at: earliest plausible time raised"):
        check_compatible(_Reading, Later)


def test_a_contract_module_nobody_lists_is_found_and_registered(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Contract modules are found in the package, so a new one cannot be left out of a hand-kept list."""
    import contracts
    import contracts.registry

    monkeypatch.setattr(contracts.registry, "_REGISTRY", {})
    monkeypatch.setattr(contracts.registry, "_loaded", False)
    monkeypatch.setattr(contracts, "__path__", [*contracts.__path__, str(tmp_path)])
    (tmp_path / "probe_domain.py").write_text(
        "from typing import ClassVar\n"
        "from contracts.base import Classification, Contract, ContractMeta\n"
        "class Probe(Contract):\n"
        "    meta: ClassVar[ContractMeta] = ContractMeta(key='probe.things', version='1.0.0', owner='tests',\n"
        "        classification=Classification.PUBLIC, primary_key=('code',), version_field='v')\n"
        "    code: str\n"
        "    v: int\n"
    )
    try:
        assert get_contract("probe.things").__module__ == "contracts.probe_domain"
        assert get_contract("water_quality.samples") is WaterQualitySample
    finally:
        sys.modules.pop("contracts.probe_domain", None)


@pytest.mark.parametrize("contract", list(all_contracts()), ids=lambda contract: contract.meta.key)
def test_no_pattern_has_a_capturing_group(contract: type[Contract]) -> None:
    """Great Expectations warns on a regex with capturing groups and then judges nothing with it; patterns use
    ``(?:...)`` so every pattern check really runs."""
    for spec in contract.field_specs():
        if spec.pattern is not None:
            assert re.compile(spec.pattern).groups == 0, f"{contract.meta.key}.{spec.name}: {spec.pattern}"
