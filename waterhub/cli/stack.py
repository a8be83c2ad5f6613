"""``waterhub stack up|down``: the production-like stack on this machine (``make stack`` / ``make stack-stop``)."""

from __future__ import annotations

import typer

from waterhub.cli.output import fail, stdout
from waterhub.settings import Settings

__all__ = ["app", "down", "up"]

app = typer.Typer(
    help="Airflow with Celery workers, S3 store and live simulator on this machine.", no_args_is_help=True
)


@app.callback()
def _group() -> None:
    """Airflow with Celery workers, S3 store and live simulator on this machine."""


@app.command("up")
def up() -> None:
    """Start the stack (WATERHUB_STACK__* settings) and wait until every part answers."""
    from waterhub.stack.launcher import Stack, StackError

    stack = Stack(Settings().stack)
    try:
        stack.up()
    except StackError as exc:
        raise fail(str(exc), "`make stack-stop` stops what is left; the logs are under the stack's state_dir") from exc
    stdout.print(f"stack up: Airflow {stack.api_url} (user admin, password in {stack.state_dir / 'secrets.json'})")
    stdout.print(f"hub settings for `waterhub` commands: set -a; . {stack.state_dir / 'hub.env'}; set +a")
    stdout.print(f"logs: {stack.processes.log_dir}; stop with `make stack-stop`")


@app.command("down")
def down() -> None:
    """Stop every process the stack started (its pid files), and nothing else."""
    from waterhub.stack.launcher import Stack

    stopped = Stack(Settings().stack).down()
    stdout.print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
