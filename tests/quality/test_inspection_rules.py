"""The inspection systems' rules beyond their contracts: a record's times in order, and a defect's type within its
class; each refuses what it must, with its own reason, and lets the rest through."""

from __future__ import annotations

import pandas as pd

from contracts.drainage import DrainageDefect, FacilityInspection
from quality.domain import domain_rules_for
from quality.runner import validate_frame


def _defect(n: int, **changes: object) -> dict[str, object]:
    return {
        "defect_id": f"QX{n:08d}",
        "facility_id": "PS00000001",
        "inspection_id": None,
        "found_at": "2026-11-20 08:00:00",
        "closed_at": None,
        "defect_class": "structural",
        "defect_type": "crack",
        "grade": 2,
        "handling_status": "reported",
        "updated_at": "2026-11-20 09:00:00",
    } | changes


def test_every_dataset_with_times_in_order_has_its_rule() -> None:
    reasons = {check.reason for rule in domain_rules_for("drainage.defects") for check in rule.checks}
    assert reasons == {"updated_at_before_found_at", "closed_at_before_found_at", "defect_type_not_in_class"}
    inspection_reasons = {
        check.reason for rule in domain_rules_for(FacilityInspection.meta.key) for check in rule.checks
    }
    assert inspection_reasons == {"updated_at_before_inspected_at"}


def test_defects_out_of_order_or_filed_under_the_wrong_class_are_quarantined_each_with_its_reason() -> None:
    frame = pd.DataFrame(
        [
            _defect(1),  # fine
            _defect(2, closed_at="2026-11-20 07:00:00", handling_status="closed"),  # closed before found
            _defect(3, updated_at="2026-11-20 07:00:00"),  # recorded before found
            _defect(4, updated_at="2026-11-20 07:57:00"),  # three minutes early: a form filled in by hand
            _defect(5, defect_type="blockage"),  # a functional type under the structural class
            _defect(6, defect_class="functional", defect_type="blockage", closed_at="2026-11-20 08:30:00"),
            _defect(7, defect_class="other"),  # not allowed: that reason alone, not a class mismatch too
        ]
    )
    outcome = validate_frame(DrainageDefect, frame, known_references={"drainage.facilities": {"PS00000001"}})
    assert outcome.quarantined == {
        1: ["closed_at_before_found_at"],
        2: ["updated_at_before_found_at"],
        4: ["defect_type_not_in_class"],
        6: ["defect_class_not_allowed"],
    }


def test_an_integral_value_no_64_bit_integer_holds_is_out_of_range_not_a_crash() -> None:
    """Found by the hostile-record test on the defects' ``grade``: ``1e20`` is integral, and no Int64."""
    frame = pd.DataFrame([_defect(n, grade=grade) for n, grade in enumerate([1e20, -1e19, 2, 2.5, 9.3e18])])
    outcome = validate_frame(DrainageDefect, frame, known_references={"drainage.facilities": {"PS00000001"}})
    assert outcome.quarantined == {
        0: ["grade_out_of_range"],
        1: ["grade_out_of_range"],
        3: ["grade_not_an_integer"],
        4: ["grade_out_of_range"],
    }
