"""The Store protocol: per-minute liquidation aggregates, shared by every reader (DESIGN 5).

A store keeps one bucket per (minute, venue, coin, position_side), bucketed by the venue's
timestamp (``Liquidation.minute``), never by arrival: a late frame lands in its own minute.
Each bucket holds the USD notional, the count, the base quantity, the largest single
liquidation (with its event) and which completeness levels went into it.

Semantics every implementation shares (one contract suite checks them):

- ``add`` is idempotent by ``event_id`` for as long as the dedupe TTL remembers an id.
- A window of N minutes is the minutes ``[m - N + 1, m]`` where ``m`` is the minute of
  ``now_ms`` (default: the wall clock). Events stamped after ``m`` are outside it.
- ``totals(by=())`` always returns exactly one row (zeros when nothing went in); with
  ``by`` it returns one row per group that has events, ordered by USD descending, then
  by the group's key values. Keys not grouped on are ``None`` in the rows.
- ``minute_series`` is, minute by minute, what ``totals`` returns for that one minute.
- ``completeness`` is ``"full"`` only when every event that went in was full; otherwise it
  names the weaker levels, sorted and comma-joined (``"aggregated,throttled"``): a full
  event mixed with throttled ones still makes the total a lower bound.
- ``largest`` is exact for ``limit`` up to :data:`LARGEST_KEEP`; larger limits are clamped.
- Retention: a bucket disappears ``retention`` after it was last written (a Redis TTL;
  the memory store mimics it), so a window reaching back past retention is partial.
- Coverage (``coverage.py``): ``record_coverage`` keeps, per venue and minute, whether the
  feed was subscribed the whole minute, merged so that covered wins, with the same
  retention; it also sets each given venue's heartbeat (the wall time of the record).
  ``coverage`` returns one row per venue that has a heartbeat (or per venue asked for):
  the minutes of the window with a verdict and, of those, the gaps.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from monitor.events import Completeness, Liquidation
from monitor.store.coverage import CoverageMinute, CoverageRow

log = logging.getLogger(__name__)

# Long-lived work a part needs done, by task name: the app runs each in its TaskGroup.
Background = Mapping[str, Callable[[], Coroutine[Any, Any, None]]]

WINDOWS: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "24h": 1440}
GROUP_KEYS = ("venue", "coin", "position_side")

# How many of the largest liquidations each minute and each hour keeps, so that
# ``largest(limit)`` is exact for any limit up to this.
LARGEST_KEEP = 50

_WINDOW_RE = re.compile(r"^\s*(\d+)\s*([mhd])\s*$", re.IGNORECASE)
_UNIT_MINUTES = {"m": 1, "h": 60, "d": 1440}


def parse_window(text: str) -> int:
    """``"5m"``, ``"1h"``, ``"90m"``, ``"2h"``, ``"1d"`` → minutes.

    Raises ValueError naming the text and the accepted form.
    """
    match = _WINDOW_RE.match(text)
    if match is None:
        raise ValueError(
            f"window {text!r}: expected a positive whole number of minutes, hours or days "
            f"such as '5m', '90m', '4h' or '1d'"
        )
    minutes = int(match.group(1)) * _UNIT_MINUTES[match.group(2).lower()]
    if minutes <= 0:
        raise ValueError(f"window {text!r}: must be at least one minute, such as '1m' or '5m'")
    return minutes


def check_by(by: Sequence[str]) -> tuple[str, ...]:
    """Validate a group-by list: known keys, no repeats. Returns it as a tuple."""
    result = tuple(by)
    for key in result:
        if key not in GROUP_KEYS:
            raise ValueError(f"cannot group by {key!r}: expected some of {', '.join(GROUP_KEYS)}")
    if len(set(result)) != len(result):
        raise ValueError(f"group-by keys repeat: {', '.join(result)}")
    return result


# Completeness is kept as a bit mask so that merging buckets is an OR, in Lua as in Python.
COMPLETENESS_BITS: dict[Completeness, int] = {
    Completeness.FULL: 1,
    Completeness.THROTTLED: 2,
    Completeness.AGGREGATED: 4,
    Completeness.INFERRED: 8,
    Completeness.BACKSTOP: 16,
}


def completeness_label(mask: int) -> str:
    """The reader-facing completeness of a mask: ``full``, or the weaker levels comma-joined."""
    weaker = sorted(c.value for c, bit in COMPLETENESS_BITS.items() if mask & bit and bit != 1)
    return ",".join(weaker) if weaker else Completeness.FULL.value


@dataclass(frozen=True, slots=True)
class TotalsRow:
    venue: str | None
    coin: str | None
    position_side: str | None
    usd: float
    count: int
    qty_base: float
    largest_usd: float
    largest: Liquidation | None
    completeness: str


class StoreObserver(Protocol):
    """What a store reports about its own health; the metrics module implements it."""

    def store_up(self, up: bool) -> None: ...

    def buffered(self, events: int) -> None: ...

    def dropped(self, events: int) -> None: ...

    def write_seconds(self, seconds: float) -> None: ...

    def oldest_buffered_age(self, seconds: float) -> None: ...

    def rejected(self, reason: str, events: int) -> None:
        """Events no store can keep (see ``records.refusal``), skipped and counted."""
        ...

    def write_landed(self, wall_seconds: float) -> None:
        """A write reached the store at this wall time."""
        ...

    def persistence(self, enabled: bool | None) -> None:
        """Whether the backend keeps its data across a restart (None: cannot tell)."""
        ...


class NullObserver:
    """An observer that records nothing."""

    def store_up(self, up: bool) -> None:
        pass

    def buffered(self, events: int) -> None:
        pass

    def dropped(self, events: int) -> None:
        pass

    def write_seconds(self, seconds: float) -> None:
        pass

    def oldest_buffered_age(self, seconds: float) -> None:
        pass

    def rejected(self, reason: str, events: int) -> None:
        pass

    def write_landed(self, wall_seconds: float) -> None:
        pass

    def persistence(self, enabled: bool | None) -> None:
        pass


@runtime_checkable
class Store(Protocol):
    async def add(self, events: Sequence[Liquidation]) -> int:
        """Count these events once each. Returns how many were new (memory, direct Redis)
        or how many were accepted for writing (the buffered Redis store)."""
        ...

    async def totals(
        self, window_minutes: int, by: Sequence[str] = (), now_ms: int | None = None
    ) -> list[TotalsRow]: ...

    async def minute_series(
        self, start_minute: int, end_minute: int, by: Sequence[str] = ()
    ) -> list[tuple[int, TotalsRow]]: ...

    async def largest(
        self, window_minutes: int, limit: int = 10, now_ms: int | None = None
    ) -> list[Liquidation]: ...

    async def record_cascade(self, record: Mapping[str, Any]) -> None: ...

    async def cascades(self, limit: int = 20) -> list[dict[str, Any]]: ...

    async def claim(self, key: str, ttl_seconds: float) -> bool: ...

    async def record_coverage(
        self, minutes: Sequence[CoverageMinute], heartbeat: Mapping[str, float]
    ) -> None: ...

    async def heartbeats(self) -> dict[str, float]:
        """Venue → wall time of its last coverage record."""
        ...

    async def coverage(
        self, window_minutes: int, now_ms: int | None = None,
        venues: Sequence[str] | None = None,
    ) -> list[CoverageRow]: ...

    # The contract fixes the name `timeout`: the app bounds shutdown with it.
    async def flush(self, timeout: float) -> int: ...  # noqa: ASYNC109

    def healthy(self) -> bool: ...

    def background(self) -> Background:
        """The store's long-lived tasks (none for an in-process store)."""
        ...

    async def aclose(self) -> None: ...
