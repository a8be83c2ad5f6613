"""API tokens: issued once, kept only as a sha256 of their secret, looked up by a public prefix.

A token reads ``wh_<token_id>_<secret>``. The id is public (the audit and ``waterhub tokens revoke`` use it); the
secret is 256 random bits, so a plain sha256 is enough: there is nothing to brute-force that a slow hash would
protect, and checking a request stays one indexed lookup and one hash. The comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, select, update

from contracts import get_contract
from contracts.errors import UnknownContractError
from exchange.access.filters import Condition, conditions_to_json
from exchange.errors import InvalidTokenError, UnknownDepartmentError
from exchange.tables import departments, grants, tokens

__all__ = [
    "IssuedToken",
    "Principal",
    "TokenInfo",
    "authenticate",
    "create_token",
    "list_tokens",
    "revoke_token",
    "rotate_token",
]

_PREFIX = "wh"
_TOKEN = re.compile(r"^wh_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class IssuedToken:
    """A new token: ``token`` is shown once and never stored."""

    token: str
    token_id: str
    department: str
    expires_at: datetime


@dataclass(frozen=True)
class Principal:
    """Who is asking, and what they may read: dataset key → the grant's stored row filter (JSON, or None)."""

    department: str
    token_id: str
    grants: Mapping[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    department: str
    datasets: tuple[str, ...]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    engine: Engine,
    department: str,
    datasets: Sequence[str],
    *,
    row_filter: Sequence[Condition] = (),
    expires_at: datetime,
    now: datetime,
) -> IssuedToken:
    """A token of ``department`` granting ``datasets``, each limited by ``row_filter`` when given.

    Every dataset must have a registered contract, and the filter's fields are checked against each contract by
    the caller (``parse_condition``), so a grant never names what cannot exist.
    """
    if not datasets:
        raise ValueError("a token needs at least one dataset; pass --datasets KEY[,KEY]")
    if expires_at <= now:
        raise ValueError("the token would be expired already; give a positive --expires")
    for key in datasets:
        try:
            get_contract(key)
        except UnknownContractError as exc:
            raise ValueError(str(exc)) from exc
    filter_json = conditions_to_json(row_filter)
    with engine.begin() as conn:
        if conn.execute(select(departments.c.code).where(departments.c.code == department)).first() is None:
            raise UnknownDepartmentError(
                f"no department {department[:50]!r}; `waterhub departments list` shows them, "
                "`waterhub departments add` registers one"
            )
        return _issue(conn, department, [(key, filter_json) for key in datasets], expires_at=expires_at, now=now)


def _issue(
    conn: Connection,
    department: str,
    granted: Sequence[tuple[str, str | None]],
    *,
    expires_at: datetime,
    now: datetime,
) -> IssuedToken:
    """Store a new token (its secret's hash only) with its grants (dataset, row filter JSON); the token in clear is
    returned once."""
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    conn.execute(
        tokens.insert().values(
            token_id=token_id,
            department=department,
            secret_sha256=_digest(secret),
            created_at=now,
            expires_at=expires_at,
        )
    )
    conn.execute(
        grants.insert(),
        [{"token_id": token_id, "dataset": key, "row_filter": row_filter} for key, row_filter in granted],
    )
    return IssuedToken(f"{_PREFIX}_{token_id}_{secret}", token_id, department, expires_at)


def revoke_token(engine: Engine, token_id: str, *, now: datetime) -> None:
    """Revoke at once: the next request with the token is refused. Revoking twice keeps the first time."""
    with engine.begin() as conn:
        found = conn.execute(select(tokens.c.revoked_at).where(tokens.c.token_id == token_id)).first()
        if found is None:
            raise InvalidTokenError(f"no token with id {token_id[:20]!r}; `waterhub tokens list` shows them")
        if found.revoked_at is None:
            conn.execute(update(tokens).where(tokens.c.token_id == token_id).values(revoked_at=now))


def rotate_token(
    engine: Engine, token_id: str, *, expires_at: datetime, grace: timedelta, now: datetime
) -> IssuedToken:
    """A new token for the same department with the same grants and row filters, and the old one ending after
    ``grace`` (at once for zero; never later than it would have anyway), so a consumer switches without a gap."""
    with engine.connect() as conn:
        old = conn.execute(
            select(tokens.c.department, tokens.c.expires_at, tokens.c.revoked_at).where(tokens.c.token_id == token_id)
        ).first()
        granted = conn.execute(select(grants.c.dataset, grants.c.row_filter).where(grants.c.token_id == token_id)).all()
    if old is None:
        raise InvalidTokenError(f"no token with id {token_id[:20]!r}; `waterhub tokens list` shows them")
    if old.revoked_at is not None or old.expires_at <= now:
        raise InvalidTokenError(f"token {token_id} is revoked or expired already; create a new one instead")
    if expires_at <= now:
        raise ValueError("the token would be expired already; give a positive --expires")
    with engine.begin() as conn:
        issued = _issue(conn, old.department, [tuple(row) for row in granted], expires_at=expires_at, now=now)
        ends = {"revoked_at": now} if grace <= timedelta(0) else {"expires_at": min(old.expires_at, now + grace)}
        conn.execute(update(tokens).where(tokens.c.token_id == token_id).values(**ends))
    return issued


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with engine.connect() as conn:
        granted: dict[str, list[str]] = {}
        for token_id, dataset in conn.execute(select(grants.c.token_id, grants.c.dataset).order_by(grants.c.dataset)):
            granted.setdefault(token_id, []).append(dataset)
        rows = conn.execute(
            select(
                tokens.c.token_id, tokens.c.department, tokens.c.created_at, tokens.c.expires_at, tokens.c.revoked_at
            ).order_by(tokens.c.department, tokens.c.created_at)
        )
        return [
            TokenInfo(token_id, department, tuple(granted.get(token_id, ())), created, expires, revoked)
            for token_id, department, created, expires, revoked in rows
        ]


# The token and its grants in one round trip: a request is checked by one indexed lookup and one hash.
_TOKEN_WITH_GRANTS = (
    select(
        tokens.c.department,
        tokens.c.secret_sha256,
        tokens.c.expires_at,
        tokens.c.revoked_at,
        grants.c.dataset,
        grants.c.row_filter,
    )
    .select_from(tokens.outerjoin(grants, grants.c.token_id == tokens.c.token_id))
    .where(tokens.c.token_id == bindparam("token_id"))
)


def authenticate(conn: Connection, bearer: str, *, now: datetime) -> Principal:
    """The principal behind a bearer token, or ``InvalidTokenError`` saying why it was refused."""
    match = _TOKEN.fullmatch(bearer)
    if match is None:
        raise InvalidTokenError("the bearer token is malformed; tokens look like wh_<12 hex>_<43 characters>")
    token_id, secret = match.groups()
    rows = conn.execute(_TOKEN_WITH_GRANTS, {"token_id": token_id}).all()
    if not rows or not hmac.compare_digest(rows[0].secret_sha256, _digest(secret)):
        raise InvalidTokenError("the bearer token is not valid")
    token = rows[0]
    if token.revoked_at is not None:
        raise InvalidTokenError(f"token {token_id} was revoked; ask the hub's operators for a new one")
    if token.expires_at <= now:
        raise InvalidTokenError(f"token {token_id} expired; ask the hub's operators for a new one")
    return Principal(token.department, token_id, {row.dataset: row.row_filter for row in rows if row.dataset})
