"""The river-chief DAG's ``push_to_province`` step: report the city's handled problems up to the province.

It runs in the source's own DAG after every publish (declared as an ``after_publish`` step in ``sources.toml``), not
in a DAG of its own scheduled on the problems' Asset: a report that failed must be sent again by the next run even
when no problem changed since. A failed report fails the task once every other report was tried, so Airflow retries
it and the operator sees it; the reports acknowledged meanwhile stay acknowledged (``exchange.province_reports``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from connectors.errors import SourceUnavailableError
from connectors.river_chief.reports import ProvinceReporter
from connectors.river_chief.settings import RiverChiefSourceSettings
from exchange.province_reports import report_handled_problems

if TYPE_CHECKING:
    from waterhub.pipeline import Pipeline

__all__ = ["push_to_province"]


def push_to_province(pipeline: Pipeline, now: datetime | None = None) -> dict[str, int]:
    """Send every report the province has not acknowledged yet; counts of sent, unchanged and failed reports."""
    block = pipeline.settings.source_settings(pipeline.source_name, RiverChiefSourceSettings)
    with ProvinceReporter(block, pipeline.settings.http) as reporter:
        run = report_handled_problems(
            pipeline.engine, reporter.send, city_division=block.city_division, now=now or datetime.now(UTC)
        )
    if run.failed:
        raise SourceUnavailableError(
            f"river_chief/reports: {run.failed} of {run.failed + run.sent} report(s) to the province failed; they "
            f"stay unacknowledged in province_reports and are sent again by the next run. First error: {run.errors[0]}",
            stream="river_chief/reports",
        )
    return run.counts()
