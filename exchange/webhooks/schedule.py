"""When a failed delivery is tried again: exponential backoff with jitter, over about a day, then dead-lettered.

The nominal wait after attempt n is ``backoff_initial_s × 4^(n-1)``, capped at ``backoff_max_s`` (5 s, 20 s,
80 s, 5 min, 21 min, 85 min, 5.7 h, then 6 h with the defaults); each wait is drawn between half and all of it,
so subscribers that failed together do not come back together. A delivery is dead-lettered once its attempts'
nominal waits add up to ``retry_window_s``: a count, not a clock, so a delivery that waited in its subscriber's
queue behind an older one still gets its whole series of attempts. A ``Retry-After`` the receiver sent is
honoured up to ``backoff_max_s``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from exchange.webhooks.settings import WebhookSettings

__all__ = ["max_attempts", "nominal_wait_s", "retry_at"]

_GROWTH = 4.0


def nominal_wait_s(settings: WebhookSettings, attempts: int) -> float:
    """The wait after the ``attempts``-th failed attempt, before jitter."""
    return min(settings.backoff_max_s, settings.backoff_initial_s * _GROWTH ** (attempts - 1))


def max_attempts(settings: WebhookSettings) -> int:
    """Attempts a delivery gets: the first, then one after each wait until the waits fill the retry window."""
    attempts, waited = 1, 0.0
    while waited < settings.retry_window_s:
        waited += nominal_wait_s(settings, attempts)
        attempts += 1
    return attempts


def retry_at(
    settings: WebhookSettings, attempts: int, now: datetime, rng: random.Random, hint_s: float | None = None
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts; None when the delivery is to be dead-lettered."""
    if attempts >= max_attempts(settings):
        return None
    wait = nominal_wait_s(settings, attempts) * rng.uniform(0.5, 1.0)
    if hint_s is not None:
        wait = max(wait, min(hint_s, settings.backoff_max_s))
    return now + timedelta(seconds=wait)
