"""Benchmark: the device gateway, from a device's publish to the durable store, against a bare QoS 1 subscriber.

Goals (issue 15): sustained throughput at least 0.8 times the broker-and-client ceiling, measured in the same run
by a bare paho QoS 1 subscriber that does nothing with the messages (``throughput_vs_bare_ratio``), with zero loss
and zero duplicates; p99 from a device's publish to the commit at most 100 ms at 1,000 messages/s.

Everything runs against one Mosquitto of our own, started from the production configuration
(``exchange.gateway.local_broker``), and the hub's PostgreSQL in a fresh schema dropped afterwards. The gateway is
``waterhub gateway``, a process of its own, as in production; the bare subscriber is a process of its own too.
Devices are simulated (``connectors.devices``: SL 651 river and rain stations with F4/F5 arrays, HJ 212 analysers,
JSON) by one publisher in this process.

Phases: the bare subscriber at the fixed rate, then flat out (the ceiling); the gateway warmed up, then at the
fixed rate, then flat out. Each phase sends messages no earlier phase sent.

- *publish → commit*: the gateway acknowledges a message and sends the protocol's reply (SL 651 acknowledgement,
  HJ 212 9014) right after its batch commits, so the time from publishing a message to receiving its reply on the
  device's ``down`` topic bounds the commit time from above, measured from outside as a device sees it. JSON
  messages ask for no reply and are left out of this figure.
- *broker → commit*: the same reply time, measured from when the broker handed the message to a subscriber here
  (one more QoS 1 subscriber of every uplink): the publisher's own backlog (a message stamped when handed to
  paho but still in its queue on a busy machine) is left out, and so is the broker's.
- *publish → change event*: the change event (CloudEvent on ``waterhub/datasets/<key>/changes``) whose sequence
  range holds the message's first observation, as received by a subscriber here.
- loss and duplicates: after the run, the stored keys and change-log entries against the simulator's truth.

    .venv/bin/python benchmarks/bench_gateway.py --rate 1000 --duration-s 20
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psutil
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, func, make_url, select, text

from connectors.devices import DeviceSimulator, SimulatedMessage, publish_messages
from connectors.protocols import hj212, sl651
from contracts.hydrology import RainfallRecord, RiverRecord
from contracts.water_quality import WaterQualitySample
from exchange.db import make_engine
from exchange.gateway.local_broker import LocalMosquitto
from exchange.gateway.registry import register_devices
from exchange.gateway.topics import ALL_UPLINKS
from exchange.subscriber import ALL_CHANGES
from exchange.tables import change_log, dataset_table, datasets, ensure_schema

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HUB_USER, HUB_PASSWORD = "waterhub", "bench-secret"
DATASETS = {c.meta.key: c for c in (RainfallRecord, RiverRecord, WaterQualitySample)}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- the bare subscriber (run as its own process: python bench_gateway.py --bare PORT COUNT) ---------------------


def bare_subscriber(port: int, count: int) -> None:
    """Subscribe at QoS 1, let paho acknowledge, record nothing but the time of the last message; print it."""
    received = [0]
    done = threading.Event()
    last = [0.0]

    def on_message(_c: mqtt.Client, _u: object, _m: mqtt.MQTTMessage) -> None:
        received[0] += 1
        if received[0] >= count:
            last[0] = time.time()
            done.set()

    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bare-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    client.username_pw_set(HUB_USER, HUB_PASSWORD)
    client.on_message = on_message
    client.on_subscribe = lambda *_args: ready.set()
    client.connect("127.0.0.1", port)
    client.subscribe(ALL_UPLINKS, qos=1)
    client.loop_start()
    ready.wait(10)
    cpu_from = time.process_time()
    print("ready", flush=True)  # the parent waits for this line
    done.wait(600)
    cpu_s = time.process_time() - cpu_from
    client.disconnect()
    client.loop_stop()
    print(json.dumps({"received": received[0], "last": last[0], "cpu_s": cpu_s}), flush=True)


def run_bare(broker: LocalMosquitto, messages: list[SimulatedMessage], rate: float | None) -> dict[str, float]:
    child = subprocess.Popen(  # noqa: S603  # this script, as the bare subscriber
        [sys.executable, __file__, "--bare", str(broker.port), str(len(messages))],
        stdout=subprocess.PIPE,
        text=True,
    )
    if child.stdout is None or child.stdout.readline().strip() != "ready":
        raise RuntimeError("the bare subscriber did not start")
    stamps = publish_messages(
        "127.0.0.1",
        broker.port,
        messages,
        rate_per_s=rate,
        client_id="bench-pub",
        username=HUB_USER,
        password=HUB_PASSWORD,
    )
    result = json.loads(child.stdout.readline())
    child.wait(30)
    elapsed = result["last"] - stamps[0]
    return {
        "received": result["received"],
        "msg_per_s": len(messages) / elapsed,
        "elapsed_s": elapsed,
        "subscriber_cpu_s": result["cpu_s"],
    }


# --- where the cores went -------------------------------------------------------------------------------------


def _process_cpu(processes: Sequence[psutil.Process]) -> dict[int, float]:
    """CPU seconds (user + system) of each process still running, by pid."""
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def _the_process(pid: int) -> Callable[[], list[psutil.Process]]:
    return lambda: [psutil.Process(pid)]


def _postgres_processes() -> list[psutil.Process]:
    return [process for process in psutil.process_iter(["name"]) if process.info["name"] == "postgres"]


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, over all cores."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


@contextmanager
def cpu_meter(roles: Mapping[str, Callable[[], Sequence[psutil.Process]]]) -> Iterator[dict[str, float]]:
    """CPU seconds spent during the block by each role's processes (looked up at both ends: PostgreSQL's backends
    come and go), by the machine as a whole, and the block's wall time. Measured, the ceiling of a CPU-bound
    machine is a sum of CPU per message: what each phase spends a message is what a ratio of rates can reach."""
    before = {role: _process_cpu(find()) for role, find in roles.items()}
    busy, wall = _busy_seconds(), time.monotonic()
    spent: dict[str, float] = {}
    yield spent
    for role, find in roles.items():
        after = _process_cpu(find())
        spent[role] = sum(seconds - before[role].get(pid, 0.0) for pid, seconds in after.items())
    spent["machine"] = _busy_seconds() - busy
    spent["wall"] = time.monotonic() - wall


# --- the gateway ----------------------------------------------------------------------------------------------


class Observer:
    """Uplinks, replies on every device's down topic and change events, each with its arrival time."""

    def __init__(self, port: int) -> None:
        self.arrivals: list[tuple[float, str, bytes]] = []
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-observer", protocol=mqtt.MQTTv5)
        self._client.username_pw_set(HUB_USER, HUB_PASSWORD)
        self._client.on_message = self._on_message
        ready = threading.Event()
        self._client.on_subscribe = lambda *_args: ready.set()
        self._client.connect("127.0.0.1", port)
        self._client.subscribe([("waterhub/devices/+/+/down", 1), (ALL_CHANGES, 1), (ALL_UPLINKS, 1)])
        self._client.loop_start()
        ready.wait(10)

    def replies_only(self) -> None:
        """Stop taking uplinks and change events: the flat-out phase times replies only, and every copy the broker
        hands this process is CPU taken from the cores the gateway is measured on (the bare phase has no observer)."""
        done = threading.Event()
        self._client.on_unsubscribe = lambda *_args: done.set()
        self._client.unsubscribe([ALL_CHANGES, ALL_UPLINKS])
        done.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        self.arrivals.append((time.time(), message.topic, bytes(message.payload)))  # decoded later, off the clock

    def replies(self) -> dict[tuple[str, str], float]:
        """(device id, serial or QN) → when its reply arrived."""
        return self._tagged("/down")

    def forwarded(self) -> dict[tuple[str, str], float]:
        """(device id, serial or QN) → when the broker handed its message (first copy) to this subscriber."""
        return self._tagged("/up")

    def _tagged(self, suffix: str) -> dict[tuple[str, str], float]:
        tagged: dict[tuple[str, str], float] = {}
        for arrived, topic, payload in self.arrivals:
            if topic.endswith(suffix) and not topic.startswith("waterhub/devices/json/"):
                tagged.setdefault((topic.split("/")[3], _tag(payload)), arrived)
        return tagged

    def events(self) -> list[tuple[float, str, int, int]]:
        """(arrival, dataset, first seq, last seq) of each change event."""
        found = []
        for arrived, topic, payload in self.arrivals:
            if topic.endswith("/changes"):
                data = json.loads(payload)["data"]
                found.append((arrived, data["dataset"], data["first_seq"], data["last_seq"]))
        return found

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def _tag(payload: bytes) -> str:
    """What a message and its reply share: the SL 651 serial, the HJ 212 QN."""
    if payload.startswith(b"##"):
        return f"qn:{hj212.decode_packet(payload).qn}"
    return _serial(sl651.decode_frame(payload))


