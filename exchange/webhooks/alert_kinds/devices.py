"""A telemetry device going offline, or coming back (``devices.status``, published by the gateway)."""

from __future__ import annotations

from collections.abc import Sequence

from exchange.webhooks.alerts import Alert, ChangedRow, alert_renderer, beijing_time

__all__ = ["device_state_alerts"]


@alert_renderer("devices.status")
def device_state_alerts(rows: Sequence[ChangedRow]) -> list[Alert]:
    """Offline is a warning; back online closes it. A device first published as online raises nothing."""
    alerts = []
    for changed in rows:
        row = changed.row
        where = f"站点 {row.get('station_code')} · {row.get('protocol')}"
        if row.get("state") == "offline":
            alerts.append(
                Alert(
                    "warning",
                    f"设备离线：{row.get('device_id')}",
                    (where, f"最后上报 {beijing_time(row.get('last_seen_at'))}（北京时间）"),
                )
            )
        elif changed.op == "update" and row.get("state") == "online":
            alerts.append(
                Alert(
                    "info",
                    f"设备恢复：{row.get('device_id')}",
                    (where, f"恢复上报 {beijing_time(row.get('last_seen_at'))}（北京时间）"),
                )
            )
    return alerts
