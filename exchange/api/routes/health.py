"""``/healthz`` (the process answers) and ``/readyz`` (it can reach the database): for load balancers, no token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from exchange.api.deps import ContextDep
from exchange.api.problems import Problem

__all__ = ["healthz", "readyz", "router"]

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The API process is up")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The API can reach the hub database", responses={503: {"description": "not ready"}})
def readyz(context: ContextDep) -> dict[str, Any]:
    try:
        with context.engine.connect() as conn:
            conn.execute(text("select 1"))
    except Exception as exc:
        raise Problem(503, "not-ready", "the hub database cannot be reached") from exc
    return {"status": "ready"}
