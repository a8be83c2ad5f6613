"""``waterhub doctor``: is every component this hub is configured with up, and if not, what to do about it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from waterhub.cli.output import emit_json, print_table
from waterhub.settings import Settings

__all__ = ["doctor"]


def doctor(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")] = False) -> None:
    """Check the database, the broker, the object store and Airflow as configured; exit 1 if any fails."""
    from waterhub.doctor import diagnose

    findings = diagnose(Settings())
    if as_json:
        emit_json([asdict(finding) for finding in findings])
    else:
        print_table(
            "waterhub doctor",
            ["component", "status", "detail", "fix"],
            [[f.component, f.status.upper() if f.status == "fail" else f.status, f.detail, f.fix] for f in findings],
        )
    if any(finding.status == "fail" for finding in findings):
        raise typer.Exit(code=1)
