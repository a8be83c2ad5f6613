"""No leak over Delta Sharing: each department lists and reads only the tables it is granted, a table not granted
answers as one that does not exist, bad tokens and bad or stale file signatures are refused, and listings page."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pyarrow.parquet as pq
import pytest

from contracts.water_quality import WaterQualitySample, WaterQualityStation
from exchange.access.tokens import revoke_token
from exchange.sharing.delta import sync_dataset
from exchange.sharing.settings import SharingSettings
from tests.exchange.api.conftest import Hub

ROOT = "/delta-sharing/shares/waterhub"
TABLES = {
    "water_quality.stations": f"{ROOT}/schemas/water_quality/tables/stations",
    "water_quality.samples": f"{ROOT}/schemas/water_quality/tables/samples",
    "no.such_dataset": f"{ROOT}/schemas/no/tables/such_dataset",
}
GRANTED = {
    "city": {"water_quality.stations", "water_quality.samples"},
    "tianhe": {"water_quality.stations"},
    "eco": {"water_quality.samples"},
    "nobody": set(),
}


@pytest.fixture
def shared(hub: Hub) -> Hub:
    for contract in (WaterQualityStation, WaterQualitySample):
        sync_dataset(hub.engine, hub.store, contract, SharingSettings(), now=hub.clock.now)
    return hub


def _files(answer_text: str) -> list[dict[str, object]]:
    return [json.loads(line)["file"] for line in answer_text.splitlines() if '"file"' in line[:10]]


@pytest.mark.parametrize("who", sorted(GRANTED))
def test_each_department_lists_and_reads_only_its_tables(shared: Hub, who: str) -> None:
    with shared.client(who) as client:
        listed = client.get(f"{ROOT}/all-tables").json()["items"]
        assert {f"{item['schema']}.{item['name']}" for item in listed} == GRANTED[who]
        schemas = client.get(f"{ROOT}/schemas").json()["items"]
        assert [item["name"] for item in schemas] == (["water_quality"] if GRANTED[who] else [])
        for key, path in TABLES.items():
            answers = [
                client.get(f"{path}/metadata"),
                client.get(f"{path}/version"),
                client.post(f"{path}/query", json={}),
                client.get(f"{path}/changes", params={"startingVersion": 1}),
            ]
            for answer in answers:
                if key in GRANTED[who]:
                    assert answer.status_code == 200, (key, answer.text)
                    assert int(answer.headers["delta-table-version"]) >= 1
                else:
                    assert answer.status_code == 404, key
                    assert answer.json()["detail"] == (
                        f"no dataset {key!r} is shared with you; GET /datasets lists yours"
                    )


def test_a_filtered_grant_is_sent_a_file_of_its_rows_only(shared: Hub) -> None:
    with shared.client("tianhe") as client:
        answer = client.post(f"{TABLES['water_quality.stations']}/query", json={})
        files = _files(answer.text)
        bodies = [client.get(str(file["url"]), headers={"Authorization": ""}) for file in files]
    districts = {
        value for body in bodies for value in pq.read_table(io.BytesIO(body.content)).column("district").to_pylist()
    }
    assert districts == {"天河区"}
    assert "/sharing/tables/" not in answer.text  # never the table's own files, which hold every district


def test_file_urls_are_signed_and_expire(shared: Hub) -> None:
    with shared.client("city") as client:
        file = _files(client.post(f"{TABLES['water_quality.stations']}/query", json={}).text)[0]
    url = str(file["url"])
    with shared.client(None) as anonymous:  # the signature alone is the permission
        good = anonymous.get(url)
        signature = url.rpartition("signature=")[2]
        forged = ("1" if signature[0] == "0" else "0") + signature[1:]
        tampered = anonymous.get(url.replace(signature, forged))
        other = anonymous.get(url.replace("/files/sharing/tables/", "/files/sharing/tables/x"))
        shared.clock.now += timedelta(seconds=SharingSettings().url_lifetime_s + 1)
        stale = anonymous.get(url)
    assert good.status_code == 200
    assert pq.read_metadata(io.BytesIO(good.content)).num_rows == 4
    assert [tampered.status_code, other.status_code, stale.status_code] == [403, 403, 403]


def test_an_expired_revoked_or_missing_token_is_refused(shared: Hub) -> None:
    with shared.client(None) as anonymous:
        assert anonymous.get(f"{ROOT}/all-tables").status_code == 401
    with shared.client("city") as client:
        revoke_token(shared.engine, shared.token_ids["eco"], now=shared.clock.now)
        with shared.client("eco") as eco:
            revoked = eco.get(f"{ROOT}/all-tables")
        shared.clock.now += timedelta(days=91)
        expired = client.post(f"{TABLES['water_quality.stations']}/query", json={})
    assert (revoked.status_code, expired.status_code) == (401, 401)
    assert "revoked" in revoked.json()["detail"]
    assert "expired" in expired.json()["detail"]


def test_listings_page_with_max_results_and_tokens(shared: Hub) -> None:
    with shared.client("city") as client:
        first = client.get(f"{ROOT}/all-tables", params={"maxResults": 1}).json()
        second = client.get(f"{ROOT}/all-tables", params={"maxResults": 1, "pageToken": first["nextPageToken"]}).json()
        bad = client.get(f"{ROOT}/all-tables", params={"pageToken": "not-ours"})
        unknown = client.get("/delta-sharing/shares/other/all-tables")
    assert [item["name"] for item in first["items"] + second["items"]] == ["samples", "stations"]
    assert "nextPageToken" not in second
    assert (bad.status_code, unknown.status_code) == (400, 404)
