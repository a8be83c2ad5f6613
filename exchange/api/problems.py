"""Errors as RFC 9457 problem details, each with a stable ``type`` a client can switch on.

Every refusal the API makes is a ``Problem``; request validation and unexpected errors are turned into problems
too, so a client never sees another error shape. A 500 says nothing about its cause (the log does).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from exchange.errors import InvalidQueryError, StoreUnavailableError

__all__ = ["PROBLEM_BASE", "Problem", "document_problems", "install_problem_handlers", "problem_response"]

PROBLEM_BASE = "urn:waterhub:problem:"
_MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    410: "Gone",
    422: "Invalid request",
    500: "Internal error",
    503: "Service unavailable",
}
log = structlog.get_logger(__name__)


class Problem(Exception):  # noqa: N818 - it is raised, but it is the RFC's name for the answer it becomes
    """An answer other than success: ``slug`` makes the stable ``type``; ``extra`` adds members (e.g. a snapshot)."""

    def __init__(self, status: int, slug: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.detail = detail
        self.extra = extra


def problem_response(problem: Problem, *, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "type": PROBLEM_BASE + problem.slug,
        "title": _TITLES.get(problem.status, "Error"),
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    if problem.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": 'Bearer realm="waterhub"'}
    return JSONResponse(body, status_code=problem.status, media_type=_MEDIA_TYPE, headers=headers)


_DOCUMENTED = (400, 401, 403, 404, 409, 410, 422, 503)
"""The problem statuses any path may answer: bad query, no or a dead token, a bad signed URL, not shared with you,
a conflict, a cursor older than the log, an invalid parameter, the database away."""


def document_problems(app: FastAPI) -> None:
    """Name the problem answers in every operation's OpenAPI entry, so clients (and schemathesis) know them."""
    problem_schema = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
        },
        "required": ["type", "title", "status"],
    }
    for route in app.routes:
        if isinstance(route, APIRoute):
            for status in _DOCUMENTED:
                route.responses.setdefault(
                    status,
                    {"description": _TITLES.get(status, "Error"), "content": {_MEDIA_TYPE: {"schema": problem_schema}}},
                )


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
        return problem_response(exc)

    async def on_query(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, InvalidQueryError)  # noqa: S101 - registered for InvalidQueryError only
        return problem_response(Problem(400, exc.slug, str(exc)))

    async def on_validation(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for RequestValidationError only
        errors = [
            {"where": ".".join(str(part) for part in error.get("loc", ())), "message": error.get("msg", "")}
            for error in exc.errors()
        ]
        detail = "; ".join(f"{error['where']}: {error['message']}" for error in errors)
        return problem_response(Problem(422, "invalid-request", detail, errors=errors))

    async def on_http(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for HTTPException only
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem_response(Problem(exc.status_code, slug, str(exc.detail)))

    async def on_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        log.error("store_unavailable", error=str(exc))
        return problem_response(Problem(503, "unavailable", "the hub's store is unavailable; try again shortly"))

    async def on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request_failed", path=request.url.path, error_type=type(exc).__name__)
        return problem_response(Problem(500, "internal", "the hub failed to answer; its operators have the log"))

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(InvalidQueryError, on_query)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(StoreUnavailableError, on_unavailable)
    app.add_exception_handler(Exception, on_error)
