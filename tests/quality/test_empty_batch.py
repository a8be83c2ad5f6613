"""An empty batch costs no Great Expectations import: a run that finds nothing new must not pay the seconds GX
takes to load. Checked in a fresh interpreter, where nothing else has imported it, through ``sys.modules``; a
batch with one row loads it, so the check can tell the two apart."""

from __future__ import annotations

import subprocess
import sys

import pytest

_CHILD = """
import sys
import pandas as pd
from contracts.water_quality import WaterQualityStation
from quality.coercion import raw_frame
from quality.runner import validate_frame

records = {records}
outcome = validate_frame(WaterQualityStation, raw_frame(records) if records else pd.DataFrame())
print(outcome.rows, outcome.valid_count, "great_expectations" in sys.modules)
"""
_STATION = {
    "station_code": "44010001",
    "name": "猎德",
    "river": "珠江",
    "district": "天河区",
    "water_body_type": "river",
    "longitude": 113.33,
    "latitude": 23.11,
    "updated_at": "2026-11-22 08:00:00",
}


@pytest.mark.parametrize(("records", "loads_gx"), [([], False), ([_STATION], True)], ids=["empty", "one-row"])
def test_great_expectations_is_imported_only_when_there_is_something_to_judge(
    records: list[dict[str, object]], loads_gx: bool
) -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", _CHILD.format(records=records)], capture_output=True, text=True, check=False, timeout=300
    )

    assert done.returncode == 0, done.stderr
    rows, valid, imported = done.stdout.split()
    assert (int(rows), int(valid)) == (len(records), len(records))
    assert imported == str(loads_gx)
