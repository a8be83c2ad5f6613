"""The one place that reads the environment (prefix ``WATERHUB_``, nested blocks with ``__``).

Library code receives a ``Settings`` (or just the values it needs) as an argument; only entry points build one.

Every value that may hold a credential is a ``SecretStr``: the three store URLs (a database, broker or object-store
URL may carry a password) as well as API keys. ``repr(settings)`` shows none of them, a validation error does not
echo its input, and a message that names a store shows ``exchange.urls.redacted_url(...)`` of it, never the URL itself.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    ValidatorFunctionWrapHandler,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.http.settings import PLACEHOLDER_SECRETS, HttpClientSettings, check_secret
from exchange.api.settings import ApiSettings
from exchange.gateway.settings import GatewaySettings
from exchange.identity import HUB_ID_PATTERN
from exchange.s3_store import S3Credentials
from exchange.sharing.settings import SharingSettings
from exchange.webhooks.settings import WebhookSettings
from waterhub.sources import declared_sources
from waterhub.stack.settings import StackSettings

__all__ = [
    "PLACEHOLDER_SECRETS",
    "ApiSettings",
    "GatewaySettings",
    "HttpClientSettings",
    "HubSettings",
    "Settings",
    "SharingSettings",
    "WebhookSettings",
    "settings_markdown",
    "settings_reference",
]

BlockT = TypeVar("BlockT", bound=BaseModel)


class HubSettings(BaseSettings):
    """Hub configuration but the sources' blocks, which ``Settings`` adds from ``waterhub/sources.toml``. Every
    default is the zero-setup embedded one (SQLite, local folder, in-process broker)."""

    model_config = SettingsConfigDict(
        env_prefix="WATERHUB_", env_nested_delimiter="__", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    hub_id: str = Field(
        "local",
        pattern=HUB_ID_PATTERN,
        description="This hub's id in every change event (`source` urn:waterhub:ID); set a unique one in production",
    )
    data_dir: Path = Field(
        Path("var"),
        description="Folder for the embedded database, objects and staging; a relative one is taken from the "
        "directory the process starts in, and refused by DAG tasks that would write under it",
    )
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the hub database; default SQLite file under DATA_DIR"
    )
    mqtt_url: SecretStr | None = Field(
        None, description="mqtt://[user:password@]host:port of the broker; default the embedded in-process broker"
    )
    embedded_mqtt_port: int = Field(
        11883, ge=1, le=65535, description="Port of the embedded broker, hosted by `waterhub demo` or `waterhub broker`"
    )
    object_store_url: SecretStr | None = Field(
        None,
        description="file:///path, or s3://bucket/prefix?endpoint=http://host:port, of the object store; "
        "default DATA_DIR/objects",
    )
    object_store_access_key: str | None = Field(None, description="Access key of an s3:// object store")
    object_store_secret_key: SecretStr | None = Field(None, description="Secret key of an s3:// object store")
    airflow_api_url: str | None = Field(
        None,
        description="Base URL of Airflow's API server (http://host:8080), for `waterhub doctor` to ask its health; "
        "unset: Airflow is not checked",
    )
    staging_retention_hours: float = Field(
        72.0,
        gt=0,
        description="Staged objects of a run that never reached its snapshot (a failed run) are removed after this; "
        "a snapshotted run's staging goes at once",
    )
    stale_after_intervals: float = Field(
        2.0,
        ge=1,
        description="A dataset is stale (an event, and `waterhub datasets` says so) once its source has published "
        "nothing for this many of its schedule's intervals (sources.toml)",
    )
    http: HttpClientSettings = Field(default_factory=lambda: HttpClientSettings())
    gateway: GatewaySettings = Field(default_factory=lambda: GatewaySettings())
    api: ApiSettings = Field(default_factory=lambda: ApiSettings())
    webhooks: WebhookSettings = Field(default_factory=lambda: WebhookSettings())
    sharing: SharingSettings = Field(default_factory=lambda: SharingSettings())
    stack: StackSettings = Field(default_factory=lambda: StackSettings())

    _data_dir_given_relative: bool = PrivateAttr(default=False)

    @model_validator(mode="wrap")
    @classmethod
    def _absolute_data_dir(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> HubSettings:
        """DATA_DIR made absolute once, when settings load, so every path under it means one place whatever
        directory code later runs in; whether it was given relative is kept for ``require_absolute_data_dir``."""
        settings = handler(data)
        assert isinstance(settings, HubSettings)  # noqa: S101 - the handler builds this very model
        if not settings.data_dir.is_absolute():
            settings._data_dir_given_relative = True
            object.__setattr__(settings, "data_dir", settings.data_dir.resolve())
        return settings

    def require_absolute_data_dir(self, who: str) -> None:
        """Refuse a relative DATA_DIR where the hub would keep files under it (embedded database or object folder)
        for ``who``: a scheduler's worker starts in whatever directory it likes, so its staging and snapshots
        would land there, a different place on every machine and restart."""
        uses_data_dir = self.database_url is None or self.object_store_url is None
        if self._data_dir_given_relative and uses_data_dir:
            from exchange.errors import StoreConfigError

            raise StoreConfigError(
                f"{who}: WATERHUB_DATA_DIR is relative (resolved here to {self.data_dir}), and the "
                f"{'database' if self.database_url is None else 'object store'} would live under it; set "
                "WATERHUB_DATA_DIR to an absolute path (or set WATERHUB_DATABASE_URL and WATERHUB_OBJECT_STORE_URL)"
            )

    @field_validator("object_store_secret_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else check_secret(value, "WATERHUB_OBJECT_STORE_SECRET_KEY")

    def source_settings(self, name: str, kind: type[BlockT]) -> BlockT:
        """The settings block of source ``name`` (``WATERHUB_<NAME>__*``), checked to be a ``kind``."""
        block = getattr(self, name, None)
        if not isinstance(block, kind):
            raise KeyError(f"no settings block {name!r} of type {kind.__name__}; is the source in sources.toml?")
        return block

    @cached_property
    def resolved_database_url(self) -> str:
        """The database URL, with the embedded SQLite default made concrete: for connecting, never for showing."""
        return _revealed(self.database_url) or f"sqlite:///{(self.data_dir / 'waterhub.db').resolve()}"

    @cached_property
    def resolved_mqtt_url(self) -> str:
        """The broker URL, with the embedded broker's address made concrete: for connecting, never for showing."""
        return _revealed(self.mqtt_url) or f"mqtt://127.0.0.1:{self.embedded_mqtt_port}"

    @cached_property
    def resolved_object_store_url(self) -> str:
        """The object store URL, with the local-folder default made concrete: for connecting, never for showing."""
        return _revealed(self.object_store_url) or (self.data_dir / "objects").resolve().as_uri()

    @cached_property
    def object_store_credentials(self) -> S3Credentials:
        """The object store's keys, with the variables they come from for errors to name."""
        return S3Credentials(
            self.object_store_access_key,
            self.object_store_secret_key,
            settings=("WATERHUB_OBJECT_STORE_ACCESS_KEY", "WATERHUB_OBJECT_STORE_SECRET_KEY"),
        )


