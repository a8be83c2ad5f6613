"""The provincial river-chief platform as configured: ``WATERHUB_RIVER_CHIEF__*``, composed into ``Settings``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.http.settings import check_secret

__all__ = ["RiverChiefSourceSettings"]


class RiverChiefSourceSettings(BaseModel):
    """The provincial smart river-chief platform: OAuth2 client credentials, cursor pages, and the city's reports."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    base_url: str = Field("http://127.0.0.1:8772", description="Base URL of the provincial river-chief platform")
    client_id: str = Field("waterhub-city", min_length=1, description="OAuth2 client id the province issued the city")
    client_secret: SecretStr = Field(
        SecretStr("waterhub-demo-secret"), description="OAuth2 client secret that goes with the client id"
    )
    page_size: int = Field(500, ge=1, le=5_000, description="Records asked for per page")
    city_division: str = Field(
        "440100000000",
        pattern=r"^[0-9]{12}$",
        description="The city's division code: its handled problems are reported back to the province",
    )
    simulator_scale: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Share of Guangzhou's volumes the simulator serves in `waterhub demo` and `waterhub simulate`",
    )

    @field_validator("client_secret")
    @classmethod
    def _check_client_secret(cls, value: SecretStr) -> SecretStr:
        return check_secret(value, "WATERHUB_RIVER_CHIEF__CLIENT_SECRET")
