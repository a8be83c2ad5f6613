"""``post_process`` of the bureau's streams: factors flattened to contract field names, nothing else changed."""

from __future__ import annotations

from connectors.water_quality import WaterQualitySamplesStream, WaterQualityStationsStream
from contracts.water_quality import WaterQualitySample

RAW = {
    "station_code": "44010003",
    "sampled_at": "2026-11-22 08:00:00",
    "updated_at": "2026-11-22 09:04:10",
    "factors": {
        "w01001": {"value": 7.21, "flag": "N", "unit": "dimensionless"},
        "w01009": {"value": "NaN", "flag": "N", "unit": "mg/L"},
        "w01010": {"value": 21.4, "flag": "M", "unit": "°C"},
        "w01014": {"value": 402.5, "flag": "N", "unit": "µS/cm"},
        "w01019": {"value": 3.1, "flag": "N", "unit": "mg/L"},
        "w21003": {"value": 120.0, "flag": "N", "unit": "µg/L"},
        "w21011": {"value": 0.118, "flag": "N", "unit": "mg/L"},
        "w21001": {"value": 1.62, "flag": "N", "unit": "mg/L"},
        "w99999": {"value": 1.0, "flag": "N", "unit": "?"},
    },
}

EXPECTED = {
    "station_code": "44010003",
    "sampled_at": "2026-11-22 08:00:00",
    "updated_at": "2026-11-22 09:04:10",
    "ph": 7.21,
    "ph_flag": "N",
    "ph_unit": "dimensionless",
    "dissolved_oxygen": "NaN",
    "dissolved_oxygen_flag": "N",
    "dissolved_oxygen_unit": "mg/L",
    "water_temperature": 21.4,
    "water_temperature_flag": "M",
    "water_temperature_unit": "°C",
    "conductivity": 402.5,
    "conductivity_flag": "N",
    "conductivity_unit": "µS/cm",
    "permanganate_index": 3.1,
    "permanganate_index_flag": "N",
    "permanganate_index_unit": "mg/L",
    "ammonia_nitrogen": 120.0,
    "ammonia_nitrogen_flag": "N",
    "ammonia_nitrogen_unit": "µg/L",
    "total_phosphorus": 0.118,
    "total_phosphorus_flag": "N",
    "total_phosphorus_unit": "mg/L",
    "total_nitrogen": 1.62,
    "total_nitrogen_flag": "N",
    "total_nitrogen_unit": "mg/L",
    "turbidity": None,
    "turbidity_flag": None,
    "turbidity_unit": None,
}


def test_samples_are_flattened_to_contract_fields_with_their_units_and_missing_factors_as_none() -> None:
    assert WaterQualitySamplesStream().post_process(RAW) == EXPECTED


def test_every_contract_field_is_a_column_of_a_flattened_sample() -> None:
    row = WaterQualitySamplesStream().post_process(RAW)
    sent = {spec.name for spec in WaterQualitySample.field_specs() if not spec.derived}
    assert sent <= set(row)
    assert not {f"{factor.name}_status" for factor in WaterQualitySample.factors()} & set(row)


def test_a_sample_without_factors_keeps_its_key_and_has_every_value_missing() -> None:
    row = WaterQualitySamplesStream().post_process({"station_code": "44010001", "sampled_at": None})
    assert row["station_code"] == "44010001"
    assert row["sampled_at"] is None
    assert row["updated_at"] is None
    assert {key: value for key, value in row.items() if key not in {"station_code", "sampled_at"}} == dict.fromkeys(
        set(EXPECTED) - {"station_code", "sampled_at"}
    )


def test_post_process_does_not_change_the_raw_record() -> None:
    before = repr(RAW)
    WaterQualitySamplesStream().post_process(RAW)
    assert repr(RAW) == before


def test_stations_pass_through_unchanged_and_page_size_comes_from_settings() -> None:
    station = {"station_code": "44010001", "name": "流溪河李溪坝", "updated_at": "2026-01-01 00:00:00"}
    stream = WaterQualityStationsStream(page_size=42)
    assert stream.post_process(station) == station
    assert stream.paginator.size == 42
    assert WaterQualityStationsStream.paginator.size == 500  # the declaration itself is untouched
