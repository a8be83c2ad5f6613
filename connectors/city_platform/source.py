"""The platform's streams and sources as declarations: a stream is its kind, name, contract and path, nothing more.

Every platform answers in the shared ``code`` envelope (``connectors.http.envelope``), pages by number, and takes
``updated_since`` (Beijing time, inclusive) on its change feeds. A register (facilities, households) is read whole
each run, so one it no longer lists was deleted; a change feed (inspections, findings, samples, addresses) is read
from the watermark and marks a deleted record ``{"deleted": true}`` with its key and ``updated_at``. Feeds are
served in key order, not update order, so a page holds records of any age: nothing here assumes the cursor grows
along the pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, NamedTuple

from connectors.http import CursorParam, OAuth2ClientCredentials, PageNumberPaginator, Source, Tombstone
from connectors.http.envelope import CodeEnvelopeStream
from contracts import Contract

if TYPE_CHECKING:
    from connectors.city_platform.settings import PlatformSourceSettings
    from connectors.http.settings import HttpClientSettings

__all__ = [
    "TOKEN_PATH",
    "ChangeFeed",
    "PlatformSource",
    "PlatformStream",
    "Register",
    "StreamDeclaration",
    "platform_source",
]

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a secret
"""Where a platform issues bearer tokens (RFC 6749 §4.4), relative to its base URL."""


class PlatformStream(CodeEnvelopeStream):
    """A stream of a platform: pages numbered from 1, 200 records each unless the settings say otherwise."""

    paginator = PageNumberPaginator(size=200)


class Register(PlatformStream):
    """A register read whole every run: a few thousand rows that rarely change; one no longer listed was deleted."""

    full_refresh = True


class ChangeFeed(PlatformStream):
    """A feed read by update time from the watermark: late corrections come back with a later ``updated_at``."""

    cursor = CursorParam(field="updated_at", param="updated_since")
    tombstone = Tombstone("deleted", True)


class StreamDeclaration(NamedTuple):
    """One stream of a platform source: ``Register`` or ``ChangeFeed``, its name, contract and path."""

    kind: type[PlatformStream]
    name: str
    contract: type[Contract]
    path: str


class PlatformSource(Source):
    """A platform behind OAuth 2.0 client credentials; ``stream_types`` are in reading order (registers before the
    feeds whose records point at them, so references check against this run's register)."""

    stream_types: ClassVar[tuple[type[PlatformStream], ...]]

    def __init__(self, settings: PlatformSourceSettings, http: HttpClientSettings) -> None:
        super().__init__(
            base_url=settings.base_url,
            auth=OAuth2ClientCredentials(TOKEN_PATH, settings.client_id, settings.client_secret),
            http=http,
            streams=tuple(stream(page_size=settings.page_size) for stream in self.stream_types),
        )


def platform_source(
    name: str, title: str, streams: Sequence[StreamDeclaration], *, module: str
) -> type[PlatformSource]:
    """A platform source class from its declaration; ``module`` is where it is declared (``__name__``), so its
    ``module:Class`` path in ``sources.toml`` is where it lives."""
    stream_types = tuple(
        type(
            f"{_camel(declared.name)}Stream",
            (declared.kind,),
            {"name": declared.name, "contract": declared.contract, "path": declared.path, "__module__": module},
        )
        for declared in streams
    )
    namespace = {"name": name, "title": title, "stream_types": stream_types, "__module__": module}
    return type(f"{_camel(name)}Source", (PlatformSource,), namespace)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
