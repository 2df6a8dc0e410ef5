"""The buffered store's reads and small writes: straight to Redis, no buffer.

They raise StoreUnavailable while Redis is down; callers fall back to their in-process
view. Only the events go through the buffer (``buffered.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from monitor.events import Liquidation
from monitor.store.base import TotalsRow
from monitor.store.coverage import CoverageMinute, CoverageRow
from monitor.store.redis import RedisStore


class ReadThrough:
    """The Store methods that need no buffer, on ``self.redis``."""

    redis: RedisStore

    async def totals(
        self, window_minutes: int, by: Sequence[str] = (), now_ms: int | None = None
    ) -> list[TotalsRow]:
        return await self.redis.totals(window_minutes, by, now_ms)

    async def minute_series(
        self, start_minute: int, end_minute: int, by: Sequence[str] = ()
    ) -> list[tuple[int, TotalsRow]]:
        return await self.redis.minute_series(start_minute, end_minute, by)

    async def largest(
        self, window_minutes: int, limit: int = 10, now_ms: int | None = None
    ) -> list[Liquidation]:
        return await self.redis.largest(window_minutes, limit, now_ms)

    async def record_cascade(self, record: Mapping[str, Any]) -> None:
        await self.redis.record_cascade(record)

    async def cascades(self, limit: int = 20) -> list[dict[str, Any]]:
        return await self.redis.cascades(limit)

    async def claim(self, key: str, ttl_seconds: float) -> bool:
        return await self.redis.claim(key, ttl_seconds)

    async def record_coverage(
        self, minutes: Sequence[CoverageMinute], heartbeat: Mapping[str, float]
    ) -> None:
        await self.redis.record_coverage(minutes, heartbeat)

    async def heartbeats(self) -> dict[str, float]:
        return await self.redis.heartbeats()

    async def coverage(
        self, window_minutes: int, now_ms: int | None = None,
        venues: Sequence[str] | None = None,
    ) -> list[CoverageRow]:
        return await self.redis.coverage(window_minutes, now_ms, venues)
