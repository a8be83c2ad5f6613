"""A platform's API over real HTTP for tests, the demo and ``waterhub simulate``: the shared part of the inspection
systems' and the address base's simulators (STYLE rule 22).

A source's simulator says only what is its own: its source class (which gives the paths, keys and which streams
are registers), how many records of each stream to make, how to make one, and which field a correction changes.
Everything else is here: OAuth 2.0 tokens and their expiry, the envelope, paging, ``updated_since``, feeds served in
key order (not update order), tombstones, planted bad records derived from each contract (a duplicate sent older
after newer, an unknown reference, a missing time, a value outside the allowed set), and the ground truth tests
compare the hub with. Times are Beijing time without an offset, as the platforms send them.
"""

from __future__ import annotations

import copy
import json
import random
import re
from abc import abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.city_platform.settings import PlatformSourceSettings
from connectors.city_platform.source import ChangeFeed, PlatformSource, PlatformStream, Register
from connectors.simulation import (
    Answer,
    HttpSimulator,
    Running,
    TokenIssuer,
    beijing_text,
    encode_json,
    envelope_page,
    parse_beijing,
)

__all__ = [
    "DEFAULT_ADDRESSES",
    "DEFAULT_END",
    "DEMO_CLIENT_SECRET",
    "PlatformSimulator",
    "PlatformTruth",
    "RunningPlatform",
    "address_code",
    "beijing_text",
    "parse_beijing",
]

DEFAULT_END = datetime(2026, 11, 23, 0, tzinfo=UTC)
"""The simulated clock's start unless told otherwise: fixed, so two runs with one seed agree byte for byte."""
DEFAULT_ADDRESSES = 40
"""Standard addresses the address base simulates by default; the inspection systems' records point at these."""
DEMO_CLIENT_SECRET = "waterhub-demo-secret"  # noqa: S105 - the simulators' and settings' shared demo default
_UNKNOWN_ADDRESS = 900_000
"""Address numbers from here on are codes the address base does not hold (a typo, a code from another city)."""

_DISTRICTS: dict[str, tuple[float, float]] = {
    "天河区": (113.36, 23.13),
    "白云区": (113.27, 23.25),
    "海珠区": (113.32, 23.09),
    "番禺区": (113.38, 22.94),
    "花都区": (113.22, 23.40),
    "从化区": (113.59, 23.55),
    "增城区": (113.81, 23.26),
    "南沙区": (113.53, 22.80),
}
"""Districts of Guangzhou and a point near the middle of each (longitude, latitude)."""

_Json = dict[str, Any]
Key = tuple[object, ...]


def address_code(n: int) -> str:
    """The n-th simulated standard address code (16 digits: Guangzhou's 440100, then a serial) [U real layout]."""
    return f"440100{n:010d}"


@dataclass
class _Entry:
    """A record the API serves, and what the hub must make of it: published (``reason`` None) or quarantined."""

    record: _Json
    reason: str | None = None
    seq: int = 0

    @property
    def is_tombstone(self) -> bool:
        return self.record.get("deleted") is True


@dataclass(frozen=True)
class PlatformTruth:
    """What the API serves now, per stream, and what the hub must hold after reading all of it."""

    published: dict[str, dict[Key, _Json]]
    """Stream → primary key (typed as the contract types it: times aware UTC) → the record as served."""
    quarantined: dict[str, list[tuple[_Json, str]]]
    """Stream → (record, the reason quality must give it), in feed order."""
    deleted: dict[str, set[Key]]
    """Stream → keys a tombstone or a register's omission deletes."""


