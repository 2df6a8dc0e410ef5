"""Ingest decides once what is counted: the detector, the metrics and the store agree.

The store is the memory store and a real Redis (through the buffered store the daemon
uses); the detector is the real one, wrapped only to count what it is given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import msgspec
import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts import WhaleAlert
from monitor.clock import VirtualClock
from monitor.config import Config
from monitor.detector.engine import Detector
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.store.base import Store
from monitor.store.config import StoreConfig
from monitor.store.dedupe import ingest_dedupe
from monitor.store.factory import open_store
from monitor.store.memory import MemoryStore
from tests.fixtures.redis import RedisServer
from tests.support.timing import T

T0 = 1_769_904_000.0  # 2026-02-01T00:00:00Z
HOUR = 3600.0


class CountingDetector(Detector):
    """The real detector; also counts the liquidations it is given."""

    seen = 0

    def on_liquidations(self, events: Iterable[Liquidation]) -> list[WhaleAlert]:
        events = list(events)
        self.seen += len(events)
        return super().on_liquidations(events)


def liq(n: int, ts: float, usd: float = 1000.0) -> Liquidation:
    ts_ms = int(ts * 1000)
    return Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 50_000.0, usd / 50_000.0,
                       usd, ts_ms, ts + 0.2, Completeness.FULL, f"bybit:{n}")


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    if request.param == "memory":
        config = StoreConfig()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        config = StoreConfig(backend="redis", url=server.url, flush_interval_seconds=0.005)
    opened = await open_store(config)
    try:
        yield opened
    finally:
        await opened.aclose()


def parts(store: Store) -> tuple[Ingest, CountingDetector, CollectorRegistry, VirtualClock]:
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["bybit"], ["BTC"], process_metrics=False)
    clock = VirtualClock(T0)
    detector = CountingDetector(Config().detector)
    ingest = Ingest(store, detector, metrics, clock, capacity=100_000,
                    dedupe=ingest_dedupe(48, 1_000_000))
    return ingest, detector, registry, clock


async def run(ingest: Ingest, store: Store, events: list[Liquidation]) -> None:
    for i in range(0, len(events), 100):
        ingest.put("bybit", list(events[i : i + 100]))
    assert await ingest.drain(5 * T) == 0
    ingest.accepting = True
    assert await store.flush(5 * T) == 0


async def test_a_replay_of_frames_hours_old_is_counted_once_everywhere(store: Store) -> None:
    ingest, detector, registry, clock = parts(store)
    live = [liq(i, T0 + i, 1000.0 + i) for i in range(600)]
    await run(ingest, store, live)
    # Three hours later a relay replays the whole stream, then frames two days old that
    # nobody has seen (their ids could have been forgotten: they are not counted).
    clock.set(T0 + 3 * HOUR)
    ancient = [liq(10_000 + i, T0 - 49 * HOUR + i) for i in range(50)]
    await run(ingest, store, live + ancient + live[:100])
    usd = sum(e.notional_usd for e in live)
    get = registry.get_sample_value
    labels = {"venue": "bybit", "coin": "BTC", "position_side": "long"}
    assert ingest.counted_total == detector.seen == 600
    assert get("liqmon_liquidations_total", labels) == 600
    assert get("liqmon_liquidated_usd_total", labels) == usd
    assert get("liqmon_duplicate_events_total", {"venue": "bybit"}) == 700
    assert get("liqmon_too_old_events_total", {"venue": "bybit"}) == 50
    row = (await store.totals(60, now_ms=int((T0 + 600) * 1000)))[0]
    assert (row.count, row.usd) == (600, usd)


async def test_events_outside_the_bounds_are_counted_by_nobody(store: Store) -> None:
    ingest, detector, registry, _ = parts(store)
    good = [liq(i, T0 - 60 + i) for i in range(10)]
    bad = [
        liq(100, T0, 1e308),
        liq(101, T0, float("inf")),
        Liquidation("gate", "BTC_USDT", "BTC", PositionSide.SHORT, 1.0, 1.0, 1.0,
                    -(2**63) * 1000, T0, Completeness.FULL, "gate:overflow"),
    ]
    await run(ingest, store, good[:5] + bad + good[5:])
    assert ingest.counted_total == detector.seen == 10
    # The bounds at the edge refuse them before the store's own last check is needed.
    refused = {s.labels["reason"]: s.value for family in registry.collect()
               for s in family.samples if s.name == "liqmon_frames_invalid_total" and s.value}
    assert refused == {"bounds_too_large": 1, "bounds_quantity": 1, "bounds_time": 1}
    assert registry.get_sample_value(
        "liqmon_store_rejected_events_total", {"reason": "value"}) == 0
    row = (await store.totals(5, now_ms=int(T0 * 1000)))[0]
    assert (row.count, row.usd) == (10, 10_000.0)


async def test_a_frame_is_one_batch_with_the_verdicts_of_its_events_one_by_one() -> None:
    store = MemoryStore()
    ingest, detector, registry, _ = parts(store)
    whales: list[WhaleAlert] = []
    streamed: list[Liquidation] = []
    ingest = Ingest(store, detector, ingest._metrics, VirtualClock(T0), capacity=1000,
                    on_whale=whales.append, on_liquidation=streamed.append,
                    dedupe=ingest_dedupe(48, 1_000_000))
    whale = liq(7, T0 - 5, 30e6)
    first = [liq(1, T0 - 9), liq(2, T0 - 8), liq(1, T0 - 9), liq(3, T0, 1e308), whale,
             MarkPrice("bybit", "BTCUSDT", "BTC", 50_000.0, int(T0 * 1000), T0),
             MarkPrice("bybit", "BTCUSDT", "BTC", 0.0, int(T0 * 1000), T0)]
    second = [liq(2, T0 - 8), liq(4, T0 - 49 * HOUR), liq(5, T0 - 1)]
    ingest.put("bybit", first)
    ingest.put("bybit", second)
    assert await ingest.drain(5 * T) == 0
    assert streamed == [first[0], first[1], whale, second[2]]
    assert [w.liquidation for w in whales] == [whale]
    assert ingest.counted_total == detector.seen == 4
    stats = ingest.take_stats()
    assert (stats.events, stats.duplicates, stats.too_old, stats.out_of_bounds) == (4, 2, 1, 2)
    assert stats.per_venue == {"bybit": 4}
    assert stats.usd_long == sum(e.notional_usd for e in streamed)
    assert ingest.counted == {("bybit", "long"): [4, stats.usd_long]}
    get = registry.get_sample_value
    labels = {"venue": "bybit", "coin": "BTC", "position_side": "long"}
    assert get("liqmon_liquidations_total", labels) == 4
    assert get("liqmon_whale_liquidations_total", labels) == 1
    assert get("liqmon_duplicate_events_total", {"venue": "bybit"}) == 2
    assert get("liqmon_mark_price_usd", {"venue": "bybit", "coin": "BTC"}) == 50_000.0
    assert get("liqmon_frames_invalid_total",
               {"venue": "bybit", "reason": "bounds_too_large"}) == 1
    assert get("liqmon_frames_invalid_total", {"venue": "bybit", "reason": "bounds_price"}) == 1
    row = (await store.totals(60, now_ms=int(T0 * 1000)))[0]
    assert row.count == 4


async def test_tallies_and_the_frame_callback_match_the_events_one_by_one() -> None:
    """Per-frame sums give the floats of per-event additions; a stray venue is its own."""
    store = MemoryStore()
    ingest, detector, _registry, _ = parts(store)
    frames: list[list[Liquidation]] = []
    streamed: list[Liquidation] = []
    ingest = Ingest(store, detector, ingest._metrics, VirtualClock(T0), capacity=1000,
                    on_liquidation=streamed.append, on_liquidations=frames.append,
                    dedupe=ingest_dedupe(48, 1_000_000))
    sizes = [1234.567, 0.1 + 0.2, 9_999.99, 1e-3, 42.42, 7.7]

    def row(n: int, usd: float, side: PositionSide, venue: str = "bybit") -> Liquidation:
        return msgspec.structs.replace(liq(n, T0 - n, usd), position_side=side, venue=venue,
                                       event_id=f"{venue}:{n}")

    first = [row(n, usd, PositionSide.LONG if n % 2 else PositionSide.SHORT)
             for n, usd in enumerate(sizes)]
    second = [row(10, 3.3, PositionSide.SHORT), row(11, 5.5, PositionSide.LONG, "okx"),
              row(12, 0.7, PositionSide.LONG)]
    ingest.put("bybit", first)
    ingest.put("bybit", second)
    assert await ingest.drain(5 * T) == 0
    assert frames == [first, second] and streamed == first + second
    expected: dict[tuple[str, str], list[float]] = {}
    usd_long = usd_short = 0.0
    for event in first + second:
        key = (event.venue, event.position_side.value)
        tally = expected.setdefault(key, [0, 0.0])
        tally[0] += 1
        tally[1] += event.notional_usd
        if event.position_side is PositionSide.LONG:
            usd_long += event.notional_usd
        else:
            usd_short += event.notional_usd
    assert ingest.counted == expected
    stats = ingest.take_stats()
    assert (stats.usd_long, stats.usd_short) == (usd_long, usd_short)  # exactly
    assert stats.per_venue == {"bybit": 8, "okx": 1} and stats.events == 9


async def test_a_frame_that_may_raise_a_whale_alert_goes_ahead_of_the_queue() -> None:
    store = MemoryStore()
    _, detector, _registry, clock = parts(store)
    whales: list[WhaleAlert] = []
    ingest = Ingest(store, detector, Metrics(CollectorRegistry(), ["bybit"], ["BTC"],
                                             process_metrics=False),
                    clock, capacity=10, on_whale=whales.append,
                    dedupe=ingest_dedupe(48, 1_000_000))
    backlog = [liq(i, T0 - 30 + i) for i in range(10)]
    ingest.put("bybit", backlog)
    whale = liq(99, T0 - 1, 30e6)
    # The queue is full, and the consumer has not run: the whale is counted all the same.
    ingest.put("bybit", [liq(98, T0 - 2), whale])
    assert [w.liquidation for w in whales] == [whale]
    assert ingest.counted_total == 2 and ingest.queued == 10
    assert await ingest.drain(5 * T) == 0
    assert ingest.counted_total == detector.seen == 12
    row = (await store.totals(60, now_ms=int(T0 * 1000)))[0]
    assert row.count == 12


async def test_the_quick_time_check_gives_out_of_bounds_verdicts_at_the_edges() -> None:
    """Ingest's quick check reads a venue time as ``ts_ms / 1000`` (int / int, exact): at
    the last receipt time inside the age and lead bounds and the first outside, for times
    across the bounds' range (those whose seconds ``ts_ms * 0.001`` would round otherwise),
    it refuses exactly what out_of_bounds() refuses, rows and marks."""
    import math
    import random

    from monitor.venues.bounds import DEFAULT_BOUNDS, EARLIEST_MS, LATEST_MS, out_of_bounds

    rng = random.Random(14)
    bounds = DEFAULT_BOUNDS
    age, lead = bounds.max_age_seconds, bounds.max_lead_seconds

    def inside(seconds: float, received: float) -> bool:
        return -age <= seconds - received <= lead

    events: list[Liquidation | MarkPrice] = []
    while len(events) < 400:
        ts = rng.randrange(EARLIEST_MS, LATEST_MS + 1)
        seconds = ts / 1000.0
        if ts * 0.001 == seconds:
            continue
        for edge, outward in ((seconds + age, math.inf), (seconds - lead, -math.inf)):
            # The last receipt time inside, then the first outside.
            received = edge
            while not inside(seconds, received):
                received = math.nextafter(received, -outward)
            while inside(seconds, math.nextafter(received, outward)):
                received = math.nextafter(received, outward)
            for at in (received, math.nextafter(received, outward)):
                n = len(events)
                if n % 3 == 0:
                    events.append(MarkPrice("bybit", "BTCUSDT", "BTC", 50_000.0, ts, at))
                else:
                    events.append(Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG,
                                              50_000.0, 0.02, 1000.0, ts, at,
                                              Completeness.FULL, f"e{n}"))
    store = MemoryStore()
    ingest, _, _, _ = parts(store)
    ingest.put("bybit", events, may_whale=False)
    assert await ingest.drain(5 * T) == 0
    outside = [e for e in events if out_of_bounds(e, bounds) is not None]
    assert len(outside) == len(events) // 2
    stats = ingest.stats
    assert stats.out_of_bounds == len(outside)
    kept = sum(isinstance(e, Liquidation) for e in events) - sum(
        isinstance(e, Liquidation) for e in outside)
    assert stats.events + stats.too_old + stats.duplicates == kept


class _LiquidationKind(Liquidation, frozen=True, gc=False):
    """A subclass: ingest's exact-type test must not take it for a mark."""


