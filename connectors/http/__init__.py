"""The one shared HTTP layer of every source: auth, retries, paginators, the stream and source bases."""

from connectors.http.auth import ApiKeyHeader, OAuth2ClientCredentials
from connectors.http.client import USER_AGENT, SourceClient, build_client, parse_json_page
from connectors.http.paginators import (
    CursorTokenPaginator,
    LinkHeaderPaginator,
    OffsetPaginator,
    PageNumberPaginator,
    Paginator,
)
from connectors.http.stream import CursorParam, HttpStream, Source, SourceSession, Tombstone, partition_key

__all__ = [
    "USER_AGENT",
    "ApiKeyHeader",
    "CursorParam",
    "CursorTokenPaginator",
    "HttpStream",
    "LinkHeaderPaginator",
    "OAuth2ClientCredentials",
    "OffsetPaginator",
    "PageNumberPaginator",
    "Paginator",
    "Source",
    "SourceClient",
    "SourceSession",
    "Tombstone",
    "build_client",
    "parse_json_page",
    "partition_key",
]
