"""A stand-in for the Ecology and Environment Bureau's water-quality API: a real HTTP server on loopback.

Tests, the demo and ``waterhub simulate sources`` talk to it over real sockets (STYLE rule 22). It is deterministic
for a seed, plants bad records of every kind quality must catch, switches faults on for the next N data requests,
and logs every request so tests can check what was asked. What a test expects comes from ``truth``, never from
the code under test.

The API it imitates:

- ``GET /api/v1/stations?page=&page_size=[&updated_since=]`` and ``GET /api/v1/samples?page=&page_size=
  [&updated_since=]``; pages are numbered from 1; ``updated_since`` is Beijing time ``YYYY-MM-DD HH:MM:SS``
  and inclusive (``updated_at >= since``).
- Answer: ``{"code": 0, "message": "ok", "data": {"items": [...], "page": n, "page_size": m, "total": N}}``, items
  in a stable order (``updated_at``, ``station_code``, ``sampled_at``). Times are Beijing time without an offset.
- ``X-Api-Key`` is required: without the right key the answer is 401 with ``{"code": 401, ...}``.

The data: ``stations`` stations around Guangzhou and ``hours`` hourly samples per station ending at ``end``
(``sampled_at`` is the interval start, the last one ``end - 1 h``). A sample is sent (``updated_at``) 1 to 10
minutes after its hour ends. Values follow the day (dissolved oxygen and temperature peak in the afternoon), with
occasional spikes and HJ 212 flags other than N. A few stations have no turbidity sensor: that factor is absent.
"""

from __future__ import annotations

import copy
import json
import math
import random
import secrets
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from enum import StrEnum
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request, Response

from connectors.water_quality.source import API_KEY_HEADER
from contracts.types import BEIJING
from contracts.water_quality import FACTOR_CODES, WaterQualitySample

__all__ = [
    "DEFAULT_END",
    "BadKind",
    "Faults",
    "PlantedSample",
    "RequestLogEntry",
    "RunningSimulator",
    "SimulatorTruth",
    "WaterQualitySimulator",
    "beijing_text",
    "parse_beijing",
    "sample_key",
]

DEFAULT_END = datetime(2026, 11, 23, 0, tzinfo=UTC)
"""End of the simulated period unless told otherwise: fixed, so two runs with one seed agree byte for byte."""

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
STATIONS_PATH = "/api/v1/stations"
SAMPLES_PATH = "/api/v1/samples"
MAX_PAGE_SIZE = 10_000
FLAGS_OTHER_THAN_N = ("F", "M", "S", "D", "C", "T", "B")

UNITS: dict[str, str] = {
    code: unit for code, name in FACTOR_CODES.items() if (unit := WaterQualitySample.field_spec(name).unit) is not None
}
"""HJ 212 code → unit the bureau sends, read off the contract so the two cannot drift apart."""

_Json = dict[str, Any]


