"""What an ``mqtt://[user:password@]host[:port]`` URL says, read in one place for every client of the broker.

Credentials may be percent-encoded in the URL (a password with ``@`` or ``/``), so they are decoded here; messages
name a broker by ``where`` (host and port) only, never by its URL, which may hold the password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

__all__ = ["BrokerAddress", "broker_address"]


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"


def broker_address(url: str) -> BrokerAddress:
    """Refuses anything but ``mqtt://`` with a host, without echoing the URL (it may hold a password)."""
    parsed = urlparse(url)
    if parsed.scheme != "mqtt" or not parsed.hostname:
        raise ValueError(
            f"not an MQTT URL (scheme {parsed.scheme!r}, host {parsed.hostname!r}): "
            "expected mqtt://[user:password@]host[:port]"
        )
    return BrokerAddress(
        host=parsed.hostname,
        port=parsed.port or 1883,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
    )
