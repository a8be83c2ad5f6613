"""The bureau's source as configured: ``WATERHUB_WATER_QUALITY__*``, composed into ``waterhub.settings.Settings``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.http.settings import check_secret

__all__ = ["WaterQualitySourceSettings"]


class WaterQualitySourceSettings(BaseModel):
    """The Ecology and Environment Bureau's automatic water-quality station API."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    base_url: str = Field("http://127.0.0.1:8765", description="Base URL of the bureau's station API")
    api_key: SecretStr = Field(SecretStr("waterhub-demo-key"), description="API key sent as X-Api-Key")
    page_size: int = Field(500, ge=1, le=10_000, description="Records asked for per page")

    @field_validator("api_key")
    @classmethod
    def _check_api_key(cls, value: SecretStr) -> SecretStr:
        return check_secret(value, "WATERHUB_WATER_QUALITY__API_KEY")
