"""Flood-warning alerts of the river and reservoir stations whose readings or thresholds changed.

The lifecycle rules are ``quality.flood``'s; this module decides what to replay. Readings are stored as they now
stand (publish keeps the newer version of a corrected reading), so an alert is recomputed by replaying its
station's readings, never patched: a late reading, an out-of-order page or a correction lands in the replay like
any other reading. A station's replay starts at its earliest changed reading, moved back to the opening of any
alert of it that was still open then or whose close was confirmed at or after it (that alert's course may change).
Alerts confirmed closed before that stand as they are: the level was below before the change, so nothing earlier
can be affected. A replayed alert keeps the key of the stored alert it overlaps (``alert_identities``), so a late
reading before the first exceedance updates the alert rather than opening another. A stored alert that opened in
the replayed span and that no replayed alert overlaps any more (its reading was corrected below the threshold) is
kept as ``withdrawn``: its opening was announced, so its end is too.

A changed threshold, flood-season period or station record re-evaluates the station from its latest reading on:
a new warning level applies from now, it does not rewrite past alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from contracts.flood_warnings import FloodAlertRecord
from contracts.hydrology import ReservoirFloodSeasonLimit, ReservoirRecord, RiverRecord, RiverThresholds, Station
from exchange.tables import dataset_table
from quality.flood import FloodAlert, FloodSeasonPeriod, LevelReading, StationThresholds, alert_lifecycle
from waterhub.derivations.tables import changed_only, read_frame
from waterhub.derived import DerivationInputs, DerivedRows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["alert_identities", "derive", "replay_starts", "station_names", "station_thresholds"]

_LEVELS = ((RiverRecord, "z"), (ReservoirRecord, "rz"))
"""Each observation table and its level column."""
_SETTINGS = (RiverThresholds, ReservoirFloodSeasonLimit, Station)
"""Tables whose change re-evaluates a station from its latest reading."""
_ALERT_TIMES = ("opened_at", "first_over_at", "peak_at", "latest_at", "closed_at", "close_confirmed_at")


def derive(inputs: DerivationInputs) -> dict[str, DerivedRows]:
    """The alerts of every station whose readings, thresholds or record changed, replayed from where they may
    differ."""
    import pandas as pd

    changed = _changed_from(inputs)
    if not changed:
        return {FloodAlertRecord.meta.key: DerivedRows(pd.DataFrame(columns=_columns()))}
    stations = sorted(changed)
    existing = _existing_alerts(inputs, stations)
    starts = replay_starts(changed, existing)
    readings = _readings(inputs, starts)
    alerts = alert_lifecycle(readings, station_thresholds(inputs, stations))
    names = station_names(inputs, stations)
    replayed = existing.loc[existing["opened_at"] >= existing["stcd"].map(starts)]
    identities = alert_identities(alerts, replayed.loc[replayed["status"] != "withdrawn"])
    rows = [{**_row(alert, names), "opened_at": opened_at} for alert, opened_at in zip(alerts, identities, strict=True)]
    produced = {(alert.stcd, alert.kind, opened_at) for alert, opened_at in zip(alerts, identities, strict=True)}
    for old in replayed.to_dict("records"):
        if (old["stcd"], old["threshold_kind"], old["opened_at"]) not in produced:
            rows.append({**{name: old[name] for name in _columns()}, "status": "withdrawn"})
    frame = changed_only(inputs.conn, FloodAlertRecord, pd.DataFrame(rows, columns=_columns()))
    return {FloodAlertRecord.meta.key: DerivedRows(frame)}


def alert_identities(alerts: list[FloodAlert], stored: pd.DataFrame) -> list[Any]:
    """The key time (``opened_at``) each replayed alert is published under: that of the earliest stored alert of
    its station and kind whose span overlaps it, so a late reading that moves the first exceedance earlier (or a
    correction that moves it later) updates the alert people were told of instead of withdrawing it and opening
    another; its own first reading over, otherwise. A stored alert lends its key to one replayed alert only."""
    import pandas as pd

    far = pd.Timestamp.max.tz_localize("UTC")
    claimed: set[tuple[str, str, Any]] = set()
    identities = []
    for alert in alerts:
        begin, end = pd.Timestamp(alert.opened_at), pd.Timestamp(alert.close_confirmed_at or far)
        same = stored.loc[(stored["stcd"] == alert.stcd) & (stored["threshold_kind"] == alert.kind)]
        overlapping = [
            opened
            for opened, confirmed in zip(same["opened_at"], same["close_confirmed_at"], strict=True)
            if opened <= end
            and (far if _isna(confirmed) else confirmed) >= begin
            and (alert.stcd, alert.kind, opened) not in claimed
        ]
        identity = min(overlapping) if overlapping else begin
        claimed.add((alert.stcd, alert.kind, identity))
        identities.append(identity)
    return identities


def _columns() -> list[str]:
    version = FloodAlertRecord.meta.version_field
    return [spec.name for spec in FloodAlertRecord.field_specs() if spec.name != version]


def _changed_from(inputs: DerivationInputs) -> dict[str, Any]:
    """Station → the earliest observation time from which its alerts may differ."""
    starts: dict[str, Any] = {}
    for contract, _ in _LEVELS:
        keys = inputs.changes[contract.meta.key]
        for stcd, tm in keys.groupby("stcd")["tm"].min().items():
            starts[str(stcd)] = min(tm, starts.get(str(stcd), tm))
    settled = {str(stcd) for contract in _SETTINGS for stcd in inputs.changes[contract.meta.key]["stcd"]}
    for stcd, latest in _latest_readings(inputs, settled - set(starts)).items():
        starts[stcd] = latest
    return starts


def _latest_readings(inputs: DerivationInputs, stations: set[str]) -> dict[str, Any]:
    import pandas as pd

    latest: dict[str, Any] = {}
    if not stations:
        return latest
    for contract, _ in _LEVELS:
        table = dataset_table(contract)
        query = select(table.c.stcd, func.max(table.c.tm).label("tm")).where(table.c.stcd.in_(sorted(stations)))
        frame = read_frame(inputs.conn, query.group_by(table.c.stcd), ("tm",))
        latest.update({str(stcd): pd.Timestamp(tm) for stcd, tm in zip(frame["stcd"], frame["tm"], strict=True)})
    return latest


def replay_starts(changed: Mapping[str, Any], existing: pd.DataFrame) -> dict[str, Any]:
    """Station → where its replay starts: its earliest change, or the opening of an alert of it that was open at
    that change or whose close was confirmed at or after it, whichever is earlier."""
    starts = dict(changed)
    live = existing.loc[existing["status"] != "withdrawn"]
    for row in live.to_dict("records"):
        change = starts.get(row["stcd"])
        confirmed = row["close_confirmed_at"]
        if change is not None and (confirmed is None or _isna(confirmed) or confirmed >= change):
            starts[row["stcd"]] = min(change, row["opened_at"])
    return starts


def _isna(value: object) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _existing_alerts(inputs: DerivationInputs, stations: list[str]) -> pd.DataFrame:
    table = dataset_table(FloodAlertRecord)
    query = select(*(table.c[name] for name in _columns())).where(table.c.stcd.in_(stations))
    return read_frame(inputs.conn, query, _ALERT_TIMES)


def _readings(inputs: DerivationInputs, starts: Mapping[str, Any]) -> list[LevelReading]:
    """Each station's readings from its replay start on, from whichever observation table has them."""
    earliest = min(starts.values()).to_pydatetime()
    readings = []
    for contract, level in _LEVELS:
        table = dataset_table(contract)
        query = select(table.c.stcd, table.c.tm, table.c[level].label("level")).where(
            table.c.stcd.in_(sorted(starts)), table.c.tm >= earliest
        )
        frame = read_frame(inputs.conn, query, ("tm",))
        readings += [
            LevelReading(stcd, tm.to_pydatetime(), None if _isna(value) else float(value))
            for stcd, tm, value in zip(frame["stcd"], frame["tm"], frame["level"], strict=True)
            if tm >= starts[stcd]
        ]
    return readings


