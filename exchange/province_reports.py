"""The city's reports up to the provincial river-chief platform: problems found and handled in the city.

After each publish, every published problem in the city's division whose handling is done (``handled``,
``verified``, ``closed``) is reported with its handling steps, unless the province has already acknowledged that
very report. Each report carries an idempotency key derived from the record's key and the report's content hash, so
a resend (a lost answer, a retried task, a crash between send and commit) is the same report to the province and
never a second one; a problem whose report changed (closed after handled) gets a new key and is sent again.

``province_reports`` keeps per record what was sent last (content hash, key), the province's acknowledgement id,
the attempts and the last error. A report that fails stays unacknowledged and is sent again by the next run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select, update

from connectors.errors import ConnectorError
from contracts.river_chief import Problem, ProblemStep
from exchange.tables import dataset_table, province_reports

__all__ = ["REPORTED_STATUSES", "ReportRun", "SendReport", "report_handled_problems", "report_idempotency_key"]

log = structlog.get_logger(__name__)

REPORTED_STATUSES = ("handled", "verified", "closed")
"""A problem is reported once its handling is done; a later status is a changed report."""

SendReport = Callable[[Mapping[str, object], str], str]
"""Sends one report with its idempotency key; returns the province's acknowledgement id or raises
``ConnectorError``."""

_CHUNK = 500


@dataclass
class ReportRun:
    """What one reporting run did: reports acknowledged, already acknowledged before, failed (kept for the next run)."""

    sent: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"sent": self.sent, "unchanged": self.unchanged, "failed": self.failed}


def report_idempotency_key(dataset: str, record_key: str, content_hash: str) -> str:
    """The same record with the same content is the same report, however often it is sent."""
    return hashlib.sha256(f"{dataset}\n{record_key}\n{content_hash}".encode()).hexdigest()


def report_handled_problems(engine: Engine, send: SendReport, *, city_division: str, now: datetime) -> ReportRun:
    """Report every handled problem of ``city_division`` whose current report the province has not acknowledged.

    Each outcome is committed on its own, right after its answer, so a run that stops half-way keeps what the
    province acknowledged; a failed send is recorded (attempts, last error) and the run goes on with the others.
    """
    dataset = Problem.meta.key
    run = ReportRun()
    with engine.connect() as conn:
        problems = _handled_problems(conn, city_division)
        known = _known_reports(conn, dataset)
    for chunk_start in range(0, len(problems), _CHUNK):
        chunk = problems[chunk_start : chunk_start + _CHUNK]
        with engine.connect() as conn:
            steps = _steps_of(conn, [row["problem_id"] for row in chunk])
        for row in chunk:
            report = _report(row, steps.get(row["problem_id"], []))
            record_key = json.dumps([row["problem_id"]], ensure_ascii=False)
            content_hash = hashlib.sha256(_canonical(report)).hexdigest()
            if known.get(record_key) == (content_hash, True):
                run.unchanged += 1
                continue
            key = report_idempotency_key(dataset, record_key, content_hash)
            try:
                ack_id: str | None = send(report, key)
                error = None
                run.sent += 1
            except ConnectorError as exc:
                ack_id, error = None, str(exc)[:1000]
                run.failed += 1
                run.errors.append(error)
                log.warning("province_report_failed", dataset=dataset, key=record_key, error=error)
            with engine.begin() as conn:
                _record(conn, dataset, record_key, content_hash, key, ack_id, error, now)
    log.info("province_reports_sent", **run.counts())
    return run


def _handled_problems(conn: Connection, city_division: str) -> list[dict[str, Any]]:
    table = dataset_table(Problem)
    prefix = city_division.rstrip("0") or city_division
    query = (
        select(table)
        .where(table.c.status.in_(REPORTED_STATUSES), table.c.division_code.startswith(prefix, autoescape=True))
        .order_by(table.c.problem_id)
    )
    return [dict(row) for row in conn.execute(query).mappings()]


def _known_reports(conn: Connection, dataset: str) -> dict[str, tuple[str, bool]]:
    query = select(province_reports.c.record_key, province_reports.c.content_hash, province_reports.c.ack_id).where(
        province_reports.c.dataset == dataset
    )
    return {key: (content_hash, ack is not None) for key, content_hash, ack in conn.execute(query)}


def _steps_of(conn: Connection, problem_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    table = dataset_table(ProblemStep)
    query = select(table).where(table.c.problem_id.in_(list(problem_ids))).order_by(table.c.problem_id, table.c.step_no)
    steps: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(query).mappings():
        steps.setdefault(row["problem_id"], []).append(dict(row))
    return steps


def _report(problem: Mapping[str, Any], steps: list[dict[str, Any]]) -> dict[str, object]:
    """The report the province takes: the problem as published and its handling steps, times in UTC ISO 8601."""
    handled = [step["acted_at"] for step in steps if step["action"] == "handled"]
    return {
        "problem_id": problem["problem_id"],
        "division_code": problem["division_code"],
        "water_body_code": problem["water_body_code"],
        "category": problem["category"],
        "status": problem["status"],
        "reported_at": _iso(problem["reported_at"]),
        "handled_at": _iso(handled[-1]) if handled else None,
        "steps": [
            {"step_no": s["step_no"], "action": s["action"], "actor": s["actor"], "acted_at": _iso(s["acted_at"])}
            for s in steps
        ],
    }


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _canonical(report: Mapping[str, object]) -> bytes:
    return json.dumps(report, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _record(
    conn: Connection,
    dataset: str,
    record_key: str,
    content_hash: str,
    key: str,
    ack_id: str | None,
    error: str | None,
    now: datetime,
) -> None:
    """Write one outcome: a success replaces the row's report and acknowledgement, a failure keeps the row
    unacknowledged with its error; either counts one attempt."""
    values = {
        "content_hash": content_hash,
        "idempotency_key": key,
        "ack_id": ack_id,
        "last_error": error,
        "acknowledged_at": now if ack_id is not None else None,
        "updated_at": now,
    }
    where = (province_reports.c.dataset == dataset) & (province_reports.c.record_key == record_key)
    changed = conn.execute(
        update(province_reports).where(where).values(attempts=province_reports.c.attempts + 1, **values)
    )
    if changed.rowcount == 0:
        conn.execute(province_reports.insert().values(dataset=dataset, record_key=record_key, attempts=1, **values))
