"""``waterhub departments …`` and ``waterhub tokens …``: who may read the consumer API, and with which token."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from exchange.errors import AccessError
from waterhub.cli.hub import existing_hub, migrated_hub
from waterhub.cli.output import emit_json, fail, print_table, stdout
from waterhub.settings import Settings

__all__ = [
    "add",
    "create",
    "departments_app",
    "list_departments",
    "list_tokens",
    "parse_expiry",
    "parse_filter",
    "remove",
    "revoke",
    "rotate",
    "tokens_app",
]

departments_app = typer.Typer(help="Departments: the principals of the consumer API.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens of departments, with their dataset grants.", no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout")]
_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=|>=|<=|>|<)\s*(.+?)\s*$")
_OPS = {"=": "eq", ">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}


def _now() -> datetime:
    return datetime.now(UTC)


@departments_app.command("list")
def list_departments(as_json: JsonFlag = False) -> None:
    """Registered departments, by code."""
    from exchange.access.departments import list_departments as listed

    found = listed(existing_hub())
    if as_json:
        emit_json([asdict(department) for department in found])
        return
    print_table("Departments", ["code", "name"], [[d.code, d.name] for d in found])


@departments_app.command("add")
def add(
    code: Annotated[str | None, typer.Argument(help="Stable code, e.g. tianhe-water")] = None,
    name: Annotated[str | None, typer.Argument(help="Official name, e.g. 天河区水务局")] = None,
    builtin: Annotated[bool, typer.Option("--builtin", help="Load the built-in Guangzhou departments")] = False,
) -> None:
    """Register one department, or the built-in list with --builtin."""
    from exchange.access.departments import add_department, seed_departments

    if builtin:
        stdout.print(f"{seed_departments(migrated_hub(), now=_now())} department(s) added")
        return
    if code is None or name is None:
        raise fail("give a CODE and a NAME, or --builtin", "waterhub departments add tianhe-water 天河区水务局")
    try:
        added = add_department(migrated_hub(), code, name, now=_now())
    except ValueError as exc:
        raise fail(str(exc), "codes look like tianhe-water") from exc
    stdout.print(f"{'added' if added else 'renamed'} {code}")


@departments_app.command("remove")
def remove(code: Annotated[str, typer.Argument(help="The department's code")]) -> None:
    """Remove a department; its tokens are revoked at once."""
    from exchange.access.departments import remove_department

    try:
        revoked = remove_department(migrated_hub(), code, now=_now())
    except AccessError as exc:
        raise fail(str(exc), "`waterhub departments list` shows the codes") from exc
    stdout.print(f"removed {code}; {revoked} token(s) revoked")


def parse_expiry(text: str, option: str = "--expires") -> timedelta:
    """``90d``, ``12h`` or ``30m``: how long a token lives (or, for ``--grace``, how long an old one still works)."""
    match = re.fullmatch(r"(\d{1,5})([dhm])", text.strip())
    if match is None:
        raise ValueError(f"{option} {text[:20]!r}: give a number and d, h or m, e.g. 90d")
    amount, unit = int(match[1]), match[2]
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]


def parse_filter(text: str) -> tuple[str, str, list[str]]:
    """``district=天河区`` (``|`` between several values), ``sampled_at>=2026-01-01T00:00:00Z``."""
    match = _FILTER.fullmatch(text)
    if match is None:
        raise ValueError(f"--filter {text[:60]!r}: write FIELD=VALUE, FIELD=A|B or FIELD>=VALUE")
    field, op, value = match.groups()
    values = value.split("|")
    return field, ("in" if op == "=" and len(values) > 1 else _OPS[op]), values


@tokens_app.command("create")
def create(
    department: Annotated[str, typer.Option("--department", help="Code of the department the token is for")],
    datasets: Annotated[str, typer.Option("--datasets", help="Dataset keys it may read, comma-separated")],
    expires: Annotated[str, typer.Option("--expires", help="Lifetime: 90d, 12h, 30m")] = "90d",
    filters: Annotated[
        list[str] | None, typer.Option("--filter", help="Row filter on every granted dataset: district=天河区")
    ] = None,
    profile: Annotated[
        Path | None,
        typer.Option(
            "--profile", help="Also write a Delta Sharing profile file (endpoint and token) here", dir_okay=False
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a token and print it once: it is stored only as a hash and cannot be shown again.

    With ``--profile`` the token also goes into a Delta Sharing profile file (mode 0600) for pandas, Spark or
    Power BI, pointing at ``WATERHUB_SHARING__ENDPOINT``.
    """
    from contracts import ContractError, get_contract
    from exchange.access.filters import parse_condition
    from exchange.access.tokens import create_token

    keys = [key.strip() for key in datasets.split(",") if key.strip()]
    now = _now()
    try:
        lifetime = parse_expiry(expires)
        parsed = [parse_filter(text) for text in filters or []]
        conditions = [parse_condition(get_contract(keys[0]), *item) for item in parsed] if parsed and keys else []
        for key in keys[1:]:  # the filter must fit every granted dataset's contract
            for item in parsed:
                parse_condition(get_contract(key), *item)
        engine = migrated_hub()
        issued = create_token(engine, department, keys, row_filter=conditions, expires_at=now + lifetime, now=now)
    except (ValueError, AccessError, ContractError) as exc:
        raise fail(
            str(exc), "waterhub tokens create --department tianhe-water --datasets water_quality.stations"
        ) from exc
    if profile is not None:
        from exchange.sharing.profile import write_profile

        endpoint = Settings().sharing.endpoint
        write_profile(profile, endpoint=endpoint, token=issued.token, expires_at=issued.expires_at)
    if as_json:
        emit_json({"token": issued.token, "token_id": issued.token_id, "expires_at": issued.expires_at})
        return
    stdout.print(f"Token {issued.token_id} for {department}, valid until {issued.expires_at:%Y-%m-%d %H:%MZ}:")
    stdout.print(issued.token, soft_wrap=True, highlight=False)
    stdout.print("It is shown only this once; keep it secret.")
    if profile is not None:
        stdout.print(
            f"Delta Sharing profile written to {profile}: load_as_pandas(f'{profile}#<share>.<schema>.<table>')"
        )


