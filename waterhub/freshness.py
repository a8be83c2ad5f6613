"""Each declared source's expected publishing interval, from its schedule in ``sources.toml``, and the freshness
check that the notify step and ``waterhub datasets`` run (``exchange.freshness`` does the work)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from sqlalchemy import Engine

from exchange.freshness import Freshness, SourceSchedule, dataset_freshness, raise_stale_events
from waterhub.settings import Settings
from waterhub.sources import declared_sources

__all__ = ["check_freshness", "schedule_interval", "source_schedules"]

_PRESETS = {
    "@hourly": timedelta(hours=1),
    "@daily": timedelta(days=1),
    "@midnight": timedelta(days=1),
    "@weekly": timedelta(weeks=1),
    "@monthly": timedelta(days=31),
    "@yearly": timedelta(days=366),
    "@annually": timedelta(days=366),
}


def schedule_interval(schedule: str | None) -> timedelta | None:
    """The longest gap between two runs of ``schedule`` (an Airflow preset or a cron expression); None for runs
    that are not on the clock (``None``, ``@once``, ``@continuous``, an asset)."""
    if schedule is None or schedule in ("@once", "@continuous"):
        return None
    if schedule in _PRESETS:
        return _PRESETS[schedule]
    from croniter import croniter  # type: ignore[import-untyped]  # Airflow's own cron parser

    if not croniter.is_valid(schedule):
        return None
    runs = croniter(schedule, datetime(2026, 1, 1, tzinfo=UTC))  # a year of runs: the longest gap among them
    times: list[datetime] = [runs.get_next(datetime) for _ in range(400)]
    return max(later - earlier for earlier, later in pairwise(times))


def source_schedules() -> list[SourceSchedule]:
    return [
        SourceSchedule(name, declaration.datasets, schedule_interval(declaration.schedule))
        for name, declaration in declared_sources().items()
    ]


def check_freshness(engine: Engine, settings: Settings, *, now: datetime, raise_events: bool) -> list[Freshness]:
    """Every declared dataset's freshness; with ``raise_events``, a stale one's event goes into the outbox in the
    same transaction (the next dispatch sends it)."""
    with engine.begin() as conn:
        found = dataset_freshness(conn, source_schedules(), now=now, grace=settings.stale_after_intervals)
        if raise_events:
            raise_stale_events(conn, found, now=now)
    return found
