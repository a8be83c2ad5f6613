"""The standard address base's API on loopback: ``DEFAULT_ADDRESSES`` standard addresses (the codes the
inspection systems' simulators record) and a building at some of them, each in a basic grid."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from connectors.addresses import AddressesSource
from connectors.city_platform.simulator import DEFAULT_ADDRESSES, PlatformSimulator, address_code

__all__ = ["AddressesSimulator", "demo_simulator"]

_STREETS = {"天河区": ("石牌街", "猎德街"), "白云区": ("京溪街", "太和镇"), "从化区": ("良口镇", "鳌头镇")}


class AddressesSimulator(PlatformSimulator):
    """``size`` addresses per register entry: by default the ``DEFAULT_ADDRESSES`` the other simulators point at."""

    source = AddressesSource
    volumes: ClassVar[dict[str, tuple[int, str | None]]] = {
        "standard_addresses": (DEFAULT_ADDRESSES, "community"),
        "buildings": (DEFAULT_ADDRESSES // 2, "name"),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**{"size": 1} | options)

    def _make(self, stream: str, n: int, at: datetime) -> dict[str, Any]:
        rng = self.rng
        if stream == "standard_addresses":
            place = self.place()
            district = place["district"] if place["district"] in _STREETS else "天河区"
            street = rng.choice(_STREETS[district])
            return {
                "address_code": address_code(n),
                "full_address": f"广东省广州市{district}{street}{rng.choice(('中山', '兴华', '岗顶'))}路{n + 1}号",
                "district": district,
                "street": street,
                "community": f"{street[:2]}社区",
                "grid_code": f"440106{list(_STREETS).index(district):03d}{n % 7:03d}",
                "building_code": None,
                "longitude": place["longitude"],
                "latitude": place["latitude"],
            }
        address = self.pick("standard_addresses")
        return {
            "building_code": f"{address['address_code']}B{n:03d}",
            "address_code": address["address_code"],
            "name": rng.choice((None, "综合楼", "厂房", "住宅楼")),
            "grid_code": address["grid_code"],
            "floors": rng.randint(1, 33),
            "longitude": address["longitude"],
            "latitude": address["latitude"],
        }


demo_simulator = AddressesSimulator.demo
"""What ``make demo`` serves for this source."""
