"""Alerts for people: which changes of a dataset are worth a message in a WeCom group, and how they read.

A renderer is registered per dataset with ``@alert_renderer("<dataset key>")`` in a module of
``exchange.webhooks.alert_kinds`` (one module per kind: device offline today; flood warnings, water-quality class
drops and stale datasets join the same way). Modules there are found, not listed, as quality rules are. A renderer
gets the rows a change event carried, as they are now, and returns the alerts they raise: most changes raise
none. A row is passed only if the subscriber's grant lets it see the row, so an alert never tells of a row
outside the subscriber's filter.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

import exchange.webhooks.alert_kinds

__all__ = [
    "Alert",
    "AlertRenderer",
    "ChangedRow",
    "alert_datasets",
    "alert_renderer",
    "beijing_time",
    "render_alerts",
    "stale_alert",
]

Severity = Literal["warning", "info", "comment"]
"""WeCom markdown's three font colours: warning (orange-red), info (green), comment (grey)."""

_BEIJING = timezone(timedelta(hours=8), "Beijing")


@dataclass(frozen=True)
class ChangedRow:
    """One changed row: its operation (insert or update) and the row as it is now."""

    op: str
    row: Mapping[str, object]


@dataclass(frozen=True)
class Alert:
    """One alert: a coloured title and a few quoted lines, readable on a phone."""

    severity: Severity
    title: str
    lines: tuple[str, ...] = ()

    def markdown(self) -> str:
        head = f'### <font color="{self.severity}">{self.title}</font>'
        return "\n".join([head, *(f"> {line}" for line in self.lines)])


AlertRenderer = Callable[[Sequence[ChangedRow]], list[Alert]]
_RENDERERS: dict[str, AlertRenderer] = {}
_loaded = False


def alert_renderer(dataset: str) -> Callable[[AlertRenderer], AlertRenderer]:
    """Register the renderer of ``dataset``'s alerts; one per dataset (a second is a mistake, refused)."""

    def register(renderer: AlertRenderer) -> AlertRenderer:
        if dataset in _RENDERERS and _RENDERERS[dataset] is not renderer:
            raise ValueError(f"{dataset} already has an alert renderer: {_RENDERERS[dataset].__qualname__}")
        _RENDERERS[dataset] = renderer
        return renderer

    return register


def render_alerts(dataset: str, rows: Sequence[ChangedRow]) -> list[Alert]:
    """The alerts ``rows`` of ``dataset`` raise; none when the dataset has no renderer."""
    _load()
    renderer = _RENDERERS.get(dataset)
    return [] if renderer is None or not rows else renderer(rows)


def alert_datasets() -> set[str]:
    """Every dataset some renderer is registered for (a test holds each to a registered contract)."""
    _load()
    return set(_RENDERERS)


def stale_alert(dataset: str, detail: Mapping[str, object]) -> Alert:
    """A dataset whose source has not published within its expected interval (``exchange.freshness``)."""
    last = detail.get("last_run_at")
    interval = detail.get("expected_interval_s")
    minutes = f"{float(interval) / 60:g}" if isinstance(interval, int | float) else "—"
    return Alert(
        "warning",
        f"数据过期：{dataset}",
        (
            f"来源 {detail.get('source', '—')} 应每 {minutes} 分钟发布一次",
            f"最后发布 {beijing_time(datetime.fromisoformat(last) if isinstance(last, str) else None)}（北京时间）",
        ),
    )


def beijing_time(value: object) -> str:
    """A stored UTC time as people in the bureau read it: Beijing time, to the minute."""
    if not isinstance(value, datetime):
        return "—"
    return value.astimezone(_BEIJING).strftime("%Y-%m-%d %H:%M")


def _load() -> None:
    global _loaded
    if _loaded:
        return
    package = exchange.webhooks.alert_kinds
    for info in sorted(pkgutil.iter_modules(package.__path__, prefix=f"{package.__name__}."), key=lambda i: i.name):
        importlib.import_module(info.name)
    _loaded = True
