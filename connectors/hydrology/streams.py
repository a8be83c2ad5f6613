"""The platform's seven SL 323 tables as streams: stations, three threshold tables, three observation tables.

Every table answers ``GET /api/sl323/<TABLE>?page=&page_size=[&moditime_since=]`` in one envelope,
``{"code": 0, "message": "ok", "data": {"items": [...], "page": n, "page_size": m, "total": N}}``; a page whose
``code`` is not 0 is an error even with status 200. Rows carry the SL 323 column names as the platform's database
writes them, in capitals (``STCD``, ``TM``, ``DRP``), and ``MODITIME``, the time the platform last changed the row:
the hub's ``updated_at``, which orders versions of a row and is the cursor. Rows come ordered by key, not by
``MODITIME``, so a late correction of an old row sits among old rows: a run reads every page before it publishes.
A row the platform deleted comes back once as ``{"STCD", "TM", "MODITIME", "DELETED": true}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from connectors.http import CursorParam, PageNumberPaginator, Tombstone
from connectors.http.envelope import CodeEnvelopeStream
from contracts.base import Contract
from contracts.hydrology import (
    RainfallRecord,
    ReservoirFloodCharacteristics,
    ReservoirFloodSeasonLimit,
    ReservoirRecord,
    RiverRecord,
    RiverThresholds,
    Station,
)

__all__ = ["HYDROLOGY_STREAMS", "ROW_SOURCE", "Sl323Stream", "sl323_row"]

ROW_SOURCE = "http:hydrology"
"""What every row this source publishes says in ``source``; devices' rows say ``device:<protocol>``."""
VERSION_COLUMN = "MODITIME"


def sl323_row(raw: Mapping[str, object]) -> dict[str, object]:
    """A platform row as contract fields: column names in lower case (the contract keeps SL 323's names),
    ``MODITIME`` as ``updated_at``, and ``source`` set to this source whatever the row said."""
    row = {key.lower(): value for key, value in raw.items()}
    row["updated_at"] = row.pop(VERSION_COLUMN.lower(), None)
    row["source"] = ROW_SOURCE
    return row


class Sl323Stream(CodeEnvelopeStream):
    """One SL 323 table of the platform, read from its ``MODITIME`` watermark (each subclass names the table)."""

    table: ClassVar[str]
    paginator = PageNumberPaginator(size=1000)
    cursor = CursorParam(field="updated_at", param="moditime_since")
    tombstone = Tombstone("DELETED", True)

    def post_process(self, raw: Mapping[str, object]) -> dict[str, object]:
        return sl323_row(raw)


def _table_stream(name: str, table: str, contract: type[Contract]) -> type[Sl323Stream]:
    """The stream of one table: only its name, SL 323 table and contract differ."""
    attributes = {"name": name, "table": table, "contract": contract, "path": f"/api/sl323/{table}"}
    attributes["__doc__"] = f"SL 323 {table} → ``{contract.meta.key}``."
    return type(f"{table}Stream", (Sl323Stream,), attributes)


HYDROLOGY_STREAMS: tuple[type[Sl323Stream], ...] = (
    _table_stream("stations", "ST_STBPRP_B", Station),
    _table_stream("river_thresholds", "ST_RVFCCH_B", RiverThresholds),
    _table_stream("reservoir_flood_characteristics", "ST_RSVRFCCH_B", ReservoirFloodCharacteristics),
    _table_stream("reservoir_flood_season_limits", "ST_RSVRFSR_B", ReservoirFloodSeasonLimit),
    _table_stream("rainfall", "ST_PPTN_R", RainfallRecord),
    _table_stream("river", "ST_RIVER_R", RiverRecord),
    _table_stream("reservoir", "ST_RSVR_R", ReservoirRecord),
)
"""In reading order: stations first, so quality checks the other tables' stations against the same run's."""