def station_thresholds(inputs: DerivationInputs, stations: Iterable[str]) -> dict[str, StationThresholds]:
    """Each station's WRZ and GRZ (a river), or its flood-season periods (a reservoir)."""
    wanted = sorted(stations)
    rivers = dataset_table(RiverThresholds)
    limits = dataset_table(ReservoirFloodSeasonLimit)
    found: dict[str, StationThresholds] = {}
    river_query = select(rivers.c.stcd, rivers.c.wrz, rivers.c.grz).where(rivers.c.stcd.in_(wanted))
    for stcd, wrz, grz in inputs.conn.execute(river_query):
        found[stcd] = StationThresholds(wrz=wrz, grz=grz)
    periods: dict[str, list[FloodSeasonPeriod]] = {}
    limit_query = select(limits.c.stcd, limits.c.bgmd, limits.c.edmd, limits.c.fsltdz)
    for stcd, bgmd, edmd, fsltdz in inputs.conn.execute(limit_query.where(limits.c.stcd.in_(wanted))):
        periods.setdefault(stcd, []).append(FloodSeasonPeriod(bgmd, edmd, fsltdz))
    for stcd, station_periods in periods.items():
        found[stcd] = StationThresholds(periods=tuple(station_periods))
    return found


def station_names(inputs: DerivationInputs, stations: list[str]) -> dict[str, str]:
    """Each known station's name (STNM), for rows people read."""
    table = dataset_table(Station)
    return dict(inputs.conn.execute(select(table.c.stcd, table.c.stnm).where(table.c.stcd.in_(stations))).all())


def _row(alert: FloodAlert, names: Mapping[str, str]) -> dict[str, object]:
    return {
        "stcd": alert.stcd,
        "threshold_kind": alert.kind,
        "first_over_at": alert.opened_at,
        "stnm": names.get(alert.stcd),
        "threshold": alert.threshold,
        "opened_level": alert.opened_level,
        "peak_level": alert.peak_level,
        "peak_at": alert.peak_at,
        "latest_level": alert.latest_level,
        "latest_at": alert.latest_at,
        "status": "open" if alert.is_open else "closed",
        "closed_at": alert.closed_at,
        "close_confirmed_at": alert.close_confirmed_at,
    }
