"""A read fetches pages ahead of its caller in a thread of its own: the caller still sees every page in order, an
error after the pages before it, and stopping early neither hangs nor leaves the fetcher running."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import structlog

from connectors.http.stream import _read_ahead


def _pages(count: int, fetched: list[int]) -> Iterator[list[dict[str, object]]]:
    for number in range(count):
        fetched.append(number)
        yield [{"page": number, "row": row} for row in range(3)]


def test_every_page_arrives_in_order() -> None:
    fetched: list[int] = []
    pages = list(_read_ahead(_pages(50, fetched), 4))
    assert [page[0]["page"] for page in pages] == list(range(50))
    assert fetched == list(range(50))


def test_an_error_comes_after_the_pages_before_it() -> None:
    def failing() -> Iterator[list[dict[str, object]]]:
        yield [{"page": 0}]
        yield [{"page": 1}]
        raise RuntimeError("page 3 was refused")

    reader = _read_ahead(failing(), 4)
    assert [next(reader)[0]["page"], next(reader)[0]["page"]] == [0, 1]
    with pytest.raises(RuntimeError, match="page 3 was refused"):
        next(reader)


def test_a_caller_that_stops_early_stops_the_fetcher_within_the_depth() -> None:
    fetched: list[int] = []
    before = set(threading.enumerate())
    reader = _read_ahead(_pages(10_000, fetched), 4)
    assert next(reader)[0]["page"] == 0
    fetcher = set(threading.enumerate()) - before
    assert fetcher  # blocked four pages ahead, waiting for the caller
    reader.close()
    for thread in fetcher:
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert len(fetched) <= 1 + 4 + 2  # the page read, the pages ahead, and one in hand when it was stopped


def test_the_fetcher_logs_with_the_callers_context() -> None:
    def pages() -> Iterator[list[dict[str, object]]]:
        yield [{"run": structlog.contextvars.get_contextvars().get("run_id")}]

    with structlog.contextvars.bound_contextvars(run_id="run-7"):
        assert list(_read_ahead(pages(), 4)) == [[{"run": "run-7"}]]
