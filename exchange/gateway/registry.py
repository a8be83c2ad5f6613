"""The device registry: which devices may report, for which station, how often; and which of them went quiet.

A device's MQTT user is its device id, and its broker password hash is kept here in Mosquitto's own PBKDF2-SHA512
form, so the broker's password file is written from the registry (``password_file``) and never by hand.

A device silent for twice its expected interval is offline; silent since its registration when it has never
reported at all (a station installed but never connected is as much a gap in the network). Going offline, and
coming back, is published as a ``devices.status`` row through ``publish_frame``: one write path, so the change log
and a change event carry it to whoever watches the network.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol

from sqlalchemy import Connection, bindparam, select

from connectors.protocols.errors import ProtocolName
from contracts.devices import DeviceStatus
from exchange.db import upsert_insert
from exchange.publish import PublishResult, publish_frame
from exchange.tables import devices

__all__ = [
    "Device",
    "Registrable",
    "credential_hash",
    "load_devices",
    "mark_offline",
    "password_file",
    "record_seen",
    "register_device",
    "register_devices",
    "rotate_credential",
    "write_password_file",
]

_PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes for $7$
_SALT_BYTES = 12


@dataclass(frozen=True)
class Device:
    device_id: str
    protocol: ProtocolName
    station_code: str
    expected_interval_s: int
    last_seen_at: datetime | None = None
    state: str = "online"


def credential_hash(password: str, *, salt: bytes | None = None) -> str:
    """Mosquitto 2.0's ``$7$`` password-file hash (PBKDF2-SHA512, 101 rounds), so the broker can check it as is."""
    salt = salt if salt is not None else secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    encoded_salt, encoded_digest = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    return f"$7${_PBKDF2_ITERATIONS}${encoded_salt}${encoded_digest}"


class Registrable(Protocol):
    """What registering a device needs of it (a simulated device, an installation record)."""

    @property
    def device_id(self) -> str: ...
    @property
    def protocol(self) -> ProtocolName: ...
    @property
    def station_code(self) -> str: ...


def register_devices(
    conn: Connection, network: Iterable[Registrable], *, expected_interval_s: int, now: datetime | None = None
) -> None:
    """A whole network of devices at once (the simulator's, before it speaks), without passwords."""
    for device in network:
        register_device(
            conn,
            device_id=device.device_id,
            protocol=device.protocol,
            station_code=device.station_code,
            expected_interval_s=expected_interval_s,
            now=now,
        )


def register_device(
    conn: Connection,
    *,
    device_id: str,
    protocol: ProtocolName,
    station_code: str,
    expected_interval_s: int,
    password: str | None = None,
    now: datetime | None = None,
) -> None:
    """Add or change a device; its password is stored only as the broker's hash. ``now`` (default: the clock)
    is its registration time, kept when an existing device is changed."""
    values = {
        "device_id": device_id,
        "protocol": protocol,
        "station_code": station_code,
        "expected_interval_s": expected_interval_s,
        "credential_hash": None if password is None else credential_hash(password),
        "state": "online",
        "registered_at": now or datetime.now(UTC),
    }
    statement = upsert_insert(conn, devices).values(values)
    kept = ("device_id", "state", "registered_at")
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[devices.c.device_id],
            set_={name: statement.excluded[name] for name in values if name not in kept},
        )
    )


def password_file(conn: Connection) -> str:
    """The Mosquitto password file (``user:hash`` lines) for every device that has a credential."""
    rows = conn.execute(
        select(devices.c.device_id, devices.c.credential_hash)
        .where(devices.c.credential_hash.is_not(None))
        .order_by(devices.c.device_id)
    ).all()
    return "".join(f"{device_id}:{hashed}\n" for device_id, hashed in rows)


def rotate_credential(conn: Connection, device_id: str) -> str:
    """Give ``device_id`` a new random password and return it (the only time it exists in clear: only its hash is
    stored). The old one stops working when the broker reloads the password file (``write_password_file``).

    There is no grace period: Mosquitto's password file holds one password per user, so the device is given the
    new password first and the file rewritten once it has it (``docs/operations.md``)."""
    secret = secrets.token_urlsafe(24)
    changed = conn.execute(
        devices.update().where(devices.c.device_id == device_id).values(credential_hash=credential_hash(secret))
    )
    if changed.rowcount != 1:
        raise KeyError(f"no device {device_id[:64]!r} in the registry; register it first")
    return secret


