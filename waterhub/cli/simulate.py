"""``waterhub simulate``: the source systems' and the devices' simulators, for demos and trying things by hand.

The pipeline, the demo and the tests start their own simulators on port 0; ``sources`` is for a person (or the
docker-compose stack) who wants one listening where ``WATERHUB_WATER_QUALITY__BASE_URL`` points by default, and
``devices`` publishes a station network's messages to the hub's broker for ``waterhub gateway`` to take in.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast, get_args

import typer

from waterhub.cli.output import emit_json, fail, print_table, stdout
from waterhub.settings import Settings

if TYPE_CHECKING:
    from connectors.devices import DeviceSimulator
    from connectors.simulation import Running

__all__ = ["app", "devices", "hydrology", "river_chief", "sources"]

app = typer.Typer(help="Simulators of the source systems and devices, on real sockets.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Simulators of the source systems and devices, on real sockets."""


@app.command("sources")
def sources(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port)")] = 8765,
    seed: Annotated[int, typer.Option(help="Seed of the simulated data")] = 7,
    api_key: Annotated[
        str | None,
        typer.Option(help="API key the simulator accepts; default the hub's own (WATERHUB_WATER_QUALITY__API_KEY)"),
    ] = None,
    stations: Annotated[int, typer.Option(help="Number of stations")] = 20,
    hours: Annotated[int, typer.Option(help="Hours of samples per station")] = 48,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Follow the clock: the feed ends at the last hour reported by now, and each hour that passes adds "
            "a sample per station and corrects earlier ones; without it the feed is fixed",
        ),
    ] = False,
    corrections_per_hour: Annotated[
        int, typer.Option(min=0, help="With --live: earlier samples corrected per hour that passes")
    ] = 2,
) -> None:
    """Serve the bureau's water-quality API simulator until Ctrl-C."""
    from connectors.water_quality import WaterQualitySimulator
    from connectors.water_quality.settings import WaterQualitySourceSettings
    from connectors.water_quality.simulator import DEFAULT_END, live_end

    block = Settings().source_settings("water_quality", WaterQualitySourceSettings)
    key = api_key or block.api_key.get_secret_value()
    end = live_end(datetime.now(UTC)) if live else DEFAULT_END
    simulator = WaterQualitySimulator(seed=seed, api_key=key, stations=stations, hours=hours, end=end)
    if live:
        simulator.follow(lambda: datetime.now(UTC), corrections_per_hour=corrections_per_hour)
    truth = simulator.truth
    with simulator.serve(host=host, port=port) as running:
        stdout.print(f"water_quality simulator listening on [bold]{running.base_url}[/]", soft_wrap=True)
        stdout.print(
            f"{len(truth.stations)} stations, {len(truth.samples)} samples ({len(truth.planted)} planted bad) "
            f"up to {simulator.end:%Y-%m-%d %H:%M}Z{', live' if live else ''}; send the key in X-Api-Key. "
            "Ctrl-C stops.",
            soft_wrap=True,
        )
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            stdout.print("stopped")


@app.command("river-chief")
def river_chief(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port)")] = 8766,
    seed: Annotated[int, typer.Option(help="Seed of the simulated data")] = 7,
    scale: Annotated[
        float | None,
        typer.Option(min=0.0001, max=10, help="Share of Guangzhou's volumes (default: the river_chief settings)"),
    ] = None,
    days: Annotated[int, typer.Option(min=0, max=3660, help="Days of patrols and problems (365: a year)")] = 7,
) -> None:
    """Serve the provincial river-chief platform simulator until Ctrl-C (or until stdin closes, under a parent)."""
    from connectors.river_chief.settings import RiverChiefSourceSettings
    from connectors.river_chief.simulator import demo_simulator

    block = Settings().source_settings("river_chief", RiverChiefSourceSettings)
    simulator = demo_simulator(block, seed, scale=scale, days=days)
    counts = {name: len(records) for name, records in simulator.truth.live.items()}
    _serve_until_stopped("river_chief", simulator.serve(host=host, port=port), counts)


@app.command("hydrology")
def hydrology(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port)")] = 8770,
    seed: Annotated[int, typer.Option(help="Seed of the simulated data")] = 7,
    stations: Annotated[int, typer.Option(min=10, help="Stations (Guangdong has about 4,000)")] = 200,
    steps: Annotated[int, typer.Option(min=1, help="5-minute reports per station (288: a day)")] = 12,
) -> None:
    """Serve the flood-control platform's SL 323 API simulator until Ctrl-C (or until stdin closes, under a
    parent); credentials from the hydrology settings (WATERHUB_HYDROLOGY__CLIENT_ID, __CLIENT_SECRET)."""
    from connectors.hydrology.settings import HydrologySourceSettings
    from connectors.hydrology.simulator import HydrologySimulator

    block = Settings().source_settings("hydrology", HydrologySourceSettings)
    simulator = HydrologySimulator(
        seed=seed,
        client_id=block.client_id,
        client_secret=block.client_secret.get_secret_value(),
        stations=stations,
        steps=steps,
    )
    counts = {table: len(rows) for table, rows in simulator.truth.rows.items()}
    _serve_until_stopped("hydrology", simulator.serve(host=host, port=port), counts)


