"""What a derived dataset has read of its inputs: one change-log sequence per input, and the keys changed since.

A derivation recomputes only the keys its inputs changed. It reads each input's change log after its stored
sequence, up to the input's last sequence when the derivation starts, and advances the stored sequence in the
transaction that publishes what it derived: a failed run moves nothing and reads the same changes again, a rerun
with nothing new finds nothing to do. Like watermarks (``exchange.state``), the position never moves backwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, select

from contracts import Contract
from exchange.db import upsert_insert
from exchange.hashing import canonical_columns
from exchange.tables import change_log, datasets, derived_state

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["advance_input_position", "changed_keys", "input_positions", "last_seqs"]


def input_positions(conn: Connection, derivation: str, inputs: Iterable[str]) -> dict[str, int]:
    """Per input dataset, the sequence ``derivation`` has derived up to (0: none yet)."""
    stored = dict(
        conn.execute(
            select(derived_state.c.input_dataset, derived_state.c.last_seq).where(
                derived_state.c.derivation == derivation
            )
        ).all()
    )
    return {dataset: int(stored.get(dataset, 0)) for dataset in inputs}


def last_seqs(conn: Connection, inputs: Iterable[str]) -> dict[str, int]:
    """Per dataset, its last change-log sequence (0: never published). Read before the change log itself, so every
    entry up to it has committed."""
    wanted = list(inputs)
    found = dict(conn.execute(select(datasets.c.key, datasets.c.last_seq).where(datasets.c.key.in_(wanted))).all())
    return {dataset: int(found.get(dataset, 0)) for dataset in wanted}


def changed_keys(conn: Connection, contract: type[Contract], after: int, up_to: int) -> pd.DataFrame:
    """The distinct primary keys the dataset's change log names in ``(after, up_to]``, deletes included, typed as the
    contract types them (what its table holds), one column per key field."""
    import pandas as pd

    meta = contract.meta
    texts = conn.execute(
        select(change_log.c.key)
        .where(change_log.c.dataset == meta.key, change_log.c.seq > after, change_log.c.seq <= up_to)
        .distinct()
    ).scalars()
    rows = [json.loads(text) for text in texts]
    frame = pd.DataFrame(rows, columns=list(meta.primary_key), dtype=object)
    for name in meta.primary_key:
        if contract.field_spec(name).type == "datetime":  # keys log times as ISO 8601 UTC (exchange.hashing)
            frame[name] = [datetime.fromisoformat(value) for value in frame[name]]
    return canonical_columns(contract, frame, list(meta.primary_key))


def advance_input_position(
    conn: Connection, derivation: str, dataset: str, seq: int, *, run_id: str, now: datetime
) -> None:
    """Store that ``derivation`` has derived ``dataset`` up to ``seq``, unless it already has further."""
    statement = upsert_insert(conn, derived_state).values(
        derivation=derivation, input_dataset=dataset, last_seq=seq, run_id=run_id, updated_at=now
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[derived_state.c.derivation, derived_state.c.input_dataset],
            set_={
                "last_seq": statement.excluded.last_seq,
                "run_id": statement.excluded.run_id,
                "updated_at": statement.excluded.updated_at,
            },
            where=derived_state.c.last_seq < statement.excluded.last_seq,
        )
    )
