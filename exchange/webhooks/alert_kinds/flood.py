"""Flood-warning alerts opening, closing or being withdrawn (``hydrology.flood_alerts``, a derived dataset).

An alert row is inserted when it opens and updated as readings arrive; only its opening and its end are worth a
message in the duty group, not every new reading while it is open. Rows come as they are now, so an alert that
opened and closed between two deliveries arrives as one insert already closed: it is told once, as ended. A late
correction to an alert already closed (a higher peak) tells its end again, with the corrected figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from exchange.webhooks.alerts import Alert, ChangedRow, alert_renderer, beijing_time

__all__ = ["flood_alerts"]

_KINDS = {"wrz": ("超警戒水位", "警戒水位"), "grz": ("超保证水位", "保证水位"), "fsltdz": ("超汛限水位", "汛限水位")}
"""threshold_kind → (what the alert is called, what the threshold is called), as duty officers say them."""


@alert_renderer("hydrology.flood_alerts")
def flood_alerts(rows: Sequence[ChangedRow]) -> list[Alert]:
    """Opening is a warning; closing is good news; a withdrawal (a correction removed the exceedance) is grey."""
    alerts = []
    for changed in rows:
        row = changed.row
        name, threshold_name = _KINDS.get(str(row.get("threshold_kind")), ("超警", "阈值"))
        station = f"{row.get('stnm') or '站点'}（{row.get('stcd')}）"
        threshold = f"{threshold_name} {_metres(row.get('threshold'))}"
        status = row.get("status")
        if status == "open" and changed.op == "insert":
            alerts.append(
                Alert(
                    "warning",
                    f"{name}：{station}",
                    (
                        f"开始 {beijing_time(row.get('first_over_at'))}（北京时间），"
                        f"水位 {_metres(row.get('opened_level'))}",
                        f"{threshold}，超出 {_excess(row, 'opened_level')}",
                    ),
                )
            )
        elif status == "closed":
            alerts.append(
                Alert(
                    "info",
                    f"{name}解除：{station}",
                    (
                        f"{beijing_time(row.get('first_over_at'))} 至 {beijing_time(row.get('closed_at'))}（北京时间）",
                        f"峰值 {_metres(row.get('peak_level'))}（超出 {_excess(row, 'peak_level')}），"
                        f"{beijing_time(row.get('peak_at'))}",
                        f"{threshold}，回落后已持续一小时不超",
                    ),
                )
            )
        elif status == "withdrawn":
            alerts.append(
                Alert(
                    "comment",
                    f"{name}撤销：{station}",
                    (f"{beijing_time(row.get('first_over_at'))} 的超限读数已被更正，{threshold}",),
                )
            )
    return alerts


def _metres(value: object) -> str:
    return f"{value:.2f} m" if isinstance(value, int | float) else "—"


def _excess(row: Mapping[str, object], level: str) -> str:
    value, threshold = row.get(level), row.get("threshold")
    if not isinstance(value, int | float) or not isinstance(threshold, int | float):
        return "—"
    return f"{value - threshold:.2f} m"
