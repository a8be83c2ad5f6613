"""``waterhub quarantine list|show|replay``: why records were held back, and, after a contract or connector fix,
their replay through the same validate and publish as any run.

Replay stages the held records of one dataset as a batch of their own (``Pipeline.stage_replay``) and runs
validate → publish → snapshot on it: there is no second write path. What passes is published and leaves quarantine
in the publish transaction; what is still refused stays, with the reasons it is refused for today. Replaying again
finds only those. The change events wait in the outbox for the next run's notify (or ``--notify`` sends them now).

Only records an HTTP source's runs quarantined can be replayed (raw records its stream reads again). What the device
gateway quarantined is listed and shown only: raw frames under ``devices.<protocol>`` and device readings refused
under a dataset; a device resends, and a frame decoded again after a fix is the gateway's to take in.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from waterhub.cli.hub import database_caption, existing_hub
from waterhub.cli.output import emit_json, fail, print_table, stdout
from waterhub.settings import Settings
from waterhub.sources import declared_sources

__all__ = ["app", "list_records", "replay", "show"]

app = typer.Typer(help="Records quality held back: why, and their replay after a fix.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
_SHOWN_PAYLOAD = 80


@app.callback()
def _group() -> None:
    """Records quality held back: why, and their replay after a fix."""


@app.command("list")
def list_records(
    dataset: Annotated[str | None, typer.Option(help="Only this dataset, e.g. water_quality.samples")] = None,
    reason: Annotated[str | None, typer.Option(help="Only records with this reason code, e.g. unknown_station")] = None,
    after: Annotated[int, typer.Option(min=0, help="Only records with a larger id (to page on)")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="At most this many records")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Quarantined records by id: dataset, reasons, contract version, run and the start of the payload."""
    from exchange.quarantine import list_quarantined

    engine = existing_hub()
    found = list_quarantined(engine, dataset=dataset, reason=reason, after_id=after, limit=limit)
    if as_json:
        emit_json([asdict(record) for record in found])
        return
    print_table(
        "Quarantine",
        ["id", "dataset", "reasons", "contract", "run", "quarantined at (UTC)", "payload"],
        [
            [r.id, r.dataset, ", ".join(r.reasons), r.contract_version, r.run_id, r.quarantined_at, _short(r.payload)]
            for r in found
        ],
        caption=database_caption(engine),
    )


@app.command("show")
def show(
    record_id: Annotated[int, typer.Argument(help="The record's id, from `waterhub quarantine list`")],
    as_json: JsonFlag = False,
) -> None:
    """One quarantined record whole: its reasons and the payload as it was received."""
    from exchange.quarantine import quarantined_record

    record = quarantined_record(existing_hub(), record_id)
    if record is None:
        raise fail(f"no quarantined record {record_id}", "`waterhub quarantine list` shows the ids held now")
    if as_json:
        emit_json(asdict(record))
        return
    for label, value in [
        ("id", record.id),
        ("dataset", record.dataset),
        ("reasons", ", ".join(record.reasons)),
        ("contract", record.contract_version),
        ("run", record.run_id),
        ("batch", record.batch_id),
        ("quarantined at", record.quarantined_at.isoformat()),
    ]:
        stdout.print(f"[bold]{label}:[/] {value}", highlight=False, soft_wrap=True)
    stdout.print("[bold]payload:[/]")
    stdout.print(_pretty(record.payload), highlight=False, soft_wrap=True, markup=False)


@app.command("replay")
def replay(
    dataset: Annotated[str, typer.Argument(help="The dataset whose held records to replay")],
    ids: Annotated[list[int] | None, typer.Option("--id", help="Only this record (repeat for several)")] = None,
    reason: Annotated[str | None, typer.Option(help="Only records held for this reason code")] = None,
    notify: Annotated[bool, typer.Option(help="Send the change events now rather than with the next run")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run held records through validate → publish again (after a contract or connector fix)."""
    from waterhub.pipeline import Pipeline

    source = _source_of(dataset)
    settings = Settings()
    existing_hub(settings).dispose()  # a replay on a hub that does not exist finds nothing: say so instead
    pipeline = Pipeline(settings, source)
    batch_id = pipeline.stage_replay(dataset, ids=ids, reason=reason)
    if batch_id is None:
        raise fail(
            f"nothing to replay: no record of {dataset} quarantined by {source}'s runs matches",
            "`waterhub quarantine list --dataset ...` shows what is held",
        )
    validated = pipeline.validate(batch_id)
    published = pipeline.publish(batch_id)
    if notify:
        pipeline.notify(batch_id)
    pipeline.snapshot(batch_id)
    counts = {
        "replayed": sum(entry["valid"] + entry["quarantined"] for entry in validated.values()),
        "quarantined_again": sum(entry["quarantined"] for entry in validated.values()),
        **{key: sum(entry.get(key, 0) for entry in published.values()) for key in _PUBLISHED},
    }
    reasons: dict[str, int] = {
        reason: count
        for entry in pipeline.manifest(batch_id)["streams"].values()
        for reason, count in entry["reasons"].items()
    }
    if as_json:
        emit_json({"batch_id": batch_id, **counts, "reasons": reasons})
        return
    print_table(
        f"Replay of {dataset} (batch {batch_id})",
        ["what", "records"],
        [[key, count] for key, count in counts.items()]
        + [[f"still held: {reason}", count] for reason, count in sorted(reasons.items())],
        caption=None if notify else "change events wait in the outbox for the next run's notify",
    )


_PUBLISHED = ("inserted", "updated", "unchanged", "stale")


def _source_of(dataset: str) -> str:
    """The declared source whose stream publishes ``dataset``; device quarantine is refused with the reason."""
    for name, declaration in declared_sources().items():
        if dataset in declaration.datasets:
            return name
    if dataset.startswith("devices."):
        raise fail(
            f"{dataset} holds raw device frames, which replay does not decode again",
            "list and show them; after fixing the device or its registration, its next resend is taken in",
        )
    known = ", ".join(dataset for declaration in declared_sources().values() for dataset in declaration.datasets)
    raise fail(f"no source publishes {dataset}", f"replay one of {known}")


def _short(payload: str) -> str:
    return payload if len(payload) <= _SHOWN_PAYLOAD else f"{payload[:_SHOWN_PAYLOAD]}…"


def _pretty(payload: str) -> str:
    try:
        return json.dumps(json.loads(payload, parse_constant=str), ensure_ascii=False, indent=2)
    except ValueError:
        return payload
