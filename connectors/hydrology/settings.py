"""The flood-control hydrology source as configured: ``WATERHUB_HYDROLOGY__*``, composed into ``waterhub.settings``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.http.settings import check_secret

__all__ = ["HydrologySourceSettings"]


class HydrologySourceSettings(BaseModel):
    """The provincial flood-control (三防) hydrology platform's SL 323 table API, behind OAuth 2.0."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    base_url: str = Field("http://127.0.0.1:8770", description="Base URL of the flood-control platform's SL 323 API")
    token_url: str = Field("/oauth/token", description="Token endpoint (OAuth 2.0 client credentials), under BASE_URL")
    client_id: str = Field("waterhub", min_length=1, description="OAuth 2.0 client id of the hub")
    client_secret: SecretStr = Field(SecretStr("waterhub-demo-secret"), description="OAuth 2.0 client secret")
    page_size: int = Field(1000, ge=1, le=10_000, description="Rows asked for per page")

    @field_validator("client_secret")
    @classmethod
    def _check_client_secret(cls, value: SecretStr) -> SecretStr:
        return check_secret(value, "WATERHUB_HYDROLOGY__CLIENT_SECRET")
