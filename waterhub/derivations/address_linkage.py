"""The address linkage (record → standard address) of every inspection dataset that carries an address, and each
dataset's match rate: ``quality.address_linkage`` applied to what the inputs changed.

A record is relinked when it changed, and when the standard address its code names changed (added, deleted, moved
to another grid); a record deleted upstream loses its link. A dataset's match rate is counted again over all its
published records whenever one of its links may have moved. Unmatched records are rows of the linkage with their
``review_reason``, never dropped and never quarantined: they were valid, only their address needs a reviewer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import case, func, select

from contracts import Contract
from contracts.addresses import AddressLink, AddressMatchRate, StandardAddress
from exchange.tables import dataset_table
from quality.address_linkage import ADDRESS_FIELD, link_to_addresses, linked_contracts, record_key
from waterhub.derivations.tables import changed_only, read_frame, rows_where_in
from waterhub.derived import DerivationInputs, DerivedRows

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Connection

__all__ = ["derive", "match_counts"]

_ADDRESSES = StandardAddress.meta.key
_LINK_FIELDS, _RATE_FIELDS = (
    [spec.name for spec in contract.field_specs() if spec.name != contract.meta.version_field]
    for contract in (AddressLink, AddressMatchRate)
)


def derive(inputs: DerivationInputs) -> dict[str, DerivedRows]:
    """Links of the records the inputs' changes touched, tombstones of deleted ones, rates of their datasets."""
    import pandas as pd

    changed_codes: set[tuple[object, ...]] = {(code,) for code in inputs.changes[_ADDRESSES]["address_code"]}
    links: list[dict[str, object]] = []
    gone: list[dict[str, object]] = []
    rates = []
    for contract in linked_contracts():
        changed = inputs.changes[contract.meta.key]
        if changed.empty and not changed_codes:
            continue
        records = _records(inputs.conn, contract, changed, changed_codes)
        grids = _grids(inputs.conn, {(code,) for code in records[ADDRESS_FIELD].dropna()})
        links += link_to_addresses(contract, records.to_dict("records"), grids).links
        found = {record_key(list(key)) for key in records[list(contract.meta.primary_key)].itertuples(index=False)}
        gone += [
            {"dataset": contract.meta.key, "record_key": key}
            for key in (record_key(list(row)) for row in changed.itertuples(index=False))
            if key not in found
        ]
        rates.append({"dataset": contract.meta.key, **match_counts(inputs.conn, contract)})
    link_rows = pd.DataFrame(links, columns=_LINK_FIELDS)
    rate_rows = pd.DataFrame(rates, columns=_RATE_FIELDS)
    return {
        AddressLink.meta.key: DerivedRows(
            changed_only(inputs.conn, AddressLink, link_rows),
            pd.DataFrame(gone, columns=["dataset", "record_key"]) if gone else None,
        ),
        AddressMatchRate.meta.key: DerivedRows(changed_only(inputs.conn, AddressMatchRate, rate_rows)),
    }


def _records(
    conn: Connection, contract: type[Contract], changed: pd.DataFrame, codes: set[tuple[object, ...]]
) -> pd.DataFrame:
    """The published records of ``contract`` with a changed key or at a changed address: key, code, updated_at."""
    import pandas as pd

    key = list(contract.meta.primary_key)
    fields = [*key, ADDRESS_FIELD, "updated_at"]
    by_key = rows_where_in(conn, contract, key, changed.itertuples(index=False, name=None), fields)
    at_codes = rows_where_in(conn, contract, [ADDRESS_FIELD], codes, fields)
    return pd.concat([by_key, at_codes], ignore_index=True).drop_duplicates(key, ignore_index=True)


def _grids(conn: Connection, codes: set[tuple[object, ...]]) -> dict[str, str | None]:
    found = rows_where_in(conn, StandardAddress, ["address_code"], codes, ["address_code", "grid_code"])
    return dict(zip(found["address_code"], found["grid_code"], strict=True))


def match_counts(conn: Connection, contract: type[Contract]) -> dict[str, object]:
    """How many of the dataset's published records link to a standard address, and why the others do not."""
    records, addresses = dataset_table(contract), dataset_table(StandardAddress)
    code = records.c[ADDRESS_FIELD]
    query = select(
        func.count().label("records"),
        func.count(addresses.c.address_code).label("matched"),
        func.coalesce(func.sum(case((code.is_(None), 1), else_=0)), 0).label("no_address"),
    ).select_from(records.outerjoin(addresses, code == addresses.c.address_code))
    row = read_frame(conn, query).iloc[0]
    total, matched, no_address = int(row["records"]), int(row["matched"]), int(row["no_address"])
    return {
        "records": total,
        "matched": matched,
        "no_address": no_address,
        "unknown_address": total - matched - no_address,
        "match_rate": matched / total if total else None,
    }
