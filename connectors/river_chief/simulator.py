"""A stand-in for the provincial smart river-chief platform: a real HTTP server on loopback.

Deterministic for a seed. Volumes default to Guangzhou's static scale (REFERENCE 6.5: 1,368 rivers, 9,092
segments, 51 lakes, 363 reservoirs, 4,938 small water bodies, 188 offices, 605 member departments, more than 3,000
chiefs; ``GUANGZHOU``) times ``scale``, and ``days`` of dynamic data at Guangzhou's daily rate (about 1,370
patrols and 110 problems a day; a year is ``days=365``). What a test expects comes from ``truth``.

The API it imitates:

- ``POST /oauth2/token`` (client credentials, form-encoded) answers ``{"access_token", "token_type": "Bearer",
  "expires_in"}``; every other request needs ``Authorization: Bearer <token>``, else 401. Tokens live
  ``token_lifetime_s``; an ``expired_token`` fault forgets every token at once (expiry mid-run).
- ``GET /api/v1/<register>?page_size=&updated_since=&cursor=`` for each stream of ``PLATFORM_STREAMS``, and
  ``GET /api/v1/problems/{problem_id}/steps``: records in ``(updated_at, key)`` order with ``updated_at >=
  updated_since`` (Beijing time, inclusive); ``data.next_cursor`` is an opaque keyset token (absent on the last
  page); a token that is not one of ours is 400. With ``shuffle_pages`` each page's records come in random order.
- ``POST /api/v1/reports/problems`` takes a city's report of a handled problem with an ``Idempotency-Key`` header
  and answers ``{"data": {"ack_id": ...}}``: the same key with the same body gets the same acknowledgement and
  stores nothing new; the same key with another body is 422.
- Deleted records are tombstones: ``{<key fields>, "updated_at", "deleted": true}``.

Planted bad records (``bad_share`` > 0, at least one of each kind, never among the last day's records): a patrol
by an unknown chief (``unknown_chief``), a patrol ending before it starts (``patrol_ends_before_it_starts``), a
patrol sent twice (the earlier copy ``duplicate_key``), a segment of an unknown river (``unknown_river``), a
segment with a cut division code (``division_code_bad_format``), a problem in a status the platform does not have
(``status_not_allowed``).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.river_chief.source import REPORTS_PATH, TOKEN_PATH
from connectors.river_chief.streams import API, PLATFORM_STREAMS, ProblemStepsStream
from connectors.simulation import (
    Answer,
    HttpSimulator,
    Running,
    TokenIssuer,
    as_read,
    beijing_text,
    encode_json,
    parse_beijing,
)
from contracts.river_chief import CHIEF_LEVELS

__all__ = [
    "DEFAULT_END",
    "GUANGZHOU",
    "REPORTS_PATH",
    "UNASSIGNED_EVERY",
    "PlatformTruth",
    "RiverChiefSimulator",
    "RunningPlatform",
    "demo_simulator",
    "record_key",
]

DEFAULT_END = datetime(2026, 11, 23, 0, tzinfo=UTC)
"""The simulator's clock at the start unless told otherwise: fixed, so two runs with one seed agree."""

GUANGZHOU: dict[str, int] = {
    "rivers": 1368,
    "segments": 9092,
    "lakes": 51,
    "reservoirs": 363,
    "small_water_bodies": 4938,
    "offices": 188,
    "departments": 605,
    "chiefs": 3120,
    "patrols_per_day": 1370,
    "problems_per_day": 110,
}
"""Guangzhou's registers (REFERENCE 6.5) and its daily patrols and problems (about 500,000 and 40,000 a year)."""

STEPS_PREFIX, STEPS_SUFFIX = f"{API}/problems/", "/steps"
MAX_PAGE_SIZE = 5_000
UNASSIGNED_EVERY = 40
"""Every this-many-th segment has no chief assigned."""
_KEYS = {stream.name: stream.contract.meta.primary_key for stream in PLATFORM_STREAMS}
_PATHS = {stream.path: stream.name for stream in PLATFORM_STREAMS if stream.parent is None}
_DISTRICTS = ("440103", "440104", "440105", "440106", "440111", "440112", "440113", "440114", "440115", "440117")
_OTHER_CITY = "440300"  # Shenzhen: a problem there is not the city's to report
_RIVER_NAMES = ("流溪河", "白坭河", "增江", "沙河涌", "车陂涌", "石井河", "猎德涌", "新街河", "官洲河", "市桥水道")
_CATEGORIES = ("sewage", "rubbish", "illegal_building", "outfall", "sand_mining", "encroachment", "other")
_LIFECYCLE = ("reported", "accepted", "assigned", "handling", "handled", "verified", "closed")
_Json = dict[str, Any]


