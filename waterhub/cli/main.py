"""Entry point of the ``waterhub`` command: assembles the noun groups and the consumer commands."""

from __future__ import annotations

import typer

from waterhub.cli import broker, consume, contracts, demo, simulate

app = typer.Typer(
    name="waterhub",
    help="waterhub: pull, check, publish and share water-affairs data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(contracts.app, name="contracts")
app.add_typer(simulate.app, name="simulate")
app.command("datasets")(consume.datasets)
app.command("changes")(consume.changes)
app.command("broker")(broker.broker)
app.command("demo")(demo.demo)
