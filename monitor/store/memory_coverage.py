"""The memory store's coverage: each venue's verdict per minute, by UTC day, and the feeds'
heartbeats; each expires ``retention`` after its last write, as the Redis keys do.

``memory.MemoryStore`` reads its clock and passes the time in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from monitor.store.coverage import DAY_MINUTES, CoverageMinute, CoverageRow, rows_from


class _Day:
    """One venue's coverage verdicts of one UTC day (a Redis bitmap's counterpart)."""

    __slots__ = ("expires_at", "minutes")

    def __init__(self) -> None:
        self.minutes: dict[int, bool] = {}
        self.expires_at = 0.0


class MemoryCoverage:
    """Coverage verdicts and heartbeats, for ``retention_seconds`` after their last write."""

    def __init__(self, retention_seconds: float) -> None:
        self._retention_seconds = retention_seconds
        self._days: dict[tuple[str, int], _Day] = {}
        self._beats: dict[str, float] = {}
        self._beats_expire_at = 0.0

    def record(self, minutes: Sequence[CoverageMinute], heartbeat: Mapping[str, float],
               now: float) -> None:
        expires_at = now + self._retention_seconds
        for venue, minute, covered in minutes:
            key = (venue, minute // DAY_MINUTES)
            day = self._days.get(key)
            if day is None or day.expires_at <= now:
                day = self._days[key] = _Day()
            day.minutes[minute] = covered or day.minutes.get(minute, False)
            day.expires_at = expires_at
        if heartbeat:
            if self._beats_expire_at <= now:
                self._beats.clear()
            self._beats.update(heartbeat)
            self._beats_expire_at = expires_at

    def heartbeats(self, now: float) -> dict[str, float]:
        return dict(self._beats) if self._beats_expire_at > now else {}

    def rows(self, venues: Sequence[str], start: int, end: int, now: float
             ) -> list[CoverageRow]:
        """``venues``' verdicts of the minutes ``start`` to ``end`` (inclusive)."""
        found: dict[str, list[tuple[int, bool]]] = {}
        for venue in venues:
            verdicts = found[venue] = []
            for index in range(start // DAY_MINUTES, end // DAY_MINUTES + 1):
                day = self._days.get((venue, index))
                if day is not None and day.expires_at > now:
                    verdicts += [(m, c) for m, c in day.minutes.items() if start <= m <= end]
        return rows_from(found)

    def sweep(self, now: float) -> None:
        """Forget the days that have expired."""
        for key in [k for k, d in self._days.items() if d.expires_at <= now]:
            del self._days[key]
