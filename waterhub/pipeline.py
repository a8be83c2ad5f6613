"""One run of one source along the whole path: extract → validate → publish → notify → snapshot.

Each step is a DAG task. Steps hand each other a batch id, never rows: the batch waits in the object store with its
manifest in the hub database, because the next task may run on another worker. Every step can be rerun: staging
overwrites its own batch, quarantine and publish are idempotent, the watermark only moves forward and only in the
publish transaction, the outbox is dispatched at least once with stable event ids, snapshots are keyed by sequence.
"""

from __future__ import annotations

import os
import sys
from bisect import bisect_left
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, cast

import structlog
from sqlalchemy import Connection, Engine

from connectors.http.stream import partition_key
from contracts import Contract, get_contract
from contracts.types import CLOCK_TOLERANCE
from exchange.errors import BatchNotFoundError
from exchange.staging import STAGING_REMOVED, Batch, BatchStaging
from waterhub.hub import Hub
from waterhub.judged import Judged, content_digest
from waterhub.settings import Settings
from waterhub.sources import build_source

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

    from connectors.http import HttpStream, Source, SourceSession
    from exchange.quarantine import WithheldValue
    from exchange.runs import RunPublication
    from quality.runner import ChunkedOutcome, ValidationOutcome, VerdictMemo

__all__ = ["Pipeline", "run_interval_end", "send_outbox"]

log = structlog.get_logger(__name__)

CHUNK_RECORDS = 2_000
"""Records per staged part: small enough that a part's Python objects are a few tens of MiB."""
VALIDATE_CHUNK_RECORDS = 10_000
"""Records validated at a time (whole staged parts): a chunk's raw frame and the suite's working columns stay
a few tens of MiB whatever the stream's length, while Great Expectations' fixed cost per validation (tenths of a
second) stays small beside the chunk's. 20,000 peaked 16 MiB higher on the 150,000-sample load (bench_memory)."""

_STEPS = ("open", "extracted", "validated", "published", "snapshotted")


