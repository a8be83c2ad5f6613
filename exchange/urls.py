"""How a URL is shown to people: every message, log line and table that names a store does it through
``redacted_url``, because the hub's URLs (database, broker, object store) may carry a password or a key.

The rule errs on the side of hiding: whatever sits between ``user:`` and the URL's last ``@`` is the password (a
password with an unencoded ``@``, ``/`` or ``?`` is hidden whole; an ``@`` in a query may hide the host too, never
less), and the value of any query parameter whose name says it is a credential is hidden as well (``password=``,
``X-Amz-Signature=``, ``access_token=``).
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redacted_url"]

REDACTED = "***"
_SECRET_PARAM = re.compile(r"pass|secret|token|key|sig|credential|auth", re.IGNORECASE)


def redacted_url(url: str) -> str:
    """``mqtt://hub:S3cretPw@broker:1883`` → ``mqtt://hub:***@broker:1883``; a URL without secrets is unchanged."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url if "@" not in url else REDACTED  # not a URL at all: show it only if it cannot hold userinfo
    userinfo, at, tail = rest.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    if at and colon and not any(char in user for char in "/?#"):  # an "@" after a "/" is the path's, not userinfo
        rest = f"{user}:{REDACTED}@{tail}"
    base, question, query = rest.partition("?")
    if question:
        query = "&".join(_redacted_param(pair) for pair in query.split("&"))
    return f"{scheme}://{base}{question}{query}"


def _redacted_param(pair: str) -> str:
    name, equals, _value = pair.partition("=")
    return f"{name}={REDACTED}" if equals and _SECRET_PARAM.search(name) else pair
