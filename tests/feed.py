"""A test feed: serves whatever records a test puts in it, in a source's envelope, over a real loopback socket.

The simulators imitate their sources and plant known faults; this feed sends records the test chose (hostile ones,
a clock gone wrong), so that they travel the same way a source's do: JSON over HTTP, paged as the stream's
paginator asks, read by the real connector. It answers every stream of a source at the stream's ``path`` with the
records at its ``records_path`` and the total at its paginator's ``total_path``, inside an envelope both sources
take (``{"code": 0, "message": "ok", "success": true, "data": {"items": [...], "page": n, "page_size": m, "total":
N}}``); with a cursor-token paginator, the next offset as the token. A child stream (``/problems/{problem_id}/steps``)
serves, per context, the records whose context fields match it (``matches``). Any POST is a token endpoint that
hands out a bearer token, for sources behind OAuth2; the feed checks no credentials.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from connectors.http import CursorTokenPaginator, HttpStream, PageNumberPaginator


class Feed:
    """Records per stream, and the raw body to answer instead for a stream whose page must be broken."""

    def __init__(self, streams: Iterable[HttpStream]) -> None:
        self.streams = tuple(streams)
        self._by_path = [(_path_pattern(stream.path), stream) for stream in self.streams]
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

        @app.get("/{path:path}")
        def page(path: str, request: Request) -> Response:
            for pattern, stream in self._by_path:
                found = pattern.fullmatch(request.url.path)
                if found is not None:
                    query = dict(request.query_params)
                    content = self._page(stream, {**query, **found.groupdict()})
                    return Response(content=content, media_type="application/json")
            return Response(status_code=404)

        @app.post("/{path:path}")
        def token(path: str) -> Response:
            body = {"access_token": "feed-token", "token_type": "Bearer", "expires_in": 3600}
            return Response(content=json.dumps(body), media_type="application/json")

        return app

    def _page(self, stream: HttpStream, query: dict[str, str]) -> bytes:
        paginator = stream.paginator
        size = int(query.get(getattr(paginator, "size_param", ""), str(paginator.size)))
        with self._lock:
            if stream.name in self._bodies:
                return self._bodies[stream.name]
            records = self._records.get(stream.name, [])
        if stream.parent_keys:
            records = [r for r in records if matches(as_read(r), {k: query[k] for k in stream.parent_keys})]
        body: dict[str, Any] = {"code": 0, "message": "ok", "success": True}
        parent = stream.records_path.rpartition(".")[0]
        if isinstance(paginator, CursorTokenPaginator):
            start = int(query.get(paginator.token_param, "0"))
            if start + size < len(records):
                _put(body, paginator.token_path, str(start + size))
        else:
            assert isinstance(paginator, PageNumberPaginator)
            number = int(query.get(paginator.page_param, "1"))
            start = (number - 1) * size
            _put(body, f"{parent}.page" if parent else "page", number)
            if paginator.total_path is not None:
                _put(body, paginator.total_path, len(records))
        _put(body, stream.records_path, records[start : start + size])
        _put(body, f"{parent}.page_size" if parent else "page_size", size)
        return wire(body)


def matches(record: Mapping[str, object], context: Mapping[str, str]) -> bool:
    """Whether a child record (as read) belongs to a context: each context field holds the context's text."""
    return all(str(record.get(key)) == value for key, value in context.items())


def as_read(record: object) -> Any:
    """The record as the hub decodes it off the wire (NaN and Infinity tokens become text)."""
    return json.loads(wire(record), parse_constant=str)


def _path_pattern(path: str) -> re.Pattern[str]:
    """A stream's path as a pattern: each ``{placeholder}`` matches one decoded path value."""
    parts = re.split(r"\{(\w+)\}", path)
    return re.compile("".join(re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+)" for i, part in enumerate(parts)))


def wire(value: object) -> bytes:
    """JSON as a source sends it: UTF-8, text unescaped, NaN and Infinity as bare tokens, and a lone surrogate as its
    escape (the only way JSON can carry one)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "backslashreplace")


def _put(body: dict[str, Any], path: str, value: object) -> None:
    *parents, last = path.split(".")
    for step in parents:
        body = body.setdefault(step, {})
    body[last] = value