class Pipeline(Hub):
    """The steps of one source, bound to one hub (database, object store, broker) from ``Settings``."""

    def __init__(self, settings: Settings, source_name: str, *, source: Source | None = None) -> None:
        """``source`` is the connector to read, for a source not declared in ``sources.toml`` (a test's small
        API); by default it is built from the declaration of ``source_name``."""
        super().__init__(settings)
        _arrow_on_system_malloc()
        self.source_name = source_name
        self._given_source = source

    @classmethod
    def from_environment(cls, source_name: str) -> Pipeline:
        """For DAG tasks: a task is an entry point, so it is where Settings are read. A task may start in any
        directory, so it refuses a relative DATA_DIR that would hold its files."""
        settings = Settings()
        settings.require_absolute_data_dir(f"DAG task of {source_name}")
        return cls(settings, source_name)

    @cached_property
    def staging(self) -> BatchStaging:
        return BatchStaging(self.engine, self.store)

    @cached_property
    def source(self) -> Source:
        return self._given_source or build_source(self.source_name, self.settings)

    def extract(self, *, run_id: str, interval_end: datetime, now: datetime | None = None) -> str:
        """Read every stream since its watermark and stage the raw records; returns the batch id.

        Records go to staging in parts of ``CHUNK_RECORDS`` as they arrive, so memory stays flat whatever the
        stream's length. A child stream is read once per context its parent's records of this run give (one
        partition each; only the contexts are kept), each partition from its own watermark.
        """
        now = now or datetime.now(UTC)
        published = self.staging.latest_published(self.source_name)
        memos = {} if published is None else {n: e.get("judged") for n, e in published.manifest["streams"].items()}
        batch = self.staging.open(source=self.source_name, run_id=run_id, interval_end=interval_end, now=now)
        with self._bound(batch):
            entries: dict[str, dict[str, Any]] = {}
            contexts: dict[str, dict[str, dict[str, str]]] = {}
            with self.source.connect() as session:
                for stream in self.source.streams:
                    version = stream.contract.meta.version
                    judged = Judged.from_manifest(memos.get(stream.name), version)
                    read = _StreamRead(self, session, stream, contexts, judged)
                    raw = self.staging.put_records(batch, stream.name, read.records(), chunk=CHUNK_RECORDS)
                    entries[stream.name] = {
                        "dataset": stream.contract.meta.key,
                        "contract_version": version,
                        "since": read.since,
                        "read_started": now.isoformat(),  # before the first page of any stream
                        "fetched": read.fetched,
                        "raw": raw,
                        "already_published": read.already_published(),
                        "content": read.content(),
                        "judged_before": None if judged is None else judged.as_manifest(),
                    }
            self.staging.update(batch, status="extracted", streams=entries)
            log.info("batch_extracted", fetched={name: e["fetched"] for name, e in entries.items()})
            return batch.batch_id

    def stage_replay(
        self,
        dataset: str,
        *,
        ids: Sequence[int] | None = None,
        reason: str | None = None,
        now: datetime | None = None,
    ) -> str | None:
        """Stage the records of ``dataset`` this source's runs quarantined (all, those ``ids``, or those with
        ``reason``) as a batch of their own, for the same validate and publish as any run; returns its batch id,
        or None when there is nothing to replay.

        The batch is marked as a replay: validate takes the records still refused back into quarantine with their
        reasons of today, publish removes the rest from quarantine in its own transaction, and neither moves a
        watermark or treats the batch as a full read of the source (it is a handful of old records).
        """
        import json

        from exchange.quarantine import replayable_records

        now = now or datetime.now(UTC)
        stream = next((s for s in self.source.streams if s.contract.meta.key == dataset), None)
        if stream is None:
            raise KeyError(f"source {self.source_name} publishes no dataset {dataset!r}")
        with self.engine.connect() as conn:
            held = replayable_records(conn, dataset=dataset, source=self.source_name, ids=ids, reason=reason)
        if not held:
            return None
        batch = self.staging.open(
            source=self.source_name, run_id=f"replay__{now.isoformat()}", interval_end=now, now=now
        )
        with self._bound(batch):
            records = (json.loads(record.payload, parse_constant=str) for record in held)
            entry = {
                "dataset": dataset,
                "contract_version": stream.contract.meta.version,
                "since": {},
                "read_started": now.isoformat(),
                "fetched": len(held),
                "raw": self.staging.put_records(batch, stream.name, records, chunk=CHUNK_RECORDS),
                "replayed": {str(record.id): record.payload_hash for record in held},
            }
            self.staging.update(batch, status="extracted", streams={stream.name: entry})
            log.info("quarantine_replay_staged", dataset=dataset, records=len(held))
            return batch.batch_id

    def validate(self, batch_id: str, now: datetime | None = None) -> dict[str, dict[str, int]]:
        """Split each stream into valid rows (staged as Parquet) and quarantined records (stored with reasons)."""
        from exchange.quarantine import (
            payload_hash,
            quarantine_records,
            record_validation_run,
            release_replayed,
            withhold_values,
        )

        now = now or datetime.now(UTC)
        batch = self._batch(batch_id, after="extracted", reads_staging=True)
        with self._bound(batch):
            streams = {stream.name: stream for stream in self.source.streams}
            referenced = {
                reference.dataset
                for entry in batch.manifest["streams"].values()
                for reference in _contract(entry).meta.references
            }
            valid_keys: dict[str, set[str]] = {}
            memo: VerdictMemo | None = None  # GX's verdicts on the run's values, for its next chunks and streams
            entries: dict[str, dict[str, Any]] = {}
            for name, entry in batch.manifest["streams"].items():
                if _nothing_new(entry):
                    entries[name] = _nothing_to_judge(entry)  # no frame, no suite: nothing here is new
                    continue
                # with pandas and GX: only for what is to be judged
                from quality.runner import ChunkedOutcome, VerdictMemo, validate_frame

                contract = _contract(entry)
                stream = streams[name]
                outcome = ChunkedOutcome(contract)
                parts: list[str] = []  # each chunk's valid rows, staged as it is judged
                marks: list[dict[str, object]] = []
                sizes: list[int] = []  # live records per staged part: which parts hold a given row
                memo = memo or VerdictMemo()
                withheld: list[WithheldValue] = []
                for raw in _chunks(entry["raw"], VALIDATE_CHUNK_RECORDS // CHUNK_RECORDS):
                    frame, chunk_marks, chunk_sizes = self._frame(stream, raw)
                    sizes.extend(chunk_sizes)
                    chunk = validate_frame(
                        contract,
                        frame,
                        known_references=self._references(contract, frame, valid_keys),
                        not_after=_latest_plausible(batch.interval_end, entry),
                        memo=memo,
                    )
                    marks.extend(chunk_marks)
                    withheld.extend(_withheld_values(contract, frame, chunk))
                    outcome.add(chunk)
                    parts.append(self.staging.put_frame(batch, f"{name}.valid.{len(parts):05d}", chunk.valid))
                    del frame, chunk  # nothing of a chunk stays in memory but its keys' hashes and positions
                self._drop_superseded(outcome, parts)
                summary = _ValidSummary(contract, stream, keys=contract.meta.key in referenced)
                for part, key in enumerate(parts):
                    if summary.columns:
                        summary.add(self.staging.read_frame(key, summary.columns), outcome.positions(part))
                tombstones, unreadable = _tombstone_frame(contract, stream, marks)
                if summary.keys is not None:
                    valid_keys[contract.meta.key] = summary.keys
                reasons = Counter(reason for row_reasons in outcome.quarantined.values() for reason in row_reasons)
                held = self._quarantined(stream, entry["raw"], sizes, outcome.quarantined) + [
                    (["tombstone_unreadable"], mark) for mark in unreadable
                ]
                with self.engine.begin() as conn:
                    if "replayed" in entry:  # still refused: held again, with the reasons it is refused for today
                        release_replayed(conn, entry["replayed"], keep={payload_hash(record) for _, record in held})
                    quarantine_records(
                        conn,
                        dataset=contract.meta.key,
                        contract_version=contract.meta.version,
                        run_id=batch.run_id,
                        batch_id=batch_id,
                        entries=held,
                        now=now,
                    )
                    withhold_values(
                        conn,
                        dataset=contract.meta.key,
                        contract_version=contract.meta.version,
                        run_id=batch.run_id,
                        batch_id=batch_id,
                        values=withheld,
                        now=now,
                    )
                    record_validation_run(
                        conn,
                        batch_id=batch_id,
                        dataset=contract.meta.key,
                        run_id=batch.run_id,
                        contract_version=contract.meta.version,
                        rows=outcome.rows,
                        valid=outcome.valid_count,
                        quarantined=outcome.quarantined_count,
                        results=outcome.results,
                        now=now,
                    )
                entries[name] = {
                    "valid": outcome.valid_count,
                    "quarantined": outcome.quarantined_count,
                    "withheld": sum(outcome.withheld.values()),
                    "reasons": dict(sorted(reasons.items())),
                    "valid_parts": parts,
                    "tombstones": self.staging.put_frame(batch, f"{name}.tombstones", tombstones) if marks else None,
                    "is_complete": outcome.quarantined_count == 0
                    and not unreadable
                    and entry["fetched"] > 0
                    and "replayed" not in entry,
                    "cursor_max": {} if "replayed" in entry else summary.cursor_max(),
                }
                if "replayed" not in entry:
                    judged = self._judged(
                        stream, entry, sizes, summary, complete=not outcome.quarantined and not unreadable
                    )
                    entries[name]["judged"] = judged.as_manifest()
            self.staging.update(batch, status="validated", streams=entries)
            log.info("batch_validated", quarantined={name: e["quarantined"] for name, e in entries.items()})
            return {name: {"valid": e["valid"], "quarantined": e["quarantined"]} for name, e in entries.items()}

    def publish(self, batch_id: str, now: datetime | None = None) -> dict[str, dict[str, int]]:
        """Publish every stream's valid rows and advance the watermarks, all in one transaction.

        The batch's summary is written in that same transaction and taken from what the run has committed (its
        outbox rows), not from this attempt alone: a retried or cleared publish changes nothing, yet the summary
        keeps the sequence range and event id of the attempt that did commit.
        """
        from exchange.quarantine import release_replayed
        from exchange.runs import run_publication
        from exchange.state import advance_watermarks

        now = now or datetime.now(UTC)
        batch = self._batch(batch_id, after="validated", reads_staging=True)
        with self._bound(batch):
            entries: dict[str, dict[str, Any]] = {}
            with self.engine.begin() as conn:
                for name, entry in batch.manifest["streams"].items():
                    if entry["valid_parts"] is None:  # nothing was judged: nothing to publish
                        entries[name] = _nothing_published(conn, entry, batch.run_id)
                        continue
                    from exchange.publish import publish_parts

                    tombstones = self.staging.read_frame(entry["tombstones"]) if entry.get("tombstones") else None
                    result = publish_parts(
                        conn,
                        _contract(entry),
                        self.staging.iter_frame(entry["valid_parts"]),  # a part at a time: a year's stream is large
                        run_id=batch.run_id,
                        now=now,
                        tombstones=tombstones,
                        full_refresh=self.source.stream(name).full_refresh and entry["is_complete"],
                    )
                    if "replayed" in entry:  # published now: out of quarantine, in the same transaction
                        release_replayed(conn, entry["replayed"])
                    moves = _watermarks_after(entry, batch.interval_end)
                    advance_watermarks(conn, self.source_name, name, moves, run_id=batch.run_id, now=now)
                    counts = result.counts()
                    counts["unchanged"] += entry.get("already_published", 0)
                    committed = run_publication(conn, result.dataset, batch.run_id)
                    entries[name] = _published(counts, result.changed, committed)
                self.staging.update(batch, status="published", streams=entries, conn=conn)
            log.info(
                "batch_published",
                changes={name: (e["first_seq"], e["last_seq"]) for name, e in entries.items()},
                stale={name: e["stale"] for name, e in entries.items()},
            )
            return {name: _ints(entry) for name, entry in entries.items()}

    def close_if_nothing_new(self, batch_id: str, now: datetime | None = None) -> bool:
        """When no stream of an extracted batch holds anything new, do here what the run's later steps would have
        done with it, so that the DAG skips them (no task process started for nothing), and return True; else do
        nothing and return False.

        What those steps did for such a batch: validate and publish judged and published nothing, moved no
        watermark (they move only with published rows) and recorded the batch as published, which keeps its source
        fresh (``exchange.freshness``: a quiet source that runs on time is fresh) and carries the last run's memo
        (``waterhub.judged``) to the next. Both summaries are written here in one transaction. Notify sent what
        waits in the outbox (a stale alert, an event an earlier run could not send): sent here too, but only when
        something waits, so an idle run opens no broker connection. Snapshot writes a snapshot only if a dataset
        has none at its sequence, then removes the staging: the same call here.
        """
        batch = self._batch(batch_id, after="extracted")
        if batch.status != "extracted" or not all(_nothing_new(e) for e in batch.manifest["streams"].values()):
            return False
        now = now or datetime.now(UTC)
        with self._bound(batch):
            with self.engine.begin() as conn:
                entries = {
                    name: _nothing_to_judge(entry) | _nothing_published(conn, entry, batch.run_id)
                    for name, entry in batch.manifest["streams"].items()
                }
                self.staging.update(batch, status="published", streams=entries, conn=conn)
            log.info("batch_nothing_new", unchanged={name: e["unchanged"] for name, e in entries.items()})
            send_outbox(self.settings, self.engine, self.source_name, now=now, only_if_pending=True)
        self.snapshot(batch_id, now=now)
        return True

    def notify(self, batch_id: str, now: datetime | None = None) -> dict[str, int]:
        """Send what the outbox holds (this run's events, any an earlier run could not send, and a stale alert for
        each declared dataset whose source stopped publishing: ``waterhub.freshness``).

        An event that could not be sent stays pending with its error recorded, and the task fails so that Airflow
        retries it: subscribers must not wait for the next hourly run to hear of a change. The batch's status is
        left alone: notify and snapshot run side by side after publish.
        """
        batch = self._batch(batch_id, after="published")
        with self._bound(batch):
            return {"sent": send_outbox(self.settings, self.engine, self.source_name, now=now or datetime.now(UTC))}

    def snapshot(self, batch_id: str, now: datetime | None = None) -> dict[str, str]:
        """Write a Parquet snapshot of each dataset this batch touched, unless one exists for its sequence.

        The run's last step: its staged objects are removed after it (nothing reads them again), and so is the
        staging that failed runs left behind longer than ``STAGING_RETENTION_HOURS`` ago.
        """
        from exchange.snapshots import write_snapshot

        now = now or datetime.now(UTC)
        batch = self._batch(batch_id, after="published")
        with self._bound(batch):
            entries: dict[str, dict[str, Any]] = {}
            for name, entry in batch.manifest["streams"].items():
                result = write_snapshot(self.engine, self.store, _contract(entry), now=now)
                entries[name] = {"snapshot": result.uri, "snapshot_seq": result.seq, "snapshot_created": result.created}
            batch = self.staging.update(batch, status="snapshotted", streams=entries)
            removed = self.staging.remove(batch)
            swept = self.staging.sweep(now=now, retention=timedelta(hours=self.settings.staging_retention_hours))
            log.info("staging_removed", objects=removed, swept_batches=swept)
            return {name: entry["snapshot"] for name, entry in entries.items()}

    def changed_datasets(self, batch_id: str) -> list[str]:
        """Keys of the datasets this batch's run changed, by its publish summary (which comes from what committed):
        the datasets the DAG emits an asset event for, so a DAG scheduled on one runs only when it changed."""
        batch = self._batch(batch_id, after="published")
        return sorted(
            entry["dataset"] for entry in batch.manifest["streams"].values() if entry["first_seq"] is not None
        )

    def _frame(self, stream: HttpStream, raw: list[str]) -> tuple[pd.DataFrame, list[dict[str, object]], list[int]]:
        """The stream's live records as one frame of post-processed rows, built part by part (a part's records are
        dropped once they are columns), its tombstones, and how many live records each part held."""
        import pandas as pd

        from quality.coercion import raw_frame

        parts: list[pd.DataFrame] = []
        marks: list[dict[str, object]] = []
        for records in self.staging.iter_records(raw):
            live, dead = _split_tombstones(stream, records)
            marks.extend(dead)
            parts.append(_shared_strings(raw_frame([stream.post_process(record) for record in live])))
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0], marks, [len(p) for p in parts]

    def _quarantined(
        self, stream: HttpStream, raw: list[str], sizes: Sequence[int], quarantined: Mapping[int, list[str]]
    ) -> list[tuple[list[str], dict[str, object]]]:
        """(reasons, raw record) of each quarantined row, read back from staging: only these records are held."""
        return [
            (list(quarantined[position]), record)
            for position, record in self._live_records(stream, raw, sizes, quarantined.keys())
        ]

    def _live_records(
        self, stream: HttpStream, raw: list[str], sizes: Sequence[int], wanted: Collection[int]
    ) -> Iterator[tuple[int, dict[str, object]]]:
        """The staged live records (tombstones left out) at positions ``wanted`` among the rows of the stream's
        frame, with their positions. ``sizes`` gives each part's live records: a part holding none of the wanted
        rows is not read again (most of a stream, whose quarantined or boundary records are few)."""
        import json

        ordered = sorted(wanted)
        start = 0
        for key, size in zip(raw, sizes, strict=True):
            here = ordered[bisect_left(ordered, start) : bisect_left(ordered, start + size)]
            if here:
                lines = self.staging.record_lines(key)
                if len(lines) == size:  # no tombstone in this part: its n-th line is its n-th live record
                    yield from ((at, json.loads(lines[at - start])) for at in here)
                else:
                    live, _ = _split_tombstones(stream, [json.loads(line) for line in lines])
                    yield from ((start + at, record) for at, record in enumerate(live) if start + at in wanted)
            start += size

    def _judged(
        self,
        stream: HttpStream,
        entry: Mapping[str, Any],
        sizes: Sequence[int],
        summary: _ValidSummary,
        *,
        complete: bool,
    ) -> Judged:
        """What the next run need not judge again (``waterhub.judged``): a whole read's digest if all of it is
        published, or the valid records at the highest cursor values. With no valid row the watermark stays, so
        the records the last memo names still come first."""
        from exchange.quarantine import payload_hash

        version = entry["contract_version"]
        field = stream.contract.meta.cursor_field
        if stream.cursor is None or field is None:
            return Judged(version, content=entry["content"] if complete else None)
        positions = summary.boundary()
        if not positions:
            return Judged.from_manifest(entry["judged_before"], version) or Judged(version)
        boundary = {payload_hash(record) for _, record in self._live_records(stream, entry["raw"], sizes, positions)}
        return Judged(version, boundary=frozenset(boundary))

    def _drop_superseded(self, outcome: ChunkedOutcome, parts: Sequence[str]) -> None:
        """Drop from the chunks' staged valid rows those a row of the same key in another chunk supersedes, deciding
        on the keys and versions of the few rows whose key hash another shares (read back from their parts)."""
        meta = outcome.contract.meta
        columns = [*meta.primary_key, meta.version_field]
        doubtful = {
            part: self.staging.read_frame(parts[part], columns).iloc[rows] for part, rows in outcome.doubtful().items()
        }
        for part, rows in outcome.supersede(doubtful).items():
            self.staging.drop_rows(parts[part], rows)

    def manifest(self, batch_id: str) -> dict[str, Any]:
        """What the run did, per stream: the demo's summary and an operator's first look."""
        batch = self.staging.get(batch_id)
        return {"batch_id": batch.batch_id, "run_id": batch.run_id, "status": batch.status, **batch.manifest}

    def _bound(self, batch: Batch) -> AbstractContextManager[None]:
        """While a step runs, every log line (its own INFO line, the connector's and the exchange's) names what an
        operator looks a run up by: source, run and batch."""
        return structlog.contextvars.bound_contextvars(
            source=self.source_name, run_id=batch.run_id, batch_id=batch.batch_id
        )

    def _batch(self, batch_id: str, *, after: str, reads_staging: bool = False) -> Batch:
        batch = self.staging.get(batch_id)
        if _STEPS.index(batch.status) < _STEPS.index(after):
            raise BatchNotFoundError(
                f"batch {batch_id} is {batch.status}, not yet {after}: run the earlier step of run {batch.run_id} first"
            )
        if reads_staging and batch.manifest.get(STAGING_REMOVED):
            raise BatchNotFoundError(
                f"batch {batch_id} was {batch.status} and its staged objects removed; "
                f"clear run {batch.run_id} from extract to read the source again"
            )
        return batch

    def _references(
        self, contract: type[Contract], frame: pd.DataFrame, batch_keys: Mapping[str, set[str]]
    ) -> dict[str, set[str]]:
        """Keys a reference may point at: those validated in this batch, plus those of the values the batch refers
        to that are already published (looked up by exchange for these values only, not by reading the table)."""
        from exchange.references import published_keys_among

        known: dict[str, set[str]] = {}
        for reference in contract.meta.references:
            validated = batch_keys.get(reference.dataset, set())
            values = _distinct_scalars(frame[reference.field]) if reference.field in frame.columns else []
            # A key this batch validated is known whether published or not: only the others are looked up, so a
            # link table whose parents came in the same batch (a full read) costs no query at all.
            candidates = [(text,) for text in map(str, values) if text not in validated]
            published: set[tuple[str, ...]] = set()
            if candidates:
                with self.engine.begin() as conn:
                    published = published_keys_among(conn, get_contract(reference.dataset), candidates)
            known[reference.dataset] = {key for (key,) in published} | validated
        return known


