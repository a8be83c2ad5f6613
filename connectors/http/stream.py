"""Declarative streams and the source that lists them (STYLE sketch A), plus the session that reads them.

A stream is mostly data: ``name``, ``contract`` (which also gives the primary key), ``path``, ``records_path``,
``paginator`` and an optional ``cursor``. Source quirks go in ``post_process``. A ``Source`` holds the base URL,
the auth and its streams; ``Source.connect()`` opens one client for a run and ``SourceSession.read`` walks a
stream's pages. Nothing here knows a particular source.

A child stream declares ``parent = ProblemsStream`` and ``parent_keys = {"problem_id": "id"}``: each record of the
parent gives one *context* (``{"problem_id": "P-17"}``), which fills the placeholders of the child's ``path``
(``/problems/{problem_id}/steps``) and goes as query parameters otherwise (``?station_code=...``: a stream
partitioned per station is the child of the stations stream). Each context is a *partition* with its own
watermark, keyed by ``partition_key(context)``, so one station's late data never holds another's back.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import queue
import re
import string
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import quote, urlencode

import httpx
import structlog

from connectors.errors import SourceDataError
from connectors.http.client import SourceClient, SourceLabel, build_client
from connectors.http.paginators import Paginator, value_at
from contracts.base import Contract
from contracts.types import BEIJING, is_storable_text

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings

__all__ = ["CursorParam", "HttpStream", "Source", "SourceSession", "Tombstone", "partition_key"]

log = structlog.get_logger(__name__)

PAGES_AHEAD = 4
"""Pages a read fetches ahead of its caller: enough to keep the source busy while a part of records is staged,
few enough that memory holds a handful of pages."""


@dataclass(frozen=True)
class CursorParam:
    """An incremental stream: the record field that only grows, and the query parameter that asks for ``>=``.

    Sources in this domain take times in Beijing time without an offset (SL 651, HJ 212, the bureau's API), so
    that is the default rendering. The value is truncated to whole seconds, which only widens an inclusive query.
    """

    field: str
    param: str
    zone: tzinfo = BEIJING
    time_format: str = "%Y-%m-%d %H:%M:%S"

    def render(self, value: datetime) -> str:
        """The parameter value for a watermark; a naive watermark is refused rather than guessed."""
        if value.tzinfo is None:
            raise ValueError(f"{self.param}: the watermark {value!r} is naive; pass an aware (UTC) datetime")
        return value.astimezone(self.zone).strftime(self.time_format)


@dataclass(frozen=True)
class Tombstone:
    """How a source marks a deleted record: ``field`` holding ``value`` (``{"deleted": true}``,
    ``{"status": "removed"}``). A tombstone carries at least the record's key and version."""

    field: str
    value: object

    def matches(self, raw: Mapping[str, object]) -> bool:
        return raw.get(self.field) == self.value


class HttpStream:
    """One endpoint of a source as declarations; subclasses set the class attributes and maybe ``post_process``."""

    name: ClassVar[str]
    contract: ClassVar[type[Contract]]
    path: ClassVar[str]
    records_path: ClassVar[str] = "data.items"
    paginator: Paginator
    cursor: ClassVar[CursorParam | None] = None
    full_refresh: ClassVar[bool] = False
    """The source lists every live record on each read, so a stored record it no longer lists was deleted."""
    tombstone: ClassVar[Tombstone | None] = None
    """How the source marks a record deleted upstream; None when it never sends tombstones."""
    parent: ClassVar[type[HttpStream] | None] = None
    parent_keys: ClassVar[Mapping[str, str]] = {}
    """Context key → the parent record's field it is taken from; each context key is also a field of this
    stream's contract, so a published row tells which partition it came from."""

    def __init__(self, *, page_size: int | None = None) -> None:
        if page_size is not None:
            self.paginator = type(self).paginator.with_size(page_size)
        fields = self.contract.model_fields
        missing = [name for name in (*self.primary_key, *self.parent_keys) if name not in fields]
        if self.cursor is not None and self.cursor.field not in fields:
            missing.append(self.cursor.field)
        if (self.parent is None) != (not self.parent_keys):
            raise TypeError(f"stream {self.name}: a child stream declares both parent and parent_keys")
        if self.full_refresh and (self.cursor is not None or self.parent is not None):
            raise TypeError(f"stream {self.name}: only a stream read whole in one request chain can be full_refresh")
        if missing:
            raise TypeError(f"stream {self.name}: {self.contract.__name__} has no field(s) {', '.join(missing)}")

    @property
    def primary_key(self) -> tuple[str, ...]:
        """From the contract: a stream never declares a second key (STYLE rule 4)."""
        return self.contract.meta.primary_key

    def post_process(self, raw: Mapping[str, object]) -> dict[str, object]:
        """One raw record as a row keyed by contract field names; the default is the record as sent."""
        return dict(raw)

    def context(self, parent_record: Mapping[str, object]) -> dict[str, str] | None:
        """The context one parent record gives this child stream, or None when a key field is missing or is no key
        this stream's contract takes (its pattern, its length, text a database stores): the parent's own quality
        check quarantines such a record, and asking the source for ``/problems/<garbage>/steps`` would fail the run
        on one bad record."""
        values = {key: parent_record.get(field) for key, field in self.parent_keys.items()}
        if any(value is None or isinstance(value, dict | list) for value in values.values()):
            return None
        context = {key: str(value) for key, value in values.items()}
        for key, text in context.items():
            spec = self.contract.field_spec(key)
            too_long = spec.max_length is not None and len(text) > spec.max_length
            unmatched = spec.pattern is not None and re.fullmatch(spec.pattern, text) is None
            if too_long or unmatched or not is_storable_text(text):
                return None
        return context

    def partition_of(self, row: Mapping[str, object]) -> str:
        """The partition a row of this stream belongs to, read off its context fields."""
        if not self.parent_keys:
            return ""
        return partition_key({key: str(row[key]) for key in self.parent_keys})

    def request_for(self, context: Mapping[str, str] | None) -> tuple[str, dict[str, str]]:
        """The path with the context's placeholders filled, and the rest of the context as query parameters."""
        if not context:
            return self.path, {}
        placeholders = {name for _, name, _, _ in string.Formatter().parse(self.path) if name}
        path = self.path.format_map({key: quote(value, safe="") for key, value in context.items()})
        return path, {key: value for key, value in context.items() if key not in placeholders}

    def page_error(self, body: object) -> str | None:
        """Why a page that arrived with 200 is still an error (an error envelope), or None when it is fine."""
        return None

    def records(self, body: object, *, where: str, target: str) -> list[dict[str, object]]:
        """The records of a parsed page, found at ``records_path``; anything but a list of objects is bad data."""
        problem = self.page_error(body)
        if problem is None:
            items = value_at(body, self.records_path)
            if isinstance(items, list) and all(isinstance(item, dict) for item in items):
                return items
            problem = f"no list of records at {self.records_path}"
        raise SourceDataError(
            f"{where}: GET {target} returned a page with {problem}. Nothing was published. Tell the source's owner."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, page_size={self.paginator.size})"


def partition_key(context: Mapping[str, str] | None) -> str:
    """The stored key of a partition: its context as compact JSON with sorted keys; '' for an unpartitioned read."""
    if not context:
        return ""
    return json.dumps(dict(context), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class Source:
    """A source system: where it is, how we authenticate, and its streams (in the order they must be read)."""

    name: ClassVar[str]
    title: ClassVar[str]
    """Who runs the API, as an error message names it ("the bureau's water-quality API")."""

    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth,
        http: HttpClientSettings,
        streams: tuple[HttpStream, ...],
        url_field: str | None = "base_url",
    ) -> None:
        """``url_field`` is the field of the source's settings block holding its address (None if it has none);
        the credential's field comes from ``auth.setting_field``. Errors name exactly these variables."""
        self.base_url = base_url
        self.url_field = url_field
        self.auth = auth
        self.http = http
        self.streams = streams
        for position, stream in enumerate(streams):
            if stream.parent is not None and not any(isinstance(s, stream.parent) for s in streams[:position]):
                raise TypeError(f"source {self.name}: stream {stream.name} must come after its parent stream")

    @property
    def label(self) -> SourceLabel:
        return SourceLabel(
            self.name,
            self.title,
            f"WATERHUB_{self.name.upper()}__",
            url_field=self.url_field,
            credential_field=getattr(self.auth, "setting_field", None),
        )

    def stream(self, name: str) -> HttpStream:
        for stream in self.streams:
            if stream.name == name:
                return stream
        raise KeyError(f"source {self.name} has no stream {name!r}; it has {[s.name for s in self.streams]}")

    def connect(
        self, *, sleep: Callable[[float], None] = time.sleep, now: Callable[[], datetime] | None = None
    ) -> SourceSession:
        """Open one client (auth, User-Agent, timeouts, retries) for a run; use it as a context manager."""
        client = build_client(self.base_url, self.auth, self.http)
        return SourceSession(self, SourceClient(client, self.http, self.label, sleep=sleep, now=now))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, streams={[s.name for s in self.streams]})"


