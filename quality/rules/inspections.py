"""Rules of the inspection systems' and the address base's datasets beyond their contracts: the order of a record's
own times, and a drainage defect's type within its class.

Most of these are one rule in several datasets (a finding is not found after it was last recorded), so they are
declared as data: (dataset, earlier field, later field) triples, registered in a loop.
"""

from __future__ import annotations

from collections.abc import Callable

from contracts.drainage import DEFECT_TYPES
from contracts.types import CLOCK_TOLERANCE
from quality.coercion import EncodedBatch, EncodedColumn, encode_values
from quality.domain import DomainRule, domain_rule
from quality.suite import Check, DerivedColumn

__all__: list[str] = []

_IN_ORDER: tuple[tuple[str, str, str], ...] = (
    ("drainage.facility_inspections", "inspected_at", "updated_at"),
    ("drainage.household_inspections", "inspected_at", "updated_at"),
    ("rural_sewage.inspections", "inspected_at", "updated_at"),
    ("drainage.defects", "found_at", "updated_at"),
    ("drainage.defects", "found_at", "closed_at"),
    ("drainage.violations", "found_at", "updated_at"),
    ("drainage.violations", "found_at", "closed_at"),
    ("rural_sewage.effluent_samples", "sampled_at", "updated_at"),
)
"""(dataset, earlier, later): a visit is recorded after it happened, a finding is closed after it was found. Both
times come from the same system's clock, so the tolerance only absorbs a form filled in by hand a minute early."""


def _seconds_between(earlier: str, later: str) -> Callable[[EncodedBatch], EncodedColumn]:
    def compute(batch: EncodedBatch) -> EncodedColumn:
        gap = batch.columns[later].rows() - batch.columns[earlier].rows()
        return encode_values(gap.dt.total_seconds())

    return compute


def _in_order(earlier: str, later: str) -> Callable[[], DomainRule]:
    def rule() -> DomainRule:
        column = f"_{later}_minus_{earlier}_s"
        return DomainRule(
            f"{earlier}_before_{later}",
            checks=(
                Check(
                    f"{later}_before_{earlier}",
                    "between",
                    column,
                    {"min_value": -CLOCK_TOLERANCE.total_seconds()},
                    later,
                    f"{later} cannot come before {earlier}: one of the two was entered wrongly",
                ),
            ),
            derived=(DerivedColumn(column, _seconds_between(earlier, later)),),
        )

    return rule


for _dataset, _earlier, _later in _IN_ORDER:
    domain_rule(_dataset)(_in_order(_earlier, _later))


_CLASS_OF_TYPE = {defect_type: defect_class for defect_class, types in DEFECT_TYPES.items() for defect_type in types}


def _type_fits_class(batch: EncodedBatch) -> EncodedColumn:
    """Whether each defect's type is one of its class's types; null where either is missing or not allowed (those
    have their own reasons), so a record is not refused twice for one wrong value."""
    import numpy as np
    import pandas as pd

    classes = batch.columns["defect_class"].rows().astype(object)
    types = batch.columns["defect_type"].rows().astype(object)
    expected = types.map(_CLASS_OF_TYPE)
    known = classes.isin(list(DEFECT_TYPES)) & expected.notna()
    return encode_values(pd.Series(np.where(known, expected == classes, None), dtype=object))


@domain_rule("drainage.defects")
def _defect_type_in_class() -> DomainRule:
    """Structural defects (cracks, collapse...) and functional ones (deposits, blockage...) are graded on different
    tables; a type filed under the other class would be graded on the wrong one."""
    return DomainRule(
        "defect_type_in_class",
        checks=(
            Check(
                "defect_type_not_in_class",
                "in_set",
                "_defect_type_fits_class",
                {"value_set": [True]},
                "defect_type",
                "each defect type belongs to one class (contracts.drainage.DEFECT_TYPES)",
            ),
        ),
        derived=(DerivedColumn("_defect_type_fits_class", _type_fits_class),),
    )