def beijing_text(value: datetime) -> str:
    """An aware datetime as the bureau writes it: Beijing time, no offset."""
    return value.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> datetime:
    """The bureau's time text as an aware UTC datetime (raises ``ValueError`` for another format)."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


class BadKind(StrEnum):
    """The kinds of bad sample the simulator plants; each maps to the reason code quality must give."""

    PH_OUT_OF_RANGE = "ph_out_of_range"
    NEGATIVE_CONCENTRATION = "negative_concentration"
    UNKNOWN_STATION = "unknown_station"
    MISSING_TIME = "missing_time"
    DUPLICATE = "duplicate"
    NOT_FINITE = "not_finite"
    WRONG_UNIT = "wrong_unit"


@dataclass(frozen=True)
class PlantedSample:
    """A planted bad record as a reader receives it, with the reason code quality must give it."""

    kind: BadKind
    reason: str
    record: dict[str, object]


@dataclass(frozen=True)
class RequestLogEntry:
    """One request as the simulator saw it, logged on arrival; ``fault`` names the fault that answered it, if any.

    The API key itself is never logged, only whether it was right.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    has_valid_api_key: bool
    fault: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SimulatorTruth:
    """Ground truth at one moment: what the API serves, and which sample records are bad and why.

    Records are exactly what ``SourceSession.read`` yields for them: dicts as decoded from the body, with a
    planted NaN token as the string ``"NaN"``. ``samples`` is the full samples feed in feed order; ``reasons``
    runs alongside it (None for a valid record). The valid records have unique keys (station_code, sampled_at);
    every bad one has exactly one reason:

    ========================  ===========================================  ======================================
    kind                      what was planted                             reason
    ========================  ===========================================  ======================================
    ph_out_of_range           pH above 14 (e.g. 15.2)                      ``ph_out_of_range``
    negative_concentration    ammonia nitrogen below 0 (e.g. -0.12)        ``ammonia_nitrogen_out_of_range``
    unknown_station           a station code not among ``stations``        ``unknown_station``
    missing_time              ``sampled_at`` null                          ``sampled_at_missing``
    duplicate                 a later copy of a sample is sent too (same   ``duplicate_key`` on the original: the
                              key, later ``updated_at``)                   later copy supersedes it and is valid)
    not_finite                a factor value sent as the JSON token NaN    ``<field>_not_finite``
    wrong_unit                ammonia in µg/L (×1000) or conductivity in   ``<field>_wrong_unit`` (values stay
                              mS/cm (÷1000)                                within the contract's bounds)
    ========================  ===========================================  ======================================

    Bad records are never in the last simulated hour, so their ``updated_at`` is below the highest valid one: a
    rerun from the watermark does not read them again.
    """

    stations: tuple[dict[str, object], ...]
    samples: tuple[dict[str, object], ...]
    reasons: tuple[str | None, ...]
    planted: tuple[PlantedSample, ...]

    def station_codes(self) -> set[str]:
        return {str(station["station_code"]) for station in self.stations}

    def valid_samples(self) -> list[dict[str, object]]:
        """The records quality must pass, in feed order."""
        return [record for record, reason in zip(self.samples, self.reasons, strict=True) if reason is None]

    def valid_sample_keys(self) -> set[tuple[str, datetime]]:
        """(station_code, sampled_at as aware UTC datetime) of every valid sample: what publish must hold."""
        return {sample_key(record) for record in self.valid_samples()}

    def valid_updated_at(self) -> list[datetime]:
        """``updated_at`` (aware UTC) of every valid sample; the watermark after a full run is their maximum."""
        return [parse_beijing(str(record["updated_at"])) for record in self.valid_samples()]

    def bad_samples(self) -> list[tuple[dict[str, object], str]]:
        """(record, reason code) of every bad sample, in feed order."""
        return [(p.record, p.reason) for p in self.planted]

    def samples_since(self, since: datetime) -> list[dict[str, object]]:
        """The records a read with ``updated_since = since`` gets (``updated_at >= since``), in feed order."""
        return [record for record in self.samples if parse_beijing(str(record["updated_at"])) >= since]


def sample_key(record: dict[str, object]) -> tuple[str, datetime]:
    """A valid sample's primary key with ``sampled_at`` as aware UTC."""
    return str(record["station_code"]), parse_beijing(str(record["sampled_at"]))


@dataclass(frozen=True)
class _Fault:
    kind: Literal["rate_limit", "server_error", "slow", "malformed_page", "repeat_page"]
    retry_after_s: int = 0
    as_http_date: bool = False
    delay_s: float = 0.0


class Faults:
    """Faults for the next N data requests (stations or samples, with a valid key), applied in the order set."""

    def __init__(self) -> None:
        self._queue: deque[_Fault] = deque()
        self._lock = threading.Lock()

    def rate_limit(self, times: int = 1, retry_after_s: int = 1, *, as_http_date: bool = False) -> None:
        """Answer 429 with ``Retry-After`` in seconds, or as an HTTP-date (with a matching ``Date`` header)."""
        self._add(times, _Fault("rate_limit", retry_after_s=retry_after_s, as_http_date=as_http_date))

    def server_error(self, times: int = 1) -> None:
        """Answer 500."""
        self._add(times, _Fault("server_error"))

    def slow(self, times: int = 1, delay_s: float = 2.0) -> None:
        """Wait ``delay_s`` before answering normally (longer than the client's timeout, it is a timeout)."""
        self._add(times, _Fault("slow", delay_s=delay_s))

    def malformed_page(self, times: int = 1) -> None:
        """Answer 200 with the page's JSON cut off halfway."""
        self._add(times, _Fault("malformed_page"))

    def repeat_page(self, times: int = 1) -> None:
        """Answer the next request for a page n > 1 with page n - 1 again (a pagination loop)."""
        self._add(times, _Fault("repeat_page"))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _add(self, times: int, fault: _Fault) -> None:
        if times < 0:
            raise ValueError(f"times must not be negative, not {times}")
        with self._lock:
            self._queue.extend([fault] * times)

    def _take(self, page: int) -> _Fault | None:
        """The fault for a data request for ``page``; a ``repeat_page`` waits for a page after the first."""
        with self._lock:
            if not self._queue or (self._queue[0].kind == "repeat_page" and page <= 1):
                return None
            return self._queue.popleft()


