"""A stand-in for the Ecology and Environment Bureau's water-quality API: a real HTTP server on loopback.

Tests, the demo and ``waterhub simulate sources`` talk to it over real sockets (STYLE rule 22). It is deterministic
for a seed, sends what real stations send, plants bad records of every kind quality must catch, switches faults on
for the next N data requests, and logs every request so tests can check what was asked. What a test expects comes
from ``truth``, never from the code under test.

The API it imitates:

- ``GET /api/v1/stations?page=&page_size=[&updated_since=]`` and ``GET /api/v1/samples?page=&page_size=
  [&updated_since=]``; pages are numbered from 1; ``updated_since`` is Beijing time ``YYYY-MM-DD HH:MM:SS``
  and inclusive (``updated_at >= since``).
- Answer: ``{"code": 0, "message": "ok", "data": {"items": [...], "page": n, "page_size": m, "total": N}}``, items
  in a stable order (``updated_at``, ``station_code``, ``sampled_at``). Times are Beijing time without an offset.
- ``X-Api-Key`` is required: without the right key the answer is 401 with ``{"code": 401, ...}``.
- A sample is ``{"station_code", "sampled_at", "updated_at", "factors": {<HJ 212 code>: {"value", "flag",
  "unit"}}}``; a factor a station does not measure is absent.

The data: ``stations`` stations around Guangzhou and ``hours`` hourly samples per station ending at ``end``
(``sampled_at`` is the interval start, the last one ``end - 1 h``). What real stations do, the simulator does
(REFERENCE 2.6, 2.7, 4.2 and traps 17-20):

- The multi-parameter probe (pH, DO, temperature, conductivity, turbidity) reports every hour; the nutrient
  analysers (CODMn w01019, NH3-N w21003, TP w21011, TN w21001) measure every 4 hours, at a local hour of the
  station's own phase, and the hours between repeat the last result with its flag.
- Flags are per analyser: mostly N; rarely M, D, S, F and B (F and B without a value); ``P`` from stations whose
  logger still speaks the 2005 protocol and ``H`` from one vendor's loggers. Each nutrient analyser checks a
  standard once a day at its own hour, between two measurements: that hour is flagged C and carries the
  standard's concentration (``CALIBRATION_STANDARDS``). A reading above the analyser's range is sent flagged T at
  the range cap (``RANGE_CAPS``; ammonia at urban creeks in a storm, turbidity at sediment-laden rivers).
- DO is lowest around dawn and highest mid-afternoon. One storm per three days of the initial period raises
  turbidity (beyond 4,000 NTU at sediment-laden rivers) and sewage ammonia at the urban creeks.
- Pearl River delta stations (三沙口, 南沙, 万顷沙) see semi-diurnal salt tides (M2, 12.42 h): conductivity swings
  with the tide and at 万顷沙 passes 50,000 µS/cm at high water.
- Clean lakes read NH3-N and TP around zero, with small negatives within the detection limit.
- Each station's logger writes units its own way (``无量纲``, ``℃``, ``毫克/升``, ``mg/l``, ``μS/cm`` with a Greek
  mu, ``us/cm``); delta stations with strong salt tides report conductivity in mS/cm, some lakes TP in µg/L.
- A station skips an hour now and then (no record at all); some loggers stamp an hour a few seconds late
  (``21:00:03``); some station clocks run a few minutes fast, so a sample arrives up to four minutes before its
  hour ends by the bureau's clock. Otherwise a sample is sent (``updated_at``) 1 to 10 minutes after its hour.

``advance`` adds complete hours (every station, stamped on the hour, nothing planted) and corrections.
"""

from __future__ import annotations

import copy
import math
import random
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Literal, NamedTuple

from connectors.simulation import Answer, HttpSimulator, Running, beijing_text, parse_beijing
from connectors.simulation import as_read as _as_read
from connectors.simulation import encode_json as _encode
from connectors.water_quality.source import API_KEY_HEADER
from contracts.types import BEIJING
from contracts.water_quality import FACTOR_CODES, WaterQualitySample

__all__ = [
    "CALIBRATION_STANDARDS",
    "DEFAULT_END",
    "DETECTION_LIMITS",
    "RANGE_CAPS",
    "BadKind",
    "FactorOutcome",
    "FactorStatus",
    "PlantedSample",
    "RunningSimulator",
    "SimulatorTruth",
    "WaterQualitySimulator",
    "beijing_text",
    "parse_beijing",
    "sample_key",
]

DEFAULT_END = datetime(2026, 11, 23, 0, tzinfo=UTC)
"""End of the simulated period unless told otherwise: fixed, so two runs with one seed agree byte for byte."""

