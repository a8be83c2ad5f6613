"""The Ecology and Environment Bureau's automatic water-quality station API as a source: URL, auth, streams."""

from __future__ import annotations

from typing import TYPE_CHECKING

from connectors.http import ApiKeyHeader, Source
from connectors.water_quality.streams import WaterQualitySamplesStream, WaterQualityStationsStream

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings
    from connectors.water_quality.settings import WaterQualitySourceSettings

__all__ = ["API_KEY_HEADER", "WaterQualitySource"]

API_KEY_HEADER = "X-Api-Key"
"""The header the bureau reads its API key from."""


class WaterQualitySource(Source):
    """Stations first, then samples: quality checks each sample's station against the stations of the same run."""

    name = "water_quality"
    title = "the Ecology and Environment Bureau's water-quality API"

    def __init__(self, settings: WaterQualitySourceSettings, http: HttpClientSettings) -> None:
        super().__init__(
            base_url=settings.base_url,
            auth=ApiKeyHeader(API_KEY_HEADER, settings.api_key),
            http=http,
            streams=(
                WaterQualityStationsStream(page_size=settings.page_size),
                WaterQualitySamplesStream(page_size=settings.page_size),
            ),
        )