def _serial(frame: sl651.Frame) -> str:
    if not isinstance(frame.body, sl651.Report):
        raise TypeError(f"function {frame.header.function:02X} carries no serial")
    return f"serial:{frame.body.serial}"


def _message_tag(message: SimulatedMessage) -> str | None:
    return None if message.device.protocol == "json" else _tag(message.payload)


class GatewayProcess:
    def __init__(self, database_url: str, mqtt_url: str, folder: Path) -> None:
        self.env = {name: value for name, value in os.environ.items() if not name.startswith("WATERHUB_")}
        self.env |= {
            "WATERHUB_DATABASE_URL": database_url,
            "WATERHUB_MQTT_URL": mqtt_url,
            "WATERHUB_DATA_DIR": str(folder / "var"),
            "WATERHUB_HUB_ID": "bench",
        }
        self.log = folder / "gateway.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603  # our own console script
                [str(Path(sys.executable).parent / "waterhub"), "--log-json", "gateway"],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


def _wait_until_answering(observer: Observer, broker: LocalMosquitto, probe: SimulatedMessage) -> None:
    """Until the gateway has subscribed, the broker drops what devices send; a probe resent until it is answered
    says it has (the probe's observations are stored once whatever the number of copies). The gateway's start
    (imports, schema check) takes tens of seconds on a loaded machine, so it gets two minutes."""
    tag = (probe.device.device_id, _message_tag(probe))
    for _ in range(240):
        publish_messages(
            "127.0.0.1", broker.port, [probe], client_id="bench-probe", username=HUB_USER, password=HUB_PASSWORD
        )
        time.sleep(0.5)
        if tag in observer.replies():
            return
    raise RuntimeError("the gateway never answered")


