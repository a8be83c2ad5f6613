"""A stand-in for the provincial flood-control (三防) platform's SL 323 API: a real HTTP server on loopback.

Tests, the demo and ``waterhub simulate`` talk to it over real sockets (STYLE rule 22). It is deterministic for a
seed, plants bad rows of every kind quality must catch, switches faults on for the next N data requests (the
shared ``Faults``), expires tokens mid-run on request, and logs every request. What a test expects comes from
``truth``, never from the code under test.

The API it imitates:

- ``POST /oauth/token`` (OAuth 2.0 client credentials) gives a bearer token; data requests without a valid one
  are 401.
- ``GET /api/sl323/<TABLE>?page=&page_size=[&moditime_since=]`` for ST_STBPRP_B, ST_RVFCCH_B, ST_RSVRFCCH_B,
  ST_RSVRFSR_B, ST_PPTN_R, ST_RIVER_R and ST_RSVR_R, in the envelope ``{"code": 0, "message": "ok", "data":
  {"items": [...], "page": n, "page_size": m, "total": N}}``; ``moditime_since`` is Beijing time, inclusive.
- Rows carry SL 323 column names in capitals and ``MODITIME``; times are Beijing time without an offset. Rows are
  ordered by key (``STCD``, then ``TM`` or ``BGMD``), not by ``MODITIME``: a late correction of an old row is
  served among the old rows, so pages are out of update order.
- A deleted row is served as ``{"STCD", "TM", "MODITIME", "DELETED": true}``.

The data, at Guangdong scale with the defaults scaled down: ``stations`` stations (``STTP`` PP rain gauges six in
ten, ZQ river stations three in ten, RR reservoirs one in ten; every one has a rain gauge), each reporting every 5
minutes for ``steps`` steps ending at ``end`` (the last ``TM`` is ``end``). About 4,092 stations report in Guangdong
(REFERENCE 6.5): ``stations=4000, steps=12`` is one hour of the province. Reports reach the platform (``MODITIME``)
one to four minutes after ``TM``. Rain falls in storm cells over the basins; river stages rise with the rain and
discharge follows a rating curve; reservoir storage is in 10⁶ m³ (trap 11). River thresholds are relative to the
station datum, and half the river stations have no guaranteed level (trap 13). Each reservoir has a main and a
late flood season with their limit levels. Rainfall rows on the hydrological day's boundary (08:00) carry the
day's total ``DYP``.

``advance`` adds later steps (nothing planted), late corrections of old river rows (a new ``Z``, a later
``MODITIME``) and deletions of old rainfall rows (tombstones).
"""

from __future__ import annotations

import copy
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import BaseModel

from connectors.simulation import (
    Answer,
    HttpSimulator,
    Running,
    TokenIssuer,
    as_read,
    beijing_text,
    encode_json,
    envelope_page,
    parse_beijing,
)
from contracts.types import BEIJING

__all__ = [
    "DEFAULT_END",
    "STEP",
    "TABLES",
    "BadKind",
    "HydrologySimulator",
    "HydrologyTruth",
    "RunningHydrology",
    "demo_simulator",
    "row_key",
]

DEFAULT_END = datetime(2026, 6, 16, 0, tzinfo=UTC)
"""The last ``TM`` unless told otherwise: 08:00 Beijing time, the hydrological day's boundary, in the main flood
season; fixed, so two runs with one seed agree byte for byte."""
STEP = timedelta(minutes=5)
PATH = "/api/sl323/{table}"

STATIONS, RIVER_THRESHOLDS, RESERVOIR_CHARACTERISTICS, FLOOD_SEASON_LIMITS = (
    "ST_STBPRP_B",
    "ST_RVFCCH_B",
    "ST_RSVRFCCH_B",
    "ST_RSVRFSR_B",
)
RAINFALL, RIVER, RESERVOIR = "ST_PPTN_R", "ST_RIVER_R", "ST_RSVR_R"
TABLES = (STATIONS, RIVER_THRESHOLDS, RESERVOIR_CHARACTERISTICS, FLOOD_SEASON_LIMITS, RAINFALL, RIVER, RESERVOIR)
OBSERVATIONS = (RAINFALL, RIVER, RESERVOIR)
_KEY_COLUMN = {FLOOD_SEASON_LIMITS: "BGMD", **{table: "TM" for table in OBSERVATIONS}}
"""The second key column of a table keyed by more than ``STCD``."""