_NOTHING_PUBLISHED = {"inserted": 0, "updated": 0, "unchanged": 0, "stale": 0, "deleted": 0}


def _nothing_new(entry: Mapping[str, Any]) -> bool:
    """Whether an extracted stream holds nothing to judge: nothing fetched, or only what the last published run
    judged and published as it is now. A replay of quarantine always holds something."""
    return "replayed" not in entry and entry["already_published"] == entry["fetched"]


def _nothing_published(conn: Connection, entry: Mapping[str, Any], run_id: str) -> dict[str, Any]:
    """Publish's summary of a stream with nothing judged: every record fetched unchanged, and what an earlier
    attempt of the same run committed, if one did."""
    from exchange.runs import run_publication

    counts = _NOTHING_PUBLISHED | {"unchanged": entry["already_published"]}
    return _published(counts, 0, run_publication(conn, entry["dataset"], run_id))


def _nothing_to_judge(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Validate's entry for a stream that fetched nothing, or only what the last published run judged: no frame,
    nothing to publish, the watermark where it is, and the last run's memo kept for the next."""
    return {
        "valid": 0,
        "quarantined": 0,
        "withheld": 0,
        "reasons": {},
        "valid_parts": None,
        "tombstones": None,
        "is_complete": False,
        "cursor_max": {},
        "judged": entry["judged_before"],
    }


def _distinct_scalars(column: pd.Series) -> list[object]:
    """A column's distinct values, gaps left out: what a key can be. A JSON object or list a source sent instead
    (which no hash table takes) is no key; the reference check refuses the record that carries it."""
    column = column.dropna()
    try:
        return list(column.unique())
    except TypeError:
        return list({value for value in column if isinstance(value, str | int | float) and not isinstance(value, bool)})


def send_outbox(
    settings: Settings, engine: Engine, sender: str, *, now: datetime, only_if_pending: bool = False
) -> int:
    """Send every pending outbox row (this run's events and any an earlier run could not send); returns how many.

    Shared by source and derived DAGs' notify tasks, and by a source run that found nothing new, which passes
    ``only_if_pending``: with nothing waiting it connects to no broker (nor imports the MQTT client). An event that
    could not be sent stays pending with its error recorded and this raises, so Airflow retries the task:
    subscribers must not wait for the next run.
    """
    from exchange.errors import StoreUnavailableError
    from waterhub.freshness import check_freshness

    check_freshness(engine, settings, now=now, raise_events=True)  # any run sees any stale source
    if only_if_pending and not _outbox_pending(engine):
        return 0
    from exchange.notify import MqttNotifier, dispatch_outbox

    sent = 0
    with MqttNotifier(settings.resolved_mqtt_url) as notifier:
        while True:  # the outbox is read in pages; stop when a page sent nothing more
            result = dispatch_outbox(engine, notifier, hub_id=settings.hub_id, now=now)
            sent += result.sent
            if result.failed:
                raise StoreUnavailableError(
                    f"{sender}: {result.failed} change event(s) could not be sent to {notifier.where}; they and the "
                    "events behind them stay in the outbox, and the task's retry sends them with the same ids"
                )
            if result.sent == 0:
                return sent


def _outbox_pending(engine: Engine) -> bool:
    from sqlalchemy import select

    from exchange.tables import outbox

    with engine.connect() as conn:
        return conn.execute(select(outbox.c.id).where(outbox.c.dispatched_at.is_(None)).limit(1)).first() is not None


def run_interval_end(data_interval_end: datetime | None, now: datetime | None = None) -> datetime:
    """The end of the run's data interval as a plain UTC datetime; runs without one (asset-triggered) use now."""
    if data_interval_end is None:
        return now or datetime.now(UTC)
    return datetime.fromtimestamp(data_interval_end.timestamp(), UTC)


def _contract(entry: Mapping[str, Any]) -> type[Contract]:
    return get_contract(entry["dataset"], entry["contract_version"])


def _withheld_values(contract: type[Contract], frame: pd.DataFrame, outcome: ValidationOutcome) -> list[WithheldValue]:
    """Each factor withheld from a published row, with the row's key and the factor's fields as the source sent them
    (the connector's row: value, flag and unit), so a reviewer sees what arrived."""
    import numpy as np

    from exchange.hashing import key_json
    from exchange.quarantine import WithheldValue
    from quality.units import UNIT_SUFFIX

    if not outcome.withheld:
        return []
    factors = {factor.name: factor for factor in contract.factors()}
    valid_row = {int(position): row for row, position in enumerate(outcome.positions.tolist())}
    rows = np.asarray([valid_row[position] for position in outcome.withheld], dtype=np.intp)
    keys = key_json(contract, outcome.valid.iloc[rows].reset_index(drop=True)).tolist()
    values = []
    for key, (position, withheld) in zip(keys, outcome.withheld.items(), strict=True):
        record = frame.iloc[position]
        for name, reasons in withheld.items():
            fields = (*factors[name].fields, f"{name}{UNIT_SUFFIX}")
            raw = {field: _json_value(record[field]) for field in fields if field in record.index}
            values.append(WithheldValue(key, name, reasons, raw))
    return values


def _json_value(value: object) -> object:
    """A raw cell as JSON can hold it (pandas keeps a gap as NaN or NA, numpy scalars as their own types)."""
    import pandas as pd

    if isinstance(value, list | dict):
        return value
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def _arrow_on_system_malloc() -> None:
    """Let Arrow (pyarrow, and pandas' text columns) allocate from the C library's malloc rather than its bundled
    mimalloc, which reserves pages up front and keeps those a chunk freed for the chunks to come: a step's peak is
    then one chunk's work above what its imports hold (bench_memory). Arrow reads the variable when it first needs
    its pool, so a process that has not yet loaded pyarrow is told that way and never starts mimalloc; one that
    has gets the system pool for what it allocates from now on. An operator's own choice of pool stands."""
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return
    if "pyarrow" in sys.modules:
        import pyarrow as pa

        pa.set_memory_pool(pa.system_memory_pool())
    else:
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"


def _chunks(parts: Sequence[str], size: int) -> Iterator[list[str]]:
    """Staged parts in consecutive runs of ``size``; a stream always has at least one part, so one chunk."""
    for start in range(0, len(parts), size):
        yield list(parts[start : start + size])


def _partitions(
    stream: HttpStream, contexts: Mapping[str, Mapping[str, dict[str, str]]]
) -> list[tuple[str, dict[str, str] | None]]:
    """(partition key, context) of each read of ``stream``: one unpartitioned read, or one per distinct context its
    parent's records of this run gave."""
    if stream.parent is None:
        return [("", None)]
    return list(contexts.get(stream.name, {}).items())


def _shared_strings(part: pd.DataFrame) -> pd.DataFrame:
    """``part`` with each column that holds only text (or gaps) pointing at one object per distinct text.

    Decoded JSON gives every cell its own string object: the same unit, station code or hour repeated a hundred
    thousand times, each copy scattered among the dicts it was parsed from. Sharing them keeps a stream's frame near
    its real size. Columns holding anything but text are left alone, since reducing them to distinct values would
    merge values that only compare equal (``1``, ``1.0`` and ``True``), which quality must tell apart.
    """
    import numpy as np
    import pandas as pd

    for name in part.columns:
        column = part[name]
        if column.dtype != object or not all(isinstance(v, str) or v is None for v in column):
            continue
        codes, distinct = pd.factorize(column, use_na_sentinel=True)
        shared = np.asarray([*distinct, None], dtype=object)
        part[name] = pd.Series(shared[codes], index=part.index, dtype=object)
    return part


def _split_tombstones(
    stream: HttpStream, records: list[dict[str, object]]
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """(live records, tombstones) as the stream declares a tombstone; a stream without one has only live ones."""
    rule = stream.tombstone
    if rule is None:
        return records, []
    return [r for r in records if not rule.matches(r)], [r for r in records if rule.matches(r)]


def _tombstone_frame(
    contract: type[Contract], stream: HttpStream, marks: list[dict[str, object]]
) -> tuple[pd.DataFrame, list[dict[str, object]]]:
    """Each tombstone's key and version typed the way the contract types them, and the tombstones that cannot be
    (quarantined as ``tombstone_unreadable``: a delete we cannot place is not guessed at)."""
    import pandas as pd
    from pydantic import TypeAdapter, ValidationError

    names = [*contract.meta.primary_key, contract.meta.version_field]
    adapters: dict[str, TypeAdapter[Any]] = {}
    for name in names:
        info = contract.model_fields[name]
        hint: Any = cast(Any, Annotated)[(info.annotation, *info.metadata)] if info.metadata else info.annotation
        adapters[name] = TypeAdapter(hint)
    rows, unreadable = [], []
    for mark in marks:
        row = stream.post_process(mark)
        try:
            rows.append({name: adapters[name].validate_python(row.get(name)) for name in names})
        except ValidationError:
            unreadable.append(mark)
    return pd.DataFrame(rows, columns=names), unreadable


class _ValidSummary:
    """What the manifest and the batch's later streams need of a stream's valid rows, gathered one staged part at
    a time: each partition's highest cursor value with the positions of the rows holding it (how far its
    watermark may move, and what the next read gets again: ``waterhub.judged``), and, for a dataset another
    stream of the batch refers to, its keys. Nothing for a stream read in full each run."""

    def __init__(self, contract: type[Contract], stream: HttpStream, *, keys: bool) -> None:
        self.stream = stream
        self.field = contract.meta.cursor_field if stream.cursor is not None else None
        primary_key = contract.meta.primary_key
        self.key = primary_key[0] if keys and len(primary_key) == 1 else None
        self.keys: set[str] | None = None if self.key is None else set()
        self._highest: dict[str, tuple[pd.Timestamp, set[int]]] = {}

    @property
    def columns(self) -> list[str]:
        """The columns it reads of a part (none: nothing to gather)."""
        names = [] if self.field is None else [self.field, *self.stream.parent_keys]
        return names + ([self.key] if self.key is not None and self.key not in names else [])

    def add(self, valid: pd.DataFrame, positions: npt.NDArray[np.intp]) -> None:
        """Take a part's valid rows (``columns`` of them) and their positions in the stream."""
        import numpy as np

        if self.keys is not None and self.key is not None:
            self.keys.update(valid[self.key].astype(str))
        if self.field is None or valid.empty:
            return
        rows = valid[list(self.stream.parent_keys)].to_dict("records") if self.stream.parent_keys else None
        partitions = np.asarray([""] * len(valid) if rows is None else [self.stream.partition_of(r) for r in rows])
        cursor = valid[self.field]
        at = (cursor == cursor.groupby(partitions).transform("max")).to_numpy()
        for partition, value, position in zip(partitions[at], cursor[at], positions[at].tolist(), strict=True):
            held = self._highest.get(partition)
            if held is None or value > held[0]:
                self._highest[partition] = (value, {position})
            elif value == held[0]:
                held[1].add(position)

    def cursor_max(self) -> dict[str, str]:
        """Per partition, the highest cursor value among valid rows: the most its watermark may advance to once
        they are published."""
        return {partition: value.to_pydatetime().isoformat() for partition, (value, _) in self._highest.items()}

    def boundary(self) -> set[int]:
        """Stream positions of the valid rows holding their partition's highest cursor value."""
        return {position for _, positions in self._highest.values() for position in positions}


def _watermarks_after(entry: Mapping[str, Any], interval_end: datetime) -> dict[str, datetime]:
    """How far each partition's watermark may move: to the highest cursor published, capped at the end of the
    run's interval (Meltano's signpost), and not at all when a record changed while its pages were being read.

    The feed is paged by number in cursor order, so a record corrected mid-read jumps to the end and shifts every
    record behind its old place one page up: the first of them lands on a page already read and is missed. The
    correction itself is read (its cursor is later than the read's start), so that is the sign to keep the
    watermark where it was; the next run reads the window again and finds the missed record (publishing the rest
    again changes nothing).
    """
    read_started = datetime.fromisoformat(entry["read_started"])
    moves: dict[str, datetime] = {}
    for partition, value in entry["cursor_max"].items():
        highest = datetime.fromisoformat(value)
        if highest >= read_started:
            log.warning("watermark_held", dataset=entry["dataset"], partition=partition, cursor_max=value)
            continue
        moves[partition] = min(highest, interval_end)
    return moves


def _published(counts: Mapping[str, int], changed: int, committed: RunPublication | None) -> dict[str, Any]:
    """A stream's publish summary: this attempt's counts (of which ``changed`` rows it changed), with what the run
    committed in place of what this attempt changed. Rows an earlier attempt of the run wrote are unchanged to this
    one; they count as that attempt's."""
    if committed is None:
        return {**counts, "first_seq": None, "last_seq": None, "event_id": None}
    return {
        **counts,
        "inserted": committed.inserted,
        "updated": committed.updated,
        "deleted": committed.deleted,
        "unchanged": counts["unchanged"] - (committed.changed - changed),
        "first_seq": committed.first_seq,
        "last_seq": committed.last_seq,
        "event_id": committed.event_id,
    }


def _latest_plausible(interval_end: datetime, entry: Mapping[str, Any]) -> datetime:
    """The latest time a record of this run can truly hold: the end of the run's interval, or the moment its pages
    were read if that is later (a rerun of an old interval reads what the source holds now), plus the minutes a
    station's clock may run fast. A later time is a clock gone wrong: published, it would hold the watermark on
    every run until that time came."""
    read_started = datetime.fromisoformat(entry["read_started"])
    return max(interval_end, read_started) + CLOCK_TOLERANCE


def _ints(entry: Mapping[str, Any]) -> dict[str, int]:
    return {key: value for key, value in entry.items() if isinstance(value, int)}


class _StreamRead:
    """One stream's read in extract: its partitions in turn, each from its own watermark, counting the records and
    noting the contexts they give the stream's children."""

    def __init__(
        self,
        pipeline: Pipeline,
        session: SourceSession,
        stream: HttpStream,
        contexts: dict[str, dict[str, dict[str, str]]],
        judged: Judged | None,
    ) -> None:
        self.pipeline = pipeline
        self.session = session
        self.stream = stream
        self.contexts = contexts
        self.children = [s for s in pipeline.source.streams if s.parent is not None and isinstance(stream, s.parent)]
        self.fetched = 0
        self.since: dict[str, str | None] = {}
        self.judged = judged
        self.left_out = 0
        self.hashes: list[str] | None = [] if stream.cursor is None else None  # a whole read: its digest

    def records(self) -> Iterator[dict[str, object]]:
        from exchange.quarantine import payload_hash
        from exchange.state import read_watermarks

        pipeline, stream = self.pipeline, self.stream
        with pipeline.engine.connect() as conn:
            watermarks = read_watermarks(conn, pipeline.source_name, stream.name)
        for partition, context in _partitions(stream, self.contexts):
            since = watermarks.get(partition)
            self.since[partition] = since.isoformat() if since else None
            leading = self.judged is not None and bool(self.judged.boundary)  # records the last run published first
            for record in self.session.read(stream, since=since, context=context):
                self.fetched += 1
                for child in self.children:
                    found = child.context(record)
                    if found is not None:
                        self.contexts.setdefault(child.name, {})[partition_key(found)] = found
                if self.hashes is not None:
                    self.hashes.append(payload_hash(record))
                elif leading and self.judged is not None:
                    if payload_hash(record) in self.judged.boundary:
                        self.left_out += 1
                        continue
                    leading = False
                yield record

    def content(self) -> str | None:
        """The digest of a whole read (None for a read from a watermark)."""
        return None if self.hashes is None else content_digest(self.hashes)

    def already_published(self) -> int:
        """Records the last published run judged and published as they are now: all of a whole read whose digest
        is that run's, else those left out at the start of each partition."""
        if self.judged is not None and self.judged.content is not None and self.judged.content == self.content():
            return self.fetched
        return self.left_out