STATIONS_PATH = "/api/v1/stations"
SAMPLES_PATH = "/api/v1/samples"
MAX_PAGE_SIZE = 10_000

NUTRIENTS = ("w01019", "w21003", "w21011", "w21001")
"""Codes measured by the 4-hourly nutrient analysers (CODMn, NH3-N, TP, TN)."""
CYCLE_HOURS = 4

DETECTION_LIMITS: dict[str, float] = {
    "w01009": 0.2,
    "w01019": 0.5,
    "w21003": 0.025,
    "w21011": 0.01,
    "w21001": 0.05,
    "w01003": 1.0,
    "w01014": 1.0,
}
"""Detection limit per factor, in the contract's unit (none for pH and temperature): a reading in [-DL, 0) is
below detection, not out of range."""

CALIBRATION_STANDARDS: dict[str, float] = {"w01019": 5.0, "w21003": 1.0, "w21011": 0.2, "w21001": 2.0}
"""Concentration (mg/L) of the standard each nutrient analyser checks daily; the C-flagged hour carries it."""

RANGE_CAPS: dict[str, float] = {"w01019": 20.0, "w21003": 10.0, "w21011": 2.0, "w21001": 20.0}
"""Upper measuring limit of the nutrient analysers (mg/L); turbidity probes' caps are per site."""

_DECIMALS = {
    "w01001": 2,
    "w01009": 2,
    "w01010": 1,
    "w01014": 1,
    "w01019": 1,
    "w21003": 3,
    "w21011": 3,
    "w21001": 2,
    "w01003": 1,
}
"""Decimals a station reports in the contract's unit (HJ 212 formats; TP with three, REFERENCE 4.2)."""

_UNIT_STYLES: tuple[dict[str, str], ...] = (
    {"dimensionless": "dimensionless", "°C": "°C", "mg/L": "mg/L", "µS/cm": "µS/cm", "NTU": "NTU"},
    {"dimensionless": "无量纲", "°C": "℃", "mg/L": "毫克/升", "µS/cm": "μS/cm", "NTU": "NTU"},  # Greek mu
    {"dimensionless": "dimensionless", "°C": "°C", "mg/L": "mg/l", "µS/cm": "us/cm", "NTU": "NTU"},
)
"""How loggers write the contract's units: the contract's own spelling, a Chinese vendor's, a lower-case one."""

_SCALES = {"µg/L": 1000.0, "mS/cm": 0.001}
"""Sent value = contract value × scale, for the units some stations report in instead of the contract's."""

_FLAG_ODDS = (("M", 0.005), ("D", 0.004), ("F", 0.003), ("B", 0.003), ("S", 0.003))
"""Chance per analyser reading of each flag other than N, C and T (those follow from schedule and range)."""
_ODD_LETTER_ODDS = 0.01
_MISSING_HOUR_ODDS = 0.01
_LATE_STAMP_ODDS = 0.3
_SEA_WATER_US_CM = 53_000.0  # salinity 35 (REFERENCE trap 19)
_M2_TIDE_H = 12.42
_STORM_EVERY_H = 72

UNITS: dict[str, str] = {
    code: unit for code, name in FACTOR_CODES.items() if (unit := WaterQualitySample.field_spec(name).unit) is not None
}
"""HJ 212 code → the contract's unit, read off the contract so the two cannot drift apart."""

_Json = dict[str, Any]


class BadKind(StrEnum):
    """The kinds of bad sample the simulator plants; the truth's docstring says what quality must make of each."""

    PH_OUT_OF_RANGE = "ph_out_of_range"
    NEGATIVE_CONCENTRATION = "negative_concentration"
    UNKNOWN_STATION = "unknown_station"
    MISSING_TIME = "missing_time"
    DUPLICATE = "duplicate"
    NOT_FINITE = "not_finite"
    WRONG_UNIT = "wrong_unit"


RECORD_KINDS = frozenset({BadKind.UNKNOWN_STATION, BadKind.MISSING_TIME, BadKind.DUPLICATE})
"""Kinds that make a whole record unusable (key, station, time, duplicate); the others spoil one factor."""


class FactorStatus(StrEnum):
    """What a published row says of one factor's value (the ground truth's own copy of the rule)."""

    VALID = "valid"
    OVER_RANGE = "over_range"
    INVALID = "invalid"
    BELOW_DETECTION = "below_detection"
    REJECTED = "rejected"


class FactorOutcome(NamedTuple):
    """What the hub must publish for one factor of a published record.

    ``status`` is None when the station sent nothing for the factor. ``value`` is in the contract's unit (µg/L
    and mS/cm readings converted), as precise as the simulator generated it, None when withheld. Converted values
    may differ from the hub's product in the last float bit: compare them with a relative tolerance. ``reasons``
    holds the factor's reason codes when ``status`` is ``rejected``, else it is empty.
    """

    status: FactorStatus | None
    value: float | None
    reasons: tuple[str, ...] = ()


