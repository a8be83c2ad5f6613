"""Departments: the principals of the consumer API, and the built-in Guangzhou list the demo loads.

A department is named by a short stable code (what tokens, grants and the audit carry) and its official name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, select, update

from exchange.db import upsert_insert
from exchange.errors import UnknownDepartmentError
from exchange.tables import departments, tokens

__all__ = [
    "BUILTIN_DEPARTMENTS",
    "CODE_PATTERN",
    "Department",
    "add_department",
    "list_departments",
    "remove_department",
    "seed_departments",
]

CODE_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"


@dataclass(frozen=True)
class Department:
    code: str
    name: str


BUILTIN_DEPARTMENTS: tuple[Department, ...] = (
    Department("gz-water", "广州市水务局"),
    Department("gz-river-chief", "广州市河长制办公室"),
    Department("gz-eco-env", "广州市生态环境局"),
    Department("gz-housing", "广州市住房和城乡建设局"),
    Department("gz-emergency", "广州市应急管理局"),
    Department("gz-planning", "广州市规划和自然资源局"),
    Department("tianhe-water", "天河区水务局"),
    Department("yuexiu-water", "越秀区水务局"),
    Department("haizhu-water", "海珠区水务局"),
    Department("liwan-water", "荔湾区水务局"),
    Department("baiyun-water", "白云区水务局"),
    Department("huangpu-water", "黄埔区水务局"),
    Department("panyu-water", "番禺区水务局"),
    Department("huadu-water", "花都区水务局"),
    Department("nansha-water", "南沙区水务局"),
    Department("conghua-water", "从化区水务局"),
    Department("zengcheng-water", "增城区水务局"),
)
"""The city's water-related bureaus and its eleven district water bureaus: who reads the river-chief data."""


def add_department(engine: Engine, code: str, name: str, *, now: datetime) -> bool:
    """Register a department; True when added, False when the code exists (its name is then updated)."""
    if not re.fullmatch(CODE_PATTERN, code):
        raise ValueError(f"department code {code[:50]!r} must be 2-40 lower-case letters, digits or '-', from a letter")
    if not name.strip() or len(name) > 100:
        raise ValueError("a department name must be 1-100 characters")
    with engine.begin() as conn:
        inserted = conn.execute(
            upsert_insert(conn, departments)
            .values(code=code, name=name.strip(), created_at=now)
            .on_conflict_do_nothing(index_elements=[departments.c.code])
            .returning(departments.c.code)
        ).first()
        if inserted is None:
            conn.execute(update(departments).where(departments.c.code == code).values(name=name.strip()))
    return inserted is not None


def seed_departments(engine: Engine, *, now: datetime) -> int:
    """Load the built-in list; departments already there are kept. Returns how many were added."""
    return sum(add_department(engine, d.code, d.name, now=now) for d in BUILTIN_DEPARTMENTS)


def list_departments(engine: Engine) -> list[Department]:
    with engine.connect() as conn:
        rows = conn.execute(select(departments.c.code, departments.c.name).order_by(departments.c.code))
        return [Department(code, name) for code, name in rows]


def remove_department(engine: Engine, code: str, *, now: datetime) -> int:
    """Remove a department and revoke its live tokens at once; returns how many tokens were revoked.

    Its tokens' rows stay (revoked), so the audit still says whose they were.
    """
    with engine.begin() as conn:
        if conn.execute(delete(departments).where(departments.c.code == code)).rowcount == 0:
            raise UnknownDepartmentError(f"no department {code[:50]!r}; `waterhub departments list` shows them")
        revoked = conn.execute(
            update(tokens).where(tokens.c.department == code, tokens.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        return int(revoked.rowcount)
