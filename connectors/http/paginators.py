"""Paginators: small declarations on a stream, plus a fresh walk per read that holds the page state.

A paginator is a class attribute shared by every read of a stream, so it holds no state itself; ``walk()`` gives
each read its own. Every walk follows Meltano's shape: ``has_more`` says whether the page just read has a
successor and ``get_next`` says how to ask for it (a page number, an offset, a token, a URL). Two loops are caught
loudly, whatever the kind, because some APIs answer a page past the end with their last page again and a reader
that trusts them never stops: a page that starts with the same record as the page before, and a next-page token
(or URL, or offset) that the walk has already followed.

```
Paginator                 asks with                         stops when
PageNumberPaginator       ?page=3&page_size=500             a short page, or page × size reaches the total
OffsetPaginator           ?offset=1000&limit=500            a short page, or offset reaches the total
CursorTokenPaginator      ?cursor=<token from the body>     the body has no next token
LinkHeaderPaginator       the URL in Link: <...>; rel=next  the answer has no next link
```
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple, Self
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from connectors.errors import SourceDataError

__all__ = [
    "CursorTokenPaginator",
    "CursorTokenWalk",
    "LinkHeaderPaginator",
    "LinkHeaderWalk",
    "OffsetPaginator",
    "OffsetWalk",
    "Page",
    "PageNumberPaginator",
    "PageNumberWalk",
    "PageRequest",
    "PageWalk",
    "Paginator",
    "value_at",
]


def value_at(body: object, path: str) -> object:
    """The value at a dotted path (``"data.items"``) of a parsed page, or None when any step is missing."""
    current = body
    for step in path.split("."):
        if not isinstance(current, Mapping) or step not in current:
            return None
        current = current[step]
    return current


class Page(NamedTuple):
    """One answered page: the parsed body, the answer's headers, and the URL that was asked for."""

    body: object
    headers: httpx.Headers
    url: str


class PageRequest(NamedTuple):
    """What to ask for: a path (relative to the source's base URL) and the paginator's query parameters."""

    path: str
    params: dict[str, str | int]


class PageWalk(ABC):
    """The state of one paginated read. Subclasses say what the first request asks for, whether a page has a
    successor, and how to ask for it; the loop checks live here."""

    def __init__(self, paginator: Paginator, where: str) -> None:
        self.paginator = paginator
        self.where = where
        self.pages_read = 0
        self._previous_first: object = None
        self._previous_label = ""
        self._followed: set[object] = set()
        self.token: object = None
        """What the current request follows: None for the first page, then whatever ``get_next`` returned."""

    @property
    def label(self) -> str:
        """The current page as a log line or an error names it."""
        return f"page {self.pages_read + 1}"

    @property
    def token_params(self) -> tuple[str, ...]:
        """Parameters of the current request that carry a value the source handed out (a page token): a source
        refusing one has let it expire, which is not a settings problem."""
        return ()

    @abstractmethod
    def request(self, path: str) -> PageRequest:
        """The request for the current page of a stream at ``path``."""

    @abstractmethod
    def has_more(self, records: Sequence[Mapping[str, object]], page: Page) -> bool:
        """Whether the page just read has a successor."""

    @abstractmethod
    def get_next(self, records: Sequence[Mapping[str, object]], page: Page) -> object:
        """The token the next request follows (never None when ``has_more`` said yes)."""

    def advance(self, records: Sequence[Mapping[str, object]], page: Page) -> bool:
        """Take note of the page just read; True when there is another page to ask for.

        A repeated page is recognised by its first record compared whole, not by its primary key alone: a feed
        may legitimately send the same key twice (a duplicate quality must see), but never the same record at the
        head of two pages.
        """
        if records and self.pages_read > 0 and records[0] == self._previous_first:
            raise SourceDataError(
                f"{self.where}: {self.label} starts with the same record as {self._previous_label}, so the source "
                "is repeating a page instead of ending. Nothing was published. Tell the source's owner; reading on "
                "would never stop."
            )
        if not self.has_more(records, page):
            return False
        token = self.get_next(records, page)
        if token is None or token in self._followed:
            raise SourceDataError(
                f"{self.where}: after {self.label} the source points at a next page "
                f"{'it gave no token for' if token is None else 'already read'}, so reading on would never stop. "
                "Nothing was published. Tell the source's owner."
            )
        self._followed.add(token)
        self._previous_first = records[0] if records else None
        self._previous_label = self.label
        self.pages_read += 1
        self.token = token
        return True


@dataclass(frozen=True)
class Paginator(ABC):
    """A stream's paging declaration; ``size`` is the records asked for per page."""

    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"page size must be at least 1, not {self.size}")

    def with_size(self, size: int) -> Self:
        """The same paginator with the page size a source's settings ask for."""
        return replace(self, size=size)

    @abstractmethod
    def walk(self, *, where: str) -> PageWalk:
        """A fresh walk for one read; ``where`` (``source/stream``) names the stream in a loop error."""


def _reported_total(body: object, path: str | None) -> int | None:
    total = value_at(body, path) if path else None
    return total if isinstance(total, int) and not isinstance(total, bool) else None