_NOTHING_SENT = FactorOutcome(None, None)


@dataclass(frozen=True)
class PlantedSample:
    """A planted bad record as a reader receives it, with its reason code; ``field`` is the spoilt factor's
    contract field for a factor-level kind, None for a record-level one."""

    kind: BadKind
    reason: str
    record: dict[str, object]
    field: str | None = None


@dataclass(frozen=True)
class SimulatorTruth:
    """Ground truth at one moment: what the API serves, which records quality must quarantine and why, and what it
    must publish for every factor of the others.

    Records are exactly what ``SourceSession.read`` yields for them: dicts as decoded from the body, with a
    planted NaN token as the string ``"NaN"``. ``samples`` is the full samples feed in feed order; ``reasons`` runs
    alongside it with the record-level quarantine reason (None for a record quality must publish), and
    ``outcomes`` with, for a published record, a ``FactorOutcome`` for every factor field of the contract (None
    for a quarantined record). Published records have unique keys (station_code, sampling hour).

    Per factor (value v in the contract's unit, flag f, detection limit DL from ``DETECTION_LIMITS``):

    ===================================  ===================  ==============================
    what was sent                        status               value published
    ===================================  ===================  ==============================
    nothing                              None                 None
    f N or S, v ≥ 0 (or no DL)           ``valid``            v
    f N or S, -DL ≤ v < 0                ``below_detection``  None
    f T (v is the analyser's range cap)  ``over_range``       v
    f F, M, D, C, B, P or H              ``invalid``          v; None for F/B or -DL ≤ v < 0
    a planted defect (below)             ``rejected``         None, with the factor's reason
    ===================================  ===================  ==============================

    Planted kinds:

    ========================  ===========================================  ======================================
    kind                      what was planted                             outcome
    ========================  ===========================================  ======================================
    unknown_station           a station code not among ``stations``        record quarantined: ``unknown_station``
    missing_time              ``sampled_at`` null                          record quarantined:
                                                                           ``sampled_at_missing``
    duplicate                 a later copy of a sample is sent too (same   original quarantined: ``duplicate_key``
                              key, later ``updated_at``)                   (the later copy supersedes it)
    ph_out_of_range           pH above 14 (e.g. 15.2), flag N              factor ``rejected``:
                                                                           ``ph_out_of_range``
    negative_concentration    ammonia nitrogen below -DL (e.g. -0.12),     factor ``rejected``:
                              flag N                                       ``ammonia_nitrogen_out_of_range``
    not_finite                a factor value sent as the JSON token NaN,   factor ``rejected``:
                              flag N                                       ``<field>_not_finite``
    wrong_unit                ammonia in NTU, or conductivity in mg/L      factor ``rejected``:
                              (a TDS reading), flag N                      ``<field>_wrong_unit``
    ========================  ===========================================  ======================================

    Readings in µg/L and mS/cm, and units spelt as loggers spell them, are not bad: they are converted.
    Planted records are never in the last simulated hour, so their ``updated_at`` is below the highest published
    one: a rerun from the watermark does not read them again.
    """

    stations: tuple[dict[str, object], ...]
    samples: tuple[dict[str, object], ...]
    reasons: tuple[str | None, ...]
    outcomes: tuple[dict[str, FactorOutcome] | None, ...]
    planted: tuple[PlantedSample, ...]

    def station_codes(self) -> set[str]:
        return {str(station["station_code"]) for station in self.stations}

    def valid_samples(self) -> list[dict[str, object]]:
        """The records quality must publish (some of their factors may be withheld), in feed order."""
        return [record for record, reason in zip(self.samples, self.reasons, strict=True) if reason is None]

    def valid_sample_keys(self) -> set[tuple[str, datetime]]:
        """``sample_key`` of every published record: what publish must hold."""
        return {sample_key(record) for record in self.valid_samples()}

    def valid_updated_at(self) -> list[datetime]:
        """``updated_at`` (aware UTC) of every published record; the watermark after a full run is their maximum."""
        return [parse_beijing(str(record["updated_at"])) for record in self.valid_samples()]

    def published_outcomes(self) -> dict[tuple[str, datetime], dict[str, FactorOutcome]]:
        """Per ``sample_key`` of a published record, the outcome of every factor field: the published table."""
        return {
            sample_key(record): outcome
            for record, outcome in zip(self.samples, self.outcomes, strict=True)
            if outcome is not None
        }

    def bad_samples(self) -> list[tuple[dict[str, object], str]]:
        """(record, reason code) of every record quality must quarantine, in feed order."""
        return [(record, reason) for record, reason in zip(self.samples, self.reasons, strict=True) if reason]

    def samples_since(self, since: datetime) -> list[dict[str, object]]:
        """The records a read with ``updated_since = since`` gets (``updated_at >= since``), in feed order."""
        return [record for record in self.samples if parse_beijing(str(record["updated_at"])) >= since]


