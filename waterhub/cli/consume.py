"""``waterhub datasets`` and ``waterhub changes``: what a consuming department sees of the shared dataset."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from exchange.errors import UnknownDatasetError
from waterhub.cli.hub import database_caption, existing_hub
from waterhub.cli.output import emit_json, fail, print_table

__all__ = ["changes", "datasets"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


def datasets(as_json: JsonFlag = False) -> None:
    """Every published dataset: contract version, rows, last sequence, last publish, quarantined records."""
    from exchange.consumer import list_datasets

    engine = existing_hub()
    summaries = list_datasets(engine)
    if as_json:
        emit_json([asdict(summary) for summary in summaries])
        return
    print_table(
        "Datasets",
        ["dataset", "contract", "rows", "last seq", "last published (UTC)", "quarantined"],
        [[s.key, s.contract_version, s.rows, s.last_seq, s.last_published_at, s.quarantined] for s in summaries],
        caption=database_caption(engine),
    )


def changes(
    dataset: Annotated[str, typer.Argument(help="Dataset key, e.g. water_quality.samples")],
    since: Annotated[int, typer.Option(help="Show entries after this sequence number (0 to 2^63-1)")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many entries (1 to 100,000)")] = 1000,
    as_json: JsonFlag = False,
) -> None:
    """The change log of one dataset after sequence SINCE, oldest first: resume from the last seq you saw."""
    from exchange.consumer import changes_since

    try:
        entries = changes_since(existing_hub(), dataset, since, limit=limit)
    except UnknownDatasetError as exc:
        raise fail(str(exc), "run `waterhub datasets` to see what is published") from exc
    except ValueError as exc:
        raise fail(str(exc), "resume from the last seq you processed; `waterhub datasets` shows each last seq") from exc
    if as_json:
        emit_json([asdict(entry) for entry in entries])
        return
    print_table(
        f"Changes of {dataset} after seq {since}",
        ["seq", "op", "key", "contract", "run", "changed at (UTC)"],
        [[e.seq, e.op, ", ".join(map(str, e.key)), e.contract_version, e.run_id, e.changed_at] for e in entries],
    )
