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
import math
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
    on_liquidations: Callable[[list[Liquidation]], None] | None = None,
    on_mark: Callable[[MarkPrice], None] | None = None,
) -> ReplayResult:
    """Replay a recording (a path, or frames) and return what the detector made of it.

    ``until`` evaluates on past the last frame (default: the last frame plus the window,
    hold and cooling, so cascades still open at the end of the recording resolve).
    ``on_event`` sees every counted liquidation (after dedupe) and every mark price;
    ``on_liquidations`` the same liquidations a frame or a run at a time (a list to read,
    not to keep), and ``on_mark`` the same mark prices, for callers that take them apart.
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
                    on_liquidation=on_event, on_liquidations=on_liquidations,
                    bounds=config.feed.bounds())
    see_mark = _both(on_event, on_mark)
    parsers = _Parsers(config, books, cache_dir, simulated)
    sessions: dict[tuple[str, str], DialectSession] = {}  # parsers' own, without the call
    evaluated: int | None = None
    wall_start = asyncio.get_running_loop().time()

    async def step(now: float, final: bool = False) -> None:
        # Ingest what arrived before ``now`` first: evaluate sees what the daemon would.
        nonlocal evaluated
        await ingest.process_queued()
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
    # What runs for every frame is kept in locals and written to ``result`` at the end.
    # The clock is only read by ingest and the store, when a step drains the queue or a
    # frame goes to ingest on its own: it is set there, to the latest receipt time so far
    # (what setting it at every frame gives, as it never goes back).
    latest = clock.wall()
    first_at: float | None = None
    last_at: float | None = None
    frames_seen = marks_seen = 0
    # Frames before this receipt time cannot start a new second: no int() for them. It is
    # a lower bound, and the exact test below decides (NaN passes it and raises, as before).
    next_second = -math.inf
    last_key: tuple[str, str] | None = None
    session: DialectSession | None = None
    put = ingest.put
    try:
        for raw in source:
            at = raw.received_at
            if at > latest:
                latest = at
            if not at < next_second:
                if first_at is None:
                    first_at = at
                if evaluated is None or int(at) > evaluated:
                    if run:
                        put(run_venue, run, may_whale=False)
                        run = []
                    if speed is not None:
                        delay = (at - first_at) / speed - (
                            asyncio.get_running_loop().time() - wall_start)
                        if delay > 0:
                            await asyncio.sleep(delay)
                    clock.set(latest)
                    await step(float(int(at)))
                    assert evaluated is not None
                    # int(at) > evaluated means at >= evaluated + 1 from 0 on, and
                    # at > evaluated below it.
                    next_second = evaluated + 1.0 if evaluated >= 0 else float(evaluated)
            frames_seen += 1
            if progress is not None and frames_seen % 10_000 == 0:
                progress(frames_seen, None)
            venue = raw.venue
            connection = raw.connection
            if last_key is None or venue != last_key[0] or connection != last_key[1]:
                # Frames come in long stretches of one connection: its session is looked up
                # when the connection changes.
                last_key = (venue, connection)
                session = sessions.get(last_key)
                if session is None:
                    session = parsers.session(venue, connection)
                    if session is not None:
                        sessions[last_key] = session
            if session is None:
                result.unknown_venue_frames += 1
                continue
            try:
                items = session.parse(raw.frame, at)
            except FrameError:
                result.invalid_frames += 1
                continue
            last_at = at
            if not items:
                continue
            liquidations = marks = 0
            may_whale = False
            # The parser's list is handed on as it is unless an item is left out (a notice):
            # then ``kept`` holds the events, from the items before it on.
            kept: list[Liquidation | MarkPrice] | None = None
            for item in items:
                # Exact types first: most items are one of the two events.
                kind = type(item)
                if kind is Liquidation or (kind is not MarkPrice
                                           and isinstance(item, Liquidation)):
                    liquidations += 1
                    if item.notional_usd >= floor:  # type: ignore[union-attr]
                        may_whale = True
                    if kept is not None:
                        kept.append(item)  # type: ignore[arg-type]
                elif kind is MarkPrice or isinstance(item, MarkPrice):
                    marks += 1
                    if see_mark is not None:
                        see_mark(item)  # type: ignore[arg-type]
                    if kept is not None:
                        kept.append(item)  # type: ignore[arg-type]
                else:
                    if kept is None:
                        kept = items[:liquidations + marks]  # type: ignore[assignment]
                    if isinstance(item, Invalid):
                        result.invalid_frames += 1
                    elif isinstance(item, Unrecognised):
                        result.unrecognised_frames += 1
            if kept is None:
                events: list[Liquidation | MarkPrice] = items  # type: ignore[assignment]
            elif kept:
                events = kept
            else:
                continue
            marks_seen += marks
            if may_whale or (liquidations and marks) or not merge:
                if run:
                    put(run_venue, run, may_whale=False)
                    run = []
                clock.set(latest)
                # A list of ingest's own: the parser's is not kept beyond this frame.
                put(venue, events if kept is not None else list(events), may_whale=may_whale)
            elif run and venue == run_venue and run_marks == (marks > 0):
                run += events
            else:
                if run:
                    put(run_venue, run, may_whale=False)
                    run = []
                run_venue, run_marks = venue, marks > 0
                run += events
        if run:
            put(run_venue, run, may_whale=False)
            run = []
        clock.set(latest)
        result.frames = frames_seen
        result.marks = marks_seen
        result.first_at = first_at
        result.last_at = last_at
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


def _both(first: Callable[[MarkPrice], None] | None,
          second: Callable[[MarkPrice], None] | None) -> Callable[[MarkPrice], None] | None:
    """One call that makes both (either may be None)."""
    if first is None or second is None:
        return first or second

    def both(mark: MarkPrice) -> None:
        first(mark)
        second(mark)

    return both