def sample_key(record: Mapping[str, object]) -> tuple[str, datetime]:
    """A published record's primary key: station code and the sampling hour as aware UTC.

    The contract's ``sampled_at`` is the start of the sampling hour, so a stamp a few seconds late
    (``21:00:03``) keys the hour it belongs to, ``21:00:00``.
    """
    sampled_at = parse_beijing(str(record["sampled_at"]))
    return str(record["station_code"]), sampled_at.replace(minute=0, second=0)


@dataclass(frozen=True)
class _Site:
    name: str
    river: str
    district: str
    water_body_type: Literal["river", "lake"]
    longitude: float
    latitude: float
    salt: float = 0.0
    """Reach of the salt tide: the share of sea water at high water (delta stations)."""
    flood: float = 20.0
    """Turbidity at the height of a storm, as a multiple of the usual."""
    turbidity_cap: float = 4000.0
    sewage: bool = False
    """An urban creek: storms flush sewage (ammonia) into it."""
    clean: bool = False
    """Ammonia and phosphorus around zero: below-detection readings."""


_SITES: tuple[_Site, ...] = (
    _Site("流溪河李溪坝", "流溪河", "从化区", "river", 113.586, 23.562),
    _Site("流溪河街口", "流溪河", "从化区", "river", 113.594, 23.548),
    _Site("流溪河人和", "流溪河", "白云区", "river", 113.283, 23.349, flood=200.0),
    _Site("珠江猎德", "珠江广州河段", "天河区", "river", 113.331, 23.112),
    _Site("珠江黄埔港", "珠江广州河段", "黄埔区", "river", 113.452, 23.091),
    _Site("珠江西航道鸦岗", "珠江西航道", "白云区", "river", 113.203, 23.268),
    _Site("白坭河石井", "白坭河", "白云区", "river", 113.212, 23.221),
    _Site("增江九龙潭", "增江", "增城区", "river", 113.832, 23.298, flood=250.0, turbidity_cap=9999.0),
    _Site("东江北干流大墩", "东江北干流", "增城区", "river", 113.702, 23.118),
    _Site("沙湾水道三沙口", "沙湾水道", "番禺区", "river", 113.501, 22.932, salt=0.15),
    _Site("蕉门水道南沙", "蕉门水道", "南沙区", "river", 113.573, 22.751, salt=0.6),
    _Site("洪奇沥水道万顷沙", "洪奇沥水道", "南沙区", "river", 113.552, 22.684, salt=1.0),
    _Site("石井河口", "石井河", "白云区", "river", 113.231, 23.183, sewage=True),
    _Site("车陂涌口", "车陂涌", "天河区", "river", 113.392, 23.128, sewage=True),
    _Site("沙河涌口", "沙河涌", "天河区", "river", 113.312, 23.148, sewage=True),
    _Site("海珠湖", "海珠湖", "海珠区", "lake", 113.331, 23.081, flood=2.0),
    _Site("白云湖", "白云湖", "白云区", "lake", 113.243, 23.229, flood=2.0),
    _Site("麓湖", "麓湖", "越秀区", "lake", 113.281, 23.153, flood=2.0, clean=True),
    _Site("流花湖", "流花湖", "越秀区", "lake", 113.262, 23.141, flood=2.0),
    _Site("东山湖", "东山湖", "越秀区", "lake", 113.301, 23.121, flood=2.0),
    _Site("荔湾湖", "荔湾湖", "荔湾区", "lake", 113.241, 23.131, flood=2.0),
    _Site("芙蓉嶂水库", "芙蓉嶂水库", "花都区", "lake", 113.221, 23.502, flood=2.0, clean=True),
    _Site("新街河花都", "新街河", "花都区", "river", 113.214, 23.401),
    _Site("市桥水道", "市桥水道", "番禺区", "river", 113.362, 22.948),
)


@dataclass(frozen=True)
class _Station:
    """How one station's water and equipment behave, around which each hour varies."""

    code: str
    site: _Site
    units: dict[str, str]
    """HJ 212 code → the unit this station's logger writes."""
    has_turbidity: bool
    cycle_phase: int
    """Local hours h with h % 4 == cycle_phase are the nutrient analysers' measuring hours."""
    calibration_hours: dict[str, int]
    """Nutrient code → local hour of its daily standard check (never a measuring hour)."""
    odd_letter: str | None
    """``P`` (a logger on the 2005 protocol) or ``H`` (a vendor's own letter), sent now and then."""
    stamps_late: bool
    clock_fast_s: int
    tide_phase_h: float
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