@dataclass
class _Sample:
    record: _Json
    reason: str | None = None
    kind: BadKind | None = None
    is_duplicated: bool = False
    seq: int = 0

    def order(self) -> tuple[str, str, str, int]:
        record = self.record
        return record["updated_at"], record["station_code"], record["sampled_at"] or "", self.seq


@dataclass(frozen=True)
class _Site:
    name: str
    river: str
    district: str
    water_body_type: Literal["river", "lake"]
    longitude: float
    latitude: float


_SITES: tuple[_Site, ...] = (
    _Site("流溪河李溪坝", "流溪河", "从化区", "river", 113.586, 23.562),
    _Site("流溪河街口", "流溪河", "从化区", "river", 113.594, 23.548),
    _Site("流溪河人和", "流溪河", "白云区", "river", 113.283, 23.349),
    _Site("珠江猎德", "珠江广州河段", "天河区", "river", 113.331, 23.112),
    _Site("珠江黄埔港", "珠江广州河段", "黄埔区", "river", 113.452, 23.091),
    _Site("珠江西航道鸦岗", "珠江西航道", "白云区", "river", 113.203, 23.268),
    _Site("白坭河石井", "白坭河", "白云区", "river", 113.212, 23.221),
    _Site("增江九龙潭", "增江", "增城区", "river", 113.832, 23.298),
    _Site("东江北干流大墩", "东江北干流", "增城区", "river", 113.702, 23.118),
    _Site("沙湾水道三沙口", "沙湾水道", "番禺区", "river", 113.501, 22.932),
    _Site("蕉门水道南沙", "蕉门水道", "南沙区", "river", 113.573, 22.751),
    _Site("洪奇沥水道万顷沙", "洪奇沥水道", "南沙区", "river", 113.552, 22.684),
    _Site("石井河口", "石井河", "白云区", "river", 113.231, 23.183),
    _Site("车陂涌口", "车陂涌", "天河区", "river", 113.392, 23.128),
    _Site("沙河涌口", "沙河涌", "天河区", "river", 113.312, 23.148),
    _Site("海珠湖", "海珠湖", "海珠区", "lake", 113.331, 23.081),
    _Site("白云湖", "白云湖", "白云区", "lake", 113.243, 23.229),
    _Site("麓湖", "麓湖", "越秀区", "lake", 113.281, 23.153),
    _Site("流花湖", "流花湖", "越秀区", "lake", 113.262, 23.141),
    _Site("东山湖", "东山湖", "越秀区", "lake", 113.301, 23.121),
    _Site("荔湾湖", "荔湾湖", "荔湾区", "lake", 113.241, 23.131),
    _Site("芙蓉嶂水库", "芙蓉嶂水库", "花都区", "lake", 113.221, 23.502),
    _Site("新街河花都", "新街河", "花都区", "river", 113.214, 23.401),
    _Site("市桥水道", "市桥水道", "番禺区", "river", 113.362, 22.948),
)


@dataclass(frozen=True)
class _Profile:
    """A station's typical water, around which each hour varies."""

    has_turbidity: bool
    oxygen_mg_l: float
    oxygen_swing: float
    temperature_c: float
    ph: float
    conductivity_us_cm: float
    permanganate_mg_l: float
    ammonia_mg_l: float
    phosphorus_mg_l: float
    nitrogen_mg_l: float
    turbidity_ntu: float


