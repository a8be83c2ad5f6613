"""The official ``delta-sharing`` client, run from its own environment, reads what the rows API and the change feed
serve, with a row-filtered grant honoured; ground truth is what the hub fixture published.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from contracts.water_quality import WaterQualityStation
from exchange.publish import publish_frame
from exchange.sharing.delta import sync_dataset
from exchange.sharing.profile import write_profile
from exchange.sharing.settings import SharingSettings
from tests.exchange.api.conftest import DISTRICTS, Hub
from tests.exchange.rows import LATER, NOW, typed_frame
from tests.sharing_client import ClientEnvError, client_python, run_client

STATIONS = WaterQualityStation.meta.key
TABLE = "waterhub.water_quality.stations"
TIANHE = "天河区"


@pytest.fixture(scope="session")
def client_env() -> Path:
    try:
        return client_python()
    except ClientEnvError as exc:  # never a skip: CI has PyPI access, and a silent skip would hide the protocol
        pytest.fail(str(exc))


def sync(hub: Hub) -> int:
    wall = hub.clock.now  # maintenance timing only; the sync's content does not depend on it
    return sync_dataset(hub.engine, hub.store, WaterQualityStation, SharingSettings(), now=wall).version


def profile(hub: Hub, who: str, folder: Path) -> Path:
    path = folder / f"{who}.share"
    write_profile(
        path,
        endpoint=f"{hub.base_url}/delta-sharing",
        token=hub.tokens[who],
        expires_at=hub.clock.now + timedelta(days=90),
    )
    return path


def by_code(rows: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {row["station_code"]: row for row in rows}


def rows_api(hub: Hub, who: str) -> list[dict[str, object]]:
    with hub.client(who) as client:
        answer = client.get(f"/datasets/{STATIONS}/rows", params={"format": "parquet"})
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, object]] = pq.read_table(io.BytesIO(answer.content)).to_pylist()
    return rows


def test_load_as_pandas_equals_the_rows_api_for_whole_and_filtered_grants(
    hub: Hub, client_env: Path, tmp_path: Path
) -> None:
    sync(hub)
    jobs = [
        {"op": op, "profile": str(profile(hub, who, tmp_path)), "table": TABLE, "out": str(tmp_path / f"{who}-{op}")}
        for who in ("city", "tianhe", "eco")
        for op in ("table", "tables")
    ]
    run_client(client_env, [job for job in jobs if not (job["out"].endswith("eco-table"))])
    for who in ("city", "tianhe"):
        shared = pq.read_table(tmp_path / f"{who}-table").to_pylist()
        assert by_code(shared) == by_code(rows_api(hub, who))
    tianhe = {code for code, district in DISTRICTS.items() if district == TIANHE}
    assert set(by_code(pq.read_table(tmp_path / "tianhe-table").to_pylist())) == tianhe
    assert set(by_code(pq.read_table(tmp_path / "city-table").to_pylist())) == set(DISTRICTS)
    listed = {who: json.loads((tmp_path / f"{who}-tables").read_text()) for who in ("city", "tianhe", "eco")}
    # samples were never synced to Delta here, so only stations is a shared table; eco is granted samples only
    assert listed == {"city": [TABLE], "tianhe": [TABLE], "eco": []}


def test_table_changes_equal_the_change_feed_with_the_filter_honoured(
    hub: Hub, client_env: Path, tmp_path: Path
) -> None:
    first = sync(hub)
    with hub.client("city") as client:
        since = client.get(f"/datasets/{STATIONS}/changes").json()["last_seq"]
    kept = [row for row in hub.stations if row["station_code"] not in ("44010002", "44010004")]
    renamed = [
        {**row, "name": "新名", "updated_at": LATER} if row["station_code"] == "44010001" else row for row in kept
    ]
    added = {**hub.stations[0], "station_code": "44010005", "name": "新站", "district": TIANHE}
    with hub.engine.begin() as conn:
        frame = typed_frame(WaterQualityStation, [*renamed, added])
        publish_frame(conn, WaterQualityStation, frame, run_id="run-2", now=NOW, full_refresh=True)
    second = sync(hub)
    assert second == first + 1

    jobs = [
        {
            "op": "changes",
            "profile": str(profile(hub, who, tmp_path)),
            "table": TABLE,
            "starting_version": second,
            "out": str(tmp_path / who),
        }
        for who in ("city", "tianhe")
    ]
    run_client(client_env, jobs)
    for who in ("city", "tianhe"):
        changes = pq.read_table(tmp_path / who).to_pylist()
        with hub.client(who) as client:
            feed = client.get(f"/datasets/{STATIONS}/changes", params={"since": since}).json()["entries"]
        after = [
            {k: v for k, v in row.items() if not k.startswith("_")}
            for row in changes
            if row["_change_type"] in ("insert", "update_postimage")
        ]
        assert {row["station_code"]: row["name"] for row in after} == {
            entry["row"]["station_code"]: entry["row"]["name"] for entry in feed if entry["op"] != "delete"
        }
        assert {row["_commit_version"] for row in changes} == {second}
        deleted = {row["station_code"] for row in changes if row["_change_type"] == "delete"}
        if who == "city":
            assert deleted == {entry["key"][0] for entry in feed if entry["op"] == "delete"} == {"44010002", "44010004"}
        else:  # the JSON feed sends a filtered grant no deletes; the Delta feed's deletes carry their row, so it can
            assert deleted == {"44010002"}
        pre = {row["station_code"]: row["name"] for row in changes if row["_change_type"] == "update_preimage"}
        assert pre == {"44010001": "站点1"}
        if who == "tianhe":  # every change row, deletes and preimages included, is inside the grant
            assert {row["district"] for row in changes} == {TIANHE}
