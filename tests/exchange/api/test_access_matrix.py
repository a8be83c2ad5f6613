"""No leak: every department × dataset × path sees exactly what it is granted, and nothing else exists for it."""

from __future__ import annotations

import io
import itertools

import pyarrow.parquet as pq
import pytest

from tests.exchange.api.conftest import DISTRICTS, Hub

GRANTED = {
    "city": {"water_quality.stations", "water_quality.samples"},
    "tianhe": {"water_quality.stations"},
    "eco": {"water_quality.samples"},
    "nobody": set(),  # granted hydrology.rainfall, which was never published
}
DATASETS = ("water_quality.stations", "water_quality.samples", "hydrology.rainfall", "no.such_dataset")
PATHS = ("", "/rows", "/changes", "/snapshots", "/snapshots/{seq}")


def _seq(hub: Hub, dataset: str) -> int:
    return {"water_quality.stations": 4, "water_quality.samples": 20}.get(dataset, 1)


@pytest.mark.parametrize("who", sorted(GRANTED))
def test_each_department_sees_its_grants_and_nothing_else(hub: Hub, who: str) -> None:
    with hub.client(who) as client:
        catalogue = client.get("/datasets")
        assert catalogue.status_code == 200
        assert {item["key"] for item in catalogue.json()["datasets"]} == GRANTED[who]
        for dataset in DATASETS:
            for path in PATHS:
                url = f"/datasets/{dataset}{path.format(seq=_seq(hub, dataset))}"
                answer = client.get(url)
                if dataset in GRANTED[who]:
                    assert answer.status_code == 200, (url, answer.text)
                else:
                    assert answer.status_code == 404, url
                    assert answer.json() == {
                        "type": "urn:waterhub:problem:not-found",
                        "title": "Not found",
                        "status": 404,
                        "detail": f"no dataset {dataset!r} is shared with you; GET /datasets lists yours",
                    }, url


def test_a_filtered_grant_sees_only_its_rows_on_every_path(hub: Hub) -> None:
    tianhe = {code for code, district in DISTRICTS.items() if district == "天河区"}
    with hub.client("tianhe") as client:
        rows = client.get("/datasets/water_quality.stations/rows").json()["rows"]
        changes = client.get("/datasets/water_quality.stations/changes").json()["entries"]
        snapshot = client.get("/datasets/water_quality.stations/snapshots/4")
        asked_other = client.get("/datasets/water_quality.stations/rows", params={"district": "越秀区"}).json()["rows"]
        catalogue = client.get("/datasets").json()["datasets"][0]
    assert {row["station_code"] for row in rows} == tianhe
    assert {entry["row"]["station_code"] for entry in changes} == tianhe
    assert set(pq.read_table(io.BytesIO(snapshot.content)).column("station_code").to_pylist()) == tianhe
    assert asked_other == []  # a request filter narrows the grant, never widens it
    assert catalogue["rows"] is None
    assert catalogue["row_filter"] == [{"field": "district", "op": "eq", "values": ["天河区"]}]


def test_without_a_valid_token_every_dataset_path_is_401(hub: Hub) -> None:
    forged = "Bearer " + hub.tokens["city"][:-1] + ("A" if hub.tokens["city"][-1] != "A" else "B")
    headers_tried: tuple[dict[str, str], ...] = (
        {},
        {"Authorization": forged},
        {"Authorization": "Basic eDp5"},
        {"Authorization": "Bearer x"},
    )
    with hub.client(None) as client:
        for headers, path in itertools.product(headers_tried, ("/datasets", *(f"/datasets/{d}" for d in DATASETS))):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 401
            assert answer.json()["type"] == "urn:waterhub:problem:unauthorized"
            assert answer.headers["www-authenticate"].startswith("Bearer")