def _serve_until_stopped(name: str, serving: AbstractContextManager[Running[Any]], counts: dict[str, int]) -> None:
    """Print where the simulator listens and its record counts (one JSON line, for a benchmark to read), then
    serve until Ctrl-C, or until stdin closes when a parent process runs it."""
    with serving as running:
        stdout.print(f"{name} simulator listening on [bold]{running.base_url}[/]", soft_wrap=True)
        stdout.print(json.dumps(counts), soft_wrap=True, markup=False)
        sys.stdout.flush()
        try:
            if sys.stdin.isatty():
                time.sleep(10**9)
            else:
                sys.stdin.read()  # a parent process (a benchmark) stops the simulator by closing our stdin
        except KeyboardInterrupt:
            stdout.print("stopped")


@app.command("devices")
def devices(
    stations: Annotated[int, typer.Option(min=1, max=100_000, help="Number of devices")] = 8,
    rate: Annotated[float, typer.Option(min=0.1, max=100_000, help="Messages per second, all devices together")] = 10,
    count: Annotated[int, typer.Option(min=1, help="Most messages to send")] = 100,
    duration_s: Annotated[float, typer.Option(min=0.1, help="Longest time to send for, in seconds")] = 60,
    mix: Annotated[
        str, typer.Option(help="Device kinds dealt round-robin: sl651-river (F5 stages), sl651-rain (F4), hj212, json")
    ] = "sl651-river,sl651-rain,hj212,json",
    corrupt_share: Annotated[float, typer.Option(min=0, max=1, help="Share of messages damaged in transit")] = 0,
    resend_share: Annotated[float, typer.Option(min=0, max=1, help="Share of messages a device sends twice")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the simulated readings")] = 7,
    register: Annotated[
        bool, typer.Option(help="Register the devices in the hub database (WATERHUB_DATABASE_URL) first")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Publish a station network's messages to the hub's broker (WATERHUB_MQTT_URL, as the hub's user), then say
    what was sent. Stops after --count messages or --duration-s seconds, whichever comes first."""
    from connectors.devices import DeviceSimulator, publish_messages
    from connectors.devices.simulator import Kind
    from exchange.mqtt_url import broker_address
    from exchange.urls import redacted_url

    kinds = [kind.strip() for kind in mix.split(",") if kind.strip()]
    unknown = sorted(set(kinds) - set(get_args(Kind)))
    if unknown or not kinds:
        raise fail(f"unknown device kind(s) {', '.join(unknown) or '(none given)'}", f"use {', '.join(get_args(Kind))}")
    settings = Settings()
    network = cast("list[Kind]", kinds)  # checked against Kind just above
    simulator = DeviceSimulator(
        seed=seed, stations=stations, mix=network, corrupt_share=corrupt_share, resend_share=resend_share
    )
    if register:
        _register(settings, simulator)
    messages = list(simulator.messages(min(count, max(1, int(rate * duration_s)))))
    address = broker_address(settings.resolved_mqtt_url)
    started = time.monotonic()
    publish_messages(
        address.host,
        address.port,
        messages,
        rate_per_s=rate,
        client_id=f"waterhub-simulate-devices-{seed}",
        username=address.username,
        password=address.password,
        timeout_s=max(30.0, duration_s),
    )
    seen: set[bytes] = set()
    by_kind: dict[str, int] = {}
    for message in messages:
        by_kind[message.device.kind] = by_kind.get(message.device.kind, 0) + 1
    resends = 0
    for message in messages:
        resends += message.payload in seen
        seen.add(message.payload)
    summary = {
        "broker": redacted_url(settings.resolved_mqtt_url),
        "devices": len(simulator.devices),
        "messages": len(messages),
        "by_kind": by_kind,
        "corrupt": sum(message.corrupt for message in messages),
        "resends": resends,
        "observations": len(set().union(*(message.keys for message in messages))),
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    if as_json:
        emit_json(summary)
        return
    print_table(
        f"sent to {summary['broker']} in {summary['elapsed_s']} s",
        ("what", "count"),
        [
            ("devices", summary["devices"]),
            *((f"messages: {kind}", number) for kind, number in sorted(by_kind.items())),
            ("corrupt messages", summary["corrupt"]),
            ("resends", summary["resends"]),
            ("distinct observations", summary["observations"]),
        ],
    )


def _register(settings: Settings, simulator: DeviceSimulator) -> None:
    """The gateway quarantines messages of unknown devices, so a demo network is registered before it speaks."""
    from exchange.db import make_engine
    from exchange.gateway.registry import register_devices
    from exchange.tables import ensure_schema

    engine = make_engine(settings.resolved_database_url)
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            register_devices(conn, simulator.devices, expected_interval_s=3600)
    finally:
        engine.dispose()