def _with_source_blocks(base: type[HubSettings]) -> type[HubSettings]:
    """``base`` plus one block per declared source under its name, so ``WATERHUB_WATER_QUALITY__BASE_URL`` reaches
    the water-quality block and a new source needs no line here."""
    blocks: dict[str, Any] = {
        name: (block, Field(default_factory=block, description=declaration.title))
        for name, declaration in declared_sources().items()
        for block in [declaration.settings_class()]
    }
    return create_model("Settings", __base__=base, __module__=__name__, __doc__=base.__doc__, **blocks)


if TYPE_CHECKING:  # the type checker cannot see the composed fields; code reaches them via ``source_settings``
    Settings = HubSettings
else:
    Settings = _with_source_blocks(HubSettings)


def _revealed(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def settings_reference() -> list[tuple[str, str, str]]:
    """Every setting as (environment variable, default, description): the README's table is this, rendered."""
    rows: list[tuple[str, str, str]] = []

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                walk(annotation, f"{prefix}{name.upper()}__")
                continue
            default = field.get_default(call_default_factory=True)
            shown = "(secret)" if isinstance(default, SecretStr) else "(none)" if default is None else str(default)
            rows.append((f"{prefix}{name.upper()}", shown, field.description or ""))

    walk(Settings, "WATERHUB_")
    return rows


def settings_markdown() -> str:
    """The configuration table of the README, generated so it cannot drift from the model."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | `{default}` | {description} |" for name, default, description in settings_reference()]
    return "\n".join(lines)
