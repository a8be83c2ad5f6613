"""Settings: embedded defaults, environment overrides, placeholder secrets refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors.water_quality.settings import WaterQualitySourceSettings
from waterhub.settings import Settings, settings_markdown


def test_defaults_are_the_embedded_ones_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve() / 'waterhub.db'}"
    assert settings.resolved_object_store_url == (tmp_path / "objects").resolve().as_uri()
    assert settings.mqtt_url is None
    assert settings.hub_id == "local"


def test_environment_overrides_with_prefix_and_nested_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATERHUB_DATABASE_URL", "postgresql+psycopg://hub@db/hub")
    monkeypatch.setenv("WATERHUB_MQTT_URL", "mqtt://broker:1883")
    monkeypatch.setenv("WATERHUB_HTTP__MAX_ATTEMPTS", "7")
    monkeypatch.setenv("WATERHUB_WATER_QUALITY__BASE_URL", "https://sthjj.example.gov.cn")
    settings = Settings()
    assert settings.resolved_database_url == "postgresql+psycopg://hub@db/hub"
    assert settings.resolved_mqtt_url == "mqtt://broker:1883"
    assert settings.http.max_attempts == 7
    assert (
        settings.source_settings("water_quality", WaterQualitySourceSettings).base_url == "https://sthjj.example.gov.cn"
    )


@pytest.mark.parametrize("placeholder", ["changeme", " ChangeMe ", "secret"])
def test_a_placeholder_api_key_is_refused(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    monkeypatch.setenv("WATERHUB_WATER_QUALITY__API_KEY", placeholder)
    with pytest.raises(ValidationError, match="WATERHUB_WATER_QUALITY__API_KEY"):
        Settings()


def test_the_api_key_never_shows_in_the_settings_repr() -> None:
    settings = Settings()
    assert settings.source_settings("water_quality", WaterQualitySourceSettings).api_key.get_secret_value() not in repr(
        settings
    )


def test_the_readme_configuration_table_is_the_generated_one() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("<!-- settings-table:start -->")[1].split("<!-- settings-table:end -->")[0]
    assert block.strip() == settings_markdown()
    assert "WATERHUB_WATER_QUALITY__API_KEY" in block


def test_store_urls_are_secrets_shown_nowhere_but_used_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATERHUB_DATABASE_URL", "postgresql+psycopg://hub:DbPw-1@db/hub")
    monkeypatch.setenv("WATERHUB_MQTT_URL", "mqtt://hub:MqttPw-2@broker:1883")
    monkeypatch.setenv("WATERHUB_OBJECT_STORE_URL", "s3://AKIA:StorePw-3@objects/hub")
    settings = Settings()
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert [password for password in ("DbPw-1", "MqttPw-2", "StorePw-3") if password in shown] == []
    assert settings.resolved_database_url == "postgresql+psycopg://hub:DbPw-1@db/hub"
    assert settings.resolved_mqtt_url == "mqtt://hub:MqttPw-2@broker:1883"
    assert settings.resolved_object_store_url == "s3://AKIA:StorePw-3@objects/hub"


@pytest.mark.parametrize("key", ["real-key-123\n", " real-key-123", "real-key-123\r\n", "real key", "real-key\x07"])
def test_an_api_key_with_stray_whitespace_is_refused_naming_the_variable_not_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setenv("WATERHUB_WATER_QUALITY__API_KEY", key)
    with pytest.raises(ValidationError, match="WATERHUB_WATER_QUALITY__API_KEY contains whitespace") as refused:
        Settings()
    assert "real" not in str(refused.value)


def test_the_hub_id_is_read_from_the_environment_and_must_be_a_urn_safe_slug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATERHUB_HUB_ID", "shenzhen-river-chief")
    assert Settings().hub_id == "shenzhen-river-chief"
    for bad in ("Shenzhen", "hub id", "hub:a", "", "-a"):
        monkeypatch.setenv("WATERHUB_HUB_ID", bad)
        with pytest.raises(ValidationError, match="hub_id"):
            Settings()


def test_a_relative_data_dir_is_made_absolute_when_settings_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WATERHUB_DATA_DIR", "hub/var")
    settings = Settings()
    monkeypatch.chdir("/")  # later code running elsewhere still means the same folder
    assert settings.data_dir == tmp_path / "hub" / "var"
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'hub' / 'var' / 'waterhub.db'}"