_BASINS = (
    ("西江", "西江", "441200", 112.47, 23.05),
    ("北江", "北江", "441800", 113.05, 23.72),
    ("东江", "东江", "441300", 114.41, 23.11),
    ("珠江三角洲", "流溪河", "440100", 113.45, 23.35),
    ("韩江", "韩江", "445100", 116.62, 23.66),
)
"""(basin, river, administrative division, longitude, latitude) of the basins stations are spread over."""
_STORM_EVERY_STEPS = 72  # one storm cell per basin per six hours of the initial period


class BadKind(StrEnum):
    """The kinds of bad row the simulator plants; ``HydrologyTruth`` says what quality must make of each."""

    DUPLICATE = "duplicate"
    MISSING_TIME = "missing_time"
    NEGATIVE_RAIN = "negative_rain"
    NOT_A_NUMBER = "not_a_number"
    BAD_TREND = "bad_trend"
    UNKNOWN_STATION = "unknown_station"
    BAD_MONTH_DAY = "bad_month_day"
    LEVELS_OUT_OF_ORDER = "levels_out_of_order"


_PLANTED_IN: dict[BadKind, str] = {
    BadKind.DUPLICATE: RIVER,
    BadKind.MISSING_TIME: RAINFALL,
    BadKind.NEGATIVE_RAIN: RAINFALL,
    BadKind.NOT_A_NUMBER: RIVER,
    BadKind.BAD_TREND: RESERVOIR,
    BadKind.UNKNOWN_STATION: RIVER_THRESHOLDS,
    BadKind.BAD_MONTH_DAY: FLOOD_SEASON_LIMITS,
    BadKind.LEVELS_OUT_OF_ORDER: RIVER_THRESHOLDS,
}
_REASONS: dict[BadKind, str] = {
    BadKind.DUPLICATE: "duplicate_key",
    BadKind.MISSING_TIME: "tm_missing",
    BadKind.NEGATIVE_RAIN: "drp_out_of_range",
    BadKind.NOT_A_NUMBER: "z_not_a_number",
    BadKind.BAD_TREND: "rwptn_bad_format",
    BadKind.UNKNOWN_STATION: "unknown_station",
    BadKind.BAD_MONTH_DAY: "bgmd_bad_format",
    BadKind.LEVELS_OUT_OF_ORDER: "grz_below_wrz",
}
_SHARED_KINDS = tuple(kind for kind, table in _PLANTED_IN.items() if table in OBSERVATIONS)
"""Kinds planted in proportion to the observations (``bad_share``); the others once each."""

_Json = dict[str, Any]
Key = tuple[str, ...]


def row_key(table: str, row: Mapping[str, object]) -> Key:
    """A row's key as the platform writes it: ``(STCD,)`` or ``(STCD, TM)`` / ``(STCD, BGMD)`` as text."""
    second = _KEY_COLUMN.get(table)
    return (str(row["STCD"]),) if second is None else (str(row["STCD"]), str(row[second]))


