"""What a worker of ``waterhub serve api`` does once before it answers, so its first requests do not pay for it.

Profiling ``/changes`` under 50 consumers showed the slowest answers all in a worker's first seconds: the first
request imported every contract module (the registry loads them on first use) while holding the interpreter
for hundreds of milliseconds, and each of the first concurrent requests opened a database connection of its own
(a new PostgreSQL backend, whose catalogue caches start cold), and the first read of each dataset's feed built
and compiled its statement. All three are paid here instead.
"""

from __future__ import annotations

from contextlib import ExitStack, suppress
from datetime import datetime

from sqlalchemy import Engine, select

from contracts import UnknownContractError, all_contracts
from exchange.api.deps import published_contract
from exchange.api.routes.changes import warm_feed
from exchange.tables import datasets, grants, tokens

__all__ = ["warm_up"]


def warm_up(engine: Engine, connections: int, cutoff: datetime | None) -> None:
    """Load the contract registry and open ``connections`` pooled connections, each having read the tables every
    request reads (tokens, grants, the catalogue) and an empty page of each published dataset's change feed
    (``cutoff``: the retention's, as requests pass it), so they go back to the pool ready."""
    list(all_contracts())  # the registry imports every contract module on first use
    with ExitStack() as opened:
        for _ in range(connections):
            conn = opened.enter_context(engine.connect())
            conn.execute(select(tokens.c.token_id).join(grants, grants.c.token_id == tokens.c.token_id).limit(1))
            published = conn.execute(select(datasets.c.key, datasets.c.contract_version, datasets.c.last_seq))
            for key, version, last_seq in published.all():
                with suppress(UnknownContractError):  # a dataset whose contract is gone: no request can read it
                    warm_feed(conn, published_contract(key, version), key, int(last_seq), cutoff)