@dataclass
class _Feed:
    """One endpoint's records by entry id (a record's key, or a duplicate's), served in ``(updated_at, id)`` order."""

    records: dict[str, _Json] = field(default_factory=dict)
    _order: list[tuple[str, str]] | None = None

    def put(self, entry: str, record: _Json) -> None:
        self.records[entry] = record
        self._order = None

    def order(self) -> list[tuple[str, str]]:
        if self._order is None:
            self._order = sorted((record["updated_at"], entry) for entry, record in self.records.items())
        return self._order


@dataclass(frozen=True)
class PlatformTruth:
    """What the platform serves at one moment, and what quality must make of it.

    ``live`` holds per stream (steps: per problem together) every record a reader gets that is not a tombstone,
    as decoded; ``planted`` maps (stream, entry) of each planted record to its quarantine reason, where the entry is
    the record's key joined by ``/`` (a duplicated record's earlier copy is ``<key>#1``); ``deleted`` holds the keys
    of tombstones per stream.
    """

    live: Mapping[str, tuple[_Json, ...]]
    planted: Mapping[tuple[str, str], str]
    deleted: Mapping[str, frozenset[tuple[str, ...]]]

    def keys(self, stream: str) -> set[tuple[str, ...]]:
        """Keys (as text) of the records of ``stream`` quality must publish: a duplicated record's later copy is."""
        refused = {tuple(entry.split("/")) for (name, entry) in self.planted if name == stream and "#" not in entry}
        return {record_key(stream, record) for record in self.live[stream]} - refused

    def quarantined(self, stream: str) -> dict[str, str]:
        return {entry: reason for (name, entry), reason in self.planted.items() if name == stream}


def record_key(stream: str, record: Mapping[str, object]) -> tuple[str, ...]:
    """A record's primary key as text, in the contract's order."""
    return tuple(str(record[name]) for name in _KEYS[stream])