class SourceSession:
    """One open connection to a source for the length of a run."""

    def __init__(self, source: Source, client: SourceClient) -> None:
        self.source = source
        self.client = client

    def __enter__(self) -> SourceSession:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def read(
        self, stream: HttpStream, *, since: datetime | None = None, context: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, object]]:
        """Every record of ``stream`` (of one partition, for a child stream) exactly as the source sent it.

        With a cursor and a ``since``, only records whose cursor is ``>= since`` are asked for (inclusive, so a
        record sharing the watermark's second is read again; publishing it again changes nothing). Nothing is
        filtered by the run's interval: like Meltano's signpost, the interval only caps how far the caller moves
        the watermark (``waterhub.pipeline``).
        """
        if (stream.parent is None) != (context is None):
            raise ValueError(f"{stream.name}: a child stream is read with a context from its parent, others without")
        partition = partition_key(context)
        where = f"{self.source.name}/{stream.name}" + (f"[{partition}]" if partition else "")
        path, extra = stream.request_for(context)
        if stream.cursor is not None and since is not None:
            extra[stream.cursor.param] = stream.cursor.render(since)
        resume = _resume_text(stream, since)
        walk = stream.paginator.walk(where=where)

        def pages() -> Iterator[list[dict[str, object]]]:
            while True:
                request = walk.request(path)
                params: dict[str, str | int] = {**request.params, **extra}
                cursor_params = [*walk.token_params, *([stream.cursor.param] if stream.cursor else [])]
                page = self.client.get_page(
                    request.path, params, stream=stream.name, resume=resume, cursor_params=cursor_params
                )
                records = stream.records(page.body, where=where, target=f"{request.path}?{urlencode(params)}")
                log.debug(
                    "page_fetched", source=self.source.name, stream=stream.name, page=walk.label, records=len(records)
                )
                has_more = walk.advance(records, page)
                yield records
                if not has_more:
                    return

        for records in _read_ahead(pages(), PAGES_AHEAD):
            yield from records


def _read_ahead(pages: Iterator[list[dict[str, object]]], depth: int) -> Generator[list[dict[str, object]]]:
    """The pages of ``pages``, fetched by a thread of their own up to ``depth`` pages ahead of the caller (with the
    caller's log context), so the source prepares the next pages while the caller stages the last. Requests still
    go one at a time, in page order; an error comes after the pages before it. A caller that stops early does not
    wait for a page it will not read."""
    ahead: queue.Queue[list[dict[str, object]] | BaseException | None] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                ahead.put(page)
                if stop.is_set():
                    return
            ahead.put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            ahead.put(exc)

    threading.Thread(target=contextvars.copy_context().run, args=(produce,), daemon=True).start()
    try:
        while (item := ahead.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        with contextlib.suppress(queue.Empty):  # frees a producer waiting to hand over a page, so it sees the stop
            while True:
                ahead.get_nowait()


def _resume_text(stream: HttpStream, since: datetime | None) -> str:
    if stream.cursor is None:
        return "the next run reads this stream in full again"
    if since is None:
        return "the next run reads this stream from the start"
    return f"the next run resumes from {since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
