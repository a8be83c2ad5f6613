"""A small source for the paging tests, on the shared simulator parts: problems read with a cursor token, each
problem's handling steps (a child stream) with Link headers, stations by page number, and each station's readings
(a child stream partitioned per station) by offset."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

import httpx
from pydantic import SecretStr

from connectors.http import (
    ApiKeyHeader,
    CursorTokenPaginator,
    HttpStream,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Source,
)
from connectors.http.settings import HttpClientSettings
from connectors.simulation import Answer, HttpSimulator, TokenIssuer
from contracts import Classification, Contract, ContractMeta

KEY = "paging-test-key"


def _meta(key: str, primary_key: tuple[str, ...]) -> ContractMeta:
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner="tests",
        classification=Classification.PUBLIC,
        primary_key=primary_key,
        version_field="updated_at",
    )


class Problem(Contract):
    meta: ClassVar[ContractMeta] = _meta("paging.problems", ("id",))
    id: str
    updated_at: datetime


class Step(Contract):
    meta: ClassVar[ContractMeta] = _meta("paging.steps", ("problem_id", "seq"))
    problem_id: str
    seq: int
    updated_at: datetime


class Station(Contract):
    meta: ClassVar[ContractMeta] = _meta("paging.stations", ("code",))
    code: str
    updated_at: datetime


class Reading(Contract):
    meta: ClassVar[ContractMeta] = _meta("paging.readings", ("station", "n"))
    station: str
    n: int
    updated_at: datetime


class ProblemsStream(HttpStream):
    name = "problems"
    contract = Problem
    path = "/problems"
    paginator = CursorTokenPaginator(size=2)


class StepsStream(HttpStream):
    name = "steps"
    contract = Step
    path = "/problems/{problem_id}/steps"
    paginator = LinkHeaderPaginator(size=2)
    parent = ProblemsStream
    parent_keys: ClassVar[dict[str, str]] = {"problem_id": "id"}


class StationsStream(HttpStream):
    name = "stations"
    contract = Station
    path = "/stations"
    paginator = PageNumberPaginator(size=2, total_path=None)


class ReadingsStream(HttpStream):
    name = "readings"
    contract = Reading
    path = "/readings"
    paginator = OffsetPaginator(size=3)
    parent = StationsStream
    parent_keys: ClassVar[dict[str, str]] = {"station": "code"}


class PagingSource(Source):
    name = "paging"
    title = "the paging test API"

    def __init__(self, base_url: str, http: HttpClientSettings) -> None:
        super().__init__(
            base_url=base_url,
            auth=ApiKeyHeader("X-Api-Key", SecretStr(KEY)),
            http=http,
            streams=(ProblemsStream(), StepsStream(), StationsStream(), ReadingsStream()),
        )


STAMP = "2026-11-22T08:00:00+00:00"
PROBLEMS = [{"id": f"P{n}", "updated_at": STAMP} for n in range(1, 6)]
STEPS = {
    p["id"]: [{"problem_id": p["id"], "seq": s, "updated_at": STAMP} for s in range(n)] for n, p in enumerate(PROBLEMS)
}
STATIONS = [{"code": f"S{n}", "updated_at": STAMP} for n in range(1, 4)]
READINGS = {
    s["code"]: [{"station": s["code"], "n": k, "updated_at": STAMP} for k in range(3 * n + 1)]
    for n, s in enumerate(STATIONS)
}


class PagingSimulator(HttpSimulator):
    """Serves the data above; ``loop_token`` makes the problems feed point back at its first token."""

    thread_name = "paging simulator"
    paths = frozenset({"/problems", "/stations", "/readings"} | {f"/problems/{p}/steps" for p in STEPS})

    def __init__(self, *, loop_token: bool = False) -> None:
        super().__init__()
        self.loop_token = loop_token

    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        return None if headers.get("X-Api-Key") == KEY else "bad key"

    def _error(self, status: int, message: str) -> bytes:
        return json.dumps({"error": message}).encode()

    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        if path == "/problems":
            start = int(query.get("cursor", "t0")[1:])
            size = int(query["page_size"])
            end = start + size
            token = None if end >= len(PROBLEMS) else ("t2" if self.loop_token and start > 0 else f"t{end}")
            return _json({"data": {"items": PROBLEMS[start:end], "next_cursor": token}})
        if path == "/stations":
            page, size = int(query["page"]), int(query["page_size"])
            return _json({"data": {"items": STATIONS[(page - 1) * size : page * size]}})
        if path == "/readings":
            offset, limit = int(query["offset"]), int(query["limit"])
            return _json({"data": {"items": READINGS[query["station"]][offset : offset + limit]}})
        problem = path.split("/")[2]
        page, size = int(query.get("page", "1")), int(query["per_page"])
        items = STEPS[problem][(page - 1) * size : page * size]
        answer = _json({"data": {"items": items}})
        if page * size < len(STEPS[problem]):
            answer.headers["Link"] = f'<{path}?page={page + 1}&per_page={size}>; rel="next"'
        return answer


def _json(body: object) -> Answer:
    return Answer(200, json.dumps(body).encode(), {})


class OAuthPagingSimulator(PagingSimulator):
    """The same API behind OAuth 2.0 client credentials (the shared ``TokenIssuer``): tokens valid for
    ``expires_in`` seconds; ``revoke_after`` data requests revoke every token issued so far (answered 401, as a
    platform does when a token expires early mid-run). ``expired_cursor`` answers 400 to a problems request that
    carries that page token."""

    token_path: ClassVar[str | None] = "/oauth/token"

    def __init__(self, *, expires_in: int = 3600, revoke_after: int | None = None, expired_cursor: str | None = None):
        super().__init__()
        self.tokens: TokenIssuer = TokenIssuer(CLIENT_SECRET, lifetime_s=expires_in)
        if revoke_after is not None:
            self.tokens.expire_after(revoke_after)
        self.expired_cursor = expired_cursor

    @property
    def issued(self) -> list[str]:
        return self.tokens.issued

    @property
    def token_requests(self) -> list[dict[str, str]]:
        return self.tokens.requests

    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        return self.tokens.refusal(headers)

    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        if self.expired_cursor is not None and query.get("cursor") == self.expired_cursor:
            return Answer(400, self._error(400, "cursor expired"), {})
        return super()._page(path, query, repeat_previous=repeat_previous)


CLIENT_SECRET = "province-client-secret"


class OAuthPagingSource(Source):
    name = "province"
    title = "the provincial river-chief platform"

    def __init__(self, base_url: str, http: HttpClientSettings, auth: httpx.Auth) -> None:
        super().__init__(
            base_url=base_url, auth=auth, http=http, streams=(ProblemsStream(), StepsStream()), url_field="api_url"
        )
