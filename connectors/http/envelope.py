"""The envelope several of the domain's APIs share (the bureau's, the city platforms'): ``{"code": 0, "message":
"ok", "data": {"items": [...], "page": n, "page_size": m, "total": N}}``, where a ``code`` other than 0 is an error
even when the answer's status is 200."""

from __future__ import annotations

from connectors.http.paginators import value_at
from connectors.http.stream import HttpStream

__all__ = ["CodeEnvelopeStream"]


class CodeEnvelopeStream(HttpStream):
    """A stream whose pages come in the ``code``/``message``/``data`` envelope, records at ``data.items``."""

    records_path = "data.items"

    def page_error(self, body: object) -> str | None:
        code = value_at(body, "code")
        if code == 0:
            return None
        message = str(value_at(body, "message") or "")[:200]
        return f"error code {code!r} ({message or 'no message'})"