class _Reading(NamedTuple):
    """One analyser's result in the contract's unit (None: no value sent) with its flag."""

    value: float | None
    flag: str


@dataclass
class _Sample:
    record: _Json
    outcomes: dict[str, FactorOutcome]
    reason: str | None = None
    kind: BadKind | None = None
    planted_field: str | None = None
    is_duplicated: bool = False
    seq: int = 0

    def order(self) -> tuple[str, str, str, int]:
        record = self.record
        return record["updated_at"], record["station_code"], record["sampled_at"] or "", self.seq


class WaterQualitySimulator(HttpSimulator):
    """The bureau's API, with its data, planted bad records, switchable faults and a request log.

    ``bad_share`` is the share of planted bad records among the others, rounded, but at least one of each
    ``BadKind`` whenever it is above 0 (so even a small simulator covers every reason). ``advance`` adds complete
    hours and corrections only.
    """

    paths: ClassVar[frozenset[str]] = frozenset({STATIONS_PATH, SAMPLES_PATH})
    thread_name: ClassVar[str] = "water-quality simulator"

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
        super().__init__()
        self.api_key = api_key
        self.seed = seed
        self._rng = random.Random(seed)  # noqa: S311 - simulated data, deterministic for a seed; not a secret
        self._seq = 0
        self._unknown_codes = 0
        self._end = end.astimezone(UTC)
        self._stations: list[_Json] = []
        self._profiles: dict[str, _Station] = {}
        self._last_results: dict[tuple[str, str], _Reading] = {}
        first_hour = self._end - timedelta(hours=hours)
        self._storms = [  # (start, duration in hours): one per three days of the initial period
            (
                first_hour + timedelta(hours=block + self._rng.uniform(0, min(_STORM_EVERY_H, hours - block))),
                self._rng.uniform(6, 12),
            )
            for block in range(0, hours, _STORM_EVERY_H)
        ]
        for index in range(stations):
            self._add_station(index)
        self._samples: list[_Sample] = []
        for hour in range(hours, 0, -1):
            self._add_hour(self._end - timedelta(hours=hour), complete=False)
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
                outcomes=tuple(None if sample.reason else dict(sample.outcomes) for sample in feed),
                planted=tuple(
                    PlantedSample(
                        sample.kind,
                        sample.reason or _planted_reason(sample),
                        _as_read(sample.record),
                        sample.planted_field,
                    )
                    for sample in feed
                    if sample.kind is not None
                ),
            )

    def advance(self, hours: int = 1, corrections: int = 0) -> None:
        """Let time pass: a new sample per station per hour, then ``corrections`` earlier published samples
        re-sent with a corrected pH and a later ``updated_at`` (the bureau corrects data after review).

        A correction replaces the record (the API serves each sample's current state once), so its key stays
        unique; only samples whose pH is valid are corrected, never planted ones or duplicated ones.
        """
        with self._lock:
            earlier = [
                s
                for s in self._samples
                if s.kind is None and not s.is_duplicated and s.outcomes["ph"].status is FactorStatus.VALID
            ]
            if corrections > len(earlier):
                raise ValueError(f"only {len(earlier)} samples can be corrected, not {corrections}")
            for _ in range(hours):
                self._add_hour(self._end, complete=True)
                self._end += timedelta(hours=1)
            for sample in self._rng.sample(earlier, corrections):
                self._correct(sample)

    def _correct(self, sample: _Sample) -> None:
        ph = sample.outcomes["ph"].value
        assert ph is not None  # noqa: S101 - only samples with a valid pH are chosen
        corrected = round(min(9.5, ph + self._rng.choice((-0.1, 0.1))), 2)
        reading = sample.record["factors"]["w01001"]
        reading["value"] = corrected  # pH has no other unit to write
        sample.outcomes["ph"] = FactorOutcome(FactorStatus.VALID, corrected)
        sample.record["updated_at"] = beijing_text(self._end + timedelta(seconds=self._rng.randint(660, 1200)))

    # ------------------------------------------------------------------ stations

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
        style = _UNIT_STYLES[index % len(_UNIT_STYLES)]
        units = {code_: style[unit] for code_, unit in UNITS.items()}
        if site.salt >= 0.5:
            units["w01014"] = "mS/cm"  # salt water reads tens of mS/cm
        if is_lake and index % 2 == 1:
            units["w21011"] = "µg/L"  # lake phosphorus is small; some lake stations report it in µg/L
        phase = rng.randrange(CYCLE_HOURS)
        self._profiles[code] = _Station(
            code=code,
            site=site,
            units=units,
            has_turbidity=rng.random() > 0.15,
            cycle_phase=phase,
            calibration_hours={nutrient: rng.randrange(phase + 2, 24, CYCLE_HOURS) for nutrient in NUTRIENTS},
            odd_letter={3: "P", 6: "H"}.get(index % 8),
            stamps_late=index % 5 == 2,
            clock_fast_s=rng.randint(90, 240) if index % 4 == 1 else 0,
            tide_phase_h=rng.uniform(0, _M2_TIDE_H),
            oxygen_mg_l=rng.uniform(6.5, 8.5) if is_lake else rng.uniform(4.5, 7.5),
            oxygen_swing=rng.uniform(1.0, 1.8) if is_lake else rng.uniform(0.4, 1.0),
            temperature_c=rng.uniform(20.0, 23.5),
            ph=rng.uniform(7.1, 8.0) if is_lake else rng.uniform(6.9, 7.6),
            conductivity_us_cm=rng.uniform(120, 250) if site.clean else rng.uniform(180, 650),
            permanganate_mg_l=rng.uniform(1.5, 2.5) if site.clean else rng.uniform(2.0, 6.0),
            ammonia_mg_l=_ammonia_base(rng, site),
            phosphorus_mg_l=(
                rng.uniform(0.003, 0.008)
                if site.clean
                else rng.uniform(0.02, 0.08)
                if is_lake
                else rng.uniform(0.06, 0.28)
            ),
            nitrogen_mg_l=rng.uniform(0.3, 0.6) if site.clean else rng.uniform(0.8, 2.5),
            turbidity_ntu=rng.uniform(3, 15) if is_lake else rng.uniform(8, 45),
        )

    # ------------------------------------------------------------------ hours

    def _add_hour(self, sampled_at: datetime, *, complete: bool) -> None:
        """One record per station; ``complete`` hours skip no station and stamp every record on the hour."""
        rng = self._rng
        for station in self._stations:
            profile = self._profiles[station["station_code"]]
            readings = self._readings(profile, sampled_at)
            delay_s = rng.randint(60, 600) - profile.clock_fast_s
            late_s = rng.randint(1, 5) if profile.stamps_late and rng.random() < _LATE_STAMP_ODDS else 0
            if not complete and rng.random() < _MISSING_HOUR_ODDS:
                continue  # the station skipped this hour: its analysers ran on, nothing was sent
            factors: _Json = {}
            outcomes = {name: _NOTHING_SENT for name in FACTOR_CODES.values()}
            for code, reading in readings.items():
                factors[code] = _sent(code, reading, profile.units[code])
                outcomes[FACTOR_CODES[code]] = _outcome(code, reading)
            record = {
                "station_code": profile.code,
                "sampled_at": beijing_text(sampled_at + timedelta(seconds=0 if complete else late_s)),
                "updated_at": beijing_text(sampled_at + timedelta(hours=1, seconds=delay_s)),
                "factors": factors,
            }
            self._append(_Sample(record, outcomes))

    def _append(self, sample: _Sample) -> None:
        self._seq += 1
        sample.seq = self._seq
        self._samples.append(sample)

    def _readings(self, station: _Station, sampled_at: datetime) -> dict[str, _Reading]:
        """One hour of every factor the station measures: the probe's fresh readings, the nutrient analysers'
        last results (a fresh one on a measuring hour) or their standard check."""
        rng = self._rng
        local_hour = sampled_at.astimezone(BEIJING).hour
        storm = self._storm(sampled_at) * (0.1 if station.site.water_body_type == "lake" else 1.0)
        day = math.sin(2 * math.pi * (local_hour + 0.5 - 9) / 24)  # sun: warmest and highest pH mid-afternoon
        turbidity = station.turbidity_ntu * (1 + (station.site.flood - 1) * storm) * (1 + rng.gauss(0, 0.15))
        probe = {
            "w01001": round(_clamp(station.ph + 0.15 * day + rng.gauss(0, 0.03), 6.0, 9.5), 2),
            "w01009": round(
                _clamp(
                    station.oxygen_mg_l + station.oxygen_swing * _oxygen_cycle(local_hour + 0.5) + rng.gauss(0, 0.15),
                    0.3,
                    18,
                ),
                2,
            ),
            "w01010": round(station.temperature_c + 1.1 * day + rng.gauss(0, 0.1), 1),
            "w01014": round(self._conductivity(station, sampled_at) * (1 + rng.gauss(0, 0.01)), 1),
            "w01003": round(max(0.5, turbidity), 1),
        }
        readings = {
            code: self._flagged(station, value, station.site.turbidity_cap if code == "w01003" else None)
            for code, value in probe.items()
            if code != "w01003" or station.has_turbidity
        }
        for code in NUTRIENTS:
            key = (station.code, code)
            if local_hour == station.calibration_hours[code]:
                readings[code] = _Reading(CALIBRATION_STANDARDS[code], "C")
                continue
            if (local_hour - station.cycle_phase) % CYCLE_HOURS == 0 or key not in self._last_results:
                self._last_results[key] = self._flagged(station, self._measure(station, code, storm), RANGE_CAPS[code])
            readings[code] = self._last_results[key]
        return readings

    def _measure(self, station: _Station, code: str, storm: float) -> float:
        """One nutrient result: around the station's level, with sewage flushed into urban creeks by a storm, and
        clean lakes reading around zero (down to just within the detection limit)."""
        rng = self._rng
        site = station.site
        if code == "w01019":
            return round(_clamp(station.permanganate_mg_l * (1 + 0.6 * storm) * (1 + rng.gauss(0, 0.08)), 0.5, 30), 1)
        if code == "w21001":
            return round(_clamp(station.nitrogen_mg_l * (1 + rng.gauss(0, 0.08)), 0.1, 25), 2)
        level = station.ammonia_mg_l if code == "w21003" else station.phosphorus_mg_l
        if site.clean:
            low = -DETECTION_LIMITS[code] + math.pow(10, -_DECIMALS[code])
            return round(max(low, level + rng.gauss(0, level)), _DECIMALS[code]) + 0.0  # + 0.0: no -0.0
        sewage = 8 * storm if site.sewage else 0.0
        floor = 0.02 if code == "w21003" else 0.005
        return round(max(floor, level * (1 + sewage) * (1 + rng.gauss(0, 0.12))), _DECIMALS[code])

    def _flagged(self, station: _Station, value: float, cap: float | None) -> _Reading:
        """The flag an analyser sends with a result: T at its range cap above it, else mostly N."""
        if cap is not None and value > cap:
            return _Reading(cap, "T")
        draw = self._rng.random()
        for flag, odds in _FLAG_ODDS:
            if draw < odds:
                return _Reading(None if flag in "FB" else value, flag)  # stopped or no link: no value
            draw -= odds
        if station.odd_letter is not None and draw < _ODD_LETTER_ODDS:
            return _Reading(value, station.odd_letter)
        return _Reading(value, "N")

    def _storm(self, at: datetime) -> float:
        """How far into a storm's flood the hour is: 0 outside, 1 at its height."""
        level = 0.0
        for start, duration_h in self._storms:
            elapsed_h = (at - start).total_seconds() / 3600
            if 0 <= elapsed_h <= duration_h:
                level = max(level, math.sin(math.pi * elapsed_h / duration_h))
        return level

    def _conductivity(self, station: _Station, at: datetime) -> float:
        """Fresh-water conductivity, mixed with sea water by the semi-diurnal salt tide at delta stations."""
        salt = station.site.salt
        if salt == 0:
            return station.conductivity_us_cm
        hours = (at - DEFAULT_END).total_seconds() / 3600 - station.tide_phase_h
        high_water = math.pow((1 + math.cos(2 * math.pi * hours / _M2_TIDE_H)) / 2, 1.5)
        share = salt * high_water
        return station.conductivity_us_cm * (1 - share) + _SEA_WATER_US_CM * share

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
        sample.kind = kind
        if kind is BadKind.DUPLICATE:
            copy_ = copy.deepcopy(record)
            later = parse_beijing(record["updated_at"]) + timedelta(seconds=rng.randint(1800, 3000))
            copy_["updated_at"] = beijing_text(later)
            sample.is_duplicated = True
            sample.reason = "duplicate_key"  # the resent copy supersedes it
            self._append(_Sample(copy_, dict(sample.outcomes), is_duplicated=True))
        elif kind is BadKind.UNKNOWN_STATION:
            self._unknown_codes += 1
            record["station_code"] = f"44019{self._unknown_codes:03d}"  # station codes here stop at 44018999
            sample.reason = "unknown_station"
        elif kind is BadKind.MISSING_TIME:
            record["sampled_at"] = None
            sample.reason = "sampled_at_missing"
        elif kind is BadKind.PH_OUT_OF_RANGE:
            self._spoil(sample, "w01001", round(rng.uniform(14.3, 16.0), 1), "ph_out_of_range")
        elif kind is BadKind.NEGATIVE_CONCENTRATION:  # beyond the detection limit's band
            self._spoil(sample, "w21003", -round(rng.uniform(0.04, 0.3), 2), "ammonia_nitrogen_out_of_range")
        elif kind is BadKind.NOT_FINITE:
            code = sorted(record["factors"])[rng.randrange(len(record["factors"]))]
            self._spoil(sample, code, math.nan, f"{FACTOR_CODES[code]}_not_finite")  # sent as the bare token NaN
        elif kind is BadKind.WRONG_UNIT:
            if round_ % 2 == 0:
                self._spoil(sample, "w21003", round(rng.uniform(0.5, 30), 1), "ammonia_nitrogen_wrong_unit", unit="NTU")
            else:  # a TDS meter's reading in the conductivity slot
                tds = round(0.65 * (sample.outcomes["conductivity"].value or rng.uniform(180, 650)), 1)
                self._spoil(sample, "w01014", tds, "conductivity_wrong_unit", unit="mg/L")

    def _spoil(self, sample: _Sample, code: str, value: float, reason: str, *, unit: str | None = None) -> None:
        """Send one factor with a defect, flagged N, so that factor alone must be rejected."""
        factors = sample.record["factors"]
        factors[code] = {"value": value, "flag": "N", "unit": unit or factors[code]["unit"]}
        sample.planted_field = FACTOR_CODES[code]
        sample.outcomes[FACTOR_CODES[code]] = FactorOutcome(FactorStatus.REJECTED, None, (reason,))

    # ------------------------------------------------------------------ serving

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[RunningSimulator]:
        """Serve on ``host:port`` (0: the OS picks a free port) in a background thread until the block ends."""
        with self.served(host, port) as server:
            yield RunningSimulator(self, server.base_url, server.host, server.port)

    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        api_key = headers.get(API_KEY_HEADER)
        if api_key is not None and secrets.compare_digest(api_key.encode(), self.api_key.encode()):
            return None
        return f"missing or invalid {API_KEY_HEADER}"

    def _error(self, status: int, message: str) -> bytes:
        return _encode({"code": status, "message": message, "data": None})

    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("page_size", "100"))
            since = query.get("updated_since")
            if since is not None:
                since = beijing_text(parse_beijing(since))
        except ValueError:
            return Answer(
                400, self._error(400, "page, page_size must be integers; updated_since is YYYY-MM-DD HH:MM:SS"), {}
            )
        if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
            return Answer(400, self._error(400, f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}"), {})
        if repeat_previous:
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
        return Answer(200, body, {})

    def _sorted_stations(self) -> list[_Json]:
        return sorted(self._stations, key=lambda s: (s["updated_at"], s["station_code"]))


@dataclass
class RunningSimulator(Running[WaterQualitySimulator]):
    """A served water-quality simulator: its ground truth and clock as well."""

    @property
    def truth(self) -> SimulatorTruth:
        return self.simulator.truth

    def advance(self, hours: int = 1, corrections: int = 0) -> None:
        self.simulator.advance(hours=hours, corrections=corrections)


def _ammonia_base(rng: random.Random, site: _Site) -> float:
    if site.clean:
        return rng.uniform(0.008, 0.02)
    if site.sewage:
        return rng.uniform(1.2, 3.0)
    return rng.uniform(0.08, 0.4) if site.water_body_type == "lake" else rng.uniform(0.15, 1.4)


def _oxygen_cycle(local_hour: float) -> float:
    """-1 at dawn (06:00), +1 mid-afternoon (15:00): photosynthesis by day, respiration all night."""
    if 6 <= local_hour < 15:
        return -math.cos(math.pi * (local_hour - 6) / 9)
    return math.cos(math.pi * ((local_hour - 15) % 24) / 15)


def _sent(code: str, reading: _Reading, unit: str) -> _Json:
    """A reading as the station writes it: in its own unit, at the precision that unit calls for."""
    value = reading.value
    if value is not None:
        scale = _SCALES.get(unit, 1.0)
        decimals = max(0, _DECIMALS[code] - round(math.log10(scale)))
        value = round(value * scale, decimals) + 0.0
    return {"value": value, "flag": reading.flag, "unit": unit}


def _outcome(code: str, reading: _Reading) -> FactorOutcome:
    """What the hub must publish for a reading the simulator generated (planted defects are set apart)."""
    value, flag = reading
    below_detection = value is not None and code in DETECTION_LIMITS and value < 0
    if flag in ("N", "S"):
        if below_detection:
            return FactorOutcome(FactorStatus.BELOW_DETECTION, None)
        return FactorOutcome(FactorStatus.VALID, value)
    if flag == "T":
        return FactorOutcome(FactorStatus.OVER_RANGE, value)
    return FactorOutcome(FactorStatus.INVALID, None if below_detection else value)


def _planted_reason(sample: _Sample) -> str:
    """The reason of a factor-level planted defect, which the record-level ``reason`` leaves None."""
    field_ = sample.planted_field
    assert field_ is not None  # noqa: S101 - every factor-level kind names its field
    return sample.outcomes[field_].reasons[0]


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))
