"""``/metrics`` of the consumer API: its own request counters and latencies, and whatever collectors it is given
(the hub's dataset-level figures, ``exchange.metrics.HubCollector``). No token: like ``/healthz``, it is for the
operator's Prometheus; keep the port off the public network or put it behind the proxy's allow-list."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.registry import Collector

__all__ = ["install_metrics"]

_Scope = dict[str, Any]


def install_metrics(app: FastAPI, collectors: Sequence[Collector]) -> CollectorRegistry:
    """Count every request by method, route template and status, time it to its first byte, and serve the
    registry (the app's own, so two apps in one process never share counters) at ``/metrics``."""
    registry = CollectorRegistry()
    for collector in collectors:
        registry.register(collector)
    requests = Counter("waterhub_api_requests", "Requests answered", ["method", "route", "status"], registry=registry)
    latency = Histogram("waterhub_api_request_seconds", "Time to the answer's first byte", ["route"], registry=registry)
    app.add_middleware(_RequestMetrics, requests=requests, latency=latency)

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:  # a plain def: collectors query the database, so FastAPI runs it in a thread
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return registry


class _RequestMetrics:
    """Plain ASGI (no response buffering): a streamed answer of a million rows passes straight through."""

    def __init__(self, app: Any, *, requests: Counter, latency: Histogram) -> None:
        self.app = app
        self.requests = requests
        self.latency = latency

    async def __call__(self, scope: _Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] == "/metrics":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.latency.labels(_route(scope)).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.requests.labels(scope["method"], _route(scope), str(status)).inc()


def _route(scope: _Scope) -> str:
    """The route's template (``/datasets/{key}/rows``), never the path itself: one label per route, not per key."""
    route = scope.get("route")
    return str(getattr(route, "path", "unmatched"))
