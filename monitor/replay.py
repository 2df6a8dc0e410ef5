"""Recorded raw frames through the live path (dialect → ingest → detector) on a virtual clock.

A recording (DESIGN 3.3) is read in file order. Each frame is parsed by its venue's dialect
(one parse session per venue) and handed to the real :class:`~monitor.ingest.Ingest`, with
its dedupe, metrics and store (memory by default); consecutive frames of one venue and kind
go in one list, which ingest counts exactly as it would the frames one by one. The virtual
clock follows the frames' ``received_at``; whenever it crosses a whole second, what was
queued is ingested and the detector is evaluated at that second, as the daemon's
evaluation loop does once a second.
So a replay of a recording makes the same alerts as the live run that recorded it.

``speed`` None replays as fast as possible; ``speed=X`` sleeps so that the recording plays
X times faster than it was recorded (``liqmon replay --speed``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.alerts import CascadeAlert, WhaleAlert
from monitor.clock import VirtualClock
from monitor.config import Config
from monitor.detector.engine import Detector
from monitor.errors import FrameError
from monitor.events import Liquidation, MarkPrice
from monitor.feed.instruments import default_cache_dir, load_cached
from monitor.feed.recorder import RawFrame, read_recording
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.store.config import StoreConfig
from monitor.store.factory import open_store
from monitor.venues import VENUES, make_dialect
from monitor.venues.dialect import DialectSession, Invalid, Unrecognised
from monitor.venues.instruments import InstrumentBook, InstrumentSpec

Progress = Callable[[int, int | None], None]  # (done, total or None when unknown)
INGEST_CAPACITY = 10_000_000  # a replay never drops: the queue is drained every second
DRAIN_TIMEOUT_SECONDS = 3600.0  # the memory store never makes a drain wait
# Frames handed to ingest in runs (below); False: one put per frame, as live (the tests
# compare the two).
MERGE_RUNS = True


@dataclass
class ReplayResult:
    frames: int = 0
    invalid_frames: int = 0
    unrecognised_frames: int = 0
    unknown_venue_frames: int = 0
    liquidations: int = 0  # counted by ingest (after dedupe)
    duplicates: int = 0
    marks: int = 0
    total_usd: float = 0.0
    first_at: float | None = None
    last_at: float | None = None
    cascades: list[CascadeAlert] = field(default_factory=list)
    whales: list[WhaleAlert] = field(default_factory=list)
    # Cumulative USD counted when each cascade transition was emitted, by alert position.
    usd_before: list[float] = field(default_factory=list)


def instrument_books(
    venues: Iterable[str],
    *,
    specs: Mapping[str, Iterable[InstrumentSpec]] | None = None,
    cache_dir: Path | None = None,
    simulated: bool = False,
) -> dict[str, InstrumentBook]:
    """Instrument books for the venues of a recording: given specs, else the simulator's
    catalogue (``simulated``, for recordings of ``liqmon simulate``), else the REST cache."""
    books: dict[str, InstrumentBook] = {}
    for venue in venues:
        book = InstrumentBook(venue)
        if specs is not None and venue in specs:
            book.update(list(specs[venue]))
        elif simulated:
            from monitor.simulator.catalogue import listings

            book.update([item.spec for item in listings(venue)])
        else:
            book.update(load_cached(make_dialect(venue), cache_dir or default_cache_dir()))
        books[venue] = book
    return books


class _Parsers:
    """One dialect session per venue and recorded connection, as live keeps one per
    connection: a resubscribe's snapshot is then first-push state of a fresh session."""

    def __init__(self, config: Config, books: Mapping[str, InstrumentBook] | None,
                 cache_dir: Path | None, simulated: bool) -> None:
        self._config = config
        self._books = books
        self._cache_dir = cache_dir
        self._simulated = simulated
        self._sessions: dict[tuple[str, str], DialectSession] = {}

    def session(self, venue: str, connection: str = "") -> DialectSession | None:
        session = self._sessions.get((venue, connection))
        if session is None:
            if venue not in VENUES:
                return None
            vc = self._config.venues.get(venue)
            dialect = make_dialect(venue, vc.settings()) if vc is not None else make_dialect(venue)
            if self._books is not None and venue in self._books:
                book = self._books[venue]
            else:
                # One book per venue, whatever the number of its connections.
                self._books = dict(self._books or {})
                book = self._books[venue] = instrument_books(
                    [venue], cache_dir=self._cache_dir, simulated=self._simulated)[venue]
            session = self._sessions[(venue, connection)] = dialect.session(book)
        return session


