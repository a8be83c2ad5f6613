"""How a hub names itself to the outside: one id, configured, in every change event it sends.

Each hub numbers its datasets' sequences from 1, so on a broker shared by several hubs one hub's "samples seq 1-44"
cannot be told from another's unless the event says which hub sent it. The id is configuration (``Settings.hub_id``),
never derived from the host name: a host is renamed or replaced, and consumers key on the id for good.
"""

from __future__ import annotations

import re

__all__ = ["HUB_ID_PATTERN", "event_source"]

HUB_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"
"""A lowercase DNS-label-like slug: safe in a URN, an MQTT topic level and a client id alike."""


def event_source(hub_id: str) -> str:
    """The CloudEvents ``source`` of every event hub ``hub_id`` sends: ``urn:waterhub:<hub_id>`` (CloudEvents makes
    ``source`` + ``id`` unique, which is what a consumer of several hubs dedupes on)."""
    if not re.fullmatch(HUB_ID_PATTERN, hub_id):
        raise ValueError(
            f"hub id {hub_id[:70]!r} is not a slug of lowercase letters, digits and inner hyphens (at most 63)"
        )
    return f"urn:waterhub:{hub_id}"
