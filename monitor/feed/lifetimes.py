"""When a connection counts as healthy enough to reset the reconnect backoff (no I/O).

Not only after ``healthy_after_seconds`` (60 s): after half the venue's usual connection
lifetime (the median of its recent ones), between twice the first delay and that limit. A
venue that drops every connection after 5 s is then reconnected after the first delay,
not after ever longer ones, and stays subscribed most of the time.
"""

from __future__ import annotations

import statistics
from collections import deque

HEALTHY_SHARE_OF_LIFETIME = 0.5
LIFETIMES_KEPT = 9


class Lifetimes:
    def __init__(self, healthy_after_seconds: float, first_delay_seconds: float) -> None:
        self._limit = healthy_after_seconds
        self._floor = 2.0 * first_delay_seconds
        self._recent: deque[float] = deque(maxlen=LIFETIMES_KEPT)

    def healthy_after(self) -> float:
        """How long a connection must live to reset the backoff."""
        if not self._recent:
            return self._limit
        usual = statistics.median(self._recent) * HEALTHY_SHARE_OF_LIFETIME
        return min(self._limit, max(self._floor, usual))

    def ended(self, lived: float) -> bool:
        """A subscribed connection ended after ``lived`` seconds: reset the backoff?"""
        healthy = lived >= self.healthy_after()
        self._recent.append(lived)
        return healthy