class PlatformSimulator(HttpSimulator):
    """A platform's API with its data, planted bad records, OAuth tokens that can expire, faults and a request log.

    ``size`` is the register's length; each stream makes ``size * volumes[stream][0]`` records. ``bad_records`` plants
    one record of each applicable bad kind in every change feed.
    """

    source: ClassVar[type[PlatformSource]]
    volumes: ClassVar[Mapping[str, tuple[int, str | None]]]
    """Stream name → (records per register entry, the field a late correction changes; None for a register)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "source" in vars(cls):
            cls.paths = frozenset(stream.path for stream in cls.source.stream_types)
            cls.thread_name = f"{cls.source.name} simulator"

    def __init__(
        self,
        *,
        seed: int = 7,
        client_secret: str = DEMO_CLIENT_SECRET,
        size: int = 6,
        end: datetime = DEFAULT_END,
        bad_records: bool = True,
        token_lifetime_s: int = 3600,
    ) -> None:
        if not 1 <= size <= 9999:
            raise ValueError(f"size must be between 1 and 9999, not {size}")
        if end.tzinfo is None:
            raise ValueError(f"end must be an aware datetime, not {end!r}")
        super().__init__()
        self.tokens: TokenIssuer = TokenIssuer(client_secret, lifetime_s=token_lifetime_s)
        self.size = size
        self.now = end.astimezone(UTC)
        self._rng = random.Random(seed)  # noqa: S311 - simulated data, deterministic for a seed; not a secret
        self._streams: dict[str, type[PlatformStream]] = {stream.name: stream for stream in self.source.stream_types}
        self._entries: dict[str, list[_Entry]] = {name: [] for name in self._streams}
        self._seq = 0
        self._removed: dict[str, set[Key]] = {}
        self._made = dict.fromkeys(self._streams, 0)
        start = self.now - timedelta(days=7)
        for name in self._streams:
            for _ in range(size * self.volumes[name][0]):
                self._add_new(name, start, self.now)
        if bad_records:
            for name, stream in self._streams.items():
                if issubclass(stream, ChangeFeed):
                    self._plant(name)

    # ------------------------------------------------------------------ what a source says about its records

    @abstractmethod
    def _make(self, stream: str, n: int, at: datetime) -> _Json:
        """The ``n``-th record of ``stream``, last changed ``at`` (its ``updated_at``); point at live records of
        earlier streams with ``pick``."""

    def pick(self, stream: str) -> _Json:
        """A live, published record of ``stream``, for a record that refers to it. A register's last entry is newly
        registered and not yet inspected: nothing points at it, so it can be deleted without orphaning records."""
        live = self.live(stream)
        if issubclass(self._streams[stream], Register) and len(live) > 1:
            live = live[:-1]
        return self._rng.choice(live)

    def pick_address(self) -> str | None:
        """Mostly one of the address base's codes; sometimes none recorded, sometimes a code it does not hold."""
        draw = self._rng.random()
        if draw < 0.15:
            return None
        if draw < 0.25:
            return address_code(_UNKNOWN_ADDRESS + self._rng.randrange(1000))
        return address_code(self._rng.randrange(DEFAULT_ADDRESSES))

    def live(self, stream: str) -> list[_Json]:
        """Every live, published record of ``stream`` so far."""
        return [e.record for e in self._entries[stream] if e.reason is None and not e.is_tombstone]

    def place(self) -> _Json:
        """Where a simulated register entry lies: a district of Guangzhou, a position in it, its standard address."""
        district, (longitude, latitude) = self._rng.choice(list(_DISTRICTS.items()))
        return {
            "district": district,
            "longitude": round(longitude + self._rng.uniform(-0.03, 0.03), 6),
            "latitude": round(latitude + self._rng.uniform(-0.03, 0.03), 6),
            "address_code": self.pick_address(),
        }

    def moment_before(self, at: datetime, *, within: timedelta = timedelta(days=2)) -> datetime:
        """A whole second up to ``within`` before ``at``: when something happened that was recorded at ``at``."""
        return at - timedelta(seconds=self._rng.randint(60, int(within.total_seconds())))

    @property
    def rng(self) -> random.Random:
        return self._rng

    # ------------------------------------------------------------------ ground truth and changes over time

    @property
    def truth(self) -> PlatformTruth:
        with self._lock:
            published: dict[str, dict[Key, _Json]] = {}
            quarantined: dict[str, list[tuple[_Json, str]]] = {}
            deleted: dict[str, set[Key]] = {}
            for name, entries in self._entries.items():
                feed = self._feed(name)
                published[name] = {
                    self.key_of(name, e.record): copy.deepcopy(e.record)
                    for e in feed
                    if e.reason is None and not e.is_tombstone
                }
                quarantined[name] = [(copy.deepcopy(e.record), e.reason) for e in feed if e.reason is not None]
                deleted[name] = {self.key_of(name, e.record) for e in entries if e.is_tombstone} | {
                    key for key in self._removed.get(name, set()) if key not in published[name]
                }
            return PlatformTruth(published, quarantined, deleted)

    def key_of(self, stream: str, record: Mapping[str, object]) -> Key:
        """A record's primary key as the hub stores it: times as aware UTC, text as sent."""
        contract = self._streams[stream].contract
        return tuple(
            parse_beijing(str(record[name])) if contract.field_spec(name).type == "datetime" else record[name]
            for name in contract.meta.primary_key
        )

    def advance(self, hours: int = 6, *, corrections: int = 0, deletions: int = 0) -> None:
        """Let ``hours`` pass: new records in every change feed (one per register entry), ``corrections`` earlier
        records of each feed changed with a later ``updated_at``, ``deletions`` records of each stream deleted
        (a tombstone in a feed, gone from a register)."""
        with self._lock:
            earlier = {
                name: [e for e in entries if e.reason is None and not e.is_tombstone]
                for name, entries in self._entries.items()
            }
            before = self.now
            self.now += timedelta(hours=hours)
            for name, stream in self._streams.items():
                if issubclass(stream, ChangeFeed):
                    for _ in range(self.size):
                        self._add_new(name, before, self.now)
            for name, stream in self._streams.items():
                live = earlier[name]  # changed or deleted: records published before, not the ones just added
                if corrections and issubclass(stream, ChangeFeed):
                    for entry in self._rng.sample(live, min(corrections, len(live))):
                        self._correct(name, entry)
                if deletions:
                    referred = self._referred(stream.contract.meta.key)
                    free = [e for e in live if str(e.record[stream.contract.meta.primary_key[0]]) not in referred]
                    for entry in self._rng.sample(free, min(deletions, len(free))):
                        self._delete(name, entry)

    def _referred(self, dataset: str) -> set[str]:
        """Every value a live record of any stream points at in ``dataset``: deleting such an entry from a register
        would orphan records the hub has already published."""
        values: set[str] = set()
        for name, stream in self._streams.items():
            for reference in stream.contract.meta.references:
                if reference.dataset == dataset:
                    values |= {str(record.get(reference.field)) for record in self.live(name)}
        return values

    def _correct(self, stream: str, entry: _Entry) -> None:
        field = self.volumes[stream][1]
        assert field is not None  # noqa: S101 - only change feeds are corrected, and each names its field
        spec = self._streams[stream].contract.field_spec(field)
        old = entry.record.get(field)
        if spec.allowed is not None:
            entry.record[field] = self._rng.choice([value for value in spec.allowed if value != old])
        elif spec.type == "number":
            entry.record[field] = round(float(old or 0) * 1.1 + 0.1, 2)  # a lab's re-analysis
        else:
            entry.record[field] = f"{old or ''}（更正）"[-(spec.max_length or 40) :]
        entry.record["updated_at"] = beijing_text(self.now - timedelta(seconds=self._rng.randint(1, 600)))

    def _delete(self, stream: str, entry: _Entry) -> None:
        if issubclass(self._streams[stream], Register):
            self._entries[stream].remove(entry)
            self._removed.setdefault(stream, set()).add(self.key_of(stream, entry.record))
            return
        contract = self._streams[stream].contract
        tombstone = {name: entry.record[name] for name in contract.meta.primary_key}
        entry.record = tombstone | {"updated_at": beijing_text(self.now), "deleted": True}

    def _add_new(self, stream: str, after: datetime, until: datetime) -> None:
        span = int((until - after).total_seconds())
        at = after + timedelta(seconds=self._rng.randint(1, span))
        record = self._make(stream, self._made[stream], at)
        record["updated_at"] = beijing_text(at)
        self._made[stream] += 1
        self._append(stream, _Entry(record))

    def _append(self, stream: str, entry: _Entry) -> None:
        self._seq += 1
        entry.seq = self._seq
        self._entries[stream].append(entry)

    # ------------------------------------------------------------------ planted bad records

    def _plant(self, stream: str) -> None:
        """One of each bad kind the stream's contract allows, each on a different record."""
        contract = self._streams[stream].contract
        meta = contract.meta
        specs = contract.field_specs()
        candidates = [e for e in self._entries[stream] if e.reason is None]
        self._rng.shuffle(candidates)
        victims = iter(candidates)

        original = next(victims)  # a resend: the older version comes after the newer one, and loses
        older = copy.deepcopy(original.record)
        older["updated_at"] = beijing_text(parse_beijing(original.record["updated_at"]) - timedelta(hours=1))
        self._append(stream, _Entry(older, "duplicate_key"))
        for reference in meta.references:
            entry = next(victims)
            entry.record[reference.field] = re.sub(r"[0-9]", "9", str(entry.record[reference.field]))
            entry.reason = reference.reason
        times = [s.name for s in specs if s.type == "datetime" and not s.nullable and s.name != meta.version_field]
        if times:
            entry = next(victims)
            entry.record[times[0]] = None
            entry.reason = f"{times[0]}_missing"
        choices = [s.name for s in specs if s.allowed is not None and not s.nullable]
        if choices:
            entry = next(victims)
            entry.record[choices[0]] = "unknown"
            entry.reason = f"{choices[0]}_not_allowed"

    # ------------------------------------------------------------------ serving

    def _feed(self, stream: str) -> list[_Entry]:
        """A stream as the API serves it: in key order (so update times jump about across pages), then as added."""
        return sorted(
            self._entries[stream],
            key=lambda e: (json.dumps([e.record.get(k) for k in self._key_fields(stream)], default=str), e.seq),
        )

    def _key_fields(self, stream: str) -> tuple[str, ...]:
        return self._streams[stream].contract.meta.primary_key

    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        return self.tokens.refusal(headers)

    def _error(self, status: int, message: str) -> bytes:
        return encode_json({"code": status, "message": message, "data": None})

    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        name = next(name for name, stream in self._streams.items() if stream.path == path)
        if not issubclass(self._streams[name], ChangeFeed):  # a register is read whole
            query = {key: value for key, value in query.items() if key != "updated_since"}
        with self._lock:
            return envelope_page(
                [e.record for e in self._feed(name)],
                query,
                since_param="updated_since",
                since_field="updated_at",
                error=self._error,
                repeat_previous=repeat_previous,
            )

    @classmethod
    def demo(cls, block: BaseModel, seed: int) -> PlatformSimulator:
        """What ``make demo`` serves (each platform's ``demo_simulator``): the default small volumes, with the
        client secret of the source's settings block."""
        if not isinstance(block, PlatformSourceSettings):
            raise TypeError(f"{cls.__name__} takes a platform settings block, not {type(block).__name__}")
        return cls(seed=seed, client_secret=block.client_secret.get_secret_value())

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningPlatform]:
        """Serve on ``host:port`` (0: the OS picks a free port) in a background thread until the block ends."""
        with self.served(host, port) as server:
            yield RunningPlatform(self, server.base_url, server.host, server.port)


@dataclass
class RunningPlatform(Running[PlatformSimulator]):
    """A served platform simulator: its ground truth and clock as well."""

    @property
    def truth(self) -> PlatformTruth:
        return self.simulator.truth
