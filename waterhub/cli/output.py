"""How every command talks: JSON on stdout for machines, rich tables for people, errors with a hint on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["emit_json", "fail", "one_line", "print_table", "shown", "stderr", "stdout"]

# Piped into a file or a CI log there is no terminal width to honour, and 80 columns would fold every table.
stdout = Console(width=None if sys.stdout.isatty() else 140)
stderr = Console(stderr=True)


def emit_json(value: object) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=_json_default))


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def shown(value: object) -> str:
    """A cell as people read it: an aware time to the second in UTC, nothing for None."""
    if value is None:
        return ""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


def one_line(text: str, limit: int = 400) -> str:
    """An error as one line: a driver's message spans lines (the SQL, a "HINT:"), and a command answers in one;
    ``--debug`` shows the rest."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= limit else f"{first[:limit]}…"


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], caption: str | None = None
) -> None:
    table = Table(title=title, caption=caption)
    for position, column in enumerate(columns):
        table.add_column(column, no_wrap=position == 0)
    for row in rows:
        table.add_row(*(shown(cell) for cell in row))
    stdout.print(table)


def fail(message: str, hint: str) -> typer.Exit:
    """Print what went wrong and what to do, each on one line however long (a log collector or ``grep`` reads them
    whole); the caller raises the returned exit."""
    stderr.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True, highlight=False)
    stderr.print(f"[dim]hint:[/] {hint}", soft_wrap=True, highlight=False)
    return typer.Exit(code=1)
