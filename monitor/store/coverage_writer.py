"""The daemon's coverage writer: the tracker's verdicts and the heartbeat into the store.

The feed's connection counts reach :meth:`CoverageWriter.connections` (through the metrics'
connection listeners); every ``interval`` the finished minutes and a heartbeat per venue
(the wall time of the write) go to the store in one call.

Restart. Before its first write the writer reads the heartbeats the previous run left and
records every minute since each venue's last heartbeat as a gap (``down_minutes``): the
daemon was not reading then. A heartbeat another collector keeps fresh means it covered
the venue meanwhile, and no gap is recorded; its own verdicts say the rest.

A store that cannot be written keeps the verdicts here, bounded to the retention, and they
go with the next write that lands (a warning at most every 10 s meanwhile). The gauge
``liqmon_feed_gaps_last_hour`` counts this daemon's gap minutes of the last hour per venue.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Protocol

from monitor.clock import Clock
from monitor.errors import StoreError
from monitor.logs import RateLimitedLog
from monitor.store.base import Store
from monitor.store.coverage import (
    STALL_SECONDS,
    CoverageMinute,
    CoverageTracker,
    down_minutes,
    gap_ranges,
)

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 5.0
GAUGE_WINDOW_MINUTES = 60


class CoverageObserver(Protocol):
    def feed_gap_minutes(self, venue: str, minutes: int) -> None:
        """Minutes with a gap among the last hour's finished minutes."""
        ...


class CoverageWriter:
    def __init__(
        self,
        store: Store,
        observer: CoverageObserver,
        clock: Clock,
        venues: Iterable[str],
        *,
        retention_hours: float,
        interval_seconds: float = INTERVAL_SECONDS,
    ) -> None:
        self._store = store
        self._observer = observer
        self._clock = clock
        self.tracker = CoverageTracker(venues, clock.wall())
        self._retention_minutes = max(1, int(retention_hours * 60))
        self._interval = interval_seconds
        self._last_take = clock.monotonic()  # the stall rule: monotonic, even in the demo
        self._pending: list[CoverageMinute] = []
        self._resumed = False
        self._gaps: dict[str, set[int]] = {}  # venue → its recent gap minutes
        self._lock = asyncio.Lock()
        self._limited = RateLimitedLog(log)
        for venue in self.tracker.venues:
            observer.feed_gap_minutes(venue, 0)

    # -- what the feed and the reloader tell it ---------------------------------------------
    def connections(self, venue: str, subscribed: int, total: int) -> None:
        self.tracker.connections(venue, subscribed, total, self._clock.wall())

    def add_venue(self, venue: str) -> None:
        self.tracker.add_venue(venue, self._clock.wall())
        self._observer.feed_gap_minutes(venue, 0)

    def remove_venue(self, venue: str) -> None:
        self.tracker.remove_venue(venue, self._clock.wall())
        self._gaps.pop(venue, None)

    # -- the task -------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await self.write()
            await asyncio.sleep(self._interval)

    async def flush(self, timeout: float) -> bool:  # noqa: ASYNC109 (like Store.flush)
        """One last write at shutdown, within ``timeout``. True when it landed."""
        task = asyncio.ensure_future(self.write())
        done, _ = await asyncio.wait((task,), timeout=timeout)
        if not done:
            task.cancel()
            return False
        return task.result()

    async def write(self) -> bool:
        """Record what finished since the last write. False when the store refused it."""
        async with self._lock:
            now = self._clock.wall()
            # Taken every time, written or not: an untaken tracker would look stalled.
            mono = self._clock.monotonic()
            stalled = mono - self._last_take > STALL_SECONDS
            self._last_take = mono
            self._add(self.tracker.take(now, stalled))
            if not self._resumed:
                try:
                    beats = await self._store.heartbeats()
                except StoreError as exc:
                    self._limited.warning("coverage", "cannot read the heartbeats to record "
                                          "the time liqmon was down: %s", exc)
                    return False
                self._resumed = True
                down = down_minutes(beats, self.tracker.venues, self.tracker.started_at,
                                    self._retention_minutes)
                self._add(down)
                _log_down(down)
            self._show(now)
            try:
                await self._store.record_coverage(
                    self._pending, dict.fromkeys(self.tracker.venues, now))
            except StoreError as exc:
                self._limited.warning("coverage", "cannot record feed coverage (%d minutes "
                                      "kept for later): %s", len(self._pending), exc)
                return False
            self._pending = []
            return True

    def _add(self, minutes: Sequence[CoverageMinute]) -> None:
        self._pending += minutes
        limit = self._retention_minutes * max(1, len(self.tracker.venues))
        if len(self._pending) > limit:
            # Older verdicts would expire from the store at once anyway.
            del self._pending[: len(self._pending) - limit]
        for venue, minute, covered in minutes:
            if not covered:
                self._gaps.setdefault(venue, set()).add(minute)

    def _show(self, now: float) -> None:
        first = int(now // 60) - GAUGE_WINDOW_MINUTES
        for venue in self.tracker.venues:
            gaps = self._gaps.get(venue, set())
            gaps.difference_update([m for m in gaps if m < first])
            self._observer.feed_gap_minutes(venue, len(gaps))


def _log_down(down: Sequence[CoverageMinute]) -> None:
    by_venue: dict[str, list[int]] = {}
    for venue, minute, _ in down:
        by_venue.setdefault(venue, []).append(minute)
    for venue, minutes in sorted(by_venue.items()):
        since = time.strftime("%Y-%m-%d %H:%M", time.gmtime(gap_ranges(minutes)[0][0] * 60))
        log.warning("%s: recorded %d minutes as a feed gap: liqmon was not running since "
                    "its last heartbeat in the minute of %s UTC", venue, len(minutes), since)
