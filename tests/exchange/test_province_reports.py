"""Reports of the city's handled problems up to the provincial platform: sent once, acknowledged, never duplicated
by a resend, failures kept and sent again by the next run, a changed problem reported again.

The platform's simulator is the judge of duplicates: it keeps every report it accepted, keyed by idempotency key.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.errors import SourceUnavailableError
from connectors.river_chief.simulator import RunningPlatform
from exchange.province_reports import REPORTED_STATUSES
from exchange.tables import province_reports
from tests.river_chief_hub import hub_pipeline, served_platform, sync
from waterhub.province_push import push_to_province

NOW = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.fixture
def platform() -> Iterator[RunningPlatform]:
    with served_platform(seed=3, days=20) as running:
        yield running


def _due(running: RunningPlatform) -> dict[str, str]:
    """Problem id → status of every published problem in Guangzhou (4401...) whose handling is done."""
    truth = running.truth
    published = {key[0] for key in truth.keys("problems")}
    return {
        str(p["problem_id"]): str(p["status"])
        for p in truth.live["problems"]
        if p["problem_id"] in published and p["status"] in REPORTED_STATUSES and str(p["division_code"])[:4] == "4401"
    }


def test_reports_are_acknowledged_once_resent_without_duplicates_and_failures_retried_next_run(
    platform: RunningPlatform, tmp_path: Path, pg_schema_url: str
) -> None:
    pipeline = hub_pipeline(platform, tmp_path, pg_schema_url, page_size=500)
    simulator = platform.simulator
    sync(pipeline, platform, "run-1")
    due = _due(platform)
    assert len(due) >= 3  # enough handled problems for the faults below to hit distinct ones

    platform.faults.server_error(3)  # the first report fails all three attempts
    simulator.drop_report_answers(1)  # the next one is taken, but its answer is lost: the client sends it again
    with pytest.raises(SourceUnavailableError, match=r"1 of .* report"):
        push_to_province(pipeline, now=NOW)
    with pipeline.engine.connect() as conn:
        rows = {row.record_key: row for row in conn.execute(select(province_reports))}
    failed = [row for row in rows.values() if row.ack_id is None]
    assert len(rows) == len(due)
    assert len(failed) == 1
    assert failed[0].attempts == 1
    assert "500" in failed[0].last_error
    reports = simulator.reports
    assert set(reports) == set(due) - {failed[0].record_key[2:-2]}  # key is a JSON array: ["Q..."]
    assert all(len(sent) == 1 for sent in reports.values())  # the lost answer's resend was no second report

    assert push_to_province(pipeline, now=NOW) == {"sent": 1, "unchanged": len(due) - 1, "failed": 0}
    assert set(simulator.reports) == set(due)
    assert all(len(sent) == 1 for sent in simulator.reports.values())
    with pipeline.engine.connect() as conn:
        retried = conn.execute(select(province_reports).where(province_reports.c.record_key == failed[0].record_key))
        row = retried.one()
    assert row.ack_id is not None
    assert row.attempts == 2
    assert row.last_error is None

    simulator.advance(hours=72)  # handled problems move on to verified and closed
    sync(pipeline, platform, "run-2")
    moved = {pid for pid, status in _due(platform).items() if pid in due and status != due[pid]}
    assert moved
    counts = push_to_province(pipeline, now=NOW)
    assert counts["sent"] == len(set(_due(platform)) - set(due)) + len(moved)
    assert all(len(simulator.reports[pid]) == 2 for pid in moved)  # a changed report is a new report
    assert [r["status"] for r in simulator.reports[next(iter(moved))]][-1] == _due(platform)[next(iter(moved))]
    pipeline.engine.dispose()
