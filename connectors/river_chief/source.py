"""The provincial smart river-chief platform as a source: URL, OAuth2 client credentials, streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.http import OAuth2ClientCredentials, Source
from connectors.river_chief.streams import PLATFORM_STREAMS

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings
    from connectors.river_chief.settings import RiverChiefSourceSettings

__all__ = ["REPORTS_PATH", "TOKEN_PATH", "RiverChiefSource", "platform_auth"]

TOKEN_PATH = "/oauth2/token"  # noqa: S105 - the token endpoint's path, not a credential
"""The platform's OAuth2 token endpoint (client credentials grant)."""

REPORTS_PATH = "/api/v1/reports/problems"
"""Where the city reports the problems it handled (see ``connectors.river_chief.reports``)."""


def platform_auth(settings: RiverChiefSourceSettings) -> OAuth2ClientCredentials:
    """The city's client credentials, for reading and for reporting back alike."""
    return OAuth2ClientCredentials(TOKEN_PATH, settings.client_id, settings.client_secret)


class RiverChiefSource(Source):
    """Registers first, then patrols, problems and each problem's steps (see ``PLATFORM_STREAMS``)."""

    name = "river_chief"
    title = "the provincial smart river-chief platform"

    def __init__(self, settings: RiverChiefSourceSettings, http: HttpClientSettings) -> None:
        super().__init__(
            base_url=settings.base_url,
            auth=platform_auth(settings),
            http=http,
            streams=tuple(stream(page_size=settings.page_size) for stream in PLATFORM_STREAMS),
        )
