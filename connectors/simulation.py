"""What every source simulator shares: switchable faults, a request log, and a FastAPI app served on a loopback
socket in a background thread (STYLE rule 22).

A simulator subclasses ``HttpSimulator`` and says only what is its own: which paths exist, who may ask, how its
errors look and what a page holds. The fault queue, the log, the order in which a request is judged (path, auth,
fault) and the serving are here, so the next source's simulator does not copy them (issue 18). FastAPI and
uvicorn are imported here: import this module only where a simulator runs, never in a DAG task.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, NamedTuple, Protocol, Self, TypeVar
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool

from contracts.types import BEIJING

__all__ = [
    "MAX_PAGE_SIZE",
    "TIME_FORMAT",
    "Answer",
    "AppServer",
    "Fault",
    "FaultKind",
    "Faults",
    "HttpSimulator",
    "RequestLogEntry",
    "Running",
    "ServedSimulator",
    "TokenIssuer",
    "as_read",
    "beijing_text",
    "encode_json",
    "envelope_page",
    "parse_beijing",
]

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How the sources in this domain write times: Beijing time without an offset."""
MAX_PAGE_SIZE = 10_000

FaultKind = Literal["pass", "rate_limit", "server_error", "slow", "malformed_page", "repeat_page", "expired_token"]


class Answer(NamedTuple):
    """One HTTP answer of a simulator."""

    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Fault:
    """One queued fault; which fields matter depends on ``kind``."""

    kind: FaultKind
    retry_after_s: int = 0
    as_http_date: bool = False
    delay_s: float = 0.0


class Faults:
    """Faults for the next N data requests (known path, authorised), applied in the order set."""

    def __init__(self) -> None:
        self._queue: deque[Fault] = deque()
        self._lock = threading.Lock()

    def let_through(self, times: int = 1) -> None:
        """Answer the next ``times`` requests normally, so the faults queued after them strike mid-run."""
        self._add(times, Fault("pass"))

    def rate_limit(self, times: int = 1, retry_after_s: int = 1, *, as_http_date: bool = False) -> None:
        """Answer 429 with ``Retry-After`` in seconds, or as an HTTP-date (with a matching ``Date`` header)."""
        self._add(times, Fault("rate_limit", retry_after_s=retry_after_s, as_http_date=as_http_date))

    def server_error(self, times: int = 1) -> None:
        """Answer 500."""
        self._add(times, Fault("server_error"))

    def slow(self, times: int = 1, delay_s: float = 2.0) -> None:
        """Wait ``delay_s`` before answering normally (longer than the client's timeout, it is a timeout)."""
        self._add(times, Fault("slow", delay_s=delay_s))

    def malformed_page(self, times: int = 1) -> None:
        """Answer 200 with the page's JSON cut off halfway."""
        self._add(times, Fault("malformed_page"))

    def repeat_page(self, times: int = 1) -> None:
        """Answer the next request for a page n > 1 with page n - 1 again (a pagination loop)."""
        self._add(times, Fault("repeat_page"))

    def expire_token(self, times: int = 1) -> None:
        """Let the caller's access token expire now: answer 401 and forget the token (an OAuth2 source)."""
        self._add(times, Fault("expired_token"))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self, page: int) -> Fault | None:
        """The fault for a data request for ``page``; a ``repeat_page`` waits for a page after the first."""
        with self._lock:
            if not self._queue or (self._queue[0].kind == "repeat_page" and page <= 1):
                return None
            return self._queue.popleft()

    def _add(self, times: int, fault: Fault) -> None:
        if times < 0:
            raise ValueError(f"times must not be negative, not {times}")
        with self._lock:
            self._queue.extend([fault] * times)


