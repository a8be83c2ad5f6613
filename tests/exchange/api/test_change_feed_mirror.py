"""A department mirrors a dataset from the change feed alone, after a million changes, and ends equal to the table.

The changes are made by the real publish path on PostgreSQL, in big frames: 450,000 lakes inserted, all of them
republished with newer data (450,000 updates, and a late retry of the old data that newer-data-wins must ignore),
then 100,000 of them tombstoned (100,000 deletes). The consumer knows only the HTTP API on a real socket: it reads
a few pages while the inserts are the whole story, then, after everything else, resumes from its cursor, is cut
off, and resumes again from the cursor it kept, applying each entry as the feed says (upsert the row, drop the
key of a delete). The table, read straight from the database, is the truth it is compared with.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from connectors.simulation import AppServer
from contracts.river_chief import Lake
from exchange.access.departments import seed_departments
from exchange.access.tokens import create_token
from exchange.api.app import create_app
from exchange.api.settings import ApiSettings
from exchange.objects import LocalObjectStore
from exchange.publish import publish_frame
from exchange.tables import dataset_table, datasets, ensure_schema

pytestmark = pytest.mark.slow

LAKES = 450_000
DELETED = 100_000
PAGE = 10_000
KEY = Lake.meta.key
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def lakes(codes: np.ndarray, version: datetime, seed: int) -> pd.DataFrame:
    """Lakes ``codes`` as of ``version``: each version gives every lake a different area and name."""
    rng = np.random.default_rng(seed)
    text = pd.Series(codes).astype("str")
    return pd.DataFrame(
        {
            "lake_code": ("L" + text.str.zfill(7)).astype("str"),
            "name": ("湖" + text + f"-{seed}").astype("str"),
            "area_km2": np.round(rng.uniform(0.01, 4999.0, len(codes)), 4),
            "division_code": pd.Series(rng.choice(["440103", "440104", "440105", "440106"], len(codes))).astype("str"),
            "updated_at": pd.Series(pd.Timestamp(version), index=range(len(codes))).dt.as_unit("us"),
        }
    )


def publish(engine: Engine, frame: pd.DataFrame, run_id: str, tombstones: pd.DataFrame | None = None) -> Any:
    with engine.begin() as conn:
        return publish_frame(conn, Lake, frame, run_id=run_id, now=T0 + timedelta(days=1), tombstones=tombstones)


class Mirror:
    """What the department keeps: its rows by key and the last seq it applied."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, object]] = {}
        self.since = 0

    def follow(self, client: httpx.Client, *, pages: int | None = None) -> int:
        """Apply pages until the feed has nothing more (or ``pages`` of them); the entries applied."""
        applied = 0
        while pages is None or pages > 0:
            answer = client.get(f"/datasets/{KEY}/changes", params={"since": self.since, "limit": PAGE})
            assert answer.status_code == 200, answer.text
            page = answer.json()
            for entry in page["entries"]:
                (code,) = entry["key"]
                if entry["op"] == "delete":
                    self.rows.pop(code, None)
                else:
                    self.rows[code] = entry["row"]
            applied += len(page["entries"])
            self.since = page["next_since"]
            pages = None if pages is None else pages - 1
            if not page["entries"]:
                break
        return applied


@pytest.fixture
def api(pg_engine: Engine, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The consumer API on a real loopback socket, and a token of a department granted the lakes."""
    ensure_schema(pg_engine)
    seed_departments(pg_engine, now=T0)
    token = create_token(pg_engine, "gz-water", [KEY], expires_at=T0 + timedelta(days=3650), now=T0)
    app = create_app(pg_engine, LocalObjectStore(tmp_path / "objects"), ApiSettings(), clock=lambda: T0)
    server = AppServer(app, "127.0.0.1", 0, name="consumer API")
    server.start()
    try:
        yield server.base_url, token.token
    finally:
        server.stop()


def table_rows(engine: Engine) -> dict[str, dict[str, object]]:
    """The lakes table as it is, each row spelt as the API spells values (times in UTC with µs and Z)."""
    table = dataset_table(Lake)
    names = [spec.name for spec in Lake.field_specs()]
    with engine.connect() as conn:
        rows = conn.execute(select(*(table.c[name] for name in names))).all()
    spelt = [
        {
            name: value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if isinstance(value, datetime) else value
            for name, value in zip(names, row, strict=True)
        }
        for row in rows
    ]
    return {str(row["lake_code"]): row for row in spelt}


def test_a_mirror_from_the_feed_after_a_million_changes_equals_the_table(
    pg_engine: Engine, api: tuple[str, str]
) -> None:
    base_url, token = api
    headers = {"Authorization": f"Bearer {token}"}
    codes = np.arange(LAKES)
    inserted = publish(pg_engine, lakes(codes, T0, seed=1), "inserts")
    mirror = Mirror()
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        assert mirror.follow(client, pages=3) == 3 * PAGE  # a department that started mirroring early

    updated = publish(pg_engine, lakes(codes, T0 + timedelta(hours=1), seed=2), "updates")
    late_retry = publish(pg_engine, lakes(codes[:1000], T0, seed=1), "a late retry of the inserts")
    gone = lakes(codes[::4][:DELETED], T0 + timedelta(hours=2), seed=3)[["lake_code", "updated_at"]]
    deleted = publish(pg_engine, lakes(codes[:0], T0, seed=4), "tombstones", tombstones=gone)
    assert (inserted.inserted, updated.updated, late_retry.stale, deleted.deleted) == (LAKES, LAKES, 1000, DELETED)
    with pg_engine.connect() as conn:
        last_seq = conn.execute(select(datasets.c.last_seq).where(datasets.c.key == KEY)).scalar_one()
        stored = conn.execute(select(func.count()).select_from(dataset_table(Lake))).scalar_one()
    assert (last_seq, stored) == (1_000_000, LAKES - DELETED)

    # It resumes from its cursor, is cut off after five pages, and a new process resumes from the cursor it kept.
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        assert mirror.follow(client, pages=5) == 5 * PAGE
    with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
        # compacted: each surviving lake once, at its update, and each deleted one once, at its delete
        assert mirror.follow(client) == LAKES - 5 * PAGE
        assert mirror.since == last_seq
        again = client.get(f"/datasets/{KEY}/changes", params={"since": mirror.since}).json()
    assert (again["entries"], again["next_since"]) == ([], last_seq)
    truth = table_rows(pg_engine)
    assert len(mirror.rows) == len(truth) == LAKES - DELETED
    assert mirror.rows == truth
