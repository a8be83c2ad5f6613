"""Contracts of the river-segment overview, derived from the provincial river-chief platform's datasets.

Derived datasets: computed by the hub (``waterhub/derived.toml``), never sent by a source. Their version field
``input_seq`` is the inputs' change-log position a row was computed at, set by the derived-dataset runner.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from contracts.base import Classification, Contract, ContractMeta

__all__ = ["CLOSURE_WINDOW", "ProblemClosureRate", "SegmentOverview"]

CLOSURE_WINDOW = "problems reported in the Beijing calendar year"
"""The window of the closure rate (问题办结率): the year a problem was reported in, whatever its status now."""

_CODE = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$", max_length=40)
_INPUT_SEQ = Field(description="Sum of the inputs' change-log sequences this row was derived at: orders versions")


def _meta(key: str, primary_key: tuple[str, ...], title: str) -> ContractMeta:
    return ContractMeta(
        key=key,
        version="1.0.0",
        owner="river-chief-office",
        classification=Classification.INTERNAL,
        primary_key=primary_key,
        version_field="input_seq",
        title=title,
    )


class SegmentOverview(Contract):
    """One river segment as a duty officer looks at it: who answers for it, when it was last patrolled and by whom,
    and how many of its problems are still open."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.segment_overview", ("segment_code",), "Each river segment with its chiefs, patrols and problems"
    )

    segment_code: Annotated[str, _CODE, Field(description="Platform code of the segment")]
    river_code: Annotated[str, _CODE, Field(description="Platform code of its river")]
    name: Annotated[str, Field(min_length=1, max_length=100, description="Segment name")]
    division_code: Annotated[
        str, Field(pattern=r"^[0-9]{12}$", max_length=12, description="Statistical division code (12 digits)")
    ]
    chiefs: Annotated[
        str | None,
        Field(
            None,
            max_length=4000,
            description='Its chiefs as a JSON array of {"chief_id", "name", "level"}, province level first; '
            "null: no chief assigned",
        ),
    ]
    chief_count: Annotated[int, Field(ge=0, description="Chiefs assigned to the segment")]
    last_patrol_id: Annotated[str | None, Field(None, max_length=40, description="Its latest patrol; null: none")]
    last_patrol_at: Annotated[
        AwareDatetime | None, Field(None, description="Start of its latest patrol (UTC); null: never patrolled")
    ]
    last_patrol_chief_id: Annotated[str | None, Field(None, max_length=40, description="Who made that patrol")]
    last_patrol_chief_name: Annotated[
        str | None, Field(None, max_length=40, description="That chief's name; null: no patrol, or an unknown chief")
    ]
    open_problems: Annotated[
        int, Field(ge=0, description="Its problems neither closed nor rejected, whenever they were reported")
    ]
    input_seq: Annotated[int, _INPUT_SEQ]


class ProblemClosureRate(Contract):
    """The problem closure rate (问题办结率) of one district and year, the indicator the city reports (98 %).

    Window: problems reported in the Beijing calendar year ``year``, counted at their status now. ``closed`` are
    those closed; ``rejected`` ones were not accepted as problems and leave the denominator; ``closure_rate`` is
    closed / (problems − rejected). A problem deleted upstream leaves every count; a reopened one counts as open."""

    meta: ClassVar[ContractMeta] = _meta(
        "river_chief.problem_closure_rates",
        ("district_code", "year"),
        "Problem closure rate per district and year of report",
    )

    district_code: Annotated[
        str, Field(pattern=r"^[0-9]{6}$", max_length=6, description="County-level division (区), 6 digits")
    ]
    year: Annotated[int, Field(ge=2000, le=2100, description="Beijing calendar year the problems were reported in")]
    problems: Annotated[int, Field(ge=0, description="Problems reported in the district that year")]
    rejected: Annotated[int, Field(ge=0, description="Of them, rejected: not accepted as problems")]
    closed: Annotated[int, Field(ge=0, description="Of them, closed")]
    open: Annotated[int, Field(ge=0, description="Of them, neither closed nor rejected")]
    closure_rate: Annotated[
        float | None,
        Field(
            None,
            ge=0,
            le=1,
            description="closed / (problems - rejected); null when every problem was rejected",
            json_schema_extra={"unit": "dimensionless"},
        ),
    ]
    input_seq: Annotated[int, _INPUT_SEQ]
