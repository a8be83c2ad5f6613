"""Device topics: ``waterhub/devices/<protocol>/<device id>/up`` from the device, ``.../down`` back to it.

The broker's ACL lets a device write only its own ``up`` topic and read only its own ``down`` topic (its MQTT user
is its device id), so the device id in a topic is as trustworthy as the broker's authentication.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

from connectors.protocols.errors import ProtocolName

__all__ = ["ALL_UPLINKS", "DeviceTopic", "down_topic", "parse_up_topic", "up_topic"]

_PREFIX = "waterhub/devices"
ALL_UPLINKS = f"{_PREFIX}/+/+/up"
"""What the gateway subscribes to."""
_PROTOCOLS: tuple[str, ...] = get_args(ProtocolName)


@dataclass(frozen=True)
class DeviceTopic:
    protocol: ProtocolName
    device_id: str


def up_topic(protocol: ProtocolName, device_id: str) -> str:
    return f"{_PREFIX}/{protocol}/{device_id}/up"


def down_topic(protocol: ProtocolName, device_id: str) -> str:
    return f"{_PREFIX}/{protocol}/{device_id}/down"


def parse_up_topic(topic: str) -> DeviceTopic | None:
    """None for a topic outside the layout (or a protocol we do not speak): such a message is quarantined."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != _PREFIX or parts[4] != "up" or not parts[3]:
        return None
    protocol = parts[2]
    if protocol not in _PROTOCOLS:
        return None
    return DeviceTopic(protocol, parts[3])  # type: ignore[arg-type]  # checked against ProtocolName just above
