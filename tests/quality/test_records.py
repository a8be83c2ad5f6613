"""The gateway judges a micro-batch record by record (``quality.records``); its domain verdicts must be the batch
runner's. Each case is judged both ways and the two compared, so the runner (itself held to the contract) is the
reference, not a copy of this module's output."""

from __future__ import annotations

from datetime import datetime

from contracts.types import BEIJING
from contracts.water_quality import WaterQualitySample
from quality import validate_frame
from quality.records import domain_reasons, judge_record

STATIONS = {"water_quality.stations": ["44010001"]}


def _sample(sampled_at: str, updated_at: str) -> dict[str, object]:
    def local(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=BEIJING)

    return {
        "station_code": "44010001",
        "sampled_at": local(sampled_at),
        "updated_at": local(updated_at),
        "ph": 7.3,
        "ph_flag": "N",
    }


CASES = [  # one day each, so no two share a key
    ("2026-11-20 07:57:00", "2026-11-20 09:04:00"),  # 3 min early: the 08:00 value
    ("2026-11-21 08:07:00", "2026-11-21 09:04:00"),  # not on the hour
    ("2026-11-22 08:00:00", "2026-11-22 08:56:00"),  # a fast clock, within tolerance
    ("2026-11-23 08:00:00", "2026-11-23 08:50:00"),  # reported before the hour was over
    ("2026-11-24 10:07:00", "2026-11-24 10:30:00"),  # both
]


def test_domain_rules_give_the_runners_verdicts_on_a_micro_batch() -> None:
    import pandas as pd

    records = [_sample(*case) for case in CASES]
    verdicts = [judge_record(WaterQualitySample, record) for record in records]
    rows = [verdict.row for verdict in verdicts if verdict.row is not None]
    assert len(rows) == len(records)
    here = {position: sorted(reasons) for position, reasons in domain_reasons(WaterQualitySample, rows).items()}

    frame = pd.DataFrame(records, dtype=object)
    runner = validate_frame(WaterQualitySample, frame, known_references=STATIONS).quarantined
    assert here == {position: sorted(reasons) for position, reasons in runner.items()}
    assert set(here) == {1, 3, 4}  # the cases' comments: three break a rule


def test_no_rows_no_reasons() -> None:
    assert domain_reasons(WaterQualitySample, []) == {}
