"""The provincial flood-control (三防) hydrology platform as a source: URL, OAuth 2.0 auth, its SL 323 tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.http import OAuth2ClientCredentials, Source
from connectors.hydrology.streams import HYDROLOGY_STREAMS

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings
    from connectors.hydrology.settings import HydrologySourceSettings

__all__ = ["HydrologySource"]


class HydrologySource(Source):
    """Stations first, then their thresholds, then the observations; each table from its own watermark.

    The platform issues bearer tokens that expire, sometimes early: ``OAuth2ClientCredentials`` fetches a new one
    before expiry and once more on a 401 mid-run."""

    name = "hydrology"
    title = "the flood-control hydrology platform's SL 323 API"

    def __init__(self, settings: HydrologySourceSettings, http: HttpClientSettings) -> None:
        super().__init__(
            base_url=settings.base_url,
            auth=OAuth2ClientCredentials(settings.token_url, settings.client_id, settings.client_secret),
            http=http,
            streams=tuple(stream(page_size=settings.page_size) for stream in HYDROLOGY_STREAMS),
        )