def _stored(engine: Engine) -> int:
    """Rows stored, as the catalogue counts them (kept exact by every publish, under the dataset's lock): counting the
    growing tables themselves twice a second was PostgreSQL work on the cores the gateway is measured on."""
    with engine.connect() as conn:
        return int(conn.scalar(select(func.sum(datasets.c.row_count)).where(datasets.c.key.in_(list(DATASETS)))) or 0)


def _wait_stored(engine: Engine, count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while _stored(engine) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the gateway stored {_stored(engine)} of {count} observations in {timeout_s} s")
        time.sleep(0.5)  # counting the stored rows is itself work on the cores the gateway is measured on


def _truth(messages: Sequence[SimulatedMessage]) -> set[tuple[str, str, Any]]:
    return set().union(*(message.keys for message in messages))


def run_gateway(
    engine: Engine,
    observer: Observer,
    broker: LocalMosquitto,
    messages: list[SimulatedMessage],
    rate: float | None,
    before: int,
) -> dict[str, Any]:
    """Publish ``messages``, wait until every observation is stored, and measure from the stamps."""
    expected = len(_truth(messages))
    stamps = publish_messages(
        "127.0.0.1",
        broker.port,
        messages,
        rate_per_s=rate,
        client_id="bench-pub",
        username=HUB_USER,
        password=HUB_PASSWORD,
    )
    _wait_stored(engine, before + expected, 300)
    time.sleep(2)  # the last replies and change events
    to_commit = []
    broker_to_commit = []
    last_commit = 0.0
    replies, forwarded = observer.replies(), observer.forwarded()
    for message, stamp in zip(messages, stamps, strict=True):
        tag = _message_tag(message)
        if tag is None:
            continue
        key = (message.device.device_id, tag)
        replied = replies.get(key)
        if replied is not None:
            to_commit.append(replied - stamp)
            last_commit = max(last_commit, replied)
            if key in forwarded:
                broker_to_commit.append(replied - forwarded[key])
    elapsed = max(last_commit, time.time() - 2) - stamps[0]
    return {
        "stamps": stamps,
        "commit_ms": [1000 * value for value in to_commit],
        "broker_commit_ms": [1000 * value for value in broker_to_commit],
        "replied": len(to_commit),
        "asked": sum(1 for message in messages if message.device.protocol != "json"),
        "msg_per_s": len(messages) / (last_commit - stamps[0]) if last_commit else len(messages) / elapsed,
    }


def _event_latencies_ms(
    engine: Engine, observer: Observer, messages: list[SimulatedMessage], stamps: list[float]
) -> list[float]:
    """Per message: from its publish to the first change event whose sequence range holds its first observation."""
    with engine.connect() as conn:
        seq_of = {
            (dataset, key): seq
            for dataset, key, seq in conn.execute(select(change_log.c.dataset, change_log.c.key, change_log.c.seq))
        }
    by_dataset: dict[str, list[tuple[int, int, float]]] = {}
    for arrived, dataset, first, last in observer.events():
        by_dataset.setdefault(dataset, []).append((first, last, arrived))
    latencies = []
    for message, stamp in zip(messages, stamps, strict=True):
        dataset, station, at = min(message.keys)
        key = json.dumps([station, at.isoformat().replace("+00:00", "Z")], separators=(",", ":"))
        seq = seq_of.get((dataset, key))
        arrivals = [
            arrived for first, last, arrived in by_dataset.get(dataset, []) if seq is not None and first <= seq <= last
        ]
        if arrivals:
            latencies.append(1000 * (min(arrivals) - stamp))
    return latencies


def _check_store(engine: Engine, messages: Sequence[SimulatedMessage]) -> dict[str, int]:
    expected = _truth(messages)
    stored: list[tuple[str, str, Any]] = []
    with engine.connect() as conn:
        for key, contract in DATASETS.items():
            table = dataset_table(contract)
            station, at = (table.c[name] for name in contract.meta.primary_key)
            stored += [(key, s, t) for s, t in conn.execute(select(station, at))]
        changes = conn.scalar(
            select(func.count()).select_from(change_log).where(change_log.c.dataset.in_(list(DATASETS)))
        )
    return {
        "expected": len(expected),
        "lost": len(expected - set(stored)),
        "unexpected": len(set(stored) - expected),
        "duplicates": len(stored) - len(set(stored)) + max(0, (changes or 0) - len(expected)),
    }


def _cpu_figures(
    bare: dict[str, float], subscriber_s: float, gateway: dict[str, float], messages: int
) -> dict[str, float]:
    """CPU milliseconds a message in the two flat-out phases (same count of messages), by role, and how busy the
    machine's cores were. When both phases keep every core busy, a ratio of their rates is at most the inverse ratio
    of the machine's CPU per message (``cpu_per_msg_bare_vs_gateway_ratio``)."""
    cores = psutil.cpu_count() or 1

    def per_msg(seconds: float) -> float:
        return round(1000 * seconds / messages, 3)

    return {
        "bare_subscriber_cpu_ms_per_msg": per_msg(subscriber_s),
        "bare_mosquitto_cpu_ms_per_msg": per_msg(bare["mosquitto"]),
        "bare_publisher_cpu_ms_per_msg": per_msg(bare["bench"]),
        "bare_machine_cpu_ms_per_msg": per_msg(bare["machine"]),
        "bare_cores_busy_share": round(bare["machine"] / (bare["wall"] * cores), 3),
        "gateway_cpu_ms_per_msg": per_msg(gateway["gateway"]),
        "gateway_postgres_cpu_ms_per_msg": per_msg(gateway["postgres"]),
        "gateway_mosquitto_cpu_ms_per_msg": per_msg(gateway["mosquitto"]),
        "gateway_publisher_cpu_ms_per_msg": per_msg(gateway["bench"]),
        "gateway_machine_cpu_ms_per_msg": per_msg(gateway["machine"]),
        "gateway_cores_busy_share": round(gateway["machine"] / (gateway["wall"] * cores), 3),
        "cpu_per_msg_bare_vs_gateway_ratio": round(bare["machine"] / gateway["machine"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=1000.0, help="messages/s of the fixed-rate phases")
    parser.add_argument("--duration-s", type=float, default=20.0, help="length of the fixed-rate phases")
    parser.add_argument("--flat-out", type=int, default=20_000, help="messages of the flat-out phases")
    parser.add_argument("--stations", type=int, default=400, help="simulated devices")
    parser.add_argument("--bare", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_subscriber(*args.bare)
        return

    console = Console(stderr=True)
    fixed = int(args.rate * args.duration_s)
    simulator = DeviceSimulator(seed=5, stations=args.stations)
    stream = list(simulator.messages(2 * fixed + 2 * args.flat_out + 1000))
    bare_fixed, bare_flat = stream[:fixed], stream[fixed : fixed + args.flat_out]
    rest = stream[fixed + args.flat_out :]
    warm, gw_fixed, gw_flat = rest[:1000], rest[1000 : 1000 + fixed], rest[1000 + fixed :]

    url = os.environ.get("WATERHUB_TEST_DATABASE_URL", DEFAULT_URL)
    schema = f"bench_gw_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    folder = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    broker = LocalMosquitto(_free_port(), folder / "mosquitto", {HUB_USER: HUB_PASSWORD})
    gateway: GatewayProcess | None = None
    observer: Observer | None = None
    with admin.begin() as conn:
        conn.execute(text(f'create schema "{schema}"'))
    schema_url = (
        make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    )
    engine = make_engine(schema_url)
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            register_devices(conn, simulator.devices, expected_interval_s=3600)
        broker.start()
        console.print(f"bare subscriber: {len(bare_fixed)} messages at {args.rate:g}/s, then {len(bare_flat)} flat out")
        bare_at_rate = run_bare(broker, bare_fixed, args.rate)
        assert broker.process is not None  # noqa: S101 - started above
        roles: dict[str, Callable[[], Sequence[psutil.Process]]] = {
            "mosquitto": _the_process(broker.process.pid),
            "postgres": _postgres_processes,
            "bench": _the_process(os.getpid()),
        }
        with cpu_meter(roles) as bare_cpu:
            bare_ceiling = run_bare(broker, bare_flat, None)

        observer = Observer(broker.port)
        gateway = GatewayProcess(schema_url, broker.url(HUB_USER), folder)
        gateway.start()
        _wait_until_answering(observer, broker, next(m for m in warm if m.device.protocol == "sl651"))
        console.print("gateway: warm-up")
        run_gateway(engine, observer, broker, warm, None, 0)
        console.print(f"gateway: {len(gw_fixed)} messages at {args.rate:g}/s")
        at_rate = run_gateway(engine, observer, broker, gw_fixed, args.rate, len(_truth(warm)))
        console.print(f"gateway: {len(gw_flat)} messages flat out")
        events_ms = _event_latencies_ms(engine, observer, gw_fixed, at_rate["stamps"])
        observer.replies_only()
        assert gateway.process is not None  # noqa: S101 - started above
        with cpu_meter(roles | {"gateway": _the_process(gateway.process.pid)}) as gateway_cpu:
            flat = run_gateway(engine, observer, broker, gw_flat, None, len(_truth(warm + gw_fixed)))
        store = _check_store(engine, warm + gw_fixed + gw_flat)
    finally:
        if observer is not None:
            observer.close()
        if gateway is not None:
            gateway.stop()
        broker.stop()
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()
        shutil.rmtree(folder, ignore_errors=True)

    commit_ms = at_rate["commit_ms"]
    figures = {
        "bench": "gateway",
        "rate_per_s": args.rate,
        "messages_at_rate": len(gw_fixed),
        "messages_flat_out": len(gw_flat),
        "observations": store["expected"],
        "lost": store["lost"] + store["unexpected"],
        "duplicates": store["duplicates"],
        "replies_missing": at_rate["asked"] - at_rate["replied"],
        "at_rate_msg_per_s": round(at_rate["msg_per_s"], 1),
        "baseline_at_rate_msg_per_s": round(bare_at_rate["msg_per_s"], 1),
        "flat_out_msg_per_s": round(flat["msg_per_s"], 1),
        "baseline_flat_out_msg_per_s": round(bare_ceiling["msg_per_s"], 1),
        "commit_p50_ms": round(statistics.median(commit_ms), 1),
        "commit_p99_ms": round(_percentile(commit_ms, 0.99), 1),
        "broker_commit_p50_ms": round(statistics.median(at_rate["broker_commit_ms"]), 1),
        "broker_commit_p99_ms": round(_percentile(at_rate["broker_commit_ms"], 0.99), 1),
        "event_p50_ms": round(statistics.median(events_ms), 1) if events_ms else None,
        "event_p99_ms": round(_percentile(events_ms, 0.99), 1) if events_ms else None,
        **_cpu_figures(bare_cpu, bare_ceiling["subscriber_cpu_s"], gateway_cpu, len(gw_flat)),
        "throughput_vs_bare_ratio": round(flat["msg_per_s"] / bare_ceiling["msg_per_s"], 3),
        "at_rate_vs_bare_ratio": round(at_rate["msg_per_s"] / bare_at_rate["msg_per_s"], 3),
    }
    table = RichTable(title="device gateway")
    for column in ("figure", "value"):
        table.add_column(column)
    for name, value in figures.items():
        table.add_row(name, str(value))
    console.print(table)
    print(json.dumps(figures))  # the one machine-readable line


if __name__ == "__main__":
    main()
