"""A network of stations reporting hourly, each message built with the protocols' own encoders.

The truth of a message is the set of observation keys (dataset, station, observation time) it carries, so a test
compares the store with what was sent, never with what the gateway decided. Corrupted messages (one byte changed,
so the checksum fails; JSON cut short) carry no truth; a resend repeats a message as it was.

- SL 651 river stations (``H``): hourly report with an ``F5`` array of twelve 5-minute stages, ``Z`` and ``Q``;
  twelve ``hydrology.river`` rows per report.
- SL 651 rain gauges (``P``): ``F4`` twelve 5-minute rainfalls; twelve ``hydrology.rainfall`` rows.
- HJ 212 analysers: hourly data (2061) with the answer bit set; one ``water_quality.samples`` row and a 9014 reply.
- JSON devices: a stage reading; one ``hydrology.river`` row.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC as _UTC
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from connectors.protocols import device_json, hj212, sl651
from contracts.types import BEIJING

__all__ = ["DeviceSimulator", "SimulatedDevice", "SimulatedMessage", "publish_messages"]

Kind = Literal["sl651-river", "sl651-rain", "hj212", "json"]
_PROTOCOL = {"sl651-river": "sl651", "sl651-rain": "sl651", "hj212": "hj212", "json": "json"}
_START = datetime(2024, 6, 1, 0, 0, tzinfo=BEIJING)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class SimulatedDevice:
    device_id: str
    kind: Kind
    station_code: str

    @property
    def protocol(self) -> Literal["sl651", "hj212", "json"]:
        return _PROTOCOL[self.kind]  # type: ignore[return-value]  # the table's values are the protocol names

    @property
    def topic(self) -> str:
        return f"waterhub/devices/{self.protocol}/{self.device_id}/up"


@dataclass(frozen=True)
class SimulatedMessage:
    device: SimulatedDevice
    payload: bytes
    keys: frozenset[tuple[str, str, datetime]]
    """(dataset, station code, observation time in UTC) of every observation the message carries; empty if corrupt."""
    corrupt: bool = False


class DeviceSimulator:
    """``stations`` devices, kinds dealt round-robin from ``mix``; deterministic for a seed."""

    def __init__(
        self,
        *,
        seed: int = 7,
        stations: int = 10,
        mix: Sequence[Kind] = ("sl651-river", "sl651-rain", "hj212", "json"),
        corrupt_share: float = 0.0,
        resend_share: float = 0.0,
    ) -> None:
        self.random = random.Random(seed)  # noqa: S311  # simulated readings, not secrets
        self.corrupt_share = corrupt_share
        self.resend_share = resend_share
        self.devices = [self._device(index, mix[index % len(mix)]) for index in range(stations)]

    @staticmethod
    def _device(index: int, kind: Kind) -> SimulatedDevice:
        if kind.startswith("sl651"):
            return SimulatedDevice(f"00{index + 10_000_000:08d}", kind, f"{index + 10_000_000:08d}")
        if kind == "hj212":
            return SimulatedDevice(f"WHSIM{index:019d}", kind, f"{index + 20_000_000:08d}")
        return SimulatedDevice(f"JSONSIM{index:06d}", kind, f"{index + 30_000_000:08d}")

    def messages(self, count: int) -> Iterator[SimulatedMessage]:
        """``count`` messages, each device reporting its next hour in turn; resends and corruptions included."""
        sent = 0
        hour = 0
        previous: SimulatedMessage | None = None
        while sent < count:
            hour += 1
            for device in self.devices:
                if sent >= count:
                    return
                if previous is not None and self.random.random() < self.resend_share:
                    yield previous
                    sent += 1
                    if sent >= count:
                        return
                message = self._message(device, _START + hour * _HOUR, serial=hour % 65536)
                if self.random.random() < self.corrupt_share:
                    message = self._corrupted(message)
                previous = message
                yield message
                sent += 1

    def _corrupted(self, message: SimulatedMessage) -> SimulatedMessage:
        """Damage the protocol's own check catches: a changed byte breaks an SL 651 or HJ 212 checksum; JSON has
        none (a changed digit is another valid reading), so a JSON message is cut short instead."""
        if message.device.protocol == "json":
            return SimulatedMessage(message.device, message.payload[: len(message.payload) // 2], frozenset(), True)
        payload = bytearray(message.payload)
        at = len(payload) // 2
        payload[at] = (
            (payload[at] + 1) % 256 if payload[at] not in b"0123456789" else ord("0") + (payload[at] - 47) % 10
        )
        return SimulatedMessage(message.device, bytes(payload), frozenset(), corrupt=True)

    def _message(self, device: SimulatedDevice, at: datetime, *, serial: int) -> SimulatedMessage:
        if device.kind == "sl651-river":
            return self._sl651(device, at, serial, rain=False)
        if device.kind == "sl651-rain":
            return self._sl651(device, at, serial, rain=True)
        if device.kind == "hj212":
            return self._hj212(device, at)
        return self._json(device, at)

    def _sl651(self, device: SimulatedDevice, at: datetime, serial: int, *, rain: bool) -> SimulatedMessage:
        items: list[sl651.BodyItem] = [
            sl651.StationGuide(device.device_id, "P" if rain else "H"),
            sl651.ObservationTime(at),
        ]
        if rain:
            steps = tuple(Decimal(self.random.randint(0, 30)) / 10 for _ in range(12))
            items.append(sl651.Series(0xF4, 0x60, steps))
            dataset = "hydrology.rainfall"
        else:
            stages = tuple(Decimal(self.random.randint(1000, 1500)) / 100 for _ in range(12))
            items += [
                sl651.Series(0xF5, 0xC0, stages),
                sl651.Value(0x39, 0x23, Decimal(self.random.randint(10000, 15000)) / 1000),
                sl651.Value(0x27, 0x2B, Decimal(self.random.randint(1000, 90000)) / 1000),
            ]
            dataset = "hydrology.river"
        header = sl651.Header(sl651.Direction.UP, 1, device.device_id, "0000", 0x32)
        frame = sl651.Frame(header, sl651.Report(serial, at + timedelta(seconds=30), tuple(items)))
        times = [at - sl651.SERIES_STEP * step for step in range(12)]
        keys = frozenset((dataset, device.station_code, moment.astimezone(_UTC)) for moment in times)
        return SimulatedMessage(device, sl651.encode_frame(frame), keys)

    def _hj212(self, device: SimulatedDevice, at: datetime) -> SimulatedMessage:
        sampled = at - _HOUR
        sent = at + timedelta(seconds=5)
        readings = (
            hj212.Reading("w01001", avg=Decimal(self.random.randint(650, 850)) / 100, flag="N"),
            hj212.Reading("w21003", avg=Decimal(self.random.randint(10, 900)) / 1000, flag="N"),
        )
        packet = hj212.Packet(
            st="21",
            cn="2061",
            mn=device.device_id,
            qn=f"{sent:%Y%m%d%H%M%S}000",
            pw="123456",
            flag=5,
            data_time=sampled,
            readings=readings,
        )
        key = ("water_quality.samples", device.station_code, sampled.astimezone(_UTC))
        return SimulatedMessage(device, hj212.encode_packet(packet).encode("ascii"), frozenset({key}))

    def _json(self, device: SimulatedDevice, at: datetime) -> SimulatedMessage:
        stage = Decimal(self.random.randint(1000, 1500)) / 100
        report = device_json.JsonReport(
            station=device.device_id,
            observed_at=at,
            device_time=at + timedelta(seconds=2),
            readings={"Z": device_json.JsonReading(value=stage)},
        )
        key = ("hydrology.river", device.station_code, at.astimezone(_UTC))
        return SimulatedMessage(device, device_json.encode_report(report), frozenset({key}))


def publish_messages(
    url_host: str,
    url_port: int,
    messages: Sequence[SimulatedMessage],
    *,
    rate_per_s: float | None = None,
    client_id: str,
    username: str | None = None,
    password: str | None = None,
    timeout_s: float = 120.0,
    on_sent: threading.Event | None = None,
) -> list[float]:
    """Publish at QoS 1 with a persistent session (messages survive a broker restart), at ``rate_per_s`` if given;
    returns each message's publish time (``time.time()``). Waits for every PUBACK, up to ``timeout_s``."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False)
    if username:
        client.username_pw_set(username, password)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(1000)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    # PUBACKs counted by callback: a message published while the broker is away is kept by paho and sent after
    # the reconnect, but its MQTTMessageInfo keeps the "not connected" code and wait_for_publish() refuses it.
    acknowledged = [0]
    all_acknowledged = threading.Condition()

    def on_publish(_client: mqtt.Client, _userdata: object, _mid: int, _reason: object, _props: object) -> None:
        with all_acknowledged:
            acknowledged[0] += 1
            all_acknowledged.notify_all()

    client.on_publish = on_publish
    client.connect(url_host, url_port, keepalive=30)
    client.loop_start()
    stamps: list[float] = []
    started = time.perf_counter()
    try:
        for index, message in enumerate(messages):
            if rate_per_s:
                wait = started + index / rate_per_s - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
            stamps.append(time.time())
            client.publish(message.device.topic, message.payload, qos=1)
        if on_sent is not None:
            on_sent.set()
        with all_acknowledged:
            if not all_acknowledged.wait_for(lambda: acknowledged[0] >= len(stamps), timeout=timeout_s):
                raise TimeoutError(f"{len(stamps) - acknowledged[0]} of {len(stamps)} messages unacknowledged")
    finally:
        client.disconnect()
        client.loop_stop()
    return stamps
