"""How every command talks: JSON on stdout for machines, rich tables for people, errors with a hint on stderr."""

from __future__ import annotations

import json
from collections.abc import Sequence

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["emit_json", "fail", "print_table", "stderr", "stdout"]

stdout = Console()
stderr = Console(stderr=True)


def emit_json(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    stdout.print(table)


def fail(message: str, hint: str) -> typer.Exit:
    """Print what went wrong and what to do; the caller raises the returned exit."""
    stderr.print(f"[bold red]error:[/] {message}")
    stderr.print(f"[dim]hint:[/] {hint}")
    return typer.Exit(code=1)