class _MarkKind(MarkPrice, frozen=True, gc=False):
    """A subclass: still a mark."""


async def test_rows_and_marks_are_told_apart_by_exact_type_then_isinstance() -> None:
    """The check loop tests ``type(event) is not Liquidation`` before ``isinstance(event,
    MarkPrice)`` (an isinstance of a msgspec Struct class looks up ``__instancecheck__``
    on its metaclass: about 570 instructions a row): subclasses of either still go the
    way isinstance sends them."""
    store = MemoryStore()
    ingest, detector, registry, _ = parts(store)
    ts_ms = int(T0 * 1000)
    events: list[Liquidation | MarkPrice] = [
        _LiquidationKind("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 50_000.0, 0.02, 1000.0,
                         ts_ms, T0, Completeness.FULL, "kind:1"),
        _MarkKind("bybit", "BTCUSDT", "BTC", 51_000.0, ts_ms, T0),
        liq(2, T0 - 1),
        MarkPrice("bybit", "BTCUSDT", "BTC", 52_000.0, ts_ms, T0),
        _MarkKind("bybit", "BTCUSDT", "BTC", 53_000.0, ts_ms, T0),
    ]
    ingest.put("bybit", events, may_whale=False)
    assert await ingest.drain(5 * T) == 0
    assert ingest.counted_total == detector.seen == 2
    assert ingest.stats.out_of_bounds == 0
    assert registry.get_sample_value(
        "liqmon_mark_price_usd", {"venue": "bybit", "coin": "BTC"}) == 53_000.0
