"""What `waterhub demo` prints names every store without its password, up to and including a failure."""

from __future__ import annotations

import io
from pathlib import Path
from urllib.parse import urlparse

import pytest
from rich.console import Console

from exchange.errors import StoreUnavailableError
from waterhub.demo import run_demo
from waterhub.settings import Settings

MQTT_PASSWORD = "S3cretPw-mqtt"
DB_PASSWORD = "S3cretPw-db"


def test_the_demo_names_the_broker_and_a_dead_database_without_their_passwords(
    tmp_path: Path, mqtt_url: str, dead_port: int
) -> None:
    broker = urlparse(mqtt_url)  # the test broker lets anyone in, so the credentials reach a real CONNECT
    settings = Settings(
        data_dir=tmp_path / "var",
        mqtt_url=f"mqtt://hub:{MQTT_PASSWORD}@{broker.hostname}:{broker.port or 1883}",
        database_url=f"postgresql+psycopg://hub:{DB_PASSWORD}@127.0.0.1:{dead_port}/hub",
    )
    output = io.StringIO()

    with pytest.raises(StoreUnavailableError) as unavailable:
        run_demo(settings, seed=1, console=Console(file=output, width=300))

    printed = output.getvalue() + str(unavailable.value)
    assert f"Connecting to the change topics at mqtt://hub:***@{broker.hostname}:{broker.port or 1883}" in printed
    assert f"postgresql+psycopg://hub:***@127.0.0.1:{dead_port}/hub" in str(unavailable.value)
    assert MQTT_PASSWORD not in printed
    assert DB_PASSWORD not in printed
