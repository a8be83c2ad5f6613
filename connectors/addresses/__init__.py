"""The public-security standard address base (四标四实): standard addresses and standard buildings with their grid
and coordinates, read as change feeds (the base is large and changes a little every day; a retired address comes
as a tombstone). Addresses come first: each building is checked against them. The simulator
(``connectors.addresses.simulator``) loads FastAPI: import it where it runs."""

from __future__ import annotations

from connectors.city_platform import ChangeFeed, StreamDeclaration, platform_settings, platform_source
from contracts.addresses import StandardAddress, StandardBuilding

__all__ = ["AddressesSettings", "AddressesSource"]

AddressesSettings = platform_settings(
    "addresses", "the standard address base's API", "http://127.0.0.1:8769", module=__name__
)
AddressesSource = platform_source(
    "addresses",
    "the public-security standard address base",
    (
        StreamDeclaration(ChangeFeed, "standard_addresses", StandardAddress, "/api/addresses"),
        StreamDeclaration(ChangeFeed, "buildings", StandardBuilding, "/api/buildings"),
    ),
    module=__name__,
)
