"""``waterhub datasets`` and ``waterhub changes``: what a consuming department sees of the shared dataset."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from exchange.errors import UnknownDatasetError
from waterhub.cli.hub import database_caption, existing_hub
from waterhub.cli.output import emit_json, fail, print_table, shown
from waterhub.settings import Settings

if TYPE_CHECKING:
    from exchange.freshness import Freshness

__all__ = ["changes", "datasets"]

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


def datasets(as_json: JsonFlag = False) -> None:
    """Every published dataset: contract version, rows, last sequence, last publish, quarantined records, and
    whether its source publishes on time (stale: nothing for STALE_AFTER_INTERVALS of its schedule)."""
    from exchange.consumer import list_datasets
    from waterhub.freshness import check_freshness

    settings = Settings()
    engine = existing_hub(settings)
    summaries = list_datasets(engine)
    now = datetime.now(UTC)
    freshness = {f.dataset: f for f in check_freshness(engine, settings, now=now, raise_events=False)}
    if as_json:
        emit_json([asdict(summary) | _freshness_fields(freshness.get(summary.key)) for summary in summaries])
        return
    print_table(
        "Datasets",
        ["dataset", "contract", "rows", "last seq", "last published (UTC)", "quarantined", "source runs"],
        [
            [
                s.key,
                s.contract_version,
                s.rows,
                s.last_seq,
                s.last_published_at,
                s.quarantined,
                _runs(freshness, s.key),
            ]
            for s in summaries
        ],
        caption=database_caption(engine),
    )


def _freshness_fields(found: Freshness | None) -> dict[str, object]:
    if found is None:
        return {"stale": None, "last_run_at": None}
    return {"stale": found.stale, "last_run_at": found.last_run_at}


def _runs(freshness: Mapping[str, Freshness], key: str) -> str:
    """``stale`` or ``on time``, with the source's last run and how often it should run; blank for a dataset no
    scheduled source publishes (the device gateway's)."""
    found = freshness.get(key)
    if found is None or found.expected_interval is None:
        return ""
    if found.last_run_at is None:
        return "never run"
    state = "STALE" if found.stale else "on time"
    return f"{state}: last {shown(found.last_run_at)}, every {found.expected_interval}"


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
