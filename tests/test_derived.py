"""The GB 3838 class datasets derived end to end on PostgreSQL: publish samples and stations, derive, check the
classes against limits worked out by hand (REFERENCE 4.1), rerun, correct one sample, change one station.

Station A (river, target III) on Beijing day 2026-03-01 (hours 0-3 UTC are 08:00-11:00 Beijing), with one more
sample at 16:00 UTC, which is 00:00 of 2026-03-02 in Beijing. Station B is a lake with target II.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import Engine, select

from connectors.simulation import AppServer
from contracts import get_contract
from contracts.water_quality import WaterQualitySample, WaterQualityStation
from contracts.water_quality_class import DailyWaterClass, HourlyWaterClass
from exchange.access.departments import seed_departments
from exchange.access.tokens import create_token
from exchange.api.app import create_app
from exchange.api.settings import ApiSettings
from exchange.objects import LocalObjectStore
from exchange.publish import publish_frame
from exchange.tables import change_log, dataset_table, ensure_schema, snapshots
from tests.exchange.rows import LATER, NOW, T0, publish, sample, station, typed_frame
from waterhub.derived import Derivation, declared_derivations
from waterhub.lineage import dataset_lineage
from waterhub.settings import Settings

A, B = "11000001", "11000002"
HOURLY, DAILY = HourlyWaterClass.meta.key, DailyWaterClass.meta.key


def _valid(**values: float) -> dict[str, object]:
    return {**values, **{f"{name}_status": "valid" for name in values}}


def _samples() -> list[dict[str, object]]:
    base = {"ph": 7.2, "total_phosphorus": 0.1}
    return [
        # DO 6.5 is II, NH3-N 0.8 III, TP 0.1 II (river): III, set by NH3-N
        sample(A, 0, **_valid(**base, dissolved_oxygen=6.5, ammonia_nitrogen=0.8)),
        # the ammonia analyser's result repeated; DO 4.0 is IV
        sample(A, 1, **_valid(**base, dissolved_oxygen=4.0, ammonia_nitrogen=0.8)),
        # NH3-N 1.6 (V) flagged M: it does not take part, so DO and TP (II) decide
        sample(A, 2, **_valid(**base, dissolved_oxygen=6.5), ammonia_nitrogen=1.6, ammonia_nitrogen_status="invalid"),
        # a new ammonia result, 0.2 (II); DO 7.6 is I
        sample(A, 3, **_valid(**base, dissolved_oxygen=7.6, ammonia_nitrogen=0.2)),
        # 00:00 Beijing on the next day: DO 3.5 is IV
        sample(A, 16, **_valid(ph=7.0, dissolved_oxygen=3.5)),
        # a lake: TP 0.1 is IV under the lake limits
        sample(B, 0, **_valid(ph=7.5, dissolved_oxygen=8.0, total_phosphorus=0.1)),
    ]


def _stations(target_b: str = "II") -> list[dict[str, object]]:
    return [
        {**station(A), "target_class": "III"},
        {**station(B, "Haizhu lake"), "water_body_type": "lake", "target_class": target_b},
    ]


@pytest.fixture
def derivation(pg_schema_url: str, pg_engine: Engine, tmp_path: Path) -> Iterator[Derivation]:
    ensure_schema(pg_engine)
    derived = Derivation(Settings(data_dir=tmp_path, database_url=pg_schema_url), "water_quality_class")
    yield derived
    derived.engine.dispose()


def _rows(engine: Engine, contract: type[HourlyWaterClass | DailyWaterClass]) -> pd.DataFrame:
    table = dataset_table(contract)
    with engine.connect() as conn:
        result = conn.execute(select(table).order_by(*(table.c[k] for k in contract.meta.primary_key)))
        return pd.DataFrame(result.all(), columns=list(result.keys()))


def _changes(engine: Engine, dataset: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        query = select(change_log.c.key, change_log.c.op).where(change_log.c.dataset == dataset)
        return [tuple(row) for row in conn.execute(query.order_by(change_log.c.seq))]


def _hour(hour: int) -> str:
    return (T0 + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_classes_by_hour_and_day_then_a_rerun_a_correction_and_a_station_change(
    derivation: Derivation, pg_engine: Engine
) -> None:
    publish(pg_engine, WaterQualityStation, _stations(), run_id="wq-1")
    publish(pg_engine, WaterQualitySample, _samples(), run_id="wq-1")

    assert derivation.publish(run_id="derive-1", now=NOW) == [HOURLY, DAILY]
    hourly = _rows(pg_engine, HourlyWaterClass)
    assert hourly[["station_code", "water_class", "deciding_factors", "meets_target"]].values.tolist() == [
        [A, "III", "w21003", True],
        [A, "IV", "w01009", False],
        [A, "II", "w01009,w21011", True],
        [A, "II", "w21003,w21011", True],
        [A, "IV", "w01009", False],
        [B, "IV", "w21011", False],
    ]
    assert set(hourly["input_seq"]) == {len(_samples()) + len(_stations())}
    daily = _rows(pg_engine, DailyWaterClass)
    assert daily[["station_code", "day", "samples", "water_class", "meets_target"]].values.tolist() == [
        [A, "2026-03-01", 4, "II", True],
        [A, "2026-03-02", 1, "IV", False],
        [B, "2026-03-01", 1, "IV", False],
    ]
    first_day = daily.iloc[0]
    # one value per ammonia cycle: (0.8 + 0.2) / 2 = 0.5, on the class II limit; hourly rows would give 0.6 (III)
    assert first_day["ammonia_nitrogen"] == 0.5
    assert first_day["dissolved_oxygen"] == pytest.approx((6.5 + 4.0 + 6.5 + 7.6) / 4)
    assert first_day["deciding_factors"] == "w01009,w21003,w21011"

    assert derivation.publish(run_id="derive-2", now=LATER) == []
    assert len(_changes(pg_engine, HOURLY)) == 6
    assert len(_changes(pg_engine, DAILY)) == 3

    corrected = {**_samples()[1], "dissolved_oxygen": 6.5, "updated_at": LATER}
    publish(pg_engine, WaterQualitySample, [corrected], run_id="wq-2", now=LATER)
    assert derivation.publish(run_id="derive-3", now=LATER) == [HOURLY, DAILY]
    assert _changes(pg_engine, HOURLY)[6:] == [(f'["{A}","{_hour(1)}"]', "update")]
    assert _changes(pg_engine, DAILY)[3:] == [(f'["{A}","2026-03-01"]', "update")]
    hourly_after = _rows(pg_engine, HourlyWaterClass)
    assert hourly_after.loc[1, ["water_class", "deciding_factors", "meets_target"]].tolist() == ["III", "w21003", True]
    assert hourly_after.drop(index=1).equals(hourly.drop(index=1))  # the other hours were not rewritten
    assert _rows(pg_engine, DailyWaterClass).loc[0, "dissolved_oxygen"] == pytest.approx((6.5 * 3 + 7.6) / 4)

    publish(pg_engine, WaterQualityStation, [{**_stations("IV")[1], "updated_at": LATER}], run_id="wq-3", now=LATER)
    assert derivation.publish(run_id="derive-4", now=LATER) == [HOURLY, DAILY]
    assert _changes(pg_engine, HOURLY)[7:] == [(f'["{B}","{_hour(0)}"]', "update")]
    assert _rows(pg_engine, DailyWaterClass).loc[2, ["target_class", "meets_target"]].tolist() == ["IV", True]


def test_every_declared_derivation_names_callable_inputs_and_outputs_with_contracts() -> None:
    for declaration in declared_derivations().values():
        assert callable(declaration.function())
        assert [c.meta.key for c in declaration.output_contracts()] == list(declaration.outputs.values())
        assert all(get_contract(dataset).meta.key == dataset for dataset in declaration.inputs)


def test_the_catalogue_shows_a_derived_dataset_with_its_inputs_and_dag(
    derivation: Derivation, pg_engine: Engine, tmp_path: Path
) -> None:
    publish(pg_engine, WaterQualityStation, _stations(), run_id="wq-1")
    publish(pg_engine, WaterQualitySample, _samples(), run_id="wq-1")
    derivation.publish(run_id="derive-1", now=NOW)
    seed_departments(pg_engine, now=NOW)
    token = create_token(pg_engine, "gz-water", [DAILY], row_filter=[], expires_at=LATER + timedelta(days=1), now=NOW)
    store = LocalObjectStore(tmp_path / "objects")
    app = create_app(pg_engine, store, ApiSettings(), lineage=dataset_lineage(), clock=lambda: NOW)
    server = AppServer(app, "127.0.0.1", 0, name="consumer API")
    server.start()
    try:
        with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token.token}"}) as client:
            answer = client.get(f"/datasets/{DAILY}")
    finally:
        server.stop()
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    assert detail["rows"] == 3
    assert detail["lineage"] == {
        "sources": [],
        "dags": ["water_quality_class"],
        "upstream": ["water_quality.samples", "water_quality.stations"],
    }


def test_before_any_input_is_published_a_run_derives_nothing_and_snapshots_nothing(derivation: Derivation) -> None:
    assert derivation.publish(run_id="derive-0", now=NOW) == []
    assert derivation.snapshot(now=NOW) == {}


def test_snapshots_of_the_outputs_hold_their_rows(derivation: Derivation, pg_engine: Engine) -> None:
    publish(pg_engine, WaterQualityStation, _stations(), run_id="wq-1")
    publish(pg_engine, WaterQualitySample, _samples(), run_id="wq-1")
    derivation.publish(run_id="derive-1", now=NOW)
    assert set(derivation.snapshot(now=NOW)) == {HOURLY, DAILY}
    with pg_engine.connect() as conn:
        rows = dict(conn.execute(select(snapshots.c.dataset, snapshots.c.row_count)).all())
    assert rows == {HOURLY: len(_samples()), DAILY: 3}


def test_a_deleted_sample_deletes_its_hour_and_recomputes_its_day(derivation: Derivation, pg_engine: Engine) -> None:
    publish(pg_engine, WaterQualityStation, _stations(), run_id="wq-1")
    publish(pg_engine, WaterQualitySample, _samples(), run_id="wq-1")
    derivation.publish(run_id="derive-1", now=NOW)
    gone = pd.DataFrame({"station_code": [A], "sampled_at": [T0 + timedelta(hours=1)], "updated_at": [LATER]})
    with pg_engine.begin() as conn:
        empty = typed_frame(WaterQualitySample, [])
        publish_frame(conn, WaterQualitySample, empty, run_id="wq-2", now=LATER, tombstones=gone)

    assert derivation.publish(run_id="derive-2", now=LATER) == [HOURLY, DAILY]
    assert _changes(pg_engine, HOURLY)[6:] == [(f'["{A}","{_hour(1)}"]', "delete")]
    day = _rows(pg_engine, DailyWaterClass).iloc[0]
    # without hour 1 (DO 4.0): DO (6.5 + 6.5 + 7.6) / 3, three samples
    assert (day["samples"], day["dissolved_oxygen"]) == (3, pytest.approx((6.5 + 6.5 + 7.6) / 3, abs=1e-4))
