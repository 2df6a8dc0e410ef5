"""The memory store as the daemon opens it (``behind_ingest``): ingest's dedupe is the only one.

Without ids of its own the store counts whatever it is given, so each event must still be
counted once by the path as a whole: ingest admits an id once within the store's window
and refuses as too old what it may have forgotten, including after its bound evicts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from monitor.clock import VirtualClock
from monitor.config import Config
from monitor.detector.engine import Detector
from monitor.events import Completeness, Liquidation, PositionSide
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.store.base import Store
from monitor.store.config import StoreConfig
from monitor.store.dedupe import ingest_dedupe
from monitor.store.factory import open_store
from monitor.store.memory import MemoryStore
from tests.support.timing import T

T0 = 1_769_904_000.0  # 2026-02-01T00:00:00Z
HOUR = 3600.0


def liq(n: int, ts: float, usd: float = 1000.0) -> Liquidation:
    return Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 50_000.0, usd / 50_000.0,
                       usd, int(ts * 1000), ts + 0.2, Completeness.FULL, f"bybit:{n}")


async def behind_ingest(max_ids: int = 1_000_000) -> tuple[Store, Ingest, VirtualClock]:
    clock = VirtualClock(T0)
    store = await open_store(StoreConfig(backend="memory"), clock=clock, behind_ingest=True)
    metrics = Metrics(CollectorRegistry(), ["bybit"], ["BTC"], process_metrics=False)
    ingest = Ingest(store, Detector(Config().detector), metrics, clock, capacity=100_000,
                    dedupe=ingest_dedupe(48, max_ids))
    return store, ingest, clock


async def run(ingest: Ingest, events: list[Liquidation]) -> None:
    for i in range(0, len(events), 100):
        ingest.put("bybit", list(events[i : i + 100]))
    assert await ingest.drain(5 * T) == 0
    ingest.accepting = True


async def count(store: Store, at: float) -> tuple[int, float]:
    row = (await store.totals(48 * 60, now_ms=int(at * 1000)))[0]
    return row.count, row.usd


async def test_the_store_keeps_no_ids_of_its_own() -> None:
    store, _, _ = await behind_ingest()
    assert isinstance(store, MemoryStore)
    assert store._dedupe is None
    standalone = await open_store(StoreConfig(backend="memory"))
    assert isinstance(standalone, MemoryStore)
    assert standalone._dedupe is not None


async def test_each_event_is_counted_once_through_ingest() -> None:
    store, ingest, clock = await behind_ingest()
    live = [liq(i, T0 + i, 1000.0 + i) for i in range(600)]
    await run(ingest, live)
    # The same frames again, overlapping and in another order, then three hours later a
    # relay's replay of all of it and frames two days old (too old: counted by nobody).
    await run(ingest, live[300:] + live[::-1][:200])
    clock.set(T0 + 3 * HOUR)
    await run(ingest, live + [liq(10_000 + i, T0 - 49 * HOUR + i) for i in range(50)])
    assert ingest.counted_total == 600
    assert await count(store, T0 + 600) == (600, sum(e.notional_usd for e in live))
    largest = await store.largest(60, limit=3, now_ms=int((T0 + 600) * 1000))
    assert [e.event_id for e in largest] == ["bybit:599", "bybit:598", "bybit:597"]


async def test_ids_evicted_by_ingests_bound_are_not_counted_again() -> None:
    # 100 ids held at most: the oldest minutes go, and their events become too old rather
    # than new again, so the store (which remembers nothing) never sees them twice.
    store, ingest, _ = await behind_ingest(max_ids=100)
    events = [liq(i, T0 + 10 * i) for i in range(300)]  # 50 minutes of them
    await run(ingest, events)
    assert ingest.counted_total == 300
    await run(ingest, events)
    assert ingest.counted_total == 300
    assert (await count(store, T0 + 3000))[0] == 300
