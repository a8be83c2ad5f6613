"""Linking inspection-system records to standard addresses: every record yields one link, matched or for review
with its reason, and the match rate counts them; end to end, published rows of the simulators link as their ground
truth says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.addresses.simulator import AddressesSimulator
from connectors.city_platform.simulator import DEMO_CLIENT_SECRET, address_code
from connectors.drainage_facilities.simulator import DrainageFacilitiesSimulator
from contracts.addresses import AddressLink, StandardAddress
from contracts.drainage import FacilityInspection
from contracts.rural_sewage import EffluentSample
from exchange.tables import dataset_table
from quality.address_linkage import link_to_addresses, linked_contracts, record_key
from waterhub.pipeline import Pipeline
from waterhub.settings import HttpClientSettings, Settings
from waterhub.sources import source_declaration

AT = datetime(2026, 11, 20, 8, tzinfo=UTC)
GRIDS = {address_code(1): "440106001001", address_code(2): "440106001002"}


def _inspection(n: int, code: str | None) -> dict[str, object]:
    return {"inspection_id": f"XJ{n:08d}", "address_code": code, "updated_at": AT}


def test_each_record_links_to_its_address_or_goes_to_review_with_the_reason() -> None:
    records = [
        _inspection(1, address_code(1)),
        _inspection(2, address_code(2)),
        _inspection(3, None),
        _inspection(4, address_code(999_999)),
        _inspection(5, address_code(1)),
    ]
    linkage = link_to_addresses(FacilityInspection, records, GRIDS)
    assert [
        (link["status"], link["address_code"], link["match_method"], link["review_reason"]) for link in linkage.links
    ] == [
        ("matched", address_code(1), "address_code", None),
        ("matched", address_code(2), "address_code", None),
        ("unmatched", None, None, "no_address"),
        ("unmatched", None, None, "unknown_address"),
        ("matched", address_code(1), "address_code", None),
    ]
    assert [link["record_key"] for link in linkage.unmatched] == ['["XJ00000003"]', '["XJ00000004"]']
    assert linkage.unmatched[1]["recorded_address_code"] == address_code(999_999)  # what the reviewer corrects
    assert linkage.links[0]["grid_code"] == "440106001001"
    assert linkage.match_rate == pytest.approx(3 / 5)
    for link in linkage.links:
        AddressLink.model_validate({**link, "input_seq": 1})  # publishable once the runner sets the version


def test_no_records_have_no_match_rate_and_a_dataset_without_addresses_is_refused() -> None:
    assert link_to_addresses(FacilityInspection, [], GRIDS).match_rate is None
    with pytest.raises(ValueError, match="no address_code"):
        link_to_addresses(EffluentSample, [], GRIDS)


def test_a_key_with_a_time_is_written_as_the_change_log_writes_keys() -> None:
    assert record_key(["NW00000001", AT]) == '["NW00000001","2026-11-20T08:00:00+00:00"]'


def test_the_linked_datasets_are_the_inspection_systems_records_that_carry_an_address() -> None:
    keys = {contract.meta.key for contract in linked_contracts()}
    assert keys == {
        "drainage.facilities",
        "drainage.facility_inspections",
        "drainage.households",
        "drainage.household_inspections",
        "rural_sewage.facilities",
        "rural_sewage.inspections",
    }


def _pipeline(name: str, base_url: str, tmp_path: Path, database_url: str) -> Pipeline:
    block = source_declaration(name).settings_class()(base_url=base_url, client_secret=DEMO_CLIENT_SECRET)
    blocks: dict[str, Any] = {name: block}
    settings = Settings(data_dir=tmp_path, database_url=database_url, http=HttpClientSettings(max_attempts=1), **blocks)
    return Pipeline(settings, name)


def test_published_inspections_link_to_published_addresses_as_the_simulators_say(
    tmp_path: Path, pg_schema_url: str
) -> None:
    addresses, facilities = AddressesSimulator(), DrainageFacilitiesSimulator()
    now = max(addresses.now, facilities.now)
    with addresses.serve() as served_addresses, facilities.serve() as served_facilities:
        for name, served in (("addresses", served_addresses), ("drainage_facilities", served_facilities)):
            pipe = _pipeline(name, served.base_url, tmp_path, pg_schema_url)
            batch = pipe.extract(run_id=f"run-{name}", interval_end=now, now=now)
            pipe.validate(batch, now=now)
            pipe.publish(batch, now=now)
            pipe.engine.dispose()
        engine = pipe.engine
        truth_addresses = served_addresses.truth.published["standard_addresses"]
        truth_inspections = served_facilities.truth.published["inspections"]
    with engine.connect() as conn:
        addresses_table = dataset_table(StandardAddress)
        grids: dict[str, str | None] = {
            code: grid
            for code, grid in conn.execute(select(addresses_table.c.address_code, addresses_table.c.grid_code))
        }
        rows = [dict(row) for row in conn.execute(select(dataset_table(FacilityInspection))).mappings()]
    engine.dispose()
    linkage = link_to_addresses(FacilityInspection, rows, grids)

    known = {code for (code,) in truth_addresses}
    expected = {
        f'["{inspection_id}"]': "matched" if record["address_code"] in known else "unmatched"
        for (inspection_id,), record in truth_inspections.items()
    }
    assert {link["record_key"]: link["status"] for link in linkage.links} == expected
    assert 0 < linkage.matched < len(linkage.links)  # the simulators record unknown and missing codes too
    assert linkage.match_rate == pytest.approx(list(expected.values()).count("matched") / len(expected))
