"""Entry point of the ``waterhub`` command: assembles the noun groups."""

from __future__ import annotations

import typer

from waterhub.cli import contracts

app = typer.Typer(
    name="waterhub",
    help="waterhub: pull, check, publish and share water-affairs data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(contracts.app, name="contracts")
