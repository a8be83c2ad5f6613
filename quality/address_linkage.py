"""Which standard address each inspection-system record links to, with the match rate; unmatched records go to
review, never dropped.

A pure function over rows, so the derived-dataset seam (``waterhub.derivations.address_linkage``, a DAG scheduled
on its inputs' Assets) publishes its result as ``addresses.record_links`` without this module knowing where rows
come from. A record links by its
``address_code``: to the standard address holding that code, or to none, for a reason a reviewer can act on
(``no_address``: the inspector recorded none; ``unknown_address``: a code the address base does not hold, a typo or
a retired address). Every record yields one link row, matched or not, so nothing is lost between the inspection
datasets and the linkage.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from contracts import Contract
from contracts.addresses import AddressLink
from contracts.registry import all_contracts

__all__ = ["AddressLinkage", "link_to_addresses", "linked_contracts", "record_key"]

ADDRESS_FIELD = "address_code"
_ADDRESS_BASE = AddressLink.meta.key.split(".")[0] + "."


@dataclass(frozen=True)
class AddressLinkage:
    """The links of one dataset's records: ``links`` holds one ``AddressLink`` row per record, matched or not."""

    dataset: str
    links: tuple[dict[str, object], ...]

    @property
    def matched(self) -> int:
        return sum(1 for link in self.links if link["status"] == "matched")

    @property
    def unmatched(self) -> tuple[dict[str, object], ...]:
        """The rows for review, each with its ``review_reason``."""
        return tuple(link for link in self.links if link["status"] == "unmatched")

    @property
    def match_rate(self) -> float | None:
        """Matched records over all records; None when there are none (a rate of nothing is not 0 % or 100 %)."""
        return self.matched / len(self.links) if self.links else None


def linked_contracts() -> list[type[Contract]]:
    """Every dataset whose records carry a standard address code, but the address base's own."""
    return [
        contract
        for contract in all_contracts()
        if ADDRESS_FIELD in contract.model_fields and not contract.meta.key.startswith(_ADDRESS_BASE)
    ]


def record_key(values: Sequence[object]) -> str:
    """A primary key as compact JSON, as the change log writes keys (times as ISO 8601)."""
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    return json.dumps(plain, ensure_ascii=False, separators=(",", ":"))


def link_to_addresses(
    contract: type[Contract], records: Iterable[Mapping[str, object]], grids: Mapping[str, str | None]
) -> AddressLinkage:
    """Link published ``records`` of ``contract``'s dataset to the standard addresses ``grids`` holds (address code
    → its grid code). A record needs its primary key and ``updated_at``; its ``address_code`` may be missing."""
    if ADDRESS_FIELD not in contract.model_fields:
        raise ValueError(f"{contract.meta.key} has no {ADDRESS_FIELD}: its records cannot link to an address")
    primary_key = contract.meta.primary_key
    links = []
    for record in records:
        code = record.get(ADDRESS_FIELD)
        known = isinstance(code, str) and code in grids
        links.append(
            {
                "dataset": contract.meta.key,
                "record_key": record_key([record[name] for name in primary_key]),
                "recorded_address_code": code if isinstance(code, str) and code else None,
                "address_code": code if known else None,
                "grid_code": grids[code] if known and isinstance(code, str) else None,
                "status": "matched" if known else "unmatched",
                "match_method": "address_code" if known else None,
                "review_reason": None if known else ("no_address" if code in (None, "") else "unknown_address"),
                "updated_at": record["updated_at"],
            }
        )
    return AddressLinkage(contract.meta.key, tuple(links))
