"""The platform's streams and source as declarations: a stream says its name, contract and path, nothing more.

Every platform answers ``{"code": 0, "message": "ok", "data": {"items": [...], "page": n, "page_size": m,
"total": N}}``, pages by number, and takes ``updated_since`` (Beijing time, inclusive) on its change feeds. A
register (facilities, households) is read whole each run, so one it no longer lists was deleted; a change feed
(inspections, findings, samples, addresses) is read from the watermark and marks a deleted record
``{"deleted": true}`` with its key and ``updated_at``. Feeds are served in key order, not update order, so a page
holds records of any age: nothing here assumes the cursor grows along the pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from connectors.http import CursorParam, HttpStream, OAuth2ClientCredentials, PageNumberPaginator, Source, Tombstone
from connectors.http.paginators import value_at

if TYPE_CHECKING:
    from connectors.city_platform.settings import PlatformSourceSettings
    from connectors.http.settings import HttpClientSettings

__all__ = ["TOKEN_PATH", "ChangeFeed", "PlatformSource", "PlatformStream", "Register"]

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
"""Where a platform issues bearer tokens (RFC 6749 §4.4), relative to its base URL."""


class PlatformStream(HttpStream):
    """The platform's envelope: a page whose ``code`` is not 0 is an error even with status 200."""

    records_path = "data.items"
    paginator = PageNumberPaginator(size=200)

    def page_error(self, body: object) -> str | None:
        code = value_at(body, "code")
        if code == 0:
            return None
        message = str(value_at(body, "message") or "")[:200]
        return f"error code {code!r} ({message or 'no message'})"


class Register(PlatformStream):
    """A register read whole every run: a few thousand rows that rarely change; one no longer listed was deleted."""

    full_refresh = True


class ChangeFeed(PlatformStream):
    """A feed read by update time from the watermark: late corrections come back with a later ``updated_at``."""

    cursor = CursorParam(field="updated_at", param="updated_since")
    tombstone = Tombstone("deleted", True)


class PlatformSource(Source):
    """A platform behind OAuth 2.0 client credentials; subclasses list their stream classes in reading order
    (registers before the feeds whose records point at them, so references check against this run's register)."""

    stream_types: ClassVar[tuple[type[PlatformStream], ...]]

    def __init__(self, settings: PlatformSourceSettings, http: HttpClientSettings) -> None:
        super().__init__(
            base_url=settings.base_url,
            auth=OAuth2ClientCredentials(TOKEN_PATH, settings.client_id, settings.client_secret),
            http=http,
            streams=tuple(stream(page_size=settings.page_size) for stream in self.stream_types),
        )
