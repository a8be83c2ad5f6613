"""Entry point of the ``waterhub`` command: assembles the noun groups and the consumer commands.

``run`` is the process boundary (STYLE rules 11, 16): an error a command did not turn into a message itself is
printed as one line and a hint, with exit code 1; the traceback only with ``--debug``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from waterhub.cli import (
    access,
    backup,
    broker,
    consume,
    contracts,
    decode,
    deliver,
    demo,
    devices,
    doctor,
    gateway,
    quarantine,
    serve,
    sharing,
    simulate,
    stack,
)
from waterhub.cli.output import fail, one_line
from waterhub.logs import configure_logging

__all__ = ["app", "run"]

app = typer.Typer(
    name="waterhub",
    help="waterhub: pull, check, publish and share water-affairs data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(contracts.app, name="contracts")
app.add_typer(simulate.app, name="simulate")
app.add_typer(decode.app, name="decode")
app.add_typer(access.departments_app, name="departments")
app.add_typer(access.tokens_app, name="tokens")
app.add_typer(devices.app, name="devices")
app.add_typer(serve.app, name="serve")
app.add_typer(sharing.app, name="sharing")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(stack.app, name="stack")
app.command("datasets")(consume.datasets)
app.command("changes")(consume.changes)
app.command("broker")(broker.broker)
app.command("demo")(demo.demo)
app.command("gateway")(gateway.gateway)
app.command("deliver")(deliver.deliver)
app.command("doctor")(doctor.doctor)
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)

_DEBUG = "--debug"


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option(_DEBUG, help="Show INFO/DEBUG logs and full tracebacks")] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="Logs as JSON lines on stderr")] = False,
) -> None:
    """waterhub: pull, check, publish and share water-affairs data."""
    configure_logging(debug=debug, as_json=log_json)


def run() -> None:
    """The ``waterhub`` console script."""
    try:
        app()
    except Exception as exc:
        if _DEBUG in sys.argv[1:]:
            raise
        advice = getattr(exc, "hint", None)
        hint = (
            f"{advice}; rerun with {_DEBUG} for the traceback" if advice else f"rerun with {_DEBUG} for the traceback"
        )
        raise SystemExit(fail(f"{type(exc).__name__}: {one_line(str(exc))}", hint).exit_code) from exc
