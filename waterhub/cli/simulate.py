"""``waterhub simulate``: serve the source systems' simulators on a fixed port, for demos and trying things by hand.

The pipeline, the demo and the tests start their own simulators on port 0; this command is for a person (or the
docker-compose stack) who wants one listening where ``WATERHUB_WATER_QUALITY__BASE_URL`` points by default.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer

from waterhub.cli.output import stdout
from waterhub.settings import Settings

__all__ = ["app", "sources"]

app = typer.Typer(help="Simulators of the source systems, on real sockets.", no_args_is_help=True)


@app.callback()
def _group() -> None:
    """Simulators of the source systems, on real sockets."""


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
) -> None:
    """Serve the bureau's water-quality API simulator until Ctrl-C."""
    from connectors.water_quality import WaterQualitySimulator
    from connectors.water_quality.settings import WaterQualitySourceSettings

    block = Settings().source_settings("water_quality", WaterQualitySourceSettings)
    key = api_key or block.api_key.get_secret_value()
    simulator = WaterQualitySimulator(seed=seed, api_key=key, stations=stations, hours=hours)
    truth = simulator.truth
    with simulator.serve(host=host, port=port) as running:
        stdout.print(f"water_quality simulator listening on [bold]{running.base_url}[/]", soft_wrap=True)
        stdout.print(
            f"{len(truth.stations)} stations, {len(truth.samples)} samples ({len(truth.planted)} planted bad) "
            f"up to {simulator.end:%Y-%m-%d %H:%M}Z; send the key in X-Api-Key. Ctrl-C stops.",
            soft_wrap=True,
        )
        sys.stdout.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            stdout.print("stopped")
