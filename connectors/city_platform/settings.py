"""The settings every platform source has (``WATERHUB_<SOURCE>__*``); a source's block only changes the defaults."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from connectors.http.settings import check_secret

__all__ = ["PlatformSourceSettings"]


class PlatformSourceSettings(BaseModel):
    """A platform's address, its OAuth 2.0 client and the page size; subclasses set ``source`` and ``base_url``."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    source: ClassVar[str]
    """The source's name in ``sources.toml``: errors name ``WATERHUB_<SOURCE>__CLIENT_SECRET``."""

    base_url: str = Field("http://127.0.0.1:8770", description="Base URL of the platform's API")
    client_id: str = Field("waterhub", min_length=1, description="OAuth 2.0 client id the platform issued the hub")
    client_secret: SecretStr = Field(
        SecretStr("waterhub-demo-secret"), description="OAuth 2.0 client secret (client-credentials grant)"
    )
    page_size: int = Field(200, ge=1, le=1000, description="Records asked for per page")

    @field_validator("client_secret")
    @classmethod
    def _check_client_secret(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        return check_secret(value, f"WATERHUB_{cls.source.upper()}__CLIENT_SECRET")
