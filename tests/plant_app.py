"""A small source for the pipeline's seams: stations read whole each run (full refresh), and each station's
readings (a child stream partitioned per station, incremental by ``updated_at``, with tombstones), served on the
shared simulator parts. Its contracts are registered only for the tests that use them (``plant_contracts``)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import ClassVar

from pydantic import SecretStr

from connectors.http import (
    ApiKeyHeader,
    CursorParam,
    HttpStream,
    OffsetPaginator,
    PageNumberPaginator,
    Source,
    Tombstone,
)
from connectors.http.settings import HttpClientSettings
from connectors.simulation import Answer, HttpSimulator
from contracts import Classification, Contract, ContractMeta
from contracts.types import BEIJING, BeijingTime

KEY = "plant-test-key"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class PlantStation(Contract):
    meta: ClassVar[ContractMeta] = ContractMeta(
        key="plant.stations",
        version="1.0.0",
        owner="tests",
        classification=Classification.PUBLIC,
        primary_key=("code",),
        version_field="updated_at",
    )
    code: str
    name: str
    updated_at: BeijingTime


class PlantReading(Contract):
    meta: ClassVar[ContractMeta] = ContractMeta(
        key="plant.readings",
        version="1.0.0",
        owner="tests",
        classification=Classification.PUBLIC,
        primary_key=("station", "n"),
        version_field="updated_at",
        cursor_field="updated_at",
    )
    station: str
    n: int
    value: float | None = None
    updated_at: BeijingTime


class StationsStream(HttpStream):
    name = "stations"
    contract = PlantStation
    path = "/stations"
    paginator = PageNumberPaginator(size=2, total_path=None)
    full_refresh = True


class ReadingsStream(HttpStream):
    name = "readings"
    contract = PlantReading
    path = "/stations/{station}/readings"
    paginator = OffsetPaginator(size=2)
    cursor = CursorParam(field="updated_at", param="updated_since")
    parent = StationsStream
    parent_keys: ClassVar[dict[str, str]] = {"station": "code"}
    tombstone = Tombstone("deleted", True)


class PlantSource(Source):
    name = "plant"
    title = "the plant test API"

    def __init__(self, base_url: str, http: HttpClientSettings) -> None:
        super().__init__(
            base_url=base_url,
            auth=ApiKeyHeader("X-Api-Key", SecretStr(KEY)),
            http=http,
            streams=(StationsStream(), ReadingsStream()),
        )


class PlantSimulator(HttpSimulator):
    """Stations and readings the test changes between runs; readings are served sorted by ``updated_at`` and
    filtered by ``updated_since`` (inclusive), times in Beijing time without an offset as the domain's APIs send."""

    thread_name = "plant simulator"
    paths = frozenset({"/stations"})

    def __init__(self) -> None:
        super().__init__()
        self.stations: dict[str, dict[str, object]] = {}
        self.readings: dict[str, list[dict[str, object]]] = {}

    def add_station(self, code: str, at: datetime) -> None:
        self.stations[code] = {"code": code, "name": f"station {code}", "updated_at": _beijing(at)}
        self.readings.setdefault(code, [])

    def _serves(self, method: str, path: str) -> bool:
        """The stations list, and the readings of each station added so far."""
        code = path.removeprefix("/stations/").removesuffix("/readings")
        return super()._serves(method, path) or (path == f"/stations/{code}/readings" and code in self.stations)

    def add_reading(self, station: str, n: int, at: datetime, *, deleted: bool = False) -> None:
        record: dict[str, object] = {"station": station, "n": n, "updated_at": _beijing(at)}
        record |= {"deleted": True} if deleted else {"value": float(n)}
        self.readings[station] = [r for r in self.readings[station] if r["n"] != n] + [record]

    def _refusal(self, headers: Mapping[str, str]) -> str | None:
        return None if headers.get("X-Api-Key") == KEY else "bad key"

    def _error(self, status: int, message: str) -> bytes:
        return json.dumps({"error": message}).encode()

    def _page(self, path: str, query: dict[str, str], *, repeat_previous: bool) -> Answer:
        if path == "/stations":
            page, size = int(query["page"]), int(query["page_size"])
            items = list(self.stations.values())[(page - 1) * size : page * size]
        else:
            since = query.get("updated_since", "")
            rows = sorted(self.readings[path.split("/")[2]], key=lambda r: (str(r["updated_at"]), int(str(r["n"]))))
            chosen = [r for r in rows if str(r["updated_at"]) >= since]
            offset, limit = int(query["offset"]), int(query["limit"])
            items = chosen[offset : offset + limit]
        return Answer(200, json.dumps({"data": {"items": items}}).encode(), {})


def _beijing(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime(TIME_FORMAT)


def registered() -> Iterator[None]:
    """Register the plant contracts (and their tables) for one test, then remove them again."""
    import contracts.registry
    from exchange.tables import dataset_table, metadata

    contracts.registry._load()  # restored below, a registry saved before it loaded would come back empty, and stay so
    saved = dict(contracts.registry._REGISTRY)
    for contract in (PlantStation, PlantReading):
        contracts.registry.register(contract)
    try:
        yield
    finally:
        contracts.registry._REGISTRY.clear()
        contracts.registry._REGISTRY.update(saved)
        for contract in (PlantStation, PlantReading):
            metadata.remove(dataset_table(contract))
