"""Unit tests of the shared HTTP layer's pure parts: Retry-After parsing, the classification table, JSON tokens,
cursor rendering and loop detection. Network behaviour is tested against the simulator
in ``test_water_quality_source.py``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.errors import ConnectorError, SourceConfigError, SourceDataError, SourceUnavailableError
from connectors.http import ApiKeyHeader, CursorParam, PageNumberPaginator, parse_json_page
from connectors.http.paginators import CursorTokenPaginator, LinkHeaderPaginator, OffsetPaginator, Page
from connectors.http.retry import Action, classify_exception, classify_status, retry_after_s

NOW = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)


def _response(**headers: str) -> httpx.Response:
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 0 "}, 0.0),
        ({"Retry-After": "Mon, 23 Nov 2026 08:00:30 GMT"}, 30.0),  # measured against NOW: no Date header
        ({"Retry-After": "Mon, 23 Nov 2026 08:00:30 GMT", "Date": "Mon, 23 Nov 2026 08:00:20 GMT"}, 10.0),
        ({"Retry-After": "Mon, 23 Nov 2026 07:59:00 GMT"}, 0.0),  # a date in the past: retry now
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_is_read_as_seconds_or_an_http_date(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(_response(**headers), NOW) == expected


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.OK),
        (204, Action.OK),
        (301, Action.FAIL),
        (400, Action.FAIL),
        (401, Action.FAIL),
        (403, Action.FAIL),
        (404, Action.FAIL),
        (408, Action.RETRY),
        (429, Action.RETRY),
        (500, Action.RETRY),
        (503, Action.RETRY),
        (599, Action.RETRY),
        (600, Action.FAIL),
        (101, Action.FAIL),
    ],
)
def test_statuses_are_classified_by_one_table(status: int, action: Action) -> None:
    assert classify_status(status).action is action


def test_401_and_404_failures_name_the_setting_to_fix() -> None:
    assert "{key_setting}" in classify_status(401).hint
    assert "{url_setting}" in classify_status(404).hint


@pytest.mark.parametrize(
    ("exc", "action"),
    [
        (httpx.ReadTimeout("t"), Action.RETRY),
        (httpx.ConnectError("refused"), Action.RETRY),
        (httpx.RemoteProtocolError("closed"), Action.RETRY),
        (httpx.DecodingError("bad gzip"), Action.RETRY),
        (httpx.UnsupportedProtocol("ftp"), Action.FAIL),
        (httpx.InvalidURL("bad"), Action.FAIL),
    ],
)
def test_transport_exceptions_are_classified_most_specific_first(exc: Exception, action: Action) -> None:
    rule = classify_exception(exc)
    assert rule is not None
    assert rule.action is action


def test_an_exception_that_is_not_a_transport_problem_is_not_classified() -> None:
    assert classify_exception(RuntimeError("bug")) is None


def test_pages_keep_nan_and_infinity_tokens_as_strings() -> None:
    page = parse_json_page(b'{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1.5, "e": null, "f": -1e400, "g": 1e308}')
    assert page == {"a": "NaN", "b": "Infinity", "c": "-Infinity", "d": 1.5, "e": None, "f": "-1e400", "g": 1e308}


def test_a_page_that_is_not_json_raises_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting"):
        parse_json_page(b'{"code": 0, "data": {"items": [')


def test_a_page_nested_hundreds_deep_is_read_and_one_past_the_recursion_limit_raises_recursion_error() -> None:
    """``SourceClient.get_json`` turns the RecursionError into a SourceDataError (see tests/test_hostile_records.py)."""
    assert parse_json_page(b"[" * 400 + b"]" * 400) is not None
    with pytest.raises(RecursionError):
        parse_json_page(b"[" * 100_000 + b"]" * 100_000)


def test_the_api_key_is_sent_in_its_header_and_never_shown() -> None:
    auth = ApiKeyHeader("X-Api-Key", SecretStr("s3cret-value"))
    request = httpx.Request("GET", "http://example.invalid/")
    (sent,) = list(auth.auth_flow(request))
    assert sent.headers["X-Api-Key"] == "s3cret-value"
    assert "s3cret-value" not in repr(auth)


def test_a_cursor_renders_the_watermark_in_beijing_time_without_offset() -> None:
    cursor = CursorParam(field="updated_at", param="updated_since")
    assert cursor.render(datetime(2026, 11, 22, 16, 59, 59, 900_000, tzinfo=UTC)) == "2026-11-23 00:59:59"
    tokyo = timezone(timedelta(hours=9))
    assert cursor.render(datetime(2026, 11, 23, 10, 0, tzinfo=tokyo)) == "2026-11-23 09:00:00"
    with pytest.raises(ValueError, match="naive"):
        cursor.render(datetime(2026, 11, 23, 10, 0))  # noqa: DTZ001 - the point of the test


def _page(first: Mapping[str, object], size: int) -> list[dict[str, object]]:
    return [dict(first)] + [{"station_code": f"{n:08d}"} for n in range(1, size)]


def _answer(body: object) -> Page:
    return Page(body, httpx.Headers(), "http://example.invalid/x")


def test_a_walk_stops_at_a_short_page_or_at_the_reported_total() -> None:
    paginator = PageNumberPaginator(size=3)
    walk = paginator.walk(where="s/x")
    assert walk.request("/x").params == {"page": 1, "page_size": 3}
    assert walk.advance(_page({"k": 1}, 3), _answer({"data": {"total": 7}})) is True
    assert walk.request("/x").params == {"page": 2, "page_size": 3}
    assert walk.advance(_page({"k": 2}, 3), _answer({"data": {"total": 7}})) is True
    assert walk.advance(_page({"k": 3}, 1), _answer({"data": {"total": 7}})) is False

    exact = paginator.walk(where="s/x")
    assert exact.advance(_page({"k": 1}, 3), _answer({"data": {"total": 6}})) is True
    assert exact.advance(_page({"k": 2}, 3), _answer({"data": {"total": 6}})) is False  # no empty page 3 asked for


def test_a_page_starting_with_the_previous_pages_first_record_is_a_loop() -> None:
    walk = PageNumberPaginator(size=2).walk(where="water_quality/samples")
    first = {"station_code": "44010001", "updated_at": "2026-11-22 08:05:00"}
    assert walk.advance(_page(first, 2), _answer({})) is True
    with pytest.raises(SourceDataError, match="water_quality/samples: page 2 starts with the same record as page 1"):
        walk.advance(_page(dict(first), 2), _answer({}))


def test_the_same_key_heading_two_pages_is_not_a_loop_when_the_records_differ() -> None:
    walk = PageNumberPaginator(size=2).walk(where="water_quality/samples")
    original = {"station_code": "44010001", "sampled_at": "2026-11-22 08:00:00", "updated_at": "2026-11-22 09:05:00"}
    duplicate = {**original, "updated_at": "2026-11-22 09:40:00"}  # a duplicate quality must see, not a loop
    assert walk.advance(_page(original, 2), _answer({})) is True
    assert walk.advance(_page(duplicate, 2), _answer({})) is True


def test_a_cursor_token_seen_before_is_a_loop() -> None:
    walk = CursorTokenPaginator(size=2).walk(where="province/problems")
    assert walk.request("/p").params == {"page_size": 2}
    assert walk.advance(_page({"k": 1}, 2), _answer({"data": {"next_cursor": "abc"}})) is True
    assert walk.request("/p").params == {"page_size": 2, "cursor": "abc"}
    assert walk.advance(_page({"k": 2}, 2), _answer({"data": {"next_cursor": "def"}})) is True
    with pytest.raises(SourceDataError, match=r"province/problems: after page 3 .* already read"):
        walk.advance(_page({"k": 3}, 2), _answer({"data": {"next_cursor": "abc"}}))


def test_an_offset_walk_moves_by_the_records_read_and_stops_at_a_short_page() -> None:
    walk = OffsetPaginator(size=2).walk(where="s/x")
    assert walk.request("/x").params == {"offset": 0, "limit": 2}
    assert walk.advance(_page({"k": 1}, 2), _answer({})) is True
    assert walk.request("/x").params == {"offset": 2, "limit": 2}
    assert walk.advance(_page({"k": 2}, 1), _answer({})) is False


def test_a_next_link_to_another_host_is_not_followed() -> None:
    walk = LinkHeaderPaginator(size=2).walk(where="s/x")
    elsewhere = Page({}, httpx.Headers({"Link": '<https://evil.example/x?page=2>; rel="next"'}), "http://src/x")
    with pytest.raises(SourceDataError, match="another host"):
        walk.advance(_page({"k": 1}, 2), elsewhere)


def test_a_page_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        PageNumberPaginator(size=0)


def test_the_error_tree_groups_errors_by_what_the_caller_does() -> None:
    for error in (SourceConfigError, SourceUnavailableError, SourceDataError):
        assert issubclass(error, ConnectorError)
    assert not issubclass(SourceUnavailableError, SourceConfigError)
    assert not issubclass(SourceDataError, SourceUnavailableError)


def test_importing_the_source_package_does_not_load_the_simulators_web_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, connectors.water_quality as wq; "
        "assert 'fastapi' not in sys.modules and 'uvicorn' not in sys.modules, 'loaded early'; "
        "wq.WaterQualitySimulator; assert 'fastapi' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)  # noqa: S603 - our own fixed code


_CHARACTERS = st.characters(blacklist_categories=())
"""Any code point, lone surrogates included: a source may send the escape of half a pair."""
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(_CHARACTERS),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(_CHARACTERS, max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=_JSON_VALUES, ascii_only=st.booleans())
def test_a_page_reads_as_the_standard_parser_reads_it(value: object, ascii_only: bool) -> None:
    """The fast parser and the fallback give the same values and types (``1`` is not ``1.0``), lone surrogates in
    escapes (which only the fallback takes) included."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    content = text.encode("utf-8", "surrogatepass") if not ascii_only else text.encode()
    expected = json.loads(content)
    assert repr(parse_json_page(content)) == repr(expected)


@pytest.mark.parametrize(
    "content",
    [b'\xef\xbb\xbf{"a": 1}', '{"a": 1}'.encode("utf-16"), b'{"a": "\\ud800"}', b'{"a": "\xed\xa0\x80"}'],
    ids=["byte order mark", "UTF-16", "escaped half surrogate", "encoded half surrogate"],
)
def test_a_page_the_fast_parser_refuses_is_read_as_before(content: bytes) -> None:
    assert repr(parse_json_page(content)) == repr(json.loads(content))
