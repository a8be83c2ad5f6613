"""``waterhub demo``: the main job end to end on embedded defaults (what `make demo` runs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from waterhub.cli.output import fail, print_table, stdout
from waterhub.settings import Settings

if TYPE_CHECKING:
    from waterhub.demo import SourceRun

__all__ = ["demo"]


def demo(seed: Annotated[int, typer.Option(help="Seed of the simulated sources' data")] = 7) -> None:
    """Every source's simulator → its Airflow DAG → contracts and quality → publish → events and snapshot, then a
    summary per source."""
    from waterhub.demo import run_demo
    from waterhub.local_airflow import AirflowRunError

    settings = Settings()
    try:
        report = run_demo(settings, seed=seed, console=stdout)
    except AirflowRunError as exc:
        raise fail(str(exc), "the full Airflow log is in the file named above") from exc
    for run in report.runs:
        _print_run(run)
    if report.derived:
        print_table(
            "Derived datasets",
            ["derivation", "run", "dataset", "rows", "change-log seq"],
            [
                [
                    d.derivation,
                    d.run_id,
                    d.dataset,
                    d.rows,
                    _seq_range({"first_seq": d.first_seq, "last_seq": d.last_seq}),
                ]
                for d in report.derived
            ],
        )
    if report.events:
        print_table(
            f"Change events received: {len(report.events)} of {len(report.expected_event_ids)} sent",
            ["dataset", "seq", "inserted", "updated", "deleted", "event id"],
            [
                [e.dataset, f"{e.first_seq}..{e.last_seq}", e.inserted, e.updated, e.deleted, e.event_id]
                for e in report.events
            ],
        )
    else:
        stdout.print(f"Change events: {len(report.expected_event_ids)} sent, {len(report.events)} received")
    stdout.print(f"Airflow's logs: {', '.join(str(run.airflow_log) for run in report.runs)}")
    stdout.print(
        "Next: [bold]waterhub datasets[/] · [bold]waterhub changes hydrology.river --since 0[/]"
        " · [bold]waterhub changes water_quality.daily_classes --since 0[/]"
    )
    if {e.event_id for e in report.events} != report.expected_event_ids:
        raise fail("not every change event reached the subscriber", "check the broker named by WATERHUB_MQTT_URL")


def _print_run(run: SourceRun) -> None:
    """One source's run: per dataset what was fetched, kept, quarantined and changed; reasons; snapshots."""
    streams: dict[str, dict[str, Any]] = run.manifest["streams"]
    print_table(
        f"{run.source}: run {run.run_id}",
        [
            "dataset",
            "fetched",
            "valid",
            "quarantined",
            "values withheld",
            "inserted",
            "updated",
            "unchanged",
            "stale",
            "change-log seq",
        ],
        [
            [
                entry["dataset"],
                entry["fetched"],
                entry["valid"],
                entry["quarantined"],
                entry["withheld"],
                entry["inserted"],
                entry["updated"],
                entry["unchanged"],
                entry["stale"],
                _seq_range(entry),
            ]
            for entry in streams.values()
        ],
    )
    reasons = [[e["dataset"], reason, count] for e in streams.values() for reason, count in e["reasons"].items()]
    if reasons:
        print_table(f"{run.source}: quarantined by reason", ["dataset", "reason", "records"], reasons)
    for entry in streams.values():
        made = "written" if entry.get("snapshot_created") else "already there"
        line = f"Snapshot of {entry['dataset']} at seq {entry['snapshot_seq']} ({made}): {entry['snapshot']}"
        stdout.print(line, soft_wrap=True)


def _seq_range(entry: dict[str, Any]) -> str:
    if entry.get("first_seq") is None:
        return "no change"
    return f"{entry['first_seq']}..{entry['last_seq']}"
