"""Declarative streams and the source that lists them (STYLE sketch A), plus the session that reads them.

A stream is mostly data: ``name``, ``contract`` (which also gives the primary key), ``path``, ``records_path``,
``paginator`` and an optional ``cursor``. Source quirks go in ``post_process``. A ``Source`` holds the base URL,
the auth and its streams; ``Source.connect()`` opens one client for a run and ``SourceSession.read`` walks a
stream's pages. Nothing here knows a particular source.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

import httpx
import structlog

from connectors.errors import SourceDataError
from connectors.http.client import SourceClient, SourceLabel, build_client
from connectors.http.paginators import PageNumberPaginator, value_at
from contracts.base import Contract
from contracts.types import BEIJING

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings

__all__ = ["CursorParam", "HttpStream", "Source", "SourceSession"]

log = structlog.get_logger(__name__)


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


class HttpStream:
    """One endpoint of a source as declarations; subclasses set the class attributes and maybe ``post_process``."""

    name: ClassVar[str]
    contract: ClassVar[type[Contract]]
    path: ClassVar[str]
    records_path: ClassVar[str] = "data.items"
    paginator: PageNumberPaginator
    cursor: ClassVar[CursorParam | None] = None

    def __init__(self, *, page_size: int | None = None) -> None:
        if page_size is not None:
            self.paginator = type(self).paginator.with_size(page_size)
        fields = self.contract.model_fields
        missing = [name for name in self.primary_key if name not in fields]
        if self.cursor is not None and self.cursor.field not in fields:
            missing.append(self.cursor.field)
        if missing:
            raise TypeError(f"stream {self.name}: {self.contract.__name__} has no field(s) {', '.join(missing)}")

    @property
    def primary_key(self) -> tuple[str, ...]:
        """From the contract: a stream never declares a second key (STYLE rule 4)."""
        return self.contract.meta.primary_key

    def post_process(self, raw: Mapping[str, object]) -> dict[str, object]:
        """One raw record as a row keyed by contract field names; the default is the record as sent."""
        return dict(raw)

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


class Source:
    """A source system: where it is, how we authenticate, and its streams (in the order they must be read)."""

    name: ClassVar[str]
    title: ClassVar[str]
    """Who runs the API, as an error message names it ("the bureau's water-quality API")."""

    def __init__(
        self, *, base_url: str, auth: httpx.Auth, http: HttpClientSettings, streams: tuple[HttpStream, ...]
    ) -> None:
        self.base_url = base_url
        self.auth = auth
        self.http = http
        self.streams = streams

    @property
    def label(self) -> SourceLabel:
        return SourceLabel(self.name, self.title, f"WATERHUB_{self.name.upper()}__")

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

    def read(self, stream: HttpStream, *, since: datetime | None = None) -> Iterator[dict[str, object]]:
        """Every record of ``stream`` exactly as the source sent it, page by page.

        With a cursor and a ``since``, only records whose cursor is ``>= since`` are asked for (inclusive, so a
        record sharing the watermark's second is read again; publishing it again changes nothing). Nothing is
        filtered by the run's interval: like Meltano's signpost, the interval only caps how far the caller moves
        the watermark (``waterhub.pipeline``).
        """
        where = f"{self.source.name}/{stream.name}"
        extra: dict[str, str] = {}
        if stream.cursor is not None and since is not None:
            extra[stream.cursor.param] = stream.cursor.render(since)
        resume = _resume_text(stream, since)
        walk = stream.paginator.walk(where=where)
        while True:
            params: dict[str, str | int] = {**walk.params, **extra}
            body = self.client.get_json(stream.path, params, stream=stream.name, resume=resume)
            records = stream.records(body, where=where, target=f"{stream.path}?page={walk.page}")
            log.debug("page_fetched", source=self.source.name, stream=stream.name, page=walk.page, records=len(records))
            has_more = walk.advance(records, body)
            yield from records
            if not has_more:
                return


def _resume_text(stream: HttpStream, since: datetime | None) -> str:
    if stream.cursor is None:
        return "the next run reads this stream in full again"
    if since is None:
        return "the next run reads this stream from the start"
    return f"the next run resumes from {since.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
