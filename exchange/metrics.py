"""Prometheus metrics: the hub's dataset-level figures read from the database at each scrape, and the request
counters of the process that serves them.

Pipeline tasks are short-lived processes with nothing to scrape, so what they did is read back from what they
committed: rows and last sequence per dataset, records validated and quarantined (by reason), change events not yet
sent and the age of the oldest (the change feed's lag), and when each source last published (freshness). Any
long-running process can serve them (``waterhub serve api`` at ``/metrics``); the figures are the same wherever read.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from exchange.freshness import SourceSchedule, dataset_freshness
from exchange.tables import datasets, outbox, quarantine, validation_runs

__all__ = ["HubCollector"]


_GAUGES = (  # (name after waterhub_, help, labels), in the order collect() fills them
    ("dataset_rows", "Rows a dataset holds now", "dataset"),
    ("dataset_last_seq", "Last change-log sequence", "dataset"),
    ("dataset_last_published_timestamp_seconds", "When a dataset last changed", "dataset"),
    ("records_validated", "Records judged by quality over the retained validation runs", "dataset outcome"),
    ("quarantined_records", "Records held in quarantine now, by reason", "dataset reason"),
    ("outbox_pending_events", "Events written but not yet sent (change-feed lag)", "dataset"),
    ("outbox_oldest_pending_age_seconds", "Age of the oldest unsent event", "dataset"),
    ("source_last_run_timestamp_seconds", "When the source's last run that reached publish started", "dataset source"),
    ("dataset_stale", "1 when the source has not published within its expected interval", "dataset"),
)


class HubCollector(Collector):
    """Dataset-level gauges computed from the hub database on every scrape (a few grouped queries)."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        schedules: Sequence[SourceSchedule] = (),
        stale_after_intervals: float = 2.0,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.schedules = schedules
        self.stale_after_intervals = stale_after_intervals

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock()
        rows, last_seq, published, validated, held, pending, pending_age, last_run, stale = (
            GaugeMetricFamily(f"waterhub_{name}", documentation, labels=labels.split())
            for name, documentation, labels in _GAUGES
        )
        with self.engine.connect() as conn:
            for key, count, seq, at in conn.execute(
                select(datasets.c.key, datasets.c.row_count, datasets.c.last_seq, datasets.c.last_published_at)
            ):
                rows.add_metric([key], count)
                last_seq.add_metric([key], seq)
                if at is not None:
                    published.add_metric([key], at.timestamp())
            sums = select(
                validation_runs.c.dataset, func.sum(validation_runs.c.valid), func.sum(validation_runs.c.quarantined)
            ).group_by(validation_runs.c.dataset)
            for key, valid, refused in conn.execute(sums):
                validated.add_metric([key, "valid"], int(valid or 0))
                validated.add_metric([key, "quarantined"], int(refused or 0))
            reasons: Counter[tuple[str, str]] = Counter()
            for key, text, count in conn.execute(
                select(quarantine.c.dataset, quarantine.c.reasons, func.count()).group_by(
                    quarantine.c.dataset, quarantine.c.reasons
                )
            ):
                for reason in json.loads(text):
                    reasons[(key, reason)] += count
            for (key, reason), count in sorted(reasons.items()):
                held.add_metric([key, reason], count)
            waiting = (
                select(outbox.c.dataset, func.count(), func.min(outbox.c.created_at))
                .where(outbox.c.dispatched_at.is_(None))
                .group_by(outbox.c.dataset)
            )
            for key, count, oldest in conn.execute(waiting):
                pending.add_metric([key], count)
                pending_age.add_metric([key], max(0.0, (now - oldest).total_seconds()))
            for found in dataset_freshness(conn, self.schedules, now=now, grace=self.stale_after_intervals):
                if found.last_run_at is not None:
                    last_run.add_metric([found.dataset, found.source], found.last_run_at.timestamp())
                stale.add_metric([found.dataset], 1.0 if found.stale else 0.0)
        yield from (rows, last_seq, published, validated, held, pending, pending_age, last_run, stale)
