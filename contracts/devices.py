"""What the hub knows about the telemetry devices that push to it: whether each is reporting.

A device silent for twice its expected interval is offline. That is a fact consumers act on (a flood-season rain
gauge gone quiet), so it is published like any other dataset: a change event when a device goes offline or comes
back, and a table to query.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contracts.base import Classification, Contract, ContractMeta
from contracts.types import BeijingTime

__all__ = ["DeviceStatus"]


class DeviceStatus(Contract):
    """One device's reporting state, changed when it goes offline or comes back."""

    meta: ClassVar[ContractMeta] = ContractMeta(
        key="devices.status",
        version="1.0.0",
        owner="data-platform",
        classification=Classification.INTERNAL,
        primary_key=("device_id",),
        version_field="updated_at",
        title="Telemetry device reporting state",
        cursor_field="updated_at",
    )

    device_id: Annotated[
        str, Field(pattern=r"^[0-9A-Za-z_-]{1,64}$", max_length=64, description="Device id, as in its MQTT topic")
    ]
    protocol: Annotated[Literal["sl651", "hj212", "json"], Field(description="Protocol the device speaks")]
    station_code: Annotated[str, Field(min_length=1, max_length=16, description="Station the device reports for")]
    state: Annotated[Literal["online", "offline"], Field(description="offline: silent for twice its interval")]
    last_seen_at: Annotated[
        BeijingTime | None, Field(None, description="When the hub last heard from the device (UTC)")
    ]
    expected_interval_s: Annotated[
        int, Field(gt=0, description="How often the device should report", json_schema_extra={"unit": "s"})
    ]
    updated_at: Annotated[BeijingTime, Field(description="When the hub saw the state change (UTC)")]