@dataclass(frozen=True)
class PageNumberPaginator(Paginator):
    """Pages numbered from 1 with a fixed size (``?page=3&page_size=500``).

    The last page is the first one shorter than ``size``, or the one that reaches the ``total`` the source reports
    at ``total_path`` (which saves asking for an empty page when the total is a multiple of the size).
    """

    page_param: str = "page"
    size_param: str = "page_size"
    total_path: str | None = "data.total"

    def walk(self, *, where: str) -> PageNumberWalk:
        return PageNumberWalk(self, where)


class PageNumberWalk(PageWalk):
    paginator: PageNumberPaginator

    @property
    def page(self) -> int:
        return self.pages_read + 1

    def request(self, path: str) -> PageRequest:
        return PageRequest(path, {self.paginator.page_param: self.page, self.paginator.size_param: self.paginator.size})

    def has_more(self, records: Sequence[Mapping[str, object]], page: Page) -> bool:
        total = _reported_total(page.body, self.paginator.total_path)
        return len(records) >= self.paginator.size and (total is None or self.page * self.paginator.size < total)

    def get_next(self, records: Sequence[Mapping[str, object]], page: Page) -> object:
        return self.page + 1


@dataclass(frozen=True)
class OffsetPaginator(Paginator):
    """Records from an offset (``?offset=1000&limit=500``); the offset moves by the records a page held."""

    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = None

    def walk(self, *, where: str) -> OffsetWalk:
        return OffsetWalk(self, where)


class OffsetWalk(PageWalk):
    paginator: OffsetPaginator

    @property
    def offset(self) -> int:
        return self.token if isinstance(self.token, int) else 0

    @property
    def label(self) -> str:
        return f"offset {self.offset}"

    def request(self, path: str) -> PageRequest:
        return PageRequest(
            path, {self.paginator.offset_param: self.offset, self.paginator.limit_param: self.paginator.size}
        )

    def has_more(self, records: Sequence[Mapping[str, object]], page: Page) -> bool:
        total = _reported_total(page.body, self.paginator.total_path)
        return len(records) >= self.paginator.size and (total is None or self.offset + len(records) < total)

    def get_next(self, records: Sequence[Mapping[str, object]], page: Page) -> object:
        return self.offset + len(records)


@dataclass(frozen=True)
class CursorTokenPaginator(Paginator):
    """An opaque next-page token in the body (``data.next_cursor``), sent back as ``?cursor=<token>``; no token (or
    an empty one) ends the read."""

    token_path: str = "data.next_cursor"  # noqa: S105 - where the page token sits, not a credential
    token_param: str = "cursor"  # noqa: S105 - a query parameter name
    size_param: str = "page_size"

    def walk(self, *, where: str) -> CursorTokenWalk:
        return CursorTokenWalk(self, where)


class CursorTokenWalk(PageWalk):
    paginator: CursorTokenPaginator

    @property
    def token_params(self) -> tuple[str, ...]:
        return () if self.token is None else (self.paginator.token_param,)

    def request(self, path: str) -> PageRequest:
        params: dict[str, str | int] = {self.paginator.size_param: self.paginator.size}
        if self.token is not None:
            params[self.paginator.token_param] = str(self.token)
        return PageRequest(path, params)

    def has_more(self, records: Sequence[Mapping[str, object]], page: Page) -> bool:
        return value_at(page.body, self.paginator.token_path) not in (None, "")

    def get_next(self, records: Sequence[Mapping[str, object]], page: Page) -> object:
        token = value_at(page.body, self.paginator.token_path)
        return token if isinstance(token, str | int) and not isinstance(token, bool) else None


@dataclass(frozen=True)
class LinkHeaderPaginator(Paginator):
    """RFC 8288 ``Link: <url>; rel="next"`` headers (GitHub-style). The first request asks for ``size`` records;
    later ones follow the link as given. A link to another host is refused: it would take our credentials there."""

    size_param: str = "per_page"

    def walk(self, *, where: str) -> LinkHeaderWalk:
        return LinkHeaderWalk(self, where)


class LinkHeaderWalk(PageWalk):
    paginator: LinkHeaderPaginator

    def request(self, path: str) -> PageRequest:
        if self.token is None:
            return PageRequest(path, {self.paginator.size_param: self.paginator.size})
        link = urlsplit(str(self.token))
        return PageRequest(link.path, dict(parse_qsl(link.query, keep_blank_values=True)))

    def has_more(self, records: Sequence[Mapping[str, object]], page: Page) -> bool:
        return _next_link(page) is not None

    def get_next(self, records: Sequence[Mapping[str, object]], page: Page) -> object:
        link = _next_link(page)
        if link is None:
            return None
        target, asked = urlsplit(link), urlsplit(page.url)
        if (target.scheme, target.netloc) != (asked.scheme, asked.netloc):
            raise SourceDataError(
                f"{self.where}: the next-page link after {self.label} points at another host "
                f"({target.scheme}://{target.hostname}); it is not followed, so our credentials stay with the "
                "source. Nothing was published. Tell the source's owner."
            )
        return link


def _next_link(page: Page) -> str | None:
    """The absolute URL of the ``rel="next"`` link, resolved against the URL asked for."""
    for link in httpx.Response(200, headers=page.headers).links.values():
        if link.get("rel") == "next" and link.get("url"):
            return urljoin(page.url, link["url"])
    return None
