"""Two clocks, both injected: wall time for timestamps, monotonic time for durations."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall(self) -> float:
        """Seconds since the Unix epoch, for timestamps."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for timeouts and rates."""
        ...


class SystemClock:
    """The real clocks of this machine."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class VirtualClock:
    """A clock that moves only when told to: for replay, backtests and unit tests."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start

    def wall(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._now

    def set(self, now: float) -> None:
        # Replayed frames can arrive slightly out of order; time never goes back.
        if now > self._now:
            self._now = now

    def advance(self, seconds: float) -> None:
        self._now += seconds

