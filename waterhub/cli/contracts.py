"""``waterhub contracts list|show|schema``: what each dataset promises its consumers."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from contracts import FieldSpec, UnknownContractError, all_contracts, get_contract
from waterhub.cli.output import emit_json, fail, print_table

__all__ = ["app", "list_contracts", "schema", "show"]

app = typer.Typer(help="Data contracts: keys, versions, owners, fields and JSON Schemas.", no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]


@app.command("list")
def list_contracts(as_json: JsonFlag = False) -> None:
    """Every registered contract."""
    rows: list[dict[str, Any]] = [
        {
            "key": c.meta.key,
            "version": c.meta.version,
            "owner": c.meta.owner,
            "classification": c.meta.classification.value,
            "primary_key": list(c.meta.primary_key),
            "fields": len(c.field_specs()),
        }
        for c in all_contracts()
    ]
    if as_json:
        emit_json(rows)
        return
    print_table(
        "Contracts",
        ["key", "version", "owner", "classification", "primary key", "fields"],
        [
            [r["key"], r["version"], r["owner"], r["classification"], ", ".join(r["primary_key"]), r["fields"]]
            for r in rows
        ],
    )


@app.command("show")
def show(
    key: str, version: Annotated[str | None, typer.Option(help="Default: newest")] = None, as_json: JsonFlag = False
) -> None:
    """One contract: metadata and fields with units and rules."""
    try:
        contract = get_contract(key, version)
    except UnknownContractError as exc:
        raise fail(str(exc), "run `waterhub contracts list` to see the keys") from exc
    specs = contract.field_specs()
    if as_json:
        emit_json({**contract.json_schema()["x-waterhub"], "fields": [vars(spec) for spec in specs]})
        return
    meta = contract.meta
    print_table(
        f"{meta.key} {meta.version} ({meta.classification.value}, owner {meta.owner})",
        ["field", "type", "null", "unit", "rule", "description"],
        [[s.name, s.type, "yes" if s.nullable else "no", s.unit, _rule(s), s.description] for s in specs],
    )


@app.command("schema")
def schema(key: str, version: Annotated[str | None, typer.Option(help="Default: newest")] = None) -> None:
    """The JSON Schema (draft 2020-12) of a contract, on stdout."""
    try:
        contract = get_contract(key, version)
    except UnknownContractError as exc:
        raise fail(str(exc), "run `waterhub contracts list` to see the keys") from exc
    emit_json(contract.json_schema())


def _rule(spec: FieldSpec) -> str:
    """A compact human form of a field's rules: range, allowed set, pattern."""
    parts = []
    if spec.minimum is not None or spec.maximum is not None:
        low = "-∞" if spec.minimum is None else spec.minimum
        high = "∞" if spec.maximum is None else spec.maximum
        parts.append(f"[{low}, {high}]")
    if spec.allowed:
        parts.append("∈ {" + ",".join(spec.allowed) + "}")
    if spec.pattern:
        parts.append(f"~ {spec.pattern}")
    return " ".join(parts)
