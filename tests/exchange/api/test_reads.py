"""Rows, changes and snapshots as a department reads them over a real socket, held to what the hub published."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from sqlalchemy import delete, insert, select

from contracts.water_quality import WaterQualitySample
from exchange.access.audit import read_audit_entries
from exchange.access.tokens import revoke_token
from exchange.api.settings import ApiSettings
from exchange.tables import change_log, dataset_table, datasets
from tests.exchange.api.conftest import Hub, utc_text
from tests.exchange.rows import NOW, publish, sample

SAMPLES = "/datasets/water_quality.samples"
STATIONS = "/datasets/water_quality.stations"


@pytest.fixture
def api_settings() -> ApiSettings:
    """This module's hub serves 7 days of change log; its entries are written a day before the clock's start."""
    return ApiSettings(change_retention_days=7)


def _expected_samples(hub: Hub) -> list[tuple[str, str, float]]:
    return sorted((str(s["station_code"]), utc_text(s["sampled_at"]), float(s["ph"])) for s in hub.samples)  # type: ignore[arg-type]


def test_every_format_pages_through_all_rows_exactly_once(hub: Hub) -> None:
    expected = _expected_samples(hub)
    with hub.client("eco") as client:
        for fmt in ("json", "ndjson", "csv", "parquet"):
            seen: list[tuple[str, str, float]] = []
            cursor = None
            pages = 0
            while True:
                params = {"limit": 7, "format": fmt} | ({"cursor": cursor} if cursor else {})
                answer = client.get(f"{SAMPLES}/rows", params=params)
                assert answer.status_code == 200, answer.text
                seen += _rows_of(fmt, answer.content)
                pages += 1
                cursor = answer.headers.get("x-next-cursor")
                if fmt == "json":
                    assert answer.json()["next_cursor"] == cursor
                if cursor is None:
                    break
            assert seen == expected, fmt
            assert pages == 3  # 20 rows in pages of 7


def _rows_of(fmt: str, body: bytes) -> list[tuple[str, str, float]]:
    if fmt == "json":
        records = json.loads(body)["rows"]
    elif fmt == "ndjson":
        records = [json.loads(line) for line in body.decode().splitlines()]
    elif fmt == "csv":
        records = [{**r, "ph": float(r["ph"])} for r in csv.DictReader(io.StringIO(body.decode()))]
    else:
        table = pq.read_table(io.BytesIO(body)).to_pylist()
        records = [{**r, "sampled_at": utc_text(r["sampled_at"])} for r in table]
    return [(r["station_code"], r["sampled_at"], r["ph"]) for r in records]


def test_accept_header_picks_the_format(hub: Hub) -> None:
    with hub.client("eco") as client:
        answer = client.get(f"{SAMPLES}/rows", headers={"Accept": "application/x-ndjson"})
        refused = client.get(f"{SAMPLES}/rows", headers={"Accept": "image/png"})
    assert answer.headers["content-type"] == "application/x-ndjson"
    assert len(answer.text.splitlines()) == 20
    assert refused.status_code == 400
    assert refused.json()["type"] == "urn:waterhub:problem:not-acceptable"


def test_field_filters_and_time_ranges_select_the_published_rows(hub: Hub) -> None:
    start, end = hub.samples[1]["sampled_at"], hub.samples[3]["sampled_at"]
    params: dict[str, str | int] = {
        "station_code": "44010001",
        "sampled_at.gte": utc_text(start),
        "sampled_at.lt": utc_text(end),
        "limit": 100,
    }
    with hub.client("eco") as client:
        rows = client.get(f"{SAMPLES}/rows", params=params).json()["rows"]
        both = client.get(f"{SAMPLES}/rows", params=[("station_code", "44010001"), ("station_code", "44010003")]).json()
    expected = sorted(
        utc_text(s["sampled_at"])
        for s in hub.samples
        if s["station_code"] == "44010001" and start <= s["sampled_at"] < end  # type: ignore[operator]
    )
    assert [row["sampled_at"] for row in rows] == expected
    assert {row["station_code"] for row in both["rows"]} == {"44010001", "44010003"}


@pytest.mark.parametrize(
    ("params", "slug", "words"),
    [
        ({"limit": "10000000000000000000000"}, "invalid-limit", "limit must be from 1 to 1,000,000"),
        ({"limit": "0"}, "invalid-limit", "limit must be from 1"),
        ({"cursor": "not-a-cursor"}, "invalid-cursor", "the cursor is not one this API gave"),
        ({"cursor": "eyJkIjoid2F0ZXJfcXVhbGl0eS5zYW1wbGVzIn0"}, "invalid-cursor", "cursor belongs to a query"),
        ({"station_code": "' OR 1=1 --"}, None, None),
        ({"station_code.gt": "x"}, "invalid-filter", "ranges (gt) apply to datetime and number fields only"),
        ({"ph": "1; DROP TABLE tokens"}, "invalid-filter", "is not a valid number for field ph"),
        ({"sampled_at.gte": "yesterday"}, "invalid-filter", "is not a valid datetime for field sampled_at"),
        ({"no_such_field": "1"}, "invalid-filter", "has no field 'no_such_field'"),
        ({"ph.between": "1"}, "invalid-filter", "unknown operator 'between'"),
        ({"format": "xml"}, "invalid-format", "format 'xml' is not served"),
        ({"station_code": "x" * 5000}, "invalid-query", "at most 200"),
    ],
)
def test_hostile_input_gets_a_clear_4xx(hub: Hub, params: dict[str, str], slug: str | None, words: str | None) -> None:
    with hub.client("eco") as client:
        answer = client.get(f"{SAMPLES}/rows", params=params)
        still_there = client.get(f"{SAMPLES}/rows", params={"limit": 100}).json()["rows"]
    if slug is None:  # an injection attempt is only a value: nothing matches, nothing breaks
        assert answer.status_code == 200
        assert answer.json()["rows"] == []
    else:
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"] == f"urn:waterhub:problem:{slug}"
        assert words in answer.json()["detail"]
    assert len(still_there) == 20


def test_hostile_change_feed_arguments_get_a_clear_4xx(hub: Hub) -> None:
    with hub.client("eco") as client:
        huge = client.get(f"{SAMPLES}/changes", params={"limit": 10**9})
        ahead = client.get(f"{SAMPLES}/changes", params={"since": 2**70})
        text = client.get(f"{SAMPLES}/changes", params={"since": "abc"})
    assert (huge.status_code, huge.json()["type"]) == (400, "urn:waterhub:problem:invalid-limit")
    assert (ahead.status_code, ahead.json()["type"]) == (400, "urn:waterhub:problem:invalid-cursor")
    assert (text.status_code, text.json()["type"]) == (422, "urn:waterhub:problem:invalid-request")


def test_an_expired_or_revoked_token_is_refused_at_once(hub: Hub) -> None:
    with hub.client("city") as client:
        assert client.get("/datasets").status_code == 200
        hub.clock.now += timedelta(days=91)
        expired = client.get("/datasets")
        hub.clock.now -= timedelta(days=91)
        assert client.get("/datasets").status_code == 200
        revoke_token(hub.engine, hub.token_ids["city"], now=hub.clock.now)
        revoked = client.get(f"{STATIONS}/rows")
    assert (expired.status_code, revoked.status_code) == (401, 401)
    assert "expired" in expired.json()["detail"]
    assert "revoked" in revoked.json()["detail"]
    assert hub.tokens["city"] not in expired.text + revoked.text


def test_every_read_is_audited_with_who_what_filter_and_rows(hub: Hub) -> None:
    with hub.client("tianhe") as client:
        client.get(f"{STATIONS}/rows", params={"name": "站点1"})
        client.get(f"{STATIONS}/changes")
        client.get(f"{STATIONS}/snapshots/4")
    entries = read_audit_entries(hub.engine, department="tianhe-water")
    assert [(e.resource, e.dataset, e.rows, e.token_id) for e in entries] == [
        ("rows", "water_quality.stations", 1, hub.token_ids["tianhe"]),
        ("changes", "water_quality.stations", 2, hub.token_ids["tianhe"]),
        ("snapshot", "water_quality.stations", 2, hub.token_ids["tianhe"]),
    ]
    assert next(json.loads(e.row_filter or "[]") for e in entries) == [
        {"field": "district", "op": "eq", "values": ["天河区"]},
        {"field": "name", "op": "eq", "values": ["站点1"]},
    ]
    assert all(e.read_at == hub.clock.now for e in entries)


def test_a_snapshot_downloads_as_written(hub: Hub) -> None:
    with hub.client("eco") as client:
        listed = client.get(f"{SAMPLES}/snapshots").json()["snapshots"]
        body = client.get(listed[0]["href"])
        missing = client.get(f"{SAMPLES}/snapshots/3")
    assert [(s["seq"], s["rows"]) for s in listed] == [(20, 20)]
    table = pq.read_table(io.BytesIO(body.content))
    assert sorted(zip(table.column("station_code").to_pylist(), table.column("ph").to_pylist(), strict=True)) == sorted(
        (s["station_code"], s["ph"]) for s in hub.samples
    )
    assert missing.status_code == 404


def test_health_readiness_and_openapi_need_no_token(hub: Hub) -> None:
    with hub.client(None) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/datasets", "/datasets/{key}/rows", "/datasets/{key}/changes", "/datasets/{key}/snapshots/{seq}"} <= set(
        paths
    )
    assert "/delta-sharing/shares/{share}/schemas/{schema}/tables/{table}/query" in paths


def test_the_catalogue_and_detail_describe_the_dataset(hub: Hub) -> None:
    with hub.client("eco") as client:
        (item,) = client.get("/datasets").json()["datasets"]
        detail = client.get(SAMPLES).json()
    assert (item["key"], item["rows"], item["last_seq"], item["contract_version"]) == (
        "water_quality.samples",
        20,
        20,
        WaterQualitySample.meta.version,
    )
    assert item["owner"] == WaterQualitySample.meta.owner
    assert detail["schema"]["$id"] == f"urn:waterhub:contract:water_quality.samples:{WaterQualitySample.meta.version}"
    assert detail["lineage"]["upstream"] == ["water_quality.stations"]


# --- the change feed ---------------------------------------------------------------------------------------------

MIRROR_CHANGES = int(os.environ.get("WATERHUB_TEST_MIRROR_CHANGES", "3000"))


def test_a_consumer_mirroring_the_change_feed_ends_equal_to_the_table(hub: Hub) -> None:
    """Rounds of inserts and updates (``MIRROR_CHANGES`` changes in all), read between rounds in small pages."""
    stations = [f"44019{n:03d}" for n in range(50)]
    truth: dict[tuple[str, str], float] = {
        (str(s["station_code"]), utc_text(s["sampled_at"])): _ph(s) for s in hub.samples
    }
    mirror: dict[tuple[str, str], float] = {}
    since, changes, round_no = 0, 0, 0
    with hub.client("eco") as client:
        while changes < MIRROR_CHANGES:
            round_no += 1
            hours = range(round_no * 5)  # each round updates the earlier hours and adds five more
            rows = [
                sample(
                    code, hour, ph=round((round_no + hour) % 140 / 10, 1), updated_at=NOW + timedelta(minutes=round_no)
                )
                for code in stations
                for hour in hours
            ]
            result = publish(
                hub.engine, WaterQualitySample, rows, f"run-m{round_no}", now=NOW + timedelta(minutes=round_no)
            )
            changes += result.changed
            truth |= {(str(r["station_code"]), utc_text(r["sampled_at"])): _ph(r) for r in rows}
            since = _follow(client, mirror, since, page=97)
    assert changes >= MIRROR_CHANGES
    assert mirror == truth
    with hub.engine.connect() as conn:
        assert (
            since == conn.execute(select(datasets.c.last_seq).where(datasets.c.key == "water_quality.samples")).scalar()
        )


def _ph(row: Mapping[str, object]) -> float:
    value = row["ph"]
    assert isinstance(value, float)
    return value


def _follow(client: httpx.Client, mirror: dict[Any, Any], since: int, *, page: int) -> int:
    while True:
        answer = client.get(f"{SAMPLES}/changes", params={"since": since, "limit": page})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seqs = [entry["seq"] for entry in body["entries"]]
        assert seqs == sorted(seqs)
        assert all(seq > since for seq in seqs)
        for entry in body["entries"]:
            key = tuple(entry["key"])
            if entry["op"] == "delete":
                mirror.pop(key, None)
            else:
                mirror[key] = entry["row"]["ph"]
        if body["next_since"] == since:
            return since
        since = body["next_since"]


def test_a_delete_reaches_the_mirror_as_its_key(hub: Hub) -> None:
    gone = hub.samples[0]
    gone_at = gone["sampled_at"]
    assert isinstance(gone_at, datetime)
    table = dataset_table(WaterQualitySample)
    with hub.engine.begin() as conn:  # what a publish that deletes will write: the row goes, the log keeps its key
        conn.execute(
            delete(table).where(table.c.station_code == gone["station_code"], table.c.sampled_at == gone["sampled_at"])
        )
        conn.execute(
            insert(change_log).values(
                dataset="water_quality.samples",
                seq=21,
                key=json.dumps([gone["station_code"], gone_at.isoformat().replace("+00:00", "Z")]),
                op="delete",
                contract_version=WaterQualitySample.meta.version,
                run_id="run-d",
                changed_at=NOW,
            )
        )
        conn.execute(datasets.update().where(datasets.c.key == "water_quality.samples").values(last_seq=21))
    mirror: dict[Any, Any] = {}
    with hub.client("eco") as client:
        _follow(client, mirror, 0, page=6)
    expected = {(str(s["station_code"]), utc_text(s["sampled_at"])): s["ph"] for s in hub.samples[1:]}
    assert mirror == expected


def test_a_cursor_older_than_the_retained_log_gets_410_with_the_snapshot(hub: Hub) -> None:
    with hub.client("eco") as client:
        fresh = client.get(f"{SAMPLES}/changes", params={"since": 0})
        hub.clock.now = NOW + timedelta(days=8)  # every entry (written at NOW) is now past the 7-day retention
        expired = client.get(f"{SAMPLES}/changes", params={"since": 0})
        current = client.get(f"{SAMPLES}/changes", params={"since": 20})
    assert fresh.status_code == 200
    assert expired.status_code == 410
    assert expired.json()["type"] == "urn:waterhub:problem:cursor-expired"
    assert expired.json()["snapshot"]["seq"] == 20
    assert expired.json()["snapshot"]["href"] == f"{SAMPLES}/snapshots/20"
    assert (current.status_code, current.json()["entries"]) == (200, [])