@dataclass(frozen=True)
class HydrologyTruth:
    """Ground truth at one moment: what each table serves, in feed order, and what quality must make of it.

    ``rows[table]`` are the rows exactly as a reader decodes them (tombstones included); ``reasons[table]`` runs
    alongside with the quarantine reason of each (None: publish it; ``"deleted"``: a tombstone).

    =================  ============  ===============================================  ======================
    kind               table         what was planted                                 quarantine reason
    =================  ============  ===============================================  ======================
    duplicate          ST_RIVER_R    the row is sent again with a later ``MODITIME``  ``duplicate_key`` (the
                                     (and a new Z)                                    older copy)
    missing_time       ST_PPTN_R     ``TM`` null                                      ``tm_missing``
    negative_rain      ST_PPTN_R     ``DRP`` below 0                                  ``drp_out_of_range``
    not_a_number       ST_RIVER_R    ``Z`` sent as ``"--"``                           ``z_not_a_number``
    bad_trend          ST_RSVR_R     ``RWPTN`` ``"7"`` (4, 5 and 6 exist)             ``rwptn_bad_format``
    unknown_station    ST_RVFCCH_B   thresholds of a station not in ST_STBPRP_B       ``unknown_station``
    bad_month_day      ST_RSVRFSR_B  ``BGMD`` ``"1301"``                              ``bgmd_bad_format``
    levels_out_of_...  ST_RVFCCH_B   ``GRZ`` typed a tenth of itself, below ``WRZ``   ``grz_below_wrz``
    =================  ============  ===============================================  ======================

    Planted rows are in the first half of the steps, so their ``MODITIME`` is below the newest published one.
    """

    rows: Mapping[str, tuple[dict[str, object], ...]]
    reasons: Mapping[str, tuple[str | None, ...]]

    def published(self, table: str) -> dict[Key, dict[str, object]]:
        """The rows quality must publish, by key."""
        return {
            row_key(table, row): row
            for row, reason in zip(self.rows[table], self.reasons[table], strict=True)
            if reason is None
        }

    def deleted(self, table: str) -> set[Key]:
        return {
            row_key(table, row)
            for row, reason in zip(self.rows[table], self.reasons[table], strict=True)
            if reason == "deleted"
        }

    def quarantined(self, table: str) -> Counter[str]:
        """How many rows quality must quarantine, by reason."""
        return Counter(reason for reason in self.reasons[table] if reason not in (None, "deleted"))

    def newest_update(self) -> datetime:
        """The latest ``MODITIME`` of any published row: where an incremental reader's watermark ends up."""
        return max(parse_beijing(str(row["MODITIME"])) for table in TABLES for row in self.published(table).values())


@dataclass
class _Row:
    record: _Json
    reason: str | None = None
    planted: bool = False
    seq: int = 0


@dataclass(frozen=True)
class _Gauge:
    """How one station's place behaves: its basin, its river's stage and rating, or its reservoir."""

    code: str
    kind: str
    basin: int
    wetness: float
    """How much of a storm cell's rain falls here."""
    base_z: float
    rise_m: float
    rating: float
    normal_z: float
    dead_z: float


