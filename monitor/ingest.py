"""The single path by which an event becomes counted.

Readers hand events to :meth:`Ingest.put`, which never blocks (a full queue drops and counts).
One consumer task dedupes, updates metrics, feeds the detector, and writes to the store.
Detection runs here, on the ingest path, not from store reads, so its latency is that of
the event loop, not of Redis.

What is counted is decided here, once, for the detector, the metrics and the store alike:
an event no store can keep (``store.records.refusal``) is refused and counted by reason;
the one dedupe (``store.dedupe``) runs over the store's window by exchange time, so an id
seen in it is a duplicate and an event older than it is refused as too old, whatever its
age. The store only ever sees admitted events.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.alerts import WhaleAlert
from monitor.clock import Clock
from monitor.detector.engine import Detector
from monitor.errors import StoreError
from monitor.events import SIDE_NAME, Liquidation, MarkPrice
from monitor.logs import RateLimitedLog
from monitor.metrics import Metrics
from monitor.store.base import Store
from monitor.store.config import StoreConfig
from monitor.store.dedupe import Dedupe, Verdict, ingest_dedupe
from monitor.store.records import refusal
from monitor.venues.bounds import DEFAULT_BOUNDS, REASON_PREFIX, Bounds, describe, out_of_bounds

log = logging.getLogger(__name__)

Event = Liquidation | MarkPrice
# Events processed per loop step: about 2 ms of ingest work on this machine's kind.
SLICE_EVENTS = 256


@dataclass
class IngestStats:
    """What the periodic summary line reports; reset by :meth:`Ingest.take_stats`."""

    events: int = 0
    usd_long: float = 0.0
    usd_short: float = 0.0
    duplicates: int = 0
    too_old: int = 0
    refused: int = 0
    out_of_bounds: int = 0
    dropped: int = 0
    per_venue: dict[str, int] = field(default_factory=dict)


class Ingest:
    def __init__(
        self,
        store: Store,
        detector: Detector | None,
        metrics: Metrics,
        clock: Clock,
        *,
        capacity: int,
        on_whale: Callable[[WhaleAlert], None] = lambda alert: None,
        on_liquidation: Callable[[Liquidation], None] | None = None,
        dedupe: Dedupe | None = None,
        bounds: Bounds = DEFAULT_BOUNDS,
    ) -> None:
        self.store = store
        self._bounds = bounds
        self.detector = detector
        self._metrics = metrics
        self._clock = clock
        self._capacity = capacity
        self._on_whale = on_whale
        # Each counted (new) liquidation, synchronously: the notifier's MQTT liquidation
        # stream. It must not wait.
        self._on_liquidation = on_liquidation
        self._queue: deque[tuple[str, list[Event]]] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        if dedupe is None:
            defaults = StoreConfig()
            dedupe = ingest_dedupe(defaults.dedupe_ttl_hours, defaults.dedupe_max_ids)
        self._dedupe = dedupe
        self._limited = RateLimitedLog(log)
        self.stats = IngestStats()
        self.counted_total = 0
        # (venue, position_side) → [count, usd] since start: what `liqmon demo` compares
        # with what the simulator sent.
        self.counted: dict[tuple[str, str], list[float]] = {}
        self.accepting = True

    # -- producer side (readers) ----------------------------------------------------------
    def put(self, venue: str, events: list[Event]) -> None:
        if not self.accepting:
            return
        room = self._capacity - self._queued
        if len(events) > room:
            lost = len(events) - max(room, 0)
            events = events[: max(room, 0)]
            self.stats.dropped += lost
            for _ in range(lost):
                self._metrics.ingest_drop(venue)
            log.warning("%s: ingest queue full, %d events dropped", venue, lost)
            if not events:
                return
        self._queue.append((venue, events))
        self._queued += len(events)
        self._idle.clear()
        self._wake.set()

    @property
    def queued(self) -> int:
        return self._queued

    # -- consumer -------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._drain_queue()

    async def _drain_queue(self) -> None:
        while self._queue:
            batch: list[Liquidation] = []
            # A bounded slice, one store call for it, then the loop runs everything else
            # (readers, the alert path, scrapes) before the next: a burst's backlog never
            # holds the loop for more than a slice.
            taken = 0
            while self._queue and taken < SLICE_EVENTS:
                _venue, events = self._queue.popleft()
                self._queued -= len(events)
                taken += len(events)
                self._process(events, batch)
            if batch:
                try:
                    await self.store.add(batch)
                except StoreError as exc:
                    log.error("store rejected %d events: %s", len(batch), exc)
            await asyncio.sleep(0)
        self._idle.set()

    def _process(self, events: list[Event], batch: list[Liquidation]) -> None:
        now = self._clock.wall()
        admit = self._dedupe.admit
        detector = self.detector
        metrics = self._metrics
        stats = self.stats
        bounds = self._bounds
        for event in events:
            bad = out_of_bounds(event, bounds)
            if bad is not None:
                stats.out_of_bounds += 1
                metrics.frame_invalid(event.venue, REASON_PREFIX + bad)
                self._limited.warning("bounds:" + bad, "%s: not counting an event outside the "
                                      "bounds: %s", event.venue, describe(event, bad))
                continue
            if isinstance(event, MarkPrice):
                metrics.mark(event)
                if detector is not None:
                    detector.on_mark_price(event)
                continue
            reason = refusal(event)
            if reason is not None:
                stats.refused += 1
                metrics.rejected(reason, 1)
                self._limited.warning("refused:" + reason, "%s: not counting an event (%s): %r",
                                      event.venue, reason, event)
                continue
            verdict = admit(event.event_id, event.exchange_ts_ms / 1000.0, now)
            if verdict is not Verdict.NEW:
                if verdict is Verdict.DUPLICATE:
                    stats.duplicates += 1
                    metrics.duplicate(event.venue)
                else:
                    stats.too_old += 1
                    metrics.too_old(event.venue)
                continue
            batch.append(event)
            metrics.liquidation(event)
            stats.events += 1
            self.counted_total += 1
            stats.per_venue[event.venue] = stats.per_venue.get(event.venue, 0) + 1
            side = SIDE_NAME[event.position_side]
            tally = self.counted.get((event.venue, side))
            if tally is None:
                tally = self.counted[(event.venue, side)] = [0, 0.0]
            tally[0] += 1
            tally[1] += event.notional_usd
            if side == "long":
                stats.usd_long += event.notional_usd
            else:
                stats.usd_short += event.notional_usd
            if self._on_liquidation is not None:
                self._on_liquidation(event)
            if detector is not None:
                for whale in detector.on_liquidation(event):
                    metrics.whale(event, whale.severity.value)
                    self._on_whale(whale)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109
        """Stop taking events and process what is queued; return what is left after timeout."""
        self.accepting = False
        try:
            async with asyncio.timeout(timeout):
                # Works whether or not the consumer task still runs: both take from one deque.
                await self._drain_queue()
                await self._idle.wait()
        except TimeoutError:
            pass
        return self._queued

    def take_stats(self) -> IngestStats:
        stats, self.stats = self.stats, IngestStats()
        return stats
