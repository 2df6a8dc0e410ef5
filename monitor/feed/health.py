"""The feed watch: a venue that delivers no data for a while is down, and up again when it
delivers; each change goes out as a notice (MQTT, webhooks) within seconds.

Data means a price or a liquidation (or a node's block), never an acknowledgement or a pong:
every venue connection carries a price stream, so a quiet feed is a broken one, whether its
socket is closed, stuck, or subscribed to a retired route. A venue is declared down after
half its silence limit (30 s by default), before the watchdog's reconnect at the full limit:
the daemon's own notice leaves within a minute of the last frame, as the shipped Prometheus
rule does. No notice is sent for a feed that has never been down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from monitor.clock import Clock

DOWN_AFTER_SHARE_OF_SILENCE_LIMIT = 0.5
CHECK_SECONDS = 1.0


class Watched(Protocol):
    @property
    def last_data_at(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class FeedChange:
    venue: str
    up: bool
    at: float  # wall time
    silent_seconds: float


class FeedWatch:
    def __init__(
        self,
        feeds: Callable[[], Mapping[str, Watched]],
        silence_limit: Callable[[str], float],
        clock: Clock,
        on_change: Callable[[FeedChange], None],
    ) -> None:
        self._feeds = feeds
        self._silence_limit = silence_limit
        self._clock = clock
        self._on_change = on_change
        self._since: dict[str, float] = {}  # venue -> when watching began (monotonic)
        self.down: dict[str, float] = {}  # venue -> monotonic time of its last data

    def check(self) -> list[FeedChange]:
        """Compare every feed's last data with its limit; report and return the changes."""
        now = self._clock.monotonic()
        changes = []
        feeds = self._feeds()
        for venue, feed in feeds.items():
            start = self._since.setdefault(venue, now)
            last = feed.last_data_at if feed.last_data_at is not None else start
            quiet = now - last
            limit = self._silence_limit(venue) * DOWN_AFTER_SHARE_OF_SILENCE_LIMIT
            if venue not in self.down and quiet >= limit:
                self.down[venue] = last
                changes.append(FeedChange(venue, False, self._clock.wall(), quiet))
            elif venue in self.down and last > self.down[venue]:
                gap = last - self.down.pop(venue)
                changes.append(FeedChange(venue, True, self._clock.wall(), gap))
        for venue in [v for v in self._since if v not in feeds]:  # a venue switched off
            self._since.pop(venue)
            self.down.pop(venue, None)
        for change in changes:
            self._on_change(change)
        return changes

    async def run(self) -> None:
        while True:
            self.check()
            await asyncio.sleep(CHECK_SECONDS)
