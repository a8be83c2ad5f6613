"""The municipal platform template the inspection systems and the standard-address base share: one envelope, OAuth 2.0
client credentials, registers read whole and change feeds read by ``updated_at`` with tombstones.

Each source (``connectors.drainage_facilities``, ``connectors.drainage_households``, ``connectors.rural_sewage``,
``connectors.addresses``) declares only its streams, settings defaults and simulated data. The simulator base
(``connectors.city_platform.simulator``) loads FastAPI: import it only where a simulator runs.
"""

from connectors.city_platform.settings import PlatformSourceSettings, platform_settings
from connectors.city_platform.source import (
    TOKEN_PATH,
    ChangeFeed,
    PlatformSource,
    PlatformStream,
    Register,
    StreamDeclaration,
    platform_source,
)

__all__ = [
    "TOKEN_PATH",
    "ChangeFeed",
    "PlatformSource",
    "PlatformSourceSettings",
    "PlatformStream",
    "Register",
    "StreamDeclaration",
    "platform_settings",
    "platform_source",
]
