"""``GET /datasets`` (the caller's catalogue) and ``GET /datasets/{key}`` (contract, JSON Schema, lineage).

The catalogue lists only datasets granted to the caller and published. A filtered grant is not told the whole
dataset's row count: its ``rows`` is null and its ``row_filter`` says what it sees.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from sqlalchemy import Connection, func, select

from exchange.access.filters import conditions_from_json
from exchange.api.deps import ContextDep, DatasetDep, PrincipalDep, published_contract
from exchange.tables import datasets, validation_runs

__all__ = ["describe_dataset", "list_datasets", "router"]

router = APIRouter(tags=["datasets"])


def _quality(conn: Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The latest validation run of each dataset: rows checked, valid, quarantined, and when."""
    latest = (
        select(validation_runs.c.dataset, func.max(validation_runs.c.validated_at).label("at"))
        .where(validation_runs.c.dataset.in_(keys))
        .group_by(validation_runs.c.dataset)
        .subquery()
    )
    rows = conn.execute(
        select(validation_runs).join(
            latest, (latest.c.dataset == validation_runs.c.dataset) & (latest.c.at == validation_runs.c.validated_at)
        )
    )
    return {
        row.dataset: {
            "batch_id": row.batch_id,
            "contract_version": row.contract_version,
            "validated_at": row.validated_at.isoformat().replace("+00:00", "Z"),
            "rows": row.rows,
            "valid": row.valid,
            "quarantined": row.quarantined,
        }
        for row in rows
    }


def _summaries(conn: Connection, grants: dict[str, str | None], keys: list[str]) -> list[dict[str, Any]]:
    published = conn.execute(select(datasets).where(datasets.c.key.in_(keys)).order_by(datasets.c.key)).all()
    quality = _quality(conn, keys)
    items = []
    for row in published:
        contract = published_contract(row.key, row.contract_version)
        grant_filter = conditions_from_json(contract, grants[row.key])
        items.append(
            {
                "key": row.key,
                "title": contract.meta.title,
                "owner": contract.meta.owner,
                "contract_version": row.contract_version,
                "classification": contract.meta.classification.value,
                "rows": None if grant_filter else int(row.row_count),
                "last_seq": int(row.last_seq),
                "updated_at": row.last_published_at.isoformat().replace("+00:00", "Z")
                if row.last_published_at
                else None,
                "quality": quality.get(row.key),
                "row_filter": [condition.as_json() for condition in grant_filter] or None,
            }
        )
    return items


@router.get("/datasets", summary="The datasets shared with you")
def list_datasets(principal: PrincipalDep, context: ContextDep) -> dict[str, Any]:
    with context.engine.connect() as conn:
        return {"datasets": _summaries(conn, dict(principal.grants), sorted(principal.grants))}


@router.get("/datasets/{key}", summary="One dataset: its contract, JSON Schema and lineage")
def describe_dataset(dataset: DatasetDep, context: ContextDep) -> dict[str, Any]:
    with context.engine.connect() as conn:
        (summary,) = _summaries(conn, {dataset.key: dataset.principal.grants[dataset.key]}, [dataset.key])
    meta = dataset.contract.meta
    lineage = context.lineage.get(dataset.key)
    return {
        **summary,
        "primary_key": list(meta.primary_key),
        "version_field": meta.version_field,
        "schema": json.loads(json.dumps(dataset.contract.json_schema())),
        "lineage": {
            "sources": list(lineage.sources) if lineage else [],
            "dags": list(lineage.dags) if lineage else [],
            "upstream": sorted(
                {reference.dataset for reference in meta.references} | set(lineage.upstream if lineage else ())
            ),
        },
    }