class RiverChiefSimulator(HttpSimulator):
    """The platform's API with its registers, a clock for dynamic data, faults, tokens and the city's reports."""

    paths: ClassVar[frozenset[str]] = frozenset(_PATHS)
    post_paths: ClassVar[frozenset[str]] = frozenset({REPORTS_PATH})
    thread_name: ClassVar[str] = "river-chief platform simulator"

    def __init__(
        self,
        *,
        seed: int = 7,
        client_id: str,
        client_secret: str,
        scale: float = 1.0,
        days: int = 7,
        end: datetime = DEFAULT_END,
        bad_share: float = 0.002,
        token_lifetime_s: int = 7200,
        shuffle_pages: bool = False,
    ) -> None:
        if not 0 < scale <= 10:
            raise ValueError(f"scale must be in (0, 10], not {scale}")
        if not 0 <= days <= 3660:
            raise ValueError(f"days must be between 0 and 3660, not {days}")
        super().__init__()
        self.tokens: TokenIssuer = TokenIssuer(client_secret, client_id=client_id, lifetime_s=token_lifetime_s)
        self.tokens.path = TOKEN_PATH
        self.shuffle_pages = shuffle_pages
        self.dropped_report_answers = 0
        self._rng = random.Random(seed)  # noqa: S311 - simulated data, deterministic for a seed; not a secret
        self._scale = scale
        self._clock = end.astimezone(UTC) - timedelta(days=days)
        self._feeds: dict[str, _Feed] = {stream.name: _Feed() for stream in PLATFORM_STREAMS if stream.parent is None}
        self._steps: dict[str, _Feed] = {}
        self._pending: list[tuple[str, str, _Json]] = []  # (acted_at text, problem id, step) not yet taken
        self._planted: dict[tuple[str, str], str] = {}
        self._reports: dict[str, tuple[str, str, _Json]] = {}  # idempotency key -> (ack id, body hash, report)
        self._seq: dict[str, int] = {}
        self._stamped = self._clock
        self._registers(self._clock)
        self._advance_to(end.astimezone(UTC))
        self._plant(bad_share)

    # ------------------------------------------------------------------ ground truth and time

    @property
    def clock(self) -> datetime:
        return self._clock

    @property
    def truth(self) -> PlatformTruth:
        with self._lock:
            live: dict[str, tuple[_Json, ...]] = {}
            deleted: dict[str, frozenset[tuple[str, ...]]] = {}
            feeds = {
                **self._feeds,
                ProblemStepsStream.name: _Feed(
                    {
                        f"{pid}/{entry}": record
                        for pid, feed in self._steps.items()
                        for entry, record in feed.records.items()
                    }
                ),
            }
            for name, feed in feeds.items():
                records = [as_read(feed.records[entry]) for _, entry in feed.order()]
                live[name] = tuple(r for r in records if r.get("deleted") is not True)
                deleted[name] = frozenset(record_key(name, r) for r in records if r.get("deleted") is True)
            return PlatformTruth(live, dict(self._planted), deleted)

    @property
    def reports(self) -> dict[str, list[_Json]]:
        """Every report the platform accepted, per problem id, in the order they came (a resend adds none)."""
        with self._lock:
            accepted: dict[str, list[_Json]] = {}
            for _, _, report in self._reports.values():
                accepted.setdefault(str(report.get("problem_id")), []).append(report)
            return accepted

    def advance(self, hours: int = 1) -> None:
        """Let time pass: new patrols and problems, and the next handling steps of open problems."""
        with self._lock:
            self._advance_to(self._clock + timedelta(hours=hours))

    def correct(self, stream: str, count: int) -> list[tuple[str, ...]]:
        """Re-send ``count`` live records of ``stream`` with a later ``updated_at`` and a changed field (a late
        correction of an old record); returns their keys. Patrols get a corrected distance, others a new name."""
        with self._lock:
            feed, changed = self._feeds[stream], list[tuple[str, ...]]()
            candidates = [e for _, e in feed.order() if self._plain(stream, e)]
            live = [e for e in candidates if not feed.records[e].get("deleted")]
            for entry in live[:count]:
                record = dict(feed.records[entry])
                if stream == "patrols":
                    record["distance_km"] = round(record["distance_km"] + 0.5, 2)
                else:
                    record["name"] = f"{record['name']}(更正)"
                record["updated_at"] = self._stamp()
                feed.put(entry, record)
                changed.append(record_key(stream, record))
            return changed

    def delete(self, stream: str, count: int) -> list[tuple[str, ...]]:
        """Delete the ``count`` oldest live records of ``stream`` upstream: each becomes a tombstone."""
        with self._lock:
            feed, gone = self._feeds[stream], list[tuple[str, ...]]()
            for _, entry in list(feed.order()):
                record = feed.records[entry]
                if len(gone) == count:
                    break
                if record.get("deleted") or not self._plain(stream, entry):
                    continue
                tombstone = {name: record[name] for name in _KEYS[stream]}
                feed.put(entry, tombstone | {"updated_at": self._stamp(), "deleted": True})
                gone.append(record_key(stream, record))
            return gone

    def _plain(self, stream: str, entry: str) -> bool:
        """Neither planted bad nor sent twice: a record whose correction or deletion the truth can follow."""
        duplicated = "#" in entry or f"{entry}#1" in self._feeds[stream].records
        return not duplicated and (stream, entry) not in self._planted

    def drop_report_answers(self, times: int = 1) -> None:
        """Take the next ``times`` reports, then answer 503 as if the answer were lost on the way back."""
        with self._lock:
            self.dropped_report_answers += times

    def _stamp(self) -> str:
        """A new ``updated_at``: the clock, a second on for each change, so changes stay ordered. Nothing generated
        later is stamped before it, so a reader whose watermark passed it misses nothing."""
        self._clock += timedelta(seconds=1)
        self._stamped = self._clock
        return beijing_text(self._clock)

    def _next(self, prefix: str) -> int:
        self._seq[prefix] = self._seq.get(prefix, 0) + 1
        return self._seq[prefix]

    # ------------------------------------------------------------------ the data

    def _count(self, register: str) -> int:
        return max(2, round(GUANGZHOU[register] * self._scale))

    def _registers(self, before: datetime) -> None:
        rng = self._rng

        def stamp() -> str:
            return beijing_text(before - timedelta(seconds=rng.randrange(1, 365 * 86400)))

        def division() -> str:
            return f"{rng.choice(_DISTRICTS)}{rng.randrange(1, 30):03d}{rng.randrange(1, 300):03d}"

        def put(stream: str, record: _Json) -> None:
            self._feeds[stream].put("/".join(record_key(stream, record)), record)

        for i in range(1, self._count("rivers") + 1):
            put(
                "rivers",
                {
                    "river_code": f"R{i:05d}",
                    "name": f"{rng.choice(_RIVER_NAMES)}{i}号支流",
                    "level": rng.choice(CHIEF_LEVELS[1:4]),
                    "length_km": round(rng.uniform(0.8, 160), 2),
                    "basin": rng.choice(("珠江", "北江", "东江", "西江")),
                    "division_code": division(),
                    "updated_at": stamp(),
                },
            )
        rivers = [f"R{i:05d}" for i in range(1, self._count("rivers") + 1)]
        for i in range(1, self._count("segments") + 1):
            put(
                "segments",
                {
                    "segment_code": f"S{i:06d}",
                    "river_code": rng.choice(rivers),
                    "name": f"第{i}段",
                    "division_code": division(),
                    "start_point": f"{rng.randrange(1, 99)}号桥",
                    "end_point": f"{rng.randrange(1, 99)}号闸",
                    "length_km": round(rng.uniform(0.2, 12), 2),
                    "updated_at": stamp(),
                },
            )
        for i in range(1, self._count("lakes") + 1):
            put(
                "lakes",
                {
                    "lake_code": f"L{i:04d}",
                    "name": f"{i}号湖",
                    "area_km2": round(rng.uniform(0.02, 3), 3),
                    "division_code": division(),
                    "updated_at": stamp(),
                },
            )
        for i in range(1, self._count("reservoirs") + 1):
            put(
                "reservoirs",
                {
                    "reservoir_code": f"K{i:04d}",
                    "name": f"{i}号水库",
                    "scale": rng.choice(("medium", "small_1", "small_2", "small_2")),
                    "capacity": round(rng.uniform(10, 5000), 1),
                    "division_code": division(),
                    "updated_at": stamp(),
                },
            )
        for i in range(1, self._count("small_water_bodies") + 1):
            put(
                "small_water_bodies",
                {
                    "water_body_code": f"W{i:05d}",
                    "name": f"{i}号小微水体",
                    "kind": rng.choice(("pond", "ditch", "creek", "pit", "other")),
                    "division_code": division(),
                    "updated_at": stamp(),
                },
            )
        offices = [f"O{i:04d}" for i in range(1, self._count("offices") + 1)]
        for i, code in enumerate(offices):
            level = "city" if i == 0 else "county" if i <= len(_DISTRICTS) else "town"
            put(
                "offices",
                {
                    "office_code": code,
                    "name": f"{code}河长办",
                    "level": level,
                    "division_code": division(),
                    "updated_at": stamp(),
                },
            )
        for i in range(1, self._count("departments") + 1):
            put(
                "departments",
                {
                    "department_code": f"D{i:04d}",
                    "office_code": rng.choice(offices),
                    "name": rng.choice(("水务局", "生态环境局", "住建局", "规划和自然资源局", "公安局")),
                    "updated_at": stamp(),
                },
            )
        for i in range(1, self._count("chiefs") + 1):
            level = rng.choices(CHIEF_LEVELS[1:], weights=(1, 6, 40, 53))[0]
            put(
                "chiefs",
                {
                    "chief_id": f"C{i:05d}",
                    "name": f"河长{i}",
                    "post": f"{level}级河长",
                    "level": level,
                    "office_code": rng.choice(offices),
                    "updated_at": stamp(),
                },
            )
        self._assign_chiefs()

    def _assign_chiefs(self) -> None:
        """A county, a town and a village chief for each segment, spread over the chiefs of each level; every
        ``UNASSIGNED_EVERY``-th segment has none (a gap the platform really shows). Drawn without the random
        generator, so the data of every other register stays as it was for a seed."""
        by_level: dict[str, list[str]] = {}
        for chief in self._feeds["chiefs"].records.values():
            by_level.setdefault(chief["level"], []).append(chief["chief_id"])
        for i, segment in enumerate(self._feeds["segments"].records.values(), start=1):
            if i % UNASSIGNED_EVERY == 0:
                continue
            for step, level in enumerate(("county", "town", "village"), start=1):
                pool = sorted(by_level.get(level, ()))
                if pool:
                    record = {
                        "segment_code": segment["segment_code"],
                        "chief_id": pool[(i * (2 * step + 1)) % len(pool)],
                        "updated_at": segment["updated_at"],
                    }
                    self._feeds["segment_chiefs"].put("/".join(record_key("segment_chiefs", record)), record)

    def _advance_to(self, until: datetime) -> None:
        """Generate patrols and problems hour by hour up to ``until``, and take every step now due."""
        rng = self._rng
        chiefs = list(self._feeds["chiefs"].records)
        bodies = [e for name in ("segments", "small_water_bodies") for e in self._feeds[name].records]
        hour = self._clock.replace(minute=0, second=0, microsecond=0)
        while hour + timedelta(hours=1) <= until:
            first = max(hour, self._stamped + timedelta(seconds=1))
            span = max(1, int((hour + timedelta(hours=1) - first).total_seconds()))
            for _ in range(self._poisson(GUANGZHOU["patrols_per_day"] * self._scale / 24)):
                self._patrol(first + timedelta(seconds=rng.randrange(span)), rng.choice(chiefs), rng.choice(bodies))
            for _ in range(self._poisson(GUANGZHOU["problems_per_day"] * self._scale / 24)):
                self._problem(first + timedelta(seconds=rng.randrange(span)), rng.choice(bodies))
            hour += timedelta(hours=1)
            self._take_steps(hour)
        self._clock = max(self._clock, until)

    def _poisson(self, mean: float) -> int:
        """A count with the given mean (whole part, plus one more with the fraction's odds)."""
        whole = int(mean)
        return whole + (1 if self._rng.random() < mean - whole else 0)

    def _patrol(self, at: datetime, chief: str, body: str) -> None:
        rng = self._rng
        minutes = rng.uniform(10, 90)
        channel = rng.choices(("app", "offline_draft", "paper"), weights=(90, 8, 2))[0]
        upload = timedelta(days=rng.uniform(1, 4)) if channel != "app" else timedelta(seconds=rng.randrange(5, 120))
        started = at - timedelta(minutes=minutes) - upload  # a draft is uploaded days after the patrol
        patrol_id = f"P{self._next('P'):08d}"
        record: _Json = {
            "patrol_id": patrol_id,
            "chief_id": chief,
            "water_body_code": body,
            "started_at": beijing_text(started),
            "ended_at": beijing_text(started + timedelta(minutes=minutes)),
            "distance_km": round(minutes / 60 * rng.uniform(1.5, 4.5), 2),
            "track_points": int(minutes * 6),
            "channel": channel,
            "problems_found": 1 if rng.random() < 0.08 else 0,
            "updated_at": beijing_text(at),
        }
        self._feeds["patrols"].put(patrol_id, record)

    def _problem(self, at: datetime, body: str) -> None:
        rng = self._rng
        problem_id = f"Q{self._next('Q'):07d}"
        city = rng.random() < 0.9
        record = {
            "problem_id": problem_id,
            "water_body_code": body,
            "division_code": f"{rng.choice(_DISTRICTS) if city else _OTHER_CITY}{rng.randrange(1, 30):03d}000",
            "source": rng.choice(("patrol", "patrol", "hotline", "mini_program", "inspection")),
            "category": rng.choice(_CATEGORIES),
            "status": "reported",
            "reported_at": beijing_text(at),
            "deadline": beijing_text(at + timedelta(days=7)),
            "longitude": round(rng.uniform(113.2, 113.9), 6),
            "latitude": round(rng.uniform(22.6, 23.6), 6),
            "address": f"{rng.randrange(1, 300)}号附近",
            "patrol_id": None,
            "updated_at": beijing_text(at),
        }
        self._feeds["problems"].put(problem_id, record)
        lifecycle = _LIFECYCLE[1:] if rng.random() > 0.02 else ("rejected",)
        acted = at
        self._add_step(problem_id, 1, "reported", at, "上报人")
        for number, action in enumerate(lifecycle, start=2):
            acted += timedelta(hours=rng.uniform(1, 40))
            self._pending.append((beijing_text(acted), problem_id, {"step_no": number, "action": action}))

    def _add_step(self, problem_id: str, number: int, action: str, at: datetime, actor: str) -> None:
        step = {
            "problem_id": problem_id,
            "step_no": number,
            "action": action,
            "actor": actor,
            "department_code": "D0001" if action == "assigned" else None,
            "acted_at": beijing_text(at),
            "note": None,
            "updated_at": beijing_text(at),
        }
        self._steps.setdefault(problem_id, _Feed()).put(str(number), step)
        problem = self._feeds["problems"].records.get(problem_id)
        if problem is not None and not problem.get("deleted"):
            self._feeds["problems"].put(problem_id, problem | {"status": action, "updated_at": step["updated_at"]})

    def _take_steps(self, until: datetime) -> None:
        """Every pending step acted before ``until``, each moving its problem's status and ``updated_at``."""
        due_before = beijing_text(until)
        self._pending.sort(key=lambda item: item[0])
        due = bisect.bisect_left(self._pending, due_before, key=lambda item: item[0])
        for acted, problem_id, step in self._pending[:due]:
            actor = "河长办" if step["action"] in ("accepted", "assigned", "verified", "closed") else "责任单位"
            at = max(parse_beijing(acted), self._stamped + timedelta(seconds=1))
            self._add_step(problem_id, step["step_no"], step["action"], at, actor)
        del self._pending[:due]

    def _plant(self, bad_share: float) -> None:
        if bad_share == 0:
            return
        rng, cutoff = self._rng, beijing_text(self._clock - timedelta(days=1))
        kinds = (
            "unknown_chief",
            "patrol_ends_before_it_starts",
            "duplicate_key",
            "unknown_river",
            "division_code_bad_format",
            "status_not_allowed",
        )
        total = sum(len(feed.records) for feed in self._feeds.values())
        open_problems = {problem_id for _, problem_id, _ in self._pending}

        def feed_done(stream: str, entry: str) -> bool:
            """A problem planted bad must not move on: only one whose handling has ended is."""
            return stream != "problems" or entry not in open_problems

        # Entries still free to plant, per stream, in feed order: each pick leaves its list, so a year's 1,700
        # plantings no longer filter 500,000 patrols each (minutes), and the same seed picks the same records.
        free = {
            name: [e for u, e in feed.order() if u < cutoff and feed_done(name, e)]
            for name, feed in self._feeds.items()
        }
        for index in range(max(len(kinds), round(bad_share * total))):
            kind = kinds[index % len(kinds)]
            stream = {
                "unknown_river": "segments",
                "division_code_bad_format": "segments",
                "status_not_allowed": "problems",
            }.get(kind, "patrols")
            if not free[stream]:
                continue
            entry = rng.choice(free[stream])
            free[stream].remove(entry)
            feed = self._feeds[stream]
            record = dict(feed.records[entry])
            if kind == "duplicate_key":  # sent again later: the later copy supersedes the first
                feed.put(f"{entry}#1", dict(record))
                record["updated_at"] = beijing_text(parse_beijing(record["updated_at"]) + timedelta(minutes=30))
                self._planted[(stream, f"{entry}#1")] = kind
                feed.put(entry, record)
                continue
            if kind == "unknown_chief":
                record["chief_id"] = f"X{index:05d}"
            elif kind == "patrol_ends_before_it_starts":
                record["ended_at"] = beijing_text(parse_beijing(record["started_at"]) - timedelta(minutes=20))
            elif kind == "unknown_river":
                record["river_code"] = f"X{index:05d}"
            elif kind == "division_code_bad_format":
                record["division_code"] = record["division_code"][:6]
            else:  # its steps then refer to a problem quality refused
                record["status"] = "processing"
                for number in self._steps.get(entry, _Feed()).records:
                    self._planted[("problem_steps", f"{entry}/{number}")] = "unknown_problem"
            if stream == "segments":  # who answers for it then refers to a segment quality refused
                for pair in self._feeds["segment_chiefs"].records:
                    if pair.startswith(f"{entry}/"):
                        self._planted[("segment_chiefs", pair)] = "unknown_segment"
            self._planted[(stream, entry)] = kind
            feed.put(entry, record)

    # ------------------------------------------------------------------ serving

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningPlatform]:
        """Serve on ``host:port`` (0: the OS picks a free port) in a background thread until the block ends."""
        with self.served(host, port) as server:
            yield RunningPlatform(self, server.base_url, server.host, server.port)

    def _serves(self, method: str, path: str) -> bool:
        if method == "GET" and path.startswith(STEPS_PREFIX) and path.endswith(STEPS_SUFFIX):
            return True
        return super()._serves(method, path)

    def _page_number(self, query: dict[str, str]) -> int:
        return 2 if query.get("cursor") else 1

    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        return self.tokens.refusal(headers)

    def _error(self, status: int, message: str) -> bytes:
        return encode_json({"success": False, "code": str(status), "msg": message, "data": None})

    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        try:
            size = int(query.get("page_size", "100"))
            since = query.get("updated_since")
            since = beijing_text(parse_beijing(since)) if since is not None else ""
            after = _after(query.get("cursor"))
        except ValueError:
            return Answer(400, self._error(400, "page_size must be an integer, updated_since a time, cursor ours"), {})
        if not 1 <= size <= MAX_PAGE_SIZE:
            return Answer(400, self._error(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}"), {})
        with self._lock:
            if path in _PATHS:
                feed = self._feeds[_PATHS[path]]
            else:
                feed = self._steps.get(path[len(STEPS_PREFIX) : -len(STEPS_SUFFIX)], _Feed())
            order = feed.order()
            start = bisect.bisect_right(order, after) if after is not None else bisect.bisect_left(order, (since, ""))
            if repeat_previous:
                start = max(0, start - size)
            chunk = order[start : start + size]
            records = [feed.records[entry] for _, entry in chunk]
            if self.shuffle_pages:
                self._rng.shuffle(records)
            data: _Json = {"records": records}
            if start + size < len(order):
                data["next_cursor"] = _token_for(chunk[-1])
            body = encode_json({"success": True, "code": "0000", "msg": "ok", "data": data})
        return Answer(200, body, {})

    def _post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        key = headers.get("Idempotency-Key", "")
        try:
            report = json.loads(body)
            if not isinstance(report, dict) or not report.get("problem_id") or not 8 <= len(key) <= 100:
                raise ValueError("a report is an object with a problem_id, sent with an Idempotency-Key")
        except ValueError as exc:
            return Answer(400, self._error(400, str(exc)[:200]), {})
        digest = hashlib.sha256(body).hexdigest()
        with self._lock:
            known = self._reports.get(key)
            if known is not None and known[1] != digest:
                return Answer(422, self._error(422, "this Idempotency-Key was used for another report"), {})
            if known is None:
                known = (f"ACK{len(self._reports) + 1:09d}", digest, report)
                self._reports[key] = known
            if self.dropped_report_answers > 0:
                self.dropped_report_answers -= 1
                return Answer(503, self._error(503, "gateway timeout"), {})
        return Answer(
            200, encode_json({"success": True, "code": "0000", "msg": "ok", "data": {"ack_id": known[0]}}), {}
        )


def _token_for(position: tuple[str, str]) -> str:
    """An opaque keyset token: the last record's (updated_at, entry)."""
    return base64.urlsafe_b64encode(json.dumps(list(position), ensure_ascii=False).encode()).decode()


def _after(token: str | None) -> tuple[str, str] | None:
    if token is None:
        return None
    try:
        updated_at, entry = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor of ours") from exc
    return str(updated_at), str(entry)


@dataclass
class RunningPlatform(Running[RiverChiefSimulator]):
    """A served platform simulator: its ground truth and clock as well."""

    @property
    def truth(self) -> PlatformTruth:
        return self.simulator.truth


def demo_simulator(block: BaseModel, seed: int, *, scale: float | None = None, days: int = 7) -> RiverChiefSimulator:
    """The platform as ``make demo`` and ``waterhub simulate river-chief`` serve it: the credentials of the source's
    settings block, at its ``simulator_scale`` of Guangzhou's volumes unless ``scale`` says otherwise."""
    from connectors.river_chief.settings import RiverChiefSourceSettings

    if not isinstance(block, RiverChiefSourceSettings):
        raise TypeError(f"the river-chief simulator takes RiverChiefSourceSettings, not {type(block).__name__}")
    return RiverChiefSimulator(
        seed=seed,
        client_id=block.client_id,
        client_secret=block.client_secret.get_secret_value(),
        scale=block.simulator_scale if scale is None else scale,
        days=days,
    )