def write_password_file(conn: Connection, path: Path) -> int:
    """Rewrite the broker's password file at ``path``: every registered device's line from the registry, and the
    lines of other users already there (the hub's own) kept as they are. Written beside and renamed over, so the
    broker never reads half a file; returns how many device lines it holds. Send Mosquitto SIGHUP afterwards."""
    registry = password_file(conn)
    registered = set(conn.execute(select(devices.c.device_id)).scalars())
    kept = []
    if path.exists():
        kept = [line for line in path.read_text().splitlines(keepends=True) if line.split(":", 1)[0] not in registered]
    partial = path.with_name(f".{path.name}.new")
    partial.write_text("".join(kept) + registry)
    partial.chmod(0o600)
    partial.replace(path)
    return registry.count("\n")


def load_devices(conn: Connection, device_ids: Collection[str]) -> dict[str, Device]:
    rows = conn.execute(select(devices).where(devices.c.device_id.in_(sorted(device_ids)))).all()
    return {
        row.device_id: Device(
            row.device_id, row.protocol, row.station_code, row.expected_interval_s, row.last_seen_at, row.state
        )
        for row in rows
    }


def record_seen(
    conn: Connection, known: Mapping[str, Device], seen: Mapping[str, datetime], *, run_id: str, now: datetime
) -> PublishResult | None:
    """Move each device's last-seen time forward; a device that was offline is published as back online."""
    if seen and conn.dialect.name == "postgresql":
        # One statement, the batch's devices as two binary arrays: an executemany is one statement per device
        # (hundreds a batch), each waiting for the server's turn on a busy machine.
        conn.exec_driver_sql(_SEEN_SQL, {"ids": list(seen), "ats": [_aware_utc(at) for at in seen.values()]})
    elif seen:
        conn.execute(
            devices.update()
            .where(devices.c.device_id == bindparam("seen_id"))
            .where((devices.c.last_seen_at.is_(None)) | (devices.c.last_seen_at < bindparam("seen_at")))
            .values(last_seen_at=bindparam("seen_at"), state="online"),
            [{"seen_id": device_id, "seen_at": at} for device_id, at in seen.items()],
        )
    back = [
        Device(device.device_id, device.protocol, device.station_code, device.expected_interval_s, at)
        for device_id, at in seen.items()
        if (device := known[device_id]).state == "offline"
    ]
    return _publish_states(conn, back, "online", run_id=run_id, now=now)


_SEEN_SQL = (
    "UPDATE devices SET last_seen_at = seen.at, state = 'online'"
    " FROM unnest(%(ids)b::varchar[], %(ats)b::timestamptz[]) AS seen(id, at)"
    " WHERE devices.device_id = seen.id AND (devices.last_seen_at IS NULL OR devices.last_seen_at < seen.at)"
)


def _aware_utc(at: datetime) -> datetime:
    """What ``UtcDateTime`` would bind: the raw driver call skips it, and a naive time would be read in the
    session's zone."""
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at!r}: attach a zone before storing")
    return at.astimezone(UTC)


def mark_offline(conn: Connection, *, run_id: str, now: datetime) -> PublishResult | None:
    """Every online device silent for twice its interval becomes offline, published in ``devices.status``; a
    device never heard from is silent since its registration."""
    candidates = conn.execute(select(devices).where(devices.c.state == "online").with_for_update()).all()
    silent = [
        Device(row.device_id, row.protocol, row.station_code, row.expected_interval_s, row.last_seen_at)
        for row in candidates
        if (since := row.last_seen_at or row.registered_at) is not None
        and now - since > timedelta(seconds=2 * row.expected_interval_s)
    ]
    if silent:
        conn.execute(
            devices.update()
            .where(devices.c.device_id.in_([device.device_id for device in silent]))
            .values(state="offline")
        )
    return _publish_states(conn, silent, "offline", run_id=run_id, now=now)


def _publish_states(
    conn: Connection, changed: Iterable[Device], state: Literal["online", "offline"], *, run_id: str, now: datetime
) -> PublishResult | None:
    import pandas as pd

    rows = [
        DeviceStatus(
            device_id=device.device_id,
            protocol=device.protocol,
            station_code=device.station_code,
            state=state,
            last_seen_at=device.last_seen_at,
            expected_interval_s=device.expected_interval_s,
            updated_at=now,
        ).model_dump()
        for device in changed
    ]
    if not rows:
        return None
    return publish_frame(conn, DeviceStatus, pd.DataFrame(rows), run_id=run_id, now=now)
