"""The Delta Sharing block (``WATERHUB_SHARING__*``): signed URLs, the change window and table upkeep."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from connectors.http.settings import check_secret

__all__ = ["SharingSettings"]


class SharingSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    endpoint: str = Field(
        "http://localhost:8080/delta-sharing",
        pattern=r"^https?://\S+[^/]$",
        description="The sharing endpoint as recipients reach it (the API's URL + /delta-sharing); written into "
        "profile files",
    )
    share: str = Field("waterhub", pattern=r"^[a-z][a-z0-9_-]{0,63}$", description="Name of the one share")
    url_lifetime_s: int = Field(900, ge=60, le=7 * 86_400, description="How long a signed file URL stays valid")
    signing_key: SecretStr | None = Field(
        None,
        description="Key signing the file URLs of the local object store; default a random key per API process "
        "(set one when several processes serve the API)",
    )
    change_window_days: float = Field(
        7, gt=0, description="How far back table changes (by version) are promised; older versions may be vacuumed"
    )
    vacuum_retention_hours: float = Field(
        24 * 8,
        gt=0,
        description="Files a Delta table no longer uses are deleted after this; must exceed the URL lifetime "
        "and the change window",
    )
    maintenance_interval_hours: float = Field(
        24, gt=0, description="`waterhub sharing sync` runs OPTIMIZE and VACUUM when the last run is this old"
    )
    max_results: int = Field(500, ge=1, le=10_000, description="Most shares, schemas or tables in one listing page")

    @field_validator("signing_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else check_secret(value, "WATERHUB_SHARING__SIGNING_KEY")

    @model_validator(mode="after")
    def _retention_outlives_what_was_promised(self) -> SharingSettings:
        promised_h = max(self.url_lifetime_s / 3600, self.change_window_days * 24)
        if self.vacuum_retention_hours <= promised_h:
            raise ValueError(
                f"WATERHUB_SHARING__VACUUM_RETENTION_HOURS ({self.vacuum_retention_hours:g}) must exceed both the "
                f"signed URLs' lifetime and the change window ({promised_h:g} h): VACUUM would delete files a "
                "recipient was promised"
            )
        return self
