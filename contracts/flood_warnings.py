"""Contract of the flood-warning alerts, derived from the SL 323 river and reservoir readings and thresholds.

A derived dataset: computed by the hub (``waterhub/derived.toml``), never sent by a source. One row per alert,
keyed by (station, threshold kind, opening time) as REFERENCE 5 advises, so a rerun or a late report updates the
same alert instead of opening another. Its version field ``input_seq`` is set by the derived-dataset runner. The
rules (strictly over to open, one hour at or below to close) are ``quality.flood``'s.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field

from contracts.base import Classification, Contract, ContractMeta

__all__ = ["FloodAlertRecord"]


def _level(description: str) -> object:
    return Field(description=description, json_schema_extra={"unit": "m"})


class FloodAlertRecord(Contract):
    """A river station over its warning (``wrz``) or guaranteed level (``grz``), or a reservoir over the
    flood-season limit of the period (``fsltdz``), from opening to closing. Levels are relative to the station's
    datum (``hydrology.stations.dtmnm``)."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="hydrology.flood_alerts",
        version="1.0.0",
        owner="data-platform",
        classification=Classification.PUBLIC,
        primary_key=("stcd", "threshold_kind", "opened_at"),
        version_field="input_seq",
        title="Flood-warning alerts: over warning, guaranteed or flood-season limit level",
    )

    stcd: Annotated[str, Field(pattern=r"^[0-9A-Z]{8}$", max_length=8, description="SL 323 station code (STCD)")]
    threshold_kind: Annotated[
        Literal["wrz", "grz", "fsltdz"],
        Field(
            description="wrz: over warning level (超警); grz: over guaranteed level (超保); fsltdz: over the "
            "flood-season limit level of the period (超汛限)"
        ),
    ]
    opened_at: Annotated[
        AwareDatetime,
        Field(
            description="When the alert opened as first published: the observation time of its first reading over "
            "then known, UTC. It names the alert; a later-arriving earlier reading moves first_over_at, not this"
        ),
    ]
    stnm: Annotated[str | None, Field(None, max_length=30, description="Station name (STNM); null: unknown station")]
    first_over_at: Annotated[
        AwareDatetime, Field(description="Observation time of the first reading over, as the readings now stand, UTC")
    ]
    threshold: Annotated[float, _level("The threshold when the alert opened (WRZ, GRZ or the period's FSLTDZ)")]
    opened_level: Annotated[float, _level("Level of the first reading over the threshold")]
    peak_level: Annotated[float, _level("Highest level while open")]
    peak_at: Annotated[AwareDatetime, Field(description="When the peak was first reached, UTC")]
    latest_level: Annotated[float, _level("Level of the latest reading taken into account")]
    latest_at: Annotated[AwareDatetime, Field(description="Observation time of that reading, UTC")]
    status: Annotated[
        Literal["open", "closed", "withdrawn"],
        Field(
            description="open; closed (stayed at or below for an hour); withdrawn (corrected readings no longer "
            "exceed: the alert should never have opened)"
        ),
    ]
    closed_at: Annotated[
        AwareDatetime | None, Field(None, description="When the level went back to or below the threshold, UTC")
    ]
    close_confirmed_at: Annotated[
        AwareDatetime | None, Field(None, description="The reading that completed the hour at or below, UTC")
    ]
    input_seq: Annotated[
        int, Field(description="Sum of the inputs' change-log sequences this row was derived at: orders versions")
    ]
