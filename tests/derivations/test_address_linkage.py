"""The address linkage derived end to end on PostgreSQL and SQLite: households and an inspection link to standard
addresses or go to review with their reason, the match rate counts them; a rerun changes nothing; a new address, a
moved grid and a record deleted upstream each change exactly the links they touch."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import Engine, select

from connectors.city_platform.simulator import address_code
from contracts.addresses import AddressLink, AddressMatchRate, StandardAddress
from contracts.drainage import DrainageHousehold, HouseholdInspection
from exchange.publish import publish_frame
from exchange.tables import change_log, dataset_table
from tests.exchange.rows import LATER, NOW, T0, publish, typed_frame
from waterhub.derived import Derivation

DERIVATION = "address_linkage"
LINKS, RATES = AddressLink.meta.key, AddressMatchRate.meta.key
HOUSEHOLDS, INSPECTIONS = DrainageHousehold.meta.key, HouseholdInspection.meta.key
A1, A2, UNKNOWN = address_code(1), address_code(2), address_code(900_001)


def _address(code: str, grid: str, at: object = T0) -> dict[str, object]:
    return {
        "address_code": code,
        "full_address": f"广东省广州市天河区石牌街{code[-3:]}号",
        "district": "天河区",
        "street": "石牌街",
        "grid_code": grid,
        "longitude": 113.33,
        "latitude": 23.13,
        "updated_at": at,
    }


def _household(household_id: str, code: str | None) -> dict[str, object]:
    return {
        "household_id": household_id,
        "name": f"{household_id} 餐馆",
        "district": "天河区",
        "address_code": code,
        "category": "catering",
        "key_household": False,
        "updated_at": T0,
    }


def _inspection(inspection_id: str, household_id: str, code: str | None) -> dict[str, object]:
    return {
        "inspection_id": inspection_id,
        "household_id": household_id,
        "inspected_at": T0,
        "inspector": "张工",
        "result": "normal",
        "address_code": code,
        "updated_at": T0,
    }


def _links(engine: Engine) -> dict[str, tuple[object, ...]]:
    table = dataset_table(AddressLink)
    columns = ["dataset", "record_key", "address_code", "grid_code", "status", "match_method", "review_reason"]
    with engine.connect() as conn:
        rows = conn.execute(select(*(table.c[name] for name in columns)))
        return {f"{row[0]} {row[1]}": tuple(row[2:]) for row in rows}


def _rates(engine: Engine) -> dict[str, tuple[object, ...]]:
    table = dataset_table(AddressMatchRate)
    columns = ["records", "matched", "no_address", "unknown_address", "match_rate"]
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.dataset, *(table.c[name] for name in columns)))
        return {row[0]: tuple(row[1:]) for row in rows}


def _changes(engine: Engine, dataset: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        query = select(change_log.c.key, change_log.c.op).where(change_log.c.dataset == dataset)
        return [(key, op) for key, op in conn.execute(query.order_by(change_log.c.seq))]


def test_records_link_or_go_to_review_and_each_change_moves_only_its_links(hub: tuple[Derivation, Engine]) -> None:
    derivation, engine = hub
    publish(engine, StandardAddress, [_address(A1, "440106000001"), _address(A2, "440106000002")], run_id="a-1")
    households = [_household("PS000001", A1), _household("PS000002", None), _household("PS000003", UNKNOWN)]
    publish(engine, DrainageHousehold, households, run_id="h-1")
    publish(engine, HouseholdInspection, [_inspection("XJ000001", "PS000001", A2)], run_id="h-1")

    assert derivation.publish(run_id="link-1", now=NOW) == [LINKS, RATES]
    assert _links(engine) == {
        f'{HOUSEHOLDS} ["PS000001"]': (A1, "440106000001", "matched", "address_code", None),
        f'{HOUSEHOLDS} ["PS000002"]': (None, None, "unmatched", None, "no_address"),
        f'{HOUSEHOLDS} ["PS000003"]': (None, None, "unmatched", None, "unknown_address"),
        f'{INSPECTIONS} ["XJ000001"]': (A2, "440106000002", "matched", "address_code", None),
    }
    rates = _rates(engine)
    assert rates[HOUSEHOLDS] == (3, 1, 1, 1, pytest.approx(1 / 3))
    assert rates[INSPECTIONS] == (1, 1, 0, 0, 1.0)
    assert rates["rural_sewage.facilities"] == (0, 0, 0, 0, None)  # nothing published: no rate, not 0 %
    links_logged, rates_logged = len(_changes(engine, LINKS)), len(_changes(engine, RATES))

    assert derivation.publish(run_id="link-2", now=LATER) == []
    assert (len(_changes(engine, LINKS)), len(_changes(engine, RATES))) == (links_logged, rates_logged)

    # the address base learns the unknown code: that household alone is relinked
    publish(engine, StandardAddress, [_address(UNKNOWN, "440106000009", LATER)], run_id="a-2", now=LATER)
    assert derivation.publish(run_id="link-3", now=LATER) == [LINKS, RATES]
    assert _changes(engine, LINKS)[links_logged:] == [(f'["{HOUSEHOLDS}","[\\"PS000003\\"]"]', "update")]
    assert _links(engine)[f'{HOUSEHOLDS} ["PS000003"]'] == (UNKNOWN, "440106000009", "matched", "address_code", None)
    assert _changes(engine, RATES)[rates_logged:] == [(f'["{HOUSEHOLDS}"]', "update")]
    assert _rates(engine)[HOUSEHOLDS] == (3, 2, 1, 0, pytest.approx(2 / 3))

    # a household deleted upstream loses its link; an address moved to another grid moves its records' grid
    with engine.begin() as conn:
        gone = pd.DataFrame({"household_id": ["PS000002"], "updated_at": [LATER]})
        empty = typed_frame(DrainageHousehold, [])
        publish_frame(conn, DrainageHousehold, empty, run_id="h-2", now=LATER, tombstones=gone)
    publish(engine, StandardAddress, [_address(A2, "440106000022", LATER)], run_id="a-3", now=LATER)
    assert derivation.publish(run_id="link-4", now=LATER) == [LINKS, RATES]
    links = _links(engine)
    assert f'{HOUSEHOLDS} ["PS000002"]' not in links
    assert links[f'{INSPECTIONS} ["XJ000001"]'][1] == "440106000022"
    assert sorted(op for _, op in _changes(engine, LINKS)[links_logged + 1 :]) == ["delete", "update"]
    assert _rates(engine)[HOUSEHOLDS] == (2, 2, 0, 0, 1.0)


def test_the_derivation_reads_the_address_base_and_every_dataset_that_carries_an_address() -> None:
    from quality.address_linkage import linked_contracts
    from waterhub.derived import derivation_declaration

    inputs = derivation_declaration("address_linkage").inputs
    assert set(inputs) == {StandardAddress.meta.key} | {contract.meta.key for contract in linked_contracts()}