class HydrologySimulator(HttpSimulator):
    """The platform's API, with its tables, planted bad rows, switchable faults, tokens and a request log."""

    paths: ClassVar[frozenset[str]] = frozenset(PATH.format(table=table) for table in TABLES)
    thread_name: ClassVar[str] = "flood-control platform simulator"

    def __init__(
        self,
        *,
        seed: int = 7,
        client_secret: str,
        client_id: str | None = None,
        stations: int = 40,
        steps: int = 12,
        end: datetime = DEFAULT_END,
        bad_share: float = 0.01,
        token_lifetime_s: int = 3600,
    ) -> None:
        if not 10 <= stations <= 999_999:
            raise ValueError(f"stations must be between 10 (one of each type) and 999999, not {stations}")
        if steps < 1:
            raise ValueError(f"steps must be at least 1, not {steps}")
        if end.tzinfo is None or end.timestamp() % STEP.total_seconds():
            raise ValueError(f"end must be an aware datetime on a 5-minute step, not {end!r}")
        if not 0 <= bad_share < 1:
            raise ValueError(f"bad_share must be in [0, 1), not {bad_share}")
        super().__init__()
        self.tokens: TokenIssuer = TokenIssuer(client_secret, client_id=client_id, lifetime_s=token_lifetime_s)
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - simulated data, deterministic for a seed; not a secret
        self._seq = 0
        self._end = end.astimezone(UTC)
        self._rows: dict[str, list[_Row]] = {table: [] for table in TABLES}
        self._feeds: dict[str, tuple[list[_Row], list[_Json]]] = {}
        """Each table's rows in feed order and their records, sorted once per change rather than once per page:
        a day of Guangdong's 4,000 stations is 1.1 million rows, and the bare-httpx baseline must time the client,
        not the simulator's sorting."""
        self._gauges: list[_Gauge] = []
        self._last_z: dict[str, float] = {}
        self._day_rain: dict[str, float] = {}
        """Rain since the hydrological day began, per station (as far as the simulated period goes back)."""
        first = self._end - (steps - 1) * STEP
        self._storms = [  # (basin, start, duration in steps, peak mm per 5 minutes): cells over some basins
            (basin, first + STEP * self._rng.uniform(block - 24, block + _STORM_EVERY_STEPS), duration, peak)
            for block in range(0, steps, _STORM_EVERY_STEPS)
            for basin in range(len(_BASINS))
            if self._rng.random() < 0.6
            for duration, peak in [(self._rng.uniform(12, 36), self._rng.uniform(1.5, 6.0))]
        ]
        for index in range(stations):
            self._add_station(index)
        for step in range(steps):
            self._add_step(first + step * STEP)
        self._plant(bad_share, before=first + (steps // 2) * STEP)

    # ------------------------------------------------------------------ ground truth and changes over time

    @property
    def end(self) -> datetime:
        """The latest ``TM`` served, UTC."""
        return self._end

    @property
    def truth(self) -> HydrologyTruth:
        """A snapshot of what the API serves now (take a new one after ``advance``)."""
        with self._lock:
            feeds = {table: self._feed(table)[0] for table in TABLES}
            return HydrologyTruth(
                rows={table: tuple(as_read(row.record) for row in feed) for table, feed in feeds.items()},
                reasons={table: tuple(row.reason for row in feed) for table, feed in feeds.items()},
            )

    def advance(self, steps: int = 1, *, corrections: int = 0, deletions: int = 0) -> None:
        """Let time pass: ``steps`` more reports from every station, then ``corrections`` old river rows re-sent
        with a revised ``Z`` and ``deletions`` old rainfall rows deleted, all with a ``MODITIME`` after the new
        end. Only published, never-planted rows are corrected or deleted."""
        with self._lock:
            old_river = [row for row in self._rows[RIVER] if row.reason is None and not row.planted]
            old_rain = [row for row in self._rows[RAINFALL] if row.reason is None and not row.planted]
            if corrections > len(old_river) or deletions > len(old_rain):
                raise ValueError(f"only {len(old_river)} river rows and {len(old_rain)} rainfall rows are old enough")
            for _ in range(steps):
                self._end += STEP
                self._add_step(self._end)
            for row in self._rng.sample(old_river, corrections):
                row.record["Z"] = round(float(row.record["Z"]) + self._rng.choice((-0.05, 0.05)), 3)
                row.record["MODITIME"] = self._late_moditime()
            for row in self._rng.sample(old_rain, deletions):
                row.record = {"STCD": row.record["STCD"], "TM": row.record["TM"], "MODITIME": self._late_moditime()}
                row.record["DELETED"] = True
                row.reason = "deleted"
            self._feeds.clear()

    def _late_moditime(self) -> str:
        return beijing_text(self._end + timedelta(seconds=self._rng.randint(300, 600)))

    # ------------------------------------------------------------------ stations and their tables

    def _add_station(self, index: int) -> None:
        rng = self._rng
        kind = "PP" if index % 10 < 6 else "ZQ" if index % 10 < 9 else "RR"
        basin = index % len(_BASINS)
        basin_name, river, addvcd, longitude, latitude = _BASINS[basin]
        code = f"81{index + 1:06d}"
        base_z = round(rng.uniform(2.0, 30.0), 2)
        normal_z = round(rng.uniform(40.0, 180.0), 2)
        gauge = _Gauge(
            code=code,
            kind=kind,
            basin=basin,
            wetness=rng.uniform(0.3, 1.2),
            base_z=base_z,
            rise_m=rng.uniform(0.8, 4.0),
            rating=rng.uniform(20, 400),
            normal_z=normal_z,
            dead_z=round(normal_z - rng.uniform(15, 35), 2),
        )
        self._gauges.append(gauge)
        suffix = {"PP": "雨量站", "ZQ": "水文站", "RR": "水库"}[kind]
        self._append(
            STATIONS,
            {
                "STCD": code,
                "STNM": f"{river}{index + 1}号{suffix}"[:30],
                "RVNM": river,
                "HNNM": "珠江" if basin < 4 else "韩江",
                "BSNM": basin_name,
                "LGTD": round(longitude + rng.uniform(-0.6, 0.6), 6),
                "LTTD": round(latitude + rng.uniform(-0.5, 0.5), 6),
                "STLC": f"广东省{river}流域",
                "ADDVCD": addvcd,
                "DTMNM": "珠基",
                "STTP": kind,
                "FRGRD": str(rng.randint(1, 4)),
                "ESSTYM": f"{rng.randint(1952, 2015)}{rng.randint(1, 12):02d}",
                "ADMAUTH": "广东省水文局",
                "MODITIME": self._days_before(30, 900),
            },
        )
        if kind == "ZQ":
            warning = round(base_z + gauge.rise_m * rng.uniform(0.9, 1.5), 2)
            self._append(
                RIVER_THRESHOLDS,
                {
                    "STCD": code,
                    "WRZ": warning,
                    "GRZ": round(warning + rng.uniform(1.0, 2.5), 2) if index % 20 < 10 else None,
                    "WRQ": round(gauge.rating * (warning - base_z + 1) ** 1.6, 1),
                    "OBHTZ": round(warning + rng.uniform(0.5, 3.0), 2),
                    "OBHTZTM": f"{rng.choice((1994, 1998, 2005, 2008, 2022))}-06-{rng.randint(10, 25)} 08:00:00",
                    "MODITIME": self._days_before(60, 1200),
                },
            )
        if kind == "RR":
            capacity = round(rng.uniform(5, 900), 3)
            self._append(
                RESERVOIR_CHARACTERISTICS,
                {
                    "STCD": code,
                    "RSVRTP": "3" if capacity < 100 else "4" if capacity < 1000 else "5",
                    "DAMEL": round(normal_z + rng.uniform(4, 9), 2),
                    "CKFLZ": round(normal_z + rng.uniform(2.5, 4), 2),
                    "DSFLZ": round(normal_z + rng.uniform(1, 2.5), 2),
                    "NORMZ": normal_z,
                    "DDZ": gauge.dead_z,
                    "TTCP": capacity,
                    "DDCP": round(capacity * 0.1, 3),
                    "MODITIME": self._days_before(60, 1200),
                },
            )
            for bgmd, edmd, fstp, below in (("0415", "0715", "1", 2.0), ("0716", "1015", "2", 0.8)):
                self._append(
                    FLOOD_SEASON_LIMITS,
                    {
                        "STCD": code,
                        "BGMD": bgmd,
                        "EDMD": edmd,
                        "FSLTDZ": round(normal_z - below, 2),
                        "FSLTDW": self._storage(gauge, normal_z - below),
                        "FSTP": fstp,
                        "MODITIME": self._days_before(60, 1200),
                    },
                )

    def _days_before(self, low: int, high: int) -> str:
        days = self._rng.randint(low, high)
        return beijing_text(self._end - timedelta(days=days, seconds=self._rng.randint(0, 86_399)))

    def _storage(self, gauge: _Gauge, z: float) -> float:
        """Storage (10⁶ m³) at level ``z``: a rough capacity curve from the dead level up."""
        return round(gauge.rating * 0.02 * math.pow(max(0.0, z - gauge.dead_z), 1.5) + 1.0, 3)

    # ------------------------------------------------------------------ reports

    def _add_step(self, tm: datetime) -> None:
        """One report per station at ``tm``: rainfall from every gauge, stage and flow from river and reservoir
        stations. Each reaches the platform one to four minutes later."""
        rng = self._rng
        local = tm.astimezone(BEIJING)
        # Texts and storms are the same for every station of a step: made once, not 4,000 times at Guangdong scale.
        tm_text = beijing_text(tm)
        arrivals = {delay: beijing_text(tm + timedelta(seconds=delay)) for delay in range(60, 241)}
        storms = {basin: self._storm(basin, tm) for basin in range(len(_BASINS))}
        for gauge in self._gauges:
            moditime = arrivals[rng.randint(60, 240)]
            storm = storms[gauge.basin]
            drp = round(max(0.0, storm * gauge.wetness * rng.uniform(0.6, 1.4) - 0.2), 1) + 0.0
            rain: _Json = {"STCD": gauge.code, "TM": tm_text, "DRP": drp, "INTV": 0.05}
            rain["PDR"] = 0.05 if drp > 0 else 0.0
            self._day_rain[gauge.code] = self._day_rain.get(gauge.code, 0.0) + drp
            if local.hour == 8 and local.minute == 0:  # the hydrological day (08:00 to 08:00) ends with this row
                rain["DYP"] = round(self._day_rain.pop(gauge.code), 1)
            rain["MODITIME"] = moditime
            self._append(RAINFALL, rain)
            if gauge.kind == "ZQ":
                self._append(RIVER, self._river(gauge, tm_text, storm, moditime))
            elif gauge.kind == "RR":
                self._append(RESERVOIR, self._reservoir(gauge, tm_text, storm, moditime))

    def _river(self, gauge: _Gauge, tm_text: str, storm: float, moditime: str) -> _Json:
        z = round(gauge.base_z + gauge.rise_m * min(1.0, storm / 6) + self._rng.gauss(0, 0.01), 2)
        last = self._last_z.get(gauge.code, z)
        self._last_z[gauge.code] = z
        trend = "5" if z - last > 0.005 else "4" if last - z > 0.005 else "6"
        q = round(gauge.rating * max(0.0, z - gauge.base_z + 1) ** 1.6, 1)
        return {
            "STCD": gauge.code,
            "TM": tm_text,
            "Z": z,
            "Q": q,
            "WPTN": trend,
            "MSQMT": "1",
            "MODITIME": moditime,
        }

    def _reservoir(self, gauge: _Gauge, tm_text: str, storm: float, moditime: str) -> _Json:
        rz = round(gauge.normal_z - 2.5 + 0.4 * min(1.0, storm / 6) + self._rng.gauss(0, 0.005), 2)
        last = self._last_z.get(gauge.code, rz)
        self._last_z[gauge.code] = rz
        inflow = round(gauge.rating * (0.2 + storm), 1)
        return {
            "STCD": gauge.code,
            "TM": tm_text,
            "RZ": rz,
            "INQ": inflow,
            "W": self._storage(gauge, rz),
            "OTQ": round(gauge.rating * 0.3, 1),
            "RWPTN": "5" if rz > last else "4" if rz < last else "6",
            "MODITIME": moditime,
        }

    def _storm(self, basin: int, at: datetime) -> float:
        """Rain in mm per 5 minutes at the heart of the basin's storm cells (0 outside them)."""
        level = 0.0
        for storm_basin, start, duration, peak in self._storms:
            elapsed = (at - start) / STEP
            if storm_basin == basin and 0 <= elapsed <= duration:
                level = max(level, peak * math.sin(math.pi * elapsed / duration))
        return level

    def _append(self, table: str, record: _Json, *, reason: str | None = None, planted: bool = False) -> _Row:
        self._seq += 1
        row = _Row(record, reason, planted, self._seq)
        self._rows[table].append(row)
        self._feeds.pop(table, None)
        return row

    # ------------------------------------------------------------------ planted bad rows

    def _plant(self, bad_share: float, *, before: datetime) -> None:
        if bad_share == 0:
            return
        observations = sum(len(self._rows[table]) for table in OBSERVATIONS)
        count = max(len(_SHARED_KINDS), round(bad_share * observations))
        cutoff = beijing_text(before)
        candidates = {
            table: [row for row in self._rows[table] if row.record["TM"] < cutoff] or list(self._rows[table])
            for table in OBSERVATIONS
        }
        for rows in candidates.values():
            self._rng.shuffle(rows)
        spoilt_stations: set[tuple[str, str]] = set()  # one planted row per station and table: no key collides
        # One pass over each table's candidates: a row passed over (planted, or its station spoilt) never becomes
        # eligible again, so resuming where the last search stopped finds what a search from the start would.
        remaining = {table: iter(rows) for table, rows in candidates.items()}
        for index in range(count):
            kind = _SHARED_KINDS[index % len(_SHARED_KINDS)]
            table = _PLANTED_IN[kind]
            target = next(
                (r for r in remaining[table] if not r.planted and (table, r.record["STCD"]) not in spoilt_stations),
                None,
            )
            if target is not None:
                spoilt_stations.add((table, target.record["STCD"]))
                self._plant_one(kind, table, target)
        self._append(
            RIVER_THRESHOLDS,
            {"STCD": "80000001", "WRZ": 12.5, "MODITIME": self._days_before(30, 60)},
            reason=_REASONS[BadKind.UNKNOWN_STATION],
            planted=True,
        )
        levels = next(row for row in self._rows[RIVER_THRESHOLDS] if row.record.get("GRZ") is not None)
        levels.record["GRZ"] = round(float(levels.record["GRZ"]) / 10, 2)  # a decimal point slipped
        levels.reason, levels.planted = _REASONS[BadKind.LEVELS_OUT_OF_ORDER], True
        reservoir = next(row for row in self._rows[FLOOD_SEASON_LIMITS])
        bad_period = copy.deepcopy(reservoir.record) | {"BGMD": "1301", "EDMD": "1231"}
        self._append(FLOOD_SEASON_LIMITS, bad_period, reason=_REASONS[BadKind.BAD_MONTH_DAY], planted=True)
        self._feeds.clear()  # planted rows were changed in place, their times too

    def _plant_one(self, kind: BadKind, table: str, row: _Row) -> None:
        record = row.record
        row.planted = True
        row.reason = _REASONS[kind]
        if kind is BadKind.DUPLICATE:  # sent again after a revision: the later copy is the row
            later = copy.deepcopy(record)
            later["Z"] = round(float(record["Z"]) + 0.02, 3)
            later["MODITIME"] = beijing_text(parse_beijing(str(record["MODITIME"])) + timedelta(minutes=10))
            self._append(table, later, planted=True)
        elif kind is BadKind.MISSING_TIME:
            record["TM"] = None
        elif kind is BadKind.NEGATIVE_RAIN:
            record["DRP"] = -round(self._rng.uniform(0.1, 2.0), 1)
        elif kind is BadKind.NOT_A_NUMBER:
            record["Z"] = "--"  # how the platform's export writes a stage it does not have
        elif kind is BadKind.BAD_TREND:
            record["RWPTN"] = "7"

    # ------------------------------------------------------------------ serving

    def _feed(self, table: str) -> tuple[list[_Row], list[_Json]]:
        """A table's rows in the order the platform serves them (by key, then as they were written), and their
        records."""
        if table not in self._feeds:
            second = _KEY_COLUMN.get(table)
            rows = sorted(
                self._rows[table],
                key=lambda row: (str(row.record["STCD"]), str(row.record.get(second) or "") if second else "", row.seq),
            )
            self._feeds[table] = (rows, [row.record for row in rows])
        return self._feeds[table]

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningHydrology]:
        """Serve on ``host:port`` (0: the OS picks a free port) in a background thread until the block ends."""
        with self.served(host, port) as server:
            yield RunningHydrology(self, server.base_url, server.host, server.port)

    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        return self.tokens.refusal(headers)

    def _error(self, status: int, message: str) -> bytes:
        return encode_json({"code": status, "message": message, "data": None})

    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        table = path.rsplit("/", 1)[-1]
        with self._lock:
            return envelope_page(
                self._feed(table)[1],
                query,
                since_param="moditime_since",
                since_field="MODITIME",
                error=self._error,
                repeat_previous=repeat_previous,
            )


@dataclass
class RunningHydrology(Running[HydrologySimulator]):
    """A served platform simulator: its ground truth, clock and tokens as well."""

    @property
    def truth(self) -> HydrologyTruth:
        return self.simulator.truth

    @property
    def tokens(self) -> TokenIssuer:
        return self.simulator.tokens

    def advance(self, steps: int = 1, *, corrections: int = 0, deletions: int = 0) -> None:
        self.simulator.advance(steps, corrections=corrections, deletions=deletions)


def demo_simulator(block: BaseModel, seed: int) -> HydrologySimulator:
    """What ``make demo`` serves: one hour of 200 stations, credentials from the source's settings block."""
    from connectors.hydrology.settings import HydrologySourceSettings

    if not isinstance(block, HydrologySourceSettings):
        raise TypeError(f"the hydrology simulator takes HydrologySourceSettings, not {type(block).__name__}")
    settings = block
    return HydrologySimulator(
        seed=seed,
        client_id=settings.client_id,
        client_secret=settings.client_secret.get_secret_value(),
        stations=200,
        steps=12,
    )
