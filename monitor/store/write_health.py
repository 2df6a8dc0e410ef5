"""Whether the Redis store's writes land, and what it says about it.

``store_up`` falls to 0 on a failed write, and also when buffered events have waited
``write_stall_seconds`` without any write landing; a successful ping alone does not raise
it while events wait. The first failure of an outage is an ERROR; the failures of one
outage are WARNINGs at most every 10 s. Dropped events are counted exactly
(``observer.dropped``, ``dropped_total``) and those dropped for a full buffer logged as a
WARNING at most every 10 s. Once Redis answers, whether it keeps its data across its own
restart is read once and reported.
"""

from __future__ import annotations

import logging

from monitor.errors import StoreUnavailable
from monitor.logs import RateLimitedLog
from monitor.store.base import StoreObserver
from monitor.store.redis import RedisStore

# The buffered store's logger: these lines were always logged under its name, and log
# filters and alerts match on it.
log = logging.getLogger("monitor.store.buffered")

_DROP_LOG_EVERY_SECONDS = 10.0
_DOWN_ERROR_EVERY_SECONDS = 10.0


class WriteHealth:
    """The buffered store's view of Redis: up or down, drops, persistence."""

    def __init__(self, observer: StoreObserver, capacity: int, stall_seconds: float,
                 now: float) -> None:
        self._observer = observer
        self._capacity = capacity
        self._stall = stall_seconds
        self.up: bool | None = None
        self.landed_at = now  # the last write that landed (or start), monotonic
        self.dropped_total = 0
        self._drops_unlogged = 0
        self._next_drop_log = 0.0
        self._next_down_error = 0.0
        self._limited = RateLimitedLog(log)
        self.persistence_checked = False

    def set_up(self, up: bool, now: float, pending: int,
               exc: BaseException | None = None) -> None:
        if up == self.up:
            return
        if up:
            log.info("redis store reachable; %d events buffered", pending)
            if self._drops_unlogged:
                self.log_drops()
        elif now >= self._next_down_error:
            # An outage starts: one ERROR. A store flapping in and out of it (memory
            # freed by a TTL, then full again) repeats as throttled WARNINGs.
            self._next_down_error = now + _DOWN_ERROR_EVERY_SECONDS
            log.error("redis store not taking writes, buffering up to %d events: %s",
                      self._capacity, exc)
        else:
            self._limited.warning("down", "redis store not taking writes again: %s", exc)
        self.up = up
        self._observer.store_up(up)

    def check_stall(self, oldest: float | None, now: float, pending: int) -> None:
        """Down when events have waited ``write_stall_seconds`` and no write landed
        meanwhile: the connection may answer while writes go nowhere."""
        if oldest is None or self.up is False:
            return
        waited = now - max(oldest, self.landed_at)
        if waited > self._stall:
            self.set_up(False, now, pending, StoreUnavailable(
                f"no write has landed for {waited:.1f}s while {pending} events wait"))

    def count_drops(self, count: int, now: float, full: bool = True) -> None:
        self.dropped_total += count
        self._observer.dropped(count)
        if not full:
            return  # a rejected batch: logged as an error where it happened
        self._drops_unlogged += count
        if now >= self._next_drop_log:
            self._next_drop_log = now + _DROP_LOG_EVERY_SECONDS
            self.log_drops()

    @property
    def drops_unlogged(self) -> int:
        return self._drops_unlogged

    def log_drops(self) -> None:
        log.warning(
            "redis store buffer full: dropped %d oldest events (%d since start)",
            self._drops_unlogged, self.dropped_total,
        )
        self._drops_unlogged = 0

    async def check_persistence(self, redis: RedisStore) -> None:
        """Once Redis answers: say whether it keeps the data across its own restart."""
        try:
            enabled, settings = await redis.persistence()
        except StoreUnavailable:
            return  # asked again once Redis is back
        self.persistence_checked = True
        self._observer.persistence(enabled)
        if enabled is False:
            log.warning(
                "redis keeps no data across a restart (%s): a restart of Redis erases the "
                "stored windows; run it with appendonly yes and appendfsync everysec "
                "(docs/storage.md)", settings)
        elif enabled is None:
            log.info("cannot tell whether redis persists its data (%s); run it with "
                     "appendonly yes (docs/storage.md)", settings)
