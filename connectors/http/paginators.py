"""Paginators: small declarations on a stream, plus a fresh walk per read that holds the page state.

A paginator is a class attribute shared by every read of a stream, so it holds no state itself; ``walk()`` gives
each read its own. A walk fails loudly on a page that repeats the previous one, as Meltano's paginators do: some
APIs answer a page past the end with their last page again, and a reader that trusts them never stops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from connectors.errors import SourceDataError

__all__ = ["PageNumberPaginator", "PageNumberWalk", "value_at"]


def value_at(body: object, path: str) -> object:
    """The value at a dotted path (``"data.items"``) of a parsed page, or None when any step is missing."""
    current = body
    for step in path.split("."):
        if not isinstance(current, Mapping) or step not in current:
            return None
        current = current[step]
    return current


@dataclass(frozen=True)
class PageNumberPaginator:
    """Pages numbered from 1 with a fixed size (``?page=3&page_size=500``).

    The last page is the first one shorter than ``size``, or the one that reaches the ``total`` the source reports
    at ``total_path`` (which saves asking for an empty page when the total is a multiple of the size).
    """

    size: int
    page_param: str = "page"
    size_param: str = "page_size"
    total_path: str | None = "data.total"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"page size must be at least 1, not {self.size}")

    def with_size(self, size: int) -> PageNumberPaginator:
        """The same paginator with the page size a source's settings ask for."""
        return replace(self, size=size)

    def walk(self, *, where: str) -> PageNumberWalk:
        """A fresh walk for one read; ``where`` (``source/stream``) names the stream in a loop error."""
        return PageNumberWalk(self, where)


@dataclass
class PageNumberWalk:
    """The state of one paginated read: the page to ask for next and the first record of the last page."""

    paginator: PageNumberPaginator
    where: str
    page: int = 1
    _previous_first: object = field(default=None, repr=False)

    @property
    def params(self) -> dict[str, int]:
        """Query parameters asking for the current page."""
        return {self.paginator.page_param: self.page, self.paginator.size_param: self.paginator.size}

    def advance(self, records: Sequence[Mapping[str, object]], body: object) -> bool:
        """Take note of the page just read; True when there is another page to ask for.

        A repeated page is recognised by its first record compared whole, not by its primary key alone: a feed
        may legitimately send the same key twice (a duplicate quality must see), but never the same record at the
        head of two pages.
        """
        if records and self.page > 1 and records[0] == self._previous_first:
            raise SourceDataError(
                f"{self.where}: page {self.page} starts with the same record as page {self.page - 1}, so the source "
                "is repeating a page instead of ending. Nothing was published. Tell the source's owner; reading "
                "on would never stop."
            )
        size = self.paginator.size
        if len(records) < size:
            return False
        total = value_at(body, self.paginator.total_path) if self.paginator.total_path else None
        if isinstance(total, int) and not isinstance(total, bool) and self.page * size >= total:
            return False
        self._previous_first = records[0]
        self.page += 1
        return True