async def replay(
    frames: str | Path | Iterable[RawFrame],
    config: Config,
    *,
    speed: float | None = None,
    books: Mapping[str, InstrumentBook] | None = None,
    cache_dir: Path | None = None,
    simulated: bool = False,
    on_alert: Callable[[CascadeAlert | WhaleAlert], None] | None = None,
    progress: Progress | None = None,
    until: float | None = None,
    on_event: Callable[[Liquidation | MarkPrice], None] | None = None,
) -> ReplayResult:
    """Replay a recording (a path, or frames) and return what the detector made of it.

    ``until`` evaluates on past the last frame (default: the last frame plus the window,
    hold and cooling, so cascades still open at the end of the recording resolve).
    ``on_event`` sees every counted liquidation (after dedupe) and every mark price.
    """
    source: Iterable[RawFrame] = read_recording(frames) if isinstance(frames, str | Path) else (
        frames)
    clock = VirtualClock(0.0)
    metrics = Metrics(CollectorRegistry(), list(config.enabled_venues()) or list(VENUES),
                      config.metrics.coins, process_metrics=False)
    store = await open_store(StoreConfig(backend="memory"), metrics, clock, behind_ingest=True)
    result = ReplayResult()
    detector = Detector(config.detector)

    def whale(alert: WhaleAlert) -> None:
        result.whales.append(alert)
        if on_alert is not None:
            on_alert(alert)

    ingest = Ingest(store, detector, metrics, clock, capacity=INGEST_CAPACITY, on_whale=whale,
                    on_liquidation=on_event, bounds=config.feed.bounds())
    parsers = _Parsers(config, books, cache_dir, simulated)
    sessions: dict[tuple[str, str], DialectSession] = {}  # parsers' own, without the call
    evaluated: int | None = None
    wall_start = asyncio.get_running_loop().time()

    async def step(now: float, final: bool = False) -> None:
        # Ingest what arrived before ``now`` first: evaluate sees what the daemon would.
        nonlocal evaluated
        await ingest.drain(DRAIN_TIMEOUT_SECONDS)
        ingest.accepting = True
        evaluated = int(now)
        result.liquidations = ingest.counted_total
        alerts = detector.evaluate(now)
        if alerts or final:
            # The sum over every counted venue and coin only when something reads it.
            result.total_usd = sum(t[1] for t in ingest.counted.values())
        for alert in alerts:
            result.cascades.append(alert)
            result.usd_before.append(result.total_usd)
            if on_alert is not None:
                on_alert(alert)

    # A run of frames: consecutive frames of one venue and one kind (liquidations only, or
    # marks only), handed to ingest as one list. Ingest treats a list as one batch event by
    # event (the same checks, verdicts, sums and detector calls in the same order, the same
    # store writes: ``tests/test_replay.py`` compares with frame by frame), so a run costs
    # one put and one batch instead of one per frame; a price frame is mostly that cost. A
    # run ends at each evaluation (what arrived before it is ingested first), at another
    # venue or kind, and before a frame that may raise a whale alert, which goes to ingest
    # on its own: ingest counts that frame ahead of the queue, as live.
    run: list[Liquidation | MarkPrice] = []
    run_venue = ""
    run_marks = False
    floor = detector.whale_floor_usd
    merge = MERGE_RUNS

    def flush() -> None:
        nonlocal run
        if run:
            put(run_venue, run)
            run = []

    # Bound once: these run for every frame.
    clock_set, put, session_for = clock.set, ingest.put, sessions.get
    try:
        for raw in source:
            at = raw.received_at
            if result.first_at is None:
                result.first_at = at
            clock_set(at)
            if evaluated is None or int(at) > evaluated:
                flush()
                if speed is not None and result.first_at is not None:
                    delay = (at - result.first_at) / speed - (
                        asyncio.get_running_loop().time() - wall_start)
                    if delay > 0:
                        await asyncio.sleep(delay)
                await step(float(int(at)))
            result.frames += 1
            if progress is not None and result.frames % 10_000 == 0:
                progress(result.frames, None)
            key = (raw.venue, raw.connection)
            session = session_for(key)
            if session is None:
                session = parsers.session(raw.venue, raw.connection)
                if session is None:
                    result.unknown_venue_frames += 1
                    continue
                sessions[key] = session
            try:
                items = session.parse(raw.frame, at)
            except FrameError:
                result.invalid_frames += 1
                continue
            events: list[Liquidation | MarkPrice] = []
            liquidations = marks = 0
            may_whale = False
            for item in items:
                # Exact types first: most items are one of the two events.
                kind = type(item)
                if kind is Liquidation or (kind is not MarkPrice
                                           and isinstance(item, Liquidation)):
                    events.append(item)  # type: ignore[arg-type]
                    liquidations += 1
                    if item.notional_usd >= floor:  # type: ignore[union-attr]
                        may_whale = True
                elif kind is MarkPrice or isinstance(item, MarkPrice):
                    events.append(item)  # type: ignore[arg-type]
                    marks += 1
                    if on_event is not None:
                        on_event(item)  # type: ignore[arg-type]
                elif isinstance(item, Invalid):
                    result.invalid_frames += 1
                elif isinstance(item, Unrecognised):
                    result.unrecognised_frames += 1
            result.last_at = at
            if not events:
                continue
            result.marks += marks
            venue = raw.venue
            if may_whale or (liquidations and marks) or not merge:
                flush()
                put(venue, events)
            elif run and venue == run_venue and run_marks == (marks > 0):
                run += events
            else:
                flush()
                run, run_venue, run_marks = events, venue, marks > 0
        flush()
        last = result.last_at if result.last_at is not None else 0.0
        c = config.detector
        end = until if until is not None else last + (
            2 * c.window_seconds + c.min_hold_seconds + c.cooling_seconds + 2)
        await step(float(int(last)) + 1.0)
        clock.set(end)
        await step(end, final=True)
        result.duplicates = ingest.stats.duplicates
    finally:
        await store.aclose()
    if progress is not None:
        progress(result.frames, result.frames)
    return result
