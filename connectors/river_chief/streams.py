"""The platform's streams: static registers and dynamic records, all read by update time with cursor tokens.

Every endpoint answers ``{"success": true, "code": "0000", "msg": "ok", "data": {"records": [...],
"next_cursor": "..."}}``; a page whose ``success`` is not true is an error even with status 200. Records deleted
upstream arrive as tombstones ``{<key>, "updated_at", "deleted": true}``. Handling steps are read per problem
(``/problems/{problem_id}/steps``): each problem is a partition with its own watermark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from connectors.http import CursorParam, CursorTokenPaginator, HttpStream, Tombstone
from connectors.http.paginators import value_at
from contracts import Contract
from contracts.river_chief import (
    Chief,
    Lake,
    MemberDepartment,
    Office,
    Patrol,
    Problem,
    ProblemStep,
    Reservoir,
    River,
    RiverSegment,
    SegmentChief,
    SmallWaterBody,
)

__all__ = [
    "API",
    "PLATFORM_STREAMS",
    "ChiefsStream",
    "DepartmentsStream",
    "LakesStream",
    "OfficesStream",
    "PatrolsStream",
    "ProblemStepsStream",
    "ProblemsStream",
    "ReservoirsStream",
    "RiverChiefStream",
    "RiversStream",
    "SegmentChiefsStream",
    "SegmentsStream",
    "SmallWaterBodiesStream",
]

API = "/api/v1"


class RiverChiefStream(HttpStream):
    """What every endpoint of the platform shares: the envelope, cursor tokens, update-time reads, tombstones."""

    records_path = "data.records"
    paginator = CursorTokenPaginator(size=500)
    cursor = CursorParam(field="updated_at", param="updated_since")
    tombstone = Tombstone("deleted", True)

    def page_error(self, body: object) -> str | None:
        if value_at(body, "success") is True:
            return None
        message = str(value_at(body, "msg") or "")[:200]
        return f"error code {value_at(body, 'code')!r} ({message or 'no message'})"


def _stream(name: str, contract: type[Contract], path: str) -> type[RiverChiefStream]:
    """One endpoint of the platform: nothing but its name, contract and path differs from the others."""
    attributes: dict[str, object] = {"name": name, "contract": contract, "path": f"{API}/{path}"}
    attributes["__doc__"] = f"{contract.meta.title}, by update time."
    return type(f"{contract.__name__}Stream", (RiverChiefStream,), attributes)


RiversStream = _stream("rivers", River, "rivers")
SegmentsStream = _stream("segments", RiverSegment, "segments")
LakesStream = _stream("lakes", Lake, "lakes")
ReservoirsStream = _stream("reservoirs", Reservoir, "reservoirs")
SmallWaterBodiesStream = _stream("small_water_bodies", SmallWaterBody, "small-water-bodies")
OfficesStream = _stream("offices", Office, "offices")
DepartmentsStream = _stream("departments", MemberDepartment, "departments")
ChiefsStream = _stream("chiefs", Chief, "chiefs")
SegmentChiefsStream = _stream("segment_chiefs", SegmentChief, "segment-chiefs")
PatrolsStream = _stream("patrols", Patrol, "patrols")
ProblemsStream = _stream("problems", Problem, "problems")


class ProblemStepsStream(RiverChiefStream):
    """Each problem's handling steps, read for the problems this run read: a problem whose status moved has new
    steps, and a step corrected later moves its problem's ``updated_at`` too."""

    name = "problem_steps"
    contract = ProblemStep
    path = f"{API}/problems/{{problem_id}}/steps"
    parent: ClassVar[type[HttpStream] | None] = ProblemsStream
    parent_keys: ClassVar[Mapping[str, str]] = {"problem_id": "problem_id"}


PLATFORM_STREAMS: tuple[type[RiverChiefStream], ...] = (
    RiversStream,
    SegmentsStream,
    LakesStream,
    ReservoirsStream,
    SmallWaterBodiesStream,
    OfficesStream,
    DepartmentsStream,
    ChiefsStream,
    SegmentChiefsStream,
    PatrolsStream,
    ProblemsStream,
    ProblemStepsStream,
)
"""In reading order: what a record refers to is read before it (rivers before segments, offices before chiefs,
segments and chiefs before who answers for which, chiefs before patrols, problems before their steps)."""
