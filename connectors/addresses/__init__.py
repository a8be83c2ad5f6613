"""The public-security standard address base (四标四实): standard addresses and standard buildings with their grid
and coordinates, read as change feeds (the base is large and changes a little every day; a retired address comes
as a tombstone). The simulator (``connectors.addresses.simulator``) loads FastAPI: import it where it runs."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from connectors.city_platform import ChangeFeed, PlatformSource, PlatformSourceSettings, PlatformStream
from contracts.addresses import StandardAddress, StandardBuilding

__all__ = ["AddressesSettings", "AddressesSource"]


class AddressesSettings(PlatformSourceSettings):
    """The public-security standard address base's API."""

    source: ClassVar[str] = "addresses"
    base_url: str = Field("http://127.0.0.1:8769", description="Base URL of the standard address base's API")


class _StandardAddresses(ChangeFeed):
    name = "standard_addresses"
    contract = StandardAddress
    path = "/api/addresses"


class _Buildings(ChangeFeed):
    name = "buildings"
    contract = StandardBuilding
    path = "/api/buildings"


class AddressesSource(PlatformSource):
    """Addresses first: each building is checked against the addresses this run read or the hub holds."""

    name = "addresses"
    title = "the public-security standard address base"
    stream_types: ClassVar[tuple[type[PlatformStream], ...]] = (_StandardAddresses, _Buildings)
