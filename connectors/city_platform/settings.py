"""The settings every platform source has (``WATERHUB_<SOURCE>__*``); a source's block only changes the defaults."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from connectors.http.settings import check_secret

__all__ = ["PlatformSourceSettings", "platform_settings"]


class PlatformSourceSettings(BaseModel):
    """A platform's address, its OAuth 2.0 client and the page size; ``platform_settings`` makes a source's block."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    source: ClassVar[str] = "platform"
    """The source's name in ``sources.toml``: errors name ``WATERHUB_<SOURCE>__CLIENT_SECRET``."""

    base_url: str = Field("http://127.0.0.1:8770", description="Base URL of the platform's API")
    client_id: str = Field("waterhub", min_length=1, description="OAuth 2.0 client id the platform issued the hub")
    client_secret: SecretStr = Field(
        SecretStr("waterhub-demo-secret"), description="OAuth 2.0 client secret (client-credentials grant)"
    )
    page_size: int = Field(200, ge=1, le=1000, description="Records asked for per page")

    @field_validator("client_secret")
    @classmethod
    def _check_client_secret(cls, value: SecretStr) -> SecretStr:
        return check_secret(value, f"WATERHUB_{cls.source.upper()}__CLIENT_SECRET")


def platform_settings(source: str, api: str, base_url: str, *, module: str) -> type[PlatformSourceSettings]:
    """The settings block of ``source``: the shared fields, with its own default ``base_url`` and ``api`` (what
    the README's settings table calls it) in the descriptions."""
    namespace: dict[str, Any] = {
        "__module__": module,
        "__doc__": f"{api[0].upper()}{api[1:]}.",
        "__annotations__": {"base_url": str},
        "source": source,
        "base_url": Field(base_url, description=f"Base URL of {api}"),
    }
    name = "".join(part.capitalize() for part in source.split("_")) + "Settings"
    return type(name, (PlatformSourceSettings,), namespace)