class WaterQualitySimulator:
    """The bureau's API, with its data, planted bad records, switchable faults and a request log.

    ``bad_share`` is the share of planted bad records among the clean ones, rounded, but at least one of each
    ``BadKind`` whenever it is above 0 (so even a small simulator covers every reason). ``advance`` adds clean
    hours and corrections only.
    """

    def __init__(
        self,
        *,
        seed: int = 7,
        api_key: str,
        stations: int = 20,
        hours: int = 48,
        end: datetime = DEFAULT_END,
        bad_share: float = 0.02,
    ) -> None:
        if not 1 <= stations <= 8999:
            raise ValueError(f"stations must be between 1 and 8999, not {stations}")
        if hours < 1:
            raise ValueError(f"hours must be at least 1, not {hours}")
        if end.tzinfo is None or end.astimezone(UTC).replace(minute=0, second=0, microsecond=0) != end:
            raise ValueError(f"end must be an aware datetime on the hour, not {end!r}")
        if not 0 <= bad_share < 1:
            raise ValueError(f"bad_share must be in [0, 1), not {bad_share}")
        self.api_key = api_key
        self.seed = seed
        self.faults = Faults()
        self._rng = random.Random(seed)  # noqa: S311 - simulated data, deterministic for a seed; not a secret
        self._lock = threading.Lock()
        self._log: list[RequestLogEntry] = []
        self._stopping = threading.Event()
        self._seq = 0
        self._unknown_codes = 0
        self._end = end.astimezone(UTC)
        self._stations: list[_Json] = []
        self._profiles: dict[str, _Profile] = {}
        for index in range(stations):
            self._add_station(index)
        self._samples: list[_Sample] = []
        for hour in range(hours, 0, -1):
            self._add_hour(self._end - timedelta(hours=hour))
        self._plant(bad_share)

    # ------------------------------------------------------------------ ground truth and changes over time

    @property
    def end(self) -> datetime:
        """End of the simulated period (exclusive end of the last sampled hour), UTC."""
        return self._end

    @property
    def truth(self) -> SimulatorTruth:
        """A snapshot of what the API serves now (take a new one after ``advance``)."""
        with self._lock:
            feed = sorted(self._samples, key=_Sample.order)
            return SimulatorTruth(
                stations=tuple(_as_read(station) for station in self._sorted_stations()),
                samples=tuple(_as_read(sample.record) for sample in feed),
                reasons=tuple(sample.reason for sample in feed),
                planted=tuple(
                    PlantedSample(sample.kind, sample.reason, _as_read(sample.record))
                    for sample in feed
                    if sample.kind is not None and sample.reason is not None
                ),
            )

    @property
    def requests(self) -> list[RequestLogEntry]:
        """Every request so far, in the order they arrived."""
        with self._lock:
            return list(self._log)

    def advance(self, hours: int = 1, corrections: int = 0) -> None:
        """Let time pass: a new clean sample per station per hour, then ``corrections`` earlier valid samples
        re-sent with changed values and a later ``updated_at`` (the bureau corrects data after review).

        A correction replaces the record (the API serves each sample's current state once), so its key stays
        valid and unique; samples with a planted duplicate (and their copies) are never corrected.
        """
        with self._lock:
            earlier = [s for s in self._samples if s.reason is None and not s.is_duplicated]
            if corrections > len(earlier):
                raise ValueError(f"only {len(earlier)} samples can be corrected, not {corrections}")
            for _ in range(hours):
                self._add_hour(self._end)
                self._end += timedelta(hours=1)
            for sample in self._rng.sample(earlier, corrections):
                self._correct(sample)

    def _correct(self, sample: _Sample) -> None:
        record = sample.record
        ammonia = record["factors"]["w21003"]
        ammonia["value"] = round(ammonia["value"] + self._rng.uniform(0.02, 0.2), 3)
        ph = record["factors"]["w01001"]
        ph["value"] = round(min(9.5, ph["value"] + self._rng.choice((-0.1, 0.1))), 2)
        record["updated_at"] = beijing_text(self._end + timedelta(seconds=self._rng.randint(660, 1200)))

    # ------------------------------------------------------------------ data generation

    def _add_station(self, index: int) -> None:
        rng = self._rng
        site = _SITES[index % len(_SITES)]
        round_ = index // len(_SITES)
        name = site.name if round_ == 0 else f"{site.name}{round_ + 1}号站"
        code = f"4401{index + 1:04d}"
        updated = self._end - timedelta(days=rng.randint(20, 400), seconds=rng.randint(0, 86_399))
        self._stations.append(
            {
                "station_code": code,
                "name": name,
                "river": site.river,
                "district": site.district,
                "water_body_type": site.water_body_type,
                "longitude": round(site.longitude + rng.uniform(-0.004, 0.004), 6),
                "latitude": round(site.latitude + rng.uniform(-0.004, 0.004), 6),
                "updated_at": beijing_text(updated),
            }
        )
        is_lake = site.water_body_type == "lake"
        self._profiles[code] = _Profile(
            has_turbidity=rng.random() > 0.15,
            oxygen_mg_l=rng.uniform(6.5, 8.5) if is_lake else rng.uniform(4.5, 7.5),
            oxygen_swing=rng.uniform(1.0, 1.8) if is_lake else rng.uniform(0.4, 1.0),
            temperature_c=rng.uniform(20.0, 23.5),
            ph=rng.uniform(7.1, 8.0) if is_lake else rng.uniform(6.9, 7.6),
            conductivity_us_cm=rng.uniform(180, 650),
            permanganate_mg_l=rng.uniform(2.0, 6.0),
            ammonia_mg_l=rng.uniform(0.08, 0.4) if is_lake else rng.uniform(0.15, 1.4),
            phosphorus_mg_l=rng.uniform(0.02, 0.08) if is_lake else rng.uniform(0.06, 0.28),
            nitrogen_mg_l=rng.uniform(0.8, 2.5),
            turbidity_ntu=rng.uniform(3, 15) if is_lake else rng.uniform(8, 45),
        )

    def _add_hour(self, sampled_at: datetime) -> None:
        for station in self._stations:
            code = station["station_code"]
            updated = sampled_at + timedelta(hours=1, seconds=self._rng.randint(60, 600))
            record = {
                "station_code": code,
                "sampled_at": beijing_text(sampled_at),
                "updated_at": beijing_text(updated),
                "factors": self._readings(self._profiles[code], sampled_at),
            }
            self._append(_Sample(record))

    def _append(self, sample: _Sample) -> None:
        self._seq += 1
        sample.seq = self._seq
        self._samples.append(sample)

    def _readings(self, profile: _Profile, sampled_at: datetime) -> _Json:
        """One hour of the nine factors: a daily cycle, noise, rare spikes (rain, discharges) and rare flags."""
        rng = self._rng
        local_hour = sampled_at.astimezone(BEIJING).hour + 0.5
        day = math.sin(2 * math.pi * (local_hour - 9) / 24)  # photosynthesis and sun: highest mid-afternoon
        is_spike = rng.random() < 0.01
        values = {
            "w01001": round(_clamp(profile.ph + 0.15 * day + rng.gauss(0, 0.03), 6.0, 9.5), 2),
            "w01009": round(_clamp(profile.oxygen_mg_l + profile.oxygen_swing * day + rng.gauss(0, 0.15), 0.3, 18), 2),
            "w01010": round(profile.temperature_c + 1.1 * day + rng.gauss(0, 0.1), 1),
            "w01014": round(profile.conductivity_us_cm * (1 + rng.gauss(0, 0.03)), 1),
            "w01019": round(_clamp(profile.permanganate_mg_l * (1 + rng.gauss(0, 0.08)), 0.5, 30), 1),
            "w21003": round(
                _clamp(profile.ammonia_mg_l * (3 if is_spike else 1) * (1 + rng.gauss(0, 0.12)), 0.02, 20), 3
            ),
            "w21011": round(_clamp(profile.phosphorus_mg_l * (1 + rng.gauss(0, 0.1)), 0.005, 5), 3),
            "w21001": round(_clamp(profile.nitrogen_mg_l * (1 + rng.gauss(0, 0.08)), 0.1, 20), 2),
            "w01003": round(
                _clamp(profile.turbidity_ntu * (4 if is_spike else 1) * (1 + rng.gauss(0, 0.15)), 0.5, 900), 1
            ),
        }
        flag = rng.choice(FLAGS_OTHER_THAN_N) if rng.random() < 0.04 else "N"  # maintenance, calibration, ...
        return {
            code: {"value": value, "flag": flag, "unit": UNITS[code]}
            for code, value in values.items()
            if code != "w01003" or profile.has_turbidity
        }

    # ------------------------------------------------------------------ planted bad records

    def _plant(self, bad_share: float) -> None:
        if bad_share == 0:
            return
        kinds = list(BadKind)
        count = max(len(kinds), round(bad_share * len(self._samples)))
        last_hour = beijing_text(self._end - timedelta(hours=1))
        candidates = [s for s in self._samples if s.record["sampled_at"] < last_hour] or list(self._samples)
        self._rng.shuffle(candidates)
        used: set[int] = set()
        missing_time_stations: set[str] = set()
        for index in range(count):
            kind = kinds[index % len(kinds)]
            target = next(
                (
                    s
                    for s in candidates
                    if s.seq not in used
                    and (kind is not BadKind.MISSING_TIME or s.record["station_code"] not in missing_time_stations)
                ),
                None,
            )
            if target is None:
                break
            used.add(target.seq)
            if kind is BadKind.MISSING_TIME:
                missing_time_stations.add(target.record["station_code"])
            self._plant_one(kind, target, index // len(kinds))

    def _plant_one(self, kind: BadKind, sample: _Sample, round_: int) -> None:
        rng = self._rng
        record = sample.record
        factors = record["factors"]
        if kind is BadKind.DUPLICATE:
            copy_ = copy.deepcopy(record)
            later = parse_beijing(record["updated_at"]) + timedelta(seconds=rng.randint(1800, 3000))
            copy_["updated_at"] = beijing_text(later)
            sample.is_duplicated = True
            sample.reason, sample.kind = "duplicate_key", kind  # the resent copy supersedes it
            self._append(_Sample(copy_, is_duplicated=True))
            return
        sample.kind = kind
        if kind is BadKind.PH_OUT_OF_RANGE:
            factors["w01001"].update(value=round(rng.uniform(14.3, 16.0), 1), flag="N")
            sample.reason = "ph_out_of_range"
        elif kind is BadKind.NEGATIVE_CONCENTRATION:
            factors["w21003"].update(value=-round(rng.uniform(0.01, 0.3), 2), flag="N")
            sample.reason = "ammonia_nitrogen_out_of_range"
        elif kind is BadKind.UNKNOWN_STATION:
            self._unknown_codes += 1
            record["station_code"] = f"44019{self._unknown_codes:03d}"  # station codes here stop at 44018999
            sample.reason = "unknown_station"
        elif kind is BadKind.MISSING_TIME:
            record["sampled_at"] = None
            sample.reason = "sampled_at_missing"
        elif kind is BadKind.NOT_FINITE:
            code = sorted(factors)[rng.randrange(len(factors))]
            factors[code].update(value=math.nan, flag="N")  # serialised as the bare token NaN
            sample.reason = f"{FACTOR_CODES[code]}_not_finite"
        elif kind is BadKind.WRONG_UNIT:
            if round_ % 2 == 0:  # µg/L: a small reading, so ×1000 stays within the contract's 100 mg/L bound
                factors["w21003"].update(value=round(rng.uniform(0.03, 0.095) * 1000, 1), unit="µg/L", flag="N")
                code = "w21003"
            else:
                cond = factors["w01014"]
                cond.update(value=round(cond["value"] / 1000, 4), unit="mS/cm", flag="N")
                code = "w01014"
            sample.reason = f"{FACTOR_CODES[code]}_wrong_unit"

    # ------------------------------------------------------------------ serving

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningSimulator]:
        """Serve on ``host:port`` (0: the OS picks a free port) in a background thread until the block ends."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        config = uvicorn.Config(
            _build_app(self),
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            date_header=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="water-quality-sim", daemon=True)
        self._stopping.clear()
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError(f"the water-quality simulator did not start on {host}:{port}")
            time.sleep(0.01)
        bound_host, bound_port = sock.getsockname()[:2]
        try:
            yield RunningSimulator(self, f"http://{bound_host}:{bound_port}", bound_host, bound_port)
        finally:
            self._stopping.set()  # wakes requests held by a `slow` fault
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    def _respond(
        self, path: str, query: dict[str, str], headers: Mapping[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """Status, body and headers for one GET; logs it before any delay. Runs in the server's worker threads."""
        api_key = headers.get(API_KEY_HEADER)
        has_key = api_key is not None and secrets.compare_digest(api_key.encode(), self.api_key.encode())
        fault: _Fault | None = None
        answer_headers: dict[str, str] = {}
        if path not in (STATIONS_PATH, SAMPLES_PATH):
            status, body = 404, _error(404, f"no such endpoint: {path}")
        elif not has_key:
            status, body = 401, _error(401, f"missing or invalid {API_KEY_HEADER}")
        else:
            fault = self.faults._take(_page_number(query))
            status, body, answer_headers = self._answer(path, query, fault)
        entry = RequestLogEntry(
            "GET", path, query, status, has_key, fault.kind if fault else None, headers.get("User-Agent")
        )
        with self._lock:
            self._log.append(entry)
        if fault is not None and fault.kind == "slow":
            self._stopping.wait(fault.delay_s)
        return status, body, answer_headers

    def _answer(self, path: str, query: dict[str, str], fault: _Fault | None) -> tuple[int, bytes, dict[str, str]]:
        if fault is not None and fault.kind == "rate_limit":
            if fault.as_http_date:
                now = datetime.now(UTC).replace(microsecond=0)
                hint = format_datetime(now + timedelta(seconds=fault.retry_after_s), usegmt=True)
                headers = {"Retry-After": hint, "Date": format_datetime(now, usegmt=True)}
            else:
                headers = {"Retry-After": str(fault.retry_after_s)}
            return 429, _error(429, "too many requests"), headers
        if fault is not None and fault.kind == "server_error":
            return 500, _error(500, "internal error"), {}
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("page_size", "100"))
            since = query.get("updated_since")
            if since is not None:
                since = beijing_text(parse_beijing(since))
        except ValueError:
            return 400, _error(400, "page, page_size must be integers; updated_since is YYYY-MM-DD HH:MM:SS"), {}
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return 400, _error(400, f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}"), {}
        if fault is not None and fault.kind == "repeat_page" and page > 1:
            page -= 1
        with self._lock:
            if path == STATIONS_PATH:
                items = self._sorted_stations()
            else:
                items = [sample.record for sample in sorted(self._samples, key=_Sample.order)]
            if since is not None:
                items = [item for item in items if item["updated_at"] >= since]
            chunk = items[(page - 1) * size : page * size]
            body = _encode(
                {
                    "code": 0,
                    "message": "ok",
                    "data": {"items": chunk, "page": page, "page_size": size, "total": len(items)},
                }
            )
        if fault is not None and fault.kind == "malformed_page":
            body = body[: len(body) // 2]
        return 200, body, {}

    def _sorted_stations(self) -> list[_Json]:
        return sorted(self._stations, key=lambda s: (s["updated_at"], s["station_code"]))


@dataclass
class RunningSimulator:
    """A served simulator: where it listens, its request log and its faults."""

    simulator: WaterQualitySimulator
    base_url: str
    host: str
    port: int

    @property
    def requests(self) -> list[RequestLogEntry]:
        return self.simulator.requests

    @property
    def faults(self) -> Faults:
        return self.simulator.faults

    @property
    def truth(self) -> SimulatorTruth:
        return self.simulator.truth

    def advance(self, hours: int = 1, corrections: int = 0) -> None:
        self.simulator.advance(hours=hours, corrections=corrections)


def _build_app(simulator: WaterQualitySimulator) -> FastAPI:
    """The FastAPI app: thin routes over ``_respond``, so the log and faults see every request the same way."""
    app = FastAPI(title="Simulated water-quality station API", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/{path:path}")
    def any_path(path: str, request: Request) -> Response:
        status, body, headers = simulator._respond(request.url.path, dict(request.query_params), request.headers)
        return Response(content=body, status_code=status, headers=headers, media_type="application/json")

    return app


def _encode(value: object) -> bytes:
    """JSON as the bureau writes it: UTF-8, Chinese unescaped, and NaN as a bare token (Python's default)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode()


def _error(code: int, message: str) -> bytes:
    return _encode({"code": code, "message": message, "data": None})


def _as_read(record: _Json) -> dict[str, object]:
    """A deep copy as a reader decodes it: a float NaN becomes the string "NaN" (see ``client.parse_json_page``)."""
    decoded: dict[str, object] = json.loads(_encode(record), parse_constant=str)
    return decoded


def _page_number(query: dict[str, str]) -> int:
    try:
        return int(query.get("page", "1"))
    except ValueError:
        return 1


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))
