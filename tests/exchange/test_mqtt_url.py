"""Every broker client reads its URL the same way: percent-encoded credentials decoded, nothing secret echoed."""

from __future__ import annotations

import pytest

from exchange.mqtt_url import broker_address


def test_credentials_are_percent_decoded_and_the_port_defaults_to_1883() -> None:
    address = broker_address("mqtt://hub%2Bone:p%40ss%2Fword@broker.example")
    assert (address.host, address.port, address.username, address.password) == (
        "broker.example",
        1883,
        "hub+one",
        "p@ss/word",
    )
    assert address.where == "broker.example:1883"
    assert "p@ss" not in repr(address)


def test_a_url_that_is_not_mqtt_is_refused_without_echoing_its_password() -> None:
    with pytest.raises(ValueError, match="expected mqtt://") as refused:
        broker_address("http://hub:hunter2@broker.example:1883")
    assert "hunter2" not in str(refused.value)
