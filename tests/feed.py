"""A test feed: serves whatever records a test puts in it, in a source's envelope, over a real loopback socket.

The simulators imitate their sources and plant known faults; this feed sends records the test chose (hostile ones,
a clock gone wrong), so that they travel the same way a source's do: JSON over HTTP, paged as the stream's
paginator asks, read by the real connector. It answers every stream of a source at the stream's ``path`` with the
records at its ``records_path`` and the total at its paginator's ``total_path``, inside the bureau's envelope
(``{"code": 0, "message": "ok", "data": {"items": [...], "page": n, "page_size": m, "total": N}}``, which the city
platforms share), and issues a token to sources behind OAuth 2.0. A source with another envelope gets its own here
when it is registered.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from connectors.http import HttpStream


class Feed:
    """Records per stream, and the raw body to answer instead for a stream whose page must be broken."""

    def __init__(self, streams: Iterable[HttpStream]) -> None:
        self.streams = tuple(streams)
        self._by_path = {stream.path: stream for stream in self.streams}
        self._records: dict[str, list[object]] = {}
        self._bodies: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def put(self, stream: str, records: Sequence[object]) -> None:
        """What ``stream`` serves from now on (replacing what it served), in feed order."""
        with self._lock:
            self._records[stream] = list(records)
            self._bodies.pop(stream, None)

    def put_body(self, stream: str, body: bytes) -> None:
        """Answer every page of ``stream`` with ``body`` as it is."""
        with self._lock:
            self._bodies[stream] = body

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on an OS-chosen loopback port in a background thread; yields the base URL."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            self._app(), log_config=None, access_log=False, lifespan="off", ws="none", loop="asyncio"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="test-feed", daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("the test feed did not start")
            time.sleep(0.01)
        host, port = sock.getsockname()[:2]
        try:
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            sock.close()

    def _app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/oauth/token")
        def token() -> Response:
            """Sources behind OAuth 2.0 client credentials (the city platforms) get a token; the feed checks none."""
            body = {"access_token": "feed-token", "token_type": "Bearer", "expires_in": 3600}
            return Response(content=json.dumps(body), media_type="application/json")

        @app.get("/{path:path}")
        def page(path: str, request: Request) -> Response:
            stream = self._by_path.get(request.url.path)
            if stream is None:
                return Response(status_code=404)
            return Response(content=self._page(stream, dict(request.query_params)), media_type="application/json")

        return app

    def _page(self, stream: HttpStream, query: dict[str, str]) -> bytes:
        paginator = stream.paginator
        number = int(query.get(paginator.page_param, "1"))
        size = int(query.get(paginator.size_param, str(paginator.size)))
        with self._lock:
            if stream.name in self._bodies:
                return self._bodies[stream.name]
            records = self._records.get(stream.name, [])
        body: dict[str, Any] = {"code": 0, "message": "ok"}
        _put(body, stream.records_path, records[(number - 1) * size : number * size])
        parent = stream.records_path.rpartition(".")[0]
        _put(body, f"{parent}.page" if parent else "page", number)
        _put(body, f"{parent}.page_size" if parent else "page_size", size)
        if paginator.total_path is not None:
            _put(body, paginator.total_path, len(records))
        return wire(body)


def wire(value: object) -> bytes:
    """JSON as a source sends it: UTF-8, text unescaped, NaN and Infinity as bare tokens, and a lone surrogate as its
    escape (the only way JSON can carry one)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "backslashreplace")


def _put(body: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    for step in parents:
        body = body.setdefault(step, {})
    body[last] = value