@dataclass(frozen=True)
class RequestLogEntry:
    """One request as the simulator saw it, logged on arrival; ``fault`` names the fault that answered it, if any.

    Credentials are never logged, only whether they were accepted.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    authorized: bool
    fault: FaultKind | None = None
    user_agent: str | None = None


class TokenIssuer:
    """OAuth 2.0 client credentials (RFC 6749 §4.4) as a platform issues them: a ``POST`` of the right client id
    (None: any) and secret gets a bearer token valid for ``lifetime_s``, refused afterwards.

    ``expire_after(n)`` revokes every token issued so far once ``n`` more data requests have been let in, as a
    platform does when it expires tokens early (a restart, a key rotation) in the middle of a reader's run.
    ``requests`` keeps each token request's form without the secret.
    """

    path = "/oauth/token"

    def __init__(
        self,
        client_secret: str,
        *,
        client_id: str | None = None,
        lifetime_s: int = 3600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client_id = client_id
        self.lifetime_s = lifetime_s
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.requests: list[dict[str, str]] = []
        self._secret = client_secret
        self._clock = clock
        self._expires: dict[str, float] = {}
        self._revoke_in: int | None = None
        self._lock = threading.Lock()

    def expire_after(self, requests: int) -> None:
        """Revoke every token issued so far once ``requests`` more data requests have been let in."""
        with self._lock:
            self._revoke_in = requests

    def issue(self, body: bytes) -> Answer:
        """The answer to a token request (a form body)."""
        form = dict(parse_qsl(body.decode(errors="replace")))
        with self._lock:
            self.requests.append({key: value for key, value in form.items() if key != "client_secret"})
            secret_ok = secrets.compare_digest(form.get("client_secret", "").encode(), self._secret.encode())
            if not secret_ok or (self.client_id is not None and form.get("client_id") != self.client_id):
                return Answer(401, json.dumps({"error": "invalid_client"}).encode(), {})
            token = f"tok-{len(self.issued) + 1}"
            self.issued.append(token)
            self._expires[token] = self._clock() + self.lifetime_s
        body_out = {"access_token": token, "token_type": "Bearer", "expires_in": self.lifetime_s}
        return Answer(200, json.dumps(body_out).encode(), {})

    def revoke_all(self) -> None:
        """Every token issued so far stops working now (an ``expired_token`` fault)."""
        with self._lock:
            self.revoked.update(self.issued)

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a data request's bearer token is refused, or None (and the request counts toward ``expire_after``)."""
        token = headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            if token not in self._expires or token in self.revoked or self._clock() >= self._expires[token]:
                return "invalid or expired token"
            if self._revoke_in is not None:
                self._revoke_in -= 1
                if self._revoke_in <= 0:
                    self.revoked.update(self.issued)
                    self._revoke_in = None
        return None


class AppServer:
    """A FastAPI app served by uvicorn on ``host:port`` (0: the OS picks a free port) in a daemon thread.

    The socket is bound before the thread starts, so the port is known (and taken) even when the OS chose it.
    ``on_stop`` runs first when stopping: it wakes requests a simulator holds back (a ``slow`` fault), which would
    otherwise delay the shutdown by their whole delay.
    """

    def __init__(
        self, app: FastAPI, host: str, port: int, *, name: str, on_stop: Callable[[], None] = lambda: None
    ) -> None:
        self._app = app
        self._name = name
        self._on_stop = on_stop
        self._requested = (host, port)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Bind, start serving and wait until uvicorn accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"the {self._name} is already serving on {self.base_url}")
        # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it each answer (headers, then body) waited ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self._requested)
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            date_header=False,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=self._name, daemon=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=5)
                sock.close()
                raise RuntimeError(f"the {self._name} did not start on {self._requested[0]}:{self._requested[1]}")
            time.sleep(0.01)
        self.host, self.port = sock.getsockname()[:2]
        self._socket, self._server, self._thread = sock, server, thread

    def stop(self) -> None:
        """Stop serving and release the port; stopping a server that is not serving does nothing."""
        if self._thread is None or self._server is None or self._socket is None:
            return
        self._on_stop()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        self._socket, self._server, self._thread = None, None, None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class ServedSimulator(Protocol):
    """What a served simulator's handle passes through to tests."""

    @property
    def faults(self) -> Faults: ...

    @property
    def requests(self) -> list[RequestLogEntry]: ...


S = TypeVar("S", bound=ServedSimulator)


@dataclass
class Running(Generic[S]):
    """A served simulator: where it listens, its request log and its faults. Sources subclass it to add their
    own ground truth and clock."""

    simulator: S
    base_url: str
    host: str
    port: int

    @property
    def requests(self) -> list[RequestLogEntry]:
        return self.simulator.requests

    @property
    def faults(self) -> Faults:
        return self.simulator.faults


