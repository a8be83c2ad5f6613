"""The gateway's settings block (``WATERHUB_GATEWAY__*``); the broker is the hub's ``WATERHUB_MQTT_URL``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    client_id: str = Field(
        "waterhub-gateway",
        min_length=1,
        max_length=64,
        description="Fixed MQTT client id: the broker keeps its session and queued messages across restarts",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=60, description="How long the broker keeps the gateway's session while it is away"
    )
    receive_maximum: int = Field(
        2000, ge=1, le=65535, description="Unacknowledged messages the broker may have in flight to the gateway"
    )
    batch_size: int = Field(500, ge=1, description="Most messages committed in one transaction")
    batch_time_ms: int = Field(20, ge=1, description="Longest wait for a batch to fill after its first message")
    offline_check_s: float = Field(30.0, gt=0, description="How often silent devices are looked for")
    backoff_max_s: float = Field(30.0, gt=0, description="Longest wait between two attempts to reach the database")
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="Port of the gateway's Prometheus /metrics (all addresses); unset: none"
    )
