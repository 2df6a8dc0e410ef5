"""Capped, jittered exponential delays between reconnects, reset after a healthy connection."""

from __future__ import annotations

import random


class Backoff:
    """Full jitter: each delay is uniform in [0, min(cap, initial * 2**attempt)].

    Jitter spreads the reconnects of many connections after a venue-wide outage, so they do
    not all knock at once (venues answer reconnect storms with bans).
    """

    def __init__(
        self, initial_seconds: float, max_seconds: float, rng: random.Random | None = None
    ) -> None:
        self.initial_seconds = initial_seconds
        self.max_seconds = max_seconds
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.max_seconds, self.initial_seconds * (2.0**self._attempt))
        self._attempt = min(self._attempt + 1, 62)
        # Never zero: a floor of a tenth of the ceiling keeps a broken venue from spinning.
        return ceiling * (0.1 + 0.9 * self._rng.random())

    def reset(self) -> None:
        self._attempt = 0

    @property
    def attempts(self) -> int:
        return self._attempt
