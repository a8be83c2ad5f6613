"""The delivery worker's settings block (``WATERHUB_WEBHOOKS__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["WECOM_ROBOT_URL", "WebhookSettings"]

WECOM_ROBOT_URL = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"


class WebhookSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    concurrency: int = Field(64, ge=1, le=1000, description="Most HTTP sends of `waterhub deliver` in flight at once")
    batch_size: int = Field(1000, ge=1, description="Most deliveries claimed from the database in one round")
    timeout_s: float = Field(10.0, gt=0, description="Timeout of one delivery attempt (connect, send, answer)")
    poll_interval_s: float = Field(1.0, gt=0, description="Wait between two rounds when nothing was due")
    backoff_initial_s: float = Field(5.0, gt=0, description="Wait after a first failed attempt; grows 4× per attempt")
    backoff_max_s: float = Field(6 * 3600.0, gt=0, description="Longest wait between two attempts of a delivery")
    retry_window_s: float = Field(
        24 * 3600.0, gt=0, description="A delivery still failing this long after it was queued is dead-lettered"
    )
    wecom_url_prefix: str = Field(
        WECOM_ROBOT_URL, min_length=1, description="Address a WeCom subscription's robot URL must start with"
    )
    wecom_messages_per_minute: int = Field(
        20, ge=1, description="Messages sent to one WeCom robot per rolling minute (the robot refuses more)"
    )