class HttpSimulator(ABC):
    """A source API over real HTTP: every GET is judged in one order (known path, then authorisation, then the next
    queued fault), logged on arrival (before a ``slow`` fault's delay), then answered by the subclass.

    A POST to the token endpoint of ``tokens`` (OAuth 2.0) is answered by the issuer with no fault; a POST to one
    of ``post_paths`` is judged as a GET is and answered by ``_post``.

    ``_lock`` guards the log and whatever data the subclass serves; subclasses hold it while changing their data.
    """

    paths: ClassVar[frozenset[str]]
    """The data endpoints; any other path is answered 404."""

    thread_name: ClassVar[str]
    """Name of the serving thread, and how errors name the simulator."""

    tokens: TokenIssuer | None = None
    """A simulator behind OAuth 2.0 sets one: its token endpoint is served next to the data."""

    post_paths: ClassVar[frozenset[str]] = frozenset()
    """Endpoints that take a POST (a report sent to the source)."""

    def __init__(self) -> None:
        self.faults = Faults()
        self._lock = threading.RLock()
        self._log: list[RequestLogEntry] = []
        self._stopping = threading.Event()

    @property
    def requests(self) -> list[RequestLogEntry]:
        """Every request so far, in the order they arrived."""
        with self._lock:
            return list(self._log)

    @abstractmethod
    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a request's credentials are refused (answered 401), or None when they are accepted."""

    @abstractmethod
    def _error(self, status: int, message: str) -> bytes:
        """An error body in the source's own envelope."""

    @abstractmethod
    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        """The answer to a data request; ``repeat_previous`` asks for the page before the one requested."""

    def _serves(self, method: str, path: str) -> bool:
        """Whether ``method path`` is an endpoint of the source; a source with paths holding an id overrides it."""
        return path in (self.post_paths if method == "POST" else self.paths)

    def _post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """The answer to an authorised POST to one of ``post_paths``."""
        return Answer(405, self._error(405, "this endpoint takes no POST"), {})

    def _page_number(self, query: dict[str, str]) -> int:
        """Which page a request asks for, so a ``repeat_page`` fault can wait for a page after the first."""
        try:
            return int(query.get("page", "1"))
        except ValueError:
            return 1

    def respond(
        self, path: str, query: dict[str, str], headers: Mapping[str, str], *, method: str = "GET", body: bytes = b""
    ) -> Answer:
        """The answer to one request; runs in the server's worker threads."""
        refusal = self._refusal(headers)
        fault: Fault | None = None
        if not self._serves(method, path):
            answer = Answer(404, self._error(404, f"no such endpoint: {method} {path}"), {})
        elif refusal is not None:
            answer = Answer(401, self._error(401, refusal), {})
        else:
            fault = self.faults.take(self._page_number(query))
            if method == "POST" and (fault is None or fault.kind in ("pass", "slow", "repeat_page", "malformed_page")):
                answer = self._post(path, body, headers)
            else:
                answer = self._answer(path, query, fault)
        self._logged(method, path, query, headers, answer, authorized=refusal is None, fault=fault)
        if fault is not None and fault.kind == "slow":
            self._stopping.wait(fault.delay_s)
        return answer

    def _logged(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        answer: Answer,
        *,
        authorized: bool,
        fault: Fault | None = None,
    ) -> Answer:
        entry = RequestLogEntry(
            method,
            path,
            query,
            answer.status,
            authorized=authorized,
            fault=fault.kind if fault is not None and fault.kind != "pass" else None,
            user_agent=headers.get("User-Agent"),
        )
        with self._lock:
            self._log.append(entry)
        return answer

    def _answer(self, path: str, query: dict[str, str], fault: Fault | None) -> Answer:
        if fault is not None and fault.kind == "rate_limit":
            if fault.as_http_date:
                now = datetime.now(UTC).replace(microsecond=0)
                hint = format_datetime(now + timedelta(seconds=fault.retry_after_s), usegmt=True)
                headers = {"Retry-After": hint, "Date": format_datetime(now, usegmt=True)}
            else:
                headers = {"Retry-After": str(fault.retry_after_s)}
            return Answer(429, self._error(429, "too many requests"), headers)
        if fault is not None and fault.kind == "server_error":
            return Answer(500, self._error(500, "internal error"), {})
        if fault is not None and fault.kind == "expired_token":
            if self.tokens is not None:
                self.tokens.revoke_all()
            return Answer(401, self._error(401, "access token expired"), {})
        answer = self._page(path, query, repeat_previous=fault is not None and fault.kind == "repeat_page")
        if fault is not None and fault.kind == "malformed_page" and answer.status == 200:
            return answer._replace(body=answer.body[: len(answer.body) // 2])
        return answer

    def app(self) -> FastAPI:
        """Thin routes over ``respond``, so the log and the faults see every request the same way."""
        app = FastAPI(title=f"Simulated {self.thread_name}", openapi_url=None, docs_url=None, redoc_url=None)

        tokens = self.tokens
        if tokens is not None:

            @app.post(tokens.path)
            async def token(request: Request) -> Response:
                status, body, headers = tokens.issue(await request.body())
                return Response(content=body, status_code=status, headers=headers, media_type="application/json")

        @app.get("/{path:path}")
        def any_path(path: str, request: Request) -> Response:
            status, body, headers = self.respond(request.url.path, dict(request.query_params), request.headers)
            return Response(content=body, status_code=status, headers=headers, media_type="application/json")

        @app.post("/{path:path}")
        async def any_post(path: str, request: Request) -> Response:
            sent = await request.body()
            status, body, headers = await run_in_threadpool(
                self.respond, request.url.path, dict(request.query_params), request.headers, method="POST", body=sent
            )
            return Response(content=body, status_code=status, headers=headers, media_type="application/json")

        return app

    @contextmanager
    def served(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[AppServer]:
        """Serve on ``host:port`` (0: the OS picks a free port) until the block ends."""
        self._stopping.clear()
        with AppServer(self.app(), host, port, name=self.thread_name, on_stop=self._stopping.set) as server:
            yield server


def beijing_text(value: datetime) -> str:
    """An aware datetime as the sources write it: Beijing time, no offset."""
    return value.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing(text: str) -> datetime:
    """A source's time text as an aware UTC datetime (raises ``ValueError`` for another format)."""
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


def encode_json(value: object) -> bytes:
    """JSON as these sources write it: UTF-8, Chinese unescaped, and NaN as a bare token (Python's default)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=True, separators=(",", ":")).encode()


def as_read(record: Mapping[str, Any]) -> dict[str, object]:
    """A deep copy as a reader decodes it: a float NaN becomes the string "NaN" (see ``client.parse_json_page``)."""
    decoded: dict[str, object] = json.loads(encode_json(record), parse_constant=str)
    return decoded


def envelope_page(
    items: Sequence[Mapping[str, Any]],
    query: Mapping[str, str],
    *,
    since_param: str,
    since_field: str,
    error: Callable[[int, str], bytes],
    repeat_previous: bool,
) -> Answer:
    """One page of ``items`` (already in feed order) in the envelope the city's and province's platforms share,
    ``{"code": 0, "message": "ok", "data": {"items": [...], "page": n, "page_size": m, "total": N}}``.

    ``page`` counts from 1; ``since_param`` (Beijing time ``YYYY-MM-DD HH:MM:SS``, inclusive) keeps the items whose
    ``since_field`` is not earlier; ``repeat_previous`` answers the page before the one asked for (a pagination loop).
    A malformed query is 400 in the source's own ``error`` envelope.
    """
    try:
        page = int(query.get("page", "1"))
        size = int(query.get("page_size", "100"))
        since = query.get(since_param)
        if since is not None:
            since = beijing_text(parse_beijing(since))
    except ValueError:
        return Answer(400, error(400, f"page, page_size must be integers; {since_param} is YYYY-MM-DD HH:MM:SS"), {})
    if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
        return Answer(400, error(400, f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}"), {})
    if repeat_previous:
        page -= 1
    if since is not None:
        items = [item for item in items if item[since_field] >= since]
    chunk = list(items[(page - 1) * size : page * size])
    data = {"items": chunk, "page": page, "page_size": size, "total": len(items)}
    return Answer(200, encode_json({"code": 0, "message": "ok", "data": data}), {})
