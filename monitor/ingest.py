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
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from monitor.alerts import WhaleAlert
from monitor.clock import Clock
from monitor.detector.engine import Detector
from monitor.errors import StoreError
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.logs import RateLimitedLog
from monitor.metrics import Metrics
from monitor.store.base import Store
from monitor.store.config import StoreConfig
from monitor.store.dedupe import Dedupe, Verdict, ingest_dedupe
from monitor.store.records import STORABLE_MAX, refusal
from monitor.venues.bounds import (
    DEFAULT_BOUNDS,
    EARLIEST_MS,
    LATEST_MS,
    REASON_PREFIX,
    Bounds,
    describe,
    out_of_bounds,
)

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
        on_liquidations: Callable[[list[Liquidation]], None] | None = None,
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
        # The same, a frame's counted liquidations at a time (the live page): one call per
        # frame instead of one per row. The list is the callee's to read, not to keep.
        self._on_liquidations = on_liquidations
        self._queue: deque[tuple[str, list[Event]]] = deque()
        # Counted ahead of the queue (frames that may raise a whale alert), not yet stored.
        self._early: list[Liquidation] = []
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
    def put(self, venue: str, events: list[Event], *, may_whale: bool = True) -> None:
        """Queue one frame's events (a list of ingest's own, not read again by the caller).
        ``may_whale=False``: the caller has checked that no liquidation among them reaches
        the detector's ``whale_floor_usd`` (replay, which sends such a frame on its own), so
        the frame is queued without looking for one."""
        if not self.accepting:
            return
        detector = self.detector
        if detector is not None and may_whale:
            floor = detector.whale_floor_usd
            for event in events:
                if isinstance(event, Liquidation) and event.notional_usd >= floor:
                    # A frame that may raise a whale alert is counted now, in the reader's
                    # step, ahead of the queued backlog: the alert is out before the next
                    # loop step instead of after the slices before it. Its store write goes
                    # with the consumer's next slice.
                    self._process(events, self._early)
                    self._idle.clear()
                    self._wake.set()
                    return
        room = self._capacity - self._queued
        if len(events) > room:
            lost = len(events) - max(room, 0)
            events = events[: max(room, 0)]
            self.stats.dropped += lost
            self._metrics.ingest_drop(venue, lost)
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

    async def _drain_queue(self, pause: bool = True) -> None:
        while self._queue or self._early:
            batch, self._early = self._early, []
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
            if pause:
                await asyncio.sleep(0)
        self._idle.set()

    def _process(self, events: list[Event], batch: list[Liquidation]) -> None:
        """One frame's events as one batch: checked and deduped one by one, then the
        admitted ones go to the detector (whale alerts first: the alert path runs ahead of
        the bookkeeping), the liquidation stream, the metrics and the tallies together."""
        now = self._clock.wall()
        # Events inside every bound and every store limit take one chain of comparisons;
        # the rest go through out_of_bounds and refusal, which say why (same verdicts).
        bounds = self._bounds
        most_usd = min(bounds.max_notional_usd, STORABLE_MAX)
        oldest, newest = -bounds.max_age_seconds, bounds.max_lead_seconds
        checked: list[Liquidation] = []
        marks: list[MarkPrice] = []
        # The venue and receipt time of the last row counted: whether a time is inside the
        # bounds depends on nothing else, and a frame's rows share a receipt time and
        # often a venue time, so a run of them takes two comparisons instead of six.
        ok_ts: int | None = None
        ok_received = 0.0
        # A venue time in seconds is ``ts_ms / 1000``: int / int takes CPython's exact fast
        # path (the float ``/ 1000.0`` gives for every time inside the bounds, far below
        # 2**53 ms, and it is only worked out after the range test), where an int of two
        # digits over a float converts it through _PyLong_Frexp, about 650 instructions.
        for event in events:
            # The exact type first: isinstance() of a msgspec Struct class looks up
            # ``__instancecheck__`` on its metaclass, about 570 instructions a row.
            if type(event) is not Liquidation and isinstance(event, MarkPrice):
                ts_ms = event.exchange_ts_ms
                if (0.0 < event.price < math.inf and EARLIEST_MS <= ts_ms <= LATEST_MS
                        and oldest <= ts_ms / 1000 - event.received_at <= newest) \
                        or self._in_bounds(event):
                    marks.append(event)
                continue
            price = event.price
            qty = event.qty_base
            usd = event.notional_usd
            ts_ms = event.exchange_ts_ms
            received = event.received_at
            if not (0.0 < price < STORABLE_MAX and 0.0 < qty < STORABLE_MAX
                    and 0.0 < usd < most_usd
                    and ((ts_ms == ok_ts and received == ok_received)
                         or (EARLIEST_MS <= ts_ms <= LATEST_MS
                             and -STORABLE_MAX < received < STORABLE_MAX
                             and oldest <= ts_ms / 1000 - received <= newest))) \
                    and not self._admissible(event):
                continue
            ok_ts, ok_received = ts_ms, received
            checked.append(event)
        if checked:
            admitted, refused = self._dedupe.admit_events(checked, now)
        else:
            admitted, refused = checked, []
        for event, verdict in refused:
            if verdict is Verdict.DUPLICATE:
                self.stats.duplicates += 1
                self._metrics.duplicate(event.venue)
            else:
                self.stats.too_old += 1
                self._metrics.too_old(event.venue)
        if marks:
            # A frame's marks as one batch (a Binance mark array is hundreds of rows).
            mark = self._metrics.mark
            for price_event in marks:
                mark(price_event)
            if self.detector is not None:
                self.detector.on_mark_prices(marks)
        if admitted:
            self._count(admitted)
            batch.extend(admitted)

    def _count(self, admitted: list[Liquidation]) -> None:
        detector = self.detector
        metrics = self._metrics
        if detector is not None:
            for whale in detector.on_liquidations(admitted):
                metrics.whale(whale.liquidation, whale.severity.value)
                self._on_whale(whale)
        if self._on_liquidations is not None:
            self._on_liquidations(admitted)
        on_liquidation = self._on_liquidation
        if on_liquidation is not None:
            for event in admitted:
                on_liquidation(event)
        metrics.liquidations(admitted)
        # A frame comes from one venue: its rows are summed in locals that start from the
        # running totals (the same additions in the same order as one by one, so the same
        # floats) and stored once per frame. A row of another venue, never seen from a
        # feed, takes the slow path.
        stats = self.stats
        counted = self.counted
        venue = admitted[0].venue
        long_tally = counted.get((venue, "long")) or [0, 0.0]
        short_tally = counted.get((venue, "short")) or [0, 0.0]
        n_long, long_usd = long_tally
        n_short, short_usd = short_tally
        usd_long, usd_short = stats.usd_long, stats.usd_short
        long_side = PositionSide.LONG
        for event in admitted:
            if event.venue != venue:
                stats.usd_long, stats.usd_short = usd_long, usd_short
                self._tally_one(event)
                usd_long, usd_short = stats.usd_long, stats.usd_short
                continue
            usd = event.notional_usd
            if event.position_side is long_side:
                n_long += 1
                long_usd += usd
                usd_long += usd
            else:
                n_short += 1
                short_usd += usd
                usd_short += usd
        stats.usd_long, stats.usd_short = usd_long, usd_short
        added = int(n_long - long_tally[0] + n_short - short_tally[0])
        if n_long:
            long_tally[0], long_tally[1] = n_long, long_usd
            counted[(venue, "long")] = long_tally
        if n_short:
            short_tally[0], short_tally[1] = n_short, short_usd
            counted[(venue, "short")] = short_tally
        if added:
            per_venue = stats.per_venue
            per_venue[venue] = per_venue.get(venue, 0) + added
        stats.events += len(admitted)
        self.counted_total += len(admitted)

    def _tally_one(self, event: Liquidation) -> None:
        stats = self.stats
        usd = event.notional_usd
        venue = event.venue
        stats.per_venue[venue] = stats.per_venue.get(venue, 0) + 1
        if event.position_side is PositionSide.LONG:
            stats.usd_long += usd
            key = (venue, "long")
        else:
            stats.usd_short += usd
            key = (venue, "short")
        tally = self.counted.get(key)
        if tally is None:
            tally = self.counted[key] = [0, 0.0]
        tally[0] += 1
        tally[1] += usd

    def _in_bounds(self, event: Event) -> bool:
        bad = out_of_bounds(event, self._bounds)
        if bad is None:
            return True
        self.stats.out_of_bounds += 1
        self._metrics.frame_invalid(event.venue, REASON_PREFIX + bad)
        self._limited.warning("bounds:" + bad, "%s: not counting an event outside the "
                              "bounds: %s", event.venue, describe(event, bad))
        return False

    def _admissible(self, event: Liquidation) -> bool:
        """Whether a liquidation the quick check did not pass is in bounds and storable."""
        if not self._in_bounds(event):
            return False
        reason = refusal(event)
        if reason is None:
            return True
        self.stats.refused += 1
        self._metrics.rejected(reason, 1)
        self._limited.warning("refused:" + reason, "%s: not counting an event (%s): %r",
                              event.venue, reason, event)
        return False

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

    async def process_queued(self) -> None:
        """What :meth:`drain` processes, for the one caller that owns the event loop and
        every put (replay, once a virtual second): the same slices and store calls, without
        a loop step between slices (no other task waits for one) or a timeout (replay's
        memory store never makes a call wait); the queue stays open."""
        await self._drain_queue(pause=False)

    def take_stats(self) -> IngestStats:
        stats, self.stats = self.stats, IngestStats()
        return stats