@tokens_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(help="The token's id (the part after wh_)")]) -> None:
    """Revoke a token at once."""
    from exchange.access.tokens import revoke_token

    try:
        revoke_token(migrated_hub(), token_id, now=_now())
    except AccessError as exc:
        raise fail(str(exc), "`waterhub tokens list` shows token ids") from exc
    stdout.print(f"revoked {token_id}")


@tokens_app.command("rotate")
def rotate(
    token_id: Annotated[str, typer.Argument(help="The id of the token to replace (the part after wh_)")],
    expires: Annotated[str, typer.Option("--expires", help="Lifetime of the new token: 90d, 12h, 30m")] = "90d",
    grace: Annotated[str, typer.Option("--grace", help="How long the old token still works: 7d, 12h, 0m")] = "7d",
    as_json: JsonFlag = False,
) -> None:
    """Replace a token: a new one with the same department, grants and filters, printed once; the old one works
    for ``--grace`` longer (``0m``: revoked at once), so the consumer switches without a gap."""
    from exchange.access.tokens import rotate_token

    now = _now()
    try:
        lifetime, overlap = parse_expiry(expires), parse_expiry(grace, "--grace")
        issued = rotate_token(migrated_hub(), token_id, expires_at=now + lifetime, grace=overlap, now=now)
    except (ValueError, AccessError) as exc:
        raise fail(str(exc), "`waterhub tokens list` shows token ids") from exc
    if as_json:
        emit_json({"token": issued.token, "token_id": issued.token_id, "expires_at": issued.expires_at})
        return
    stdout.print(f"Token {issued.token_id} replaces {token_id} (which works until {now + overlap:%Y-%m-%d %H:%MZ}):")
    stdout.print(issued.token, soft_wrap=True, highlight=False)
    stdout.print("It is shown only this once; keep it secret.")


@tokens_app.command("list")
def list_tokens(as_json: JsonFlag = False) -> None:
    """Tokens (ids only, never secrets), their department, datasets and expiry."""
    from exchange.access.tokens import list_tokens as listed

    found = listed(existing_hub())
    if as_json:
        emit_json([asdict(token) for token in found])
        return
    print_table(
        "Tokens",
        ["id", "department", "datasets", "expires (UTC)", "revoked (UTC)"],
        [[t.token_id, t.department, ", ".join(t.datasets), t.expires_at, t.revoked_at] for t in found],
    )
