"""``waterhub devices …``: the device registry's credentials, and the broker's password file written from it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from waterhub.cli.hub import migrated_hub
from waterhub.cli.output import emit_json, fail, stdout

__all__ = ["app", "password_file", "rotate"]

app = typer.Typer(help="Devices of the registry: their broker credentials.", no_args_is_help=True)
PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        help="Mosquitto's password file to rewrite from the registry (other users' lines are kept)",
        dir_okay=False,
    ),
]


@app.command("rotate")
def rotate(
    device_id: Annotated[str, typer.Argument(help="The device's id (its MQTT user name)")],
    password_file: PasswordFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")] = False,
) -> None:
    """Give a device a new password and print it once: only its hash is stored. With ``--password-file`` the
    broker's file is rewritten too; send Mosquitto SIGHUP to make the old password stop working."""
    from exchange.gateway.registry import rotate_credential, write_password_file

    engine = migrated_hub()
    try:
        with engine.begin() as conn:
            secret = rotate_credential(conn, device_id)
            written = None if password_file is None else write_password_file(conn, password_file)
    except KeyError as exc:
        raise fail(str(exc.args[0]), "waterhub devices rotate <device id of a registered device>") from exc
    if as_json:
        emit_json({"device_id": device_id, "password": secret, "password_file": written is not None})
        return
    stdout.print(f"New password of device {device_id} (shown only this once; give it to the device):")
    stdout.print(secret, soft_wrap=True, highlight=False)
    if password_file is not None:
        stdout.print(f"{password_file} rewritten ({written} device lines); send Mosquitto SIGHUP to load it.")


@app.command("password-file")
def password_file(
    path: Annotated[
        Path, typer.Argument(help="Mosquitto's password file (other users' lines are kept)", dir_okay=False)
    ],
) -> None:
    """Rewrite the broker's password file from the registry; send Mosquitto SIGHUP to load it."""
    from exchange.gateway.registry import write_password_file

    with migrated_hub().begin() as conn:
        written = write_password_file(conn, path)
    stdout.print(f"{path} rewritten ({written} device lines); send Mosquitto SIGHUP to load it.")
