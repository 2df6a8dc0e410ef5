"""One contract suite over every store: memory, Redis and a 3-node Redis Cluster.

Redis stores are opened through ``open_store`` (the buffered path the daemon uses), so each
test writes with ``put`` (add, then flush) before it reads. Every test gets its own key
prefix on the shared servers.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from monitor.events import Liquidation
from monitor.store.base import GROUP_KEYS, LARGEST_KEEP, WINDOWS, Store, TotalsRow
from monitor.store.config import StoreConfig
from monitor.store.coverage import DAY_MINUTES, CoverageMinute, CoverageRow
from monitor.store.factory import open_store
from tests.support.store_events import (
    BASE_MS,
    MINUTE,
    NOW_MS,
    make_event,
    minutes_ago,
    sample_events,
)
from tests.support.timing import T

SHORT_TTL = 0.8 * T  # seconds: retention and TTLs in the expiry tests


@dataclass
class Backend:
    kind: str
    url: str = ""
    prefix: str = field(default_factory=lambda: "t" + uuid.uuid4().hex[:12])
    opened: list[Store] = field(default_factory=list)

    def config(self, **overrides: Any) -> StoreConfig:
        settings: dict[str, Any] = {
            "backend": "memory" if self.kind == "memory" else "redis",
            "url": self.url or "redis://127.0.0.1:1/0",
            "cluster": self.kind == "redis-cluster",
            "key_prefix": self.prefix,
            "flush_interval_seconds": 0.005,
        }
        settings.update(overrides)
        return StoreConfig(**settings)

    async def open(self, **overrides: Any) -> Store:
        store = await open_store(self.config(**overrides))
        self.opened.append(store)
        return store

    async def another_client(self, first: Store, **overrides: Any) -> Store:
        """A second client on the same data: a second connection for Redis; the memory
        store has no other client than itself."""
        if self.kind == "memory":
            return first
        return await self.open(**overrides)


@pytest.fixture(params=["memory", "redis", "redis-cluster"])
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    kind = request.param
    url = ""
    if kind == "redis":
        url = request.getfixturevalue("shared_redis_server").url
    elif kind == "redis-cluster":
        url = request.getfixturevalue("redis_cluster").url
    b = Backend(kind, url)
    try:
        yield b
    finally:
        for store in b.opened:
            await store.aclose()


async def put(store: Store, events: Sequence[Liquidation]) -> None:
    await store.add(events)
    assert await store.flush(10 * T) == 0


def overall(rows: list[TotalsRow]) -> TotalsRow:
    assert len(rows) == 1
    return rows[0]


def expected_rows(events: Iterable[Liquidation], by: Sequence[str]) -> dict[tuple[str, ...], Any]:
    """The reference: what totals must say, computed the plain way."""
    out: dict[tuple[str, ...], dict[str, Any]] = {}
    for e in events:
        values = {"venue": e.venue, "coin": e.coin, "position_side": e.position_side.value}
        key = tuple(values[k] for k in by)
        row = out.setdefault(key, {"usd": 0.0, "count": 0, "qty": 0.0, "largest": None,
                                   "levels": set()})
        row["usd"] += e.notional_usd
        row["count"] += 1
        row["qty"] += e.qty_base
        row["levels"].add(e.completeness.value)
        if row["largest"] is None or e.notional_usd > row["largest"].notional_usd:
            row["largest"] = e
    return out


def row_key(row: TotalsRow, by: Sequence[str]) -> tuple[str, ...]:
    values = {"venue": row.venue, "coin": row.coin, "position_side": row.position_side}
    return tuple(str(values[k]) for k in by)


def check_rows(rows: list[TotalsRow], events: Sequence[Liquidation], by: Sequence[str]) -> None:
    expected = expected_rows(events, by)
    assert {row_key(r, by) for r in rows} == set(expected), by
    for row in rows:
        want = expected[row_key(row, by)]
        assert row.usd == pytest.approx(want["usd"], rel=1e-12)
        assert row.count == want["count"]
        assert row.qty_base == pytest.approx(want["qty"], rel=1e-12)
        assert row.largest_usd == want["largest"].notional_usd
        assert row.largest == want["largest"]
        for k in GROUP_KEYS:
            if k not in by:
                assert getattr(row, k) is None
    assert [r.usd for r in rows] == sorted((r.usd for r in rows), reverse=True)


# Sums, windows, minutes


async def test_sums_counts_and_quantities(backend: Backend) -> None:
    store = await backend.open()
    events = [make_event(100.0 * (i + 1), qty=0.5 * i, ts_ms=minutes_ago(i % 4)) for i in range(40)]
    await put(store, events)
    row = overall(await store.totals(5, now_ms=NOW_MS))
    assert row.count == 40
    assert row.usd == pytest.approx(sum(e.notional_usd for e in events))
    assert row.qty_base == pytest.approx(sum(e.qty_base for e in events))
    assert row.largest_usd == 4000.0
    assert row.largest == events[-1]
    assert (row.venue, row.coin, row.position_side) == (None, None, None)
    assert row.completeness == "full"


async def test_each_named_window_sums_exactly_its_minutes(backend: Backend) -> None:
    store = await backend.open()
    ages = [0, 0, 3, 4, 5, 14, 15, 59, 60, 61, 239, 240, 241, 1439, 1440, 1500]
    events = [make_event(float(10 + i), ts_ms=minutes_ago(age)) for i, age in enumerate(ages)]
    await put(store, events)
    for name, minutes in WINDOWS.items():
        inside = [e for e, age in zip(events, ages, strict=True) if age < minutes]
        row = overall(await store.totals(minutes, now_ms=NOW_MS))
        assert row.count == len(inside), name
        assert row.usd == pytest.approx(sum(e.notional_usd for e in inside)), name


@pytest.mark.parametrize("now_offset_ms", [0, 30_000, 59 * MINUTE + 59_999, 17 * MINUTE])
async def test_any_range_of_minutes_matches_a_brute_force_sum(
    backend: Backend, now_offset_ms: int
) -> None:
    # Windows just under, at and over hour boundaries exercise the hour roll-ups against
    # the edge minutes; `now` on, inside and at the end of an hour moves those edges.
    store = await backend.open()
    now_ms = BASE_MS + 27 * 3_600_000 + now_offset_ms
    rnd = random.Random(now_offset_ms)
    events = [
        make_event(round(rnd.uniform(1, 1e6), 2), ts_ms=now_ms - rnd.randrange(0, 27 * 3_600_000),
                   venue=rnd.choice(["bybit", "okx"]))
        for _ in range(400)
    ]
    await put(store, events)
    now_minute = now_ms // MINUTE
    for window in [1, 2, 59, 60, 61, 90, 119, 120, 121, 181, 240, 1439, 1440, 1441, 1620]:
        inside = [e for e in events if now_minute - window < e.minute <= now_minute]
        row = overall(await store.totals(window, now_ms=now_ms))
        assert row.count == len(inside), window
        assert row.usd == pytest.approx(sum(e.notional_usd for e in inside)), window
        top = max(inside, key=lambda e: e.notional_usd, default=None)
        assert row.largest == top, window


async def test_a_late_event_lands_in_its_own_minute(backend: Backend) -> None:
    store = await backend.open()
    now_minute = NOW_MS // MINUTE
    await put(store, [make_event(500.0, ts_ms=minutes_ago(0))])
    late = make_event(70.0, ts_ms=minutes_ago(3))  # arrives after, stamped 3 minutes back
    await put(store, [late])
    assert overall(await store.totals(1, now_ms=NOW_MS)).usd == 500.0
    assert overall(await store.totals(3, now_ms=NOW_MS)).usd == 500.0
    assert overall(await store.totals(4, now_ms=NOW_MS)).usd == 570.0
    series = dict(await store.minute_series(now_minute - 3, now_minute))
    assert series[now_minute - 3].usd == 70.0
    assert series[now_minute - 3].largest == late
    assert series[now_minute - 2].count == 0
    assert series[now_minute].usd == 500.0


async def test_minute_boundaries_and_the_future(backend: Backend) -> None:
    store = await backend.open()
    boundary = (NOW_MS // MINUTE) * MINUTE
    before = make_event(1.0, ts_ms=boundary - 1)
    at = make_event(2.0, ts_ms=boundary)
    end_of_minute = make_event(4.0, ts_ms=boundary + MINUTE - 1)
    future = make_event(8.0, ts_ms=boundary + MINUTE)
    await put(store, [before, at, end_of_minute, future])
    assert overall(await store.totals(1, now_ms=boundary)).usd == 6.0
    assert overall(await store.totals(1, now_ms=boundary + MINUTE - 1)).usd == 6.0
    assert overall(await store.totals(2, now_ms=boundary)).usd == 7.0
    assert overall(await store.totals(1, now_ms=boundary + MINUTE)).usd == 8.0
    assert await store.largest(1, 10, now_ms=boundary) == [end_of_minute, at]


async def test_window_defaults_to_the_wall_clock(backend: Backend) -> None:
    store = await backend.open()
    now_ms = int(time.time() * 1000)
    await put(store, [make_event(42.0, ts_ms=now_ms), make_event(1.0, ts_ms=now_ms - 3_600_000)])
    assert overall(await store.totals(WINDOWS["5m"])).usd == 42.0
    assert overall(await store.totals(WINDOWS["4h"])).usd == 43.0


# Grouping


async def test_every_group_by_combination(backend: Backend) -> None:
    store = await backend.open()
    events = sample_events()
    await put(store, events)
    for size in range(len(GROUP_KEYS) + 1):
        for by in itertools.permutations(GROUP_KEYS, size):
            rows = await store.totals(240, by, now_ms=NOW_MS)
            check_rows(rows, events, by)


async def test_group_by_only_counts_the_window(backend: Backend) -> None:
    store = await backend.open()
    events = sample_events()
    await put(store, events)
    inside = [e for e in events if e.minute > NOW_MS // MINUTE - 15]
    check_rows(await store.totals(15, ("venue", "position_side"), now_ms=NOW_MS), inside,
               ("venue", "position_side"))


async def test_grouping_by_an_unknown_key_is_an_error(backend: Backend) -> None:
    store = await backend.open()
    with pytest.raises(ValueError, match="instrument"):
        await store.totals(5, ("instrument",), now_ms=NOW_MS)
    with pytest.raises(ValueError, match="repeat"):
        await store.totals(5, ("coin", "coin"), now_ms=NOW_MS)


async def test_nothing_in_the_window(backend: Backend) -> None:
    store = await backend.open()
    row = overall(await store.totals(5, now_ms=NOW_MS))
    assert (row.usd, row.count, row.largest, row.completeness) == (0.0, 0, None, "full")
    assert await store.totals(5, ("venue",), now_ms=NOW_MS) == []
    assert await store.largest(5, 10, now_ms=NOW_MS) == []


async def test_minute_series(backend: Backend) -> None:
    store = await backend.open()
    events = sample_events()
    await put(store, events)
    now_minute = NOW_MS // MINUTE
    start, end = now_minute - 30, now_minute
    series = await store.minute_series(start, end)
    assert [m for m, _ in series] == list(range(start, end + 1))
    for minute, row in series:
        in_minute = [e for e in events if e.minute == minute]
        if in_minute:
            check_rows([row], in_minute, ())
        else:
            assert (row.count, row.usd, row.largest) == (0, 0.0, None)
    grouped = await store.minute_series(start, end, ("coin",))
    for minute in range(start, end + 1):
        in_minute = [e for e in events if e.minute == minute]
        check_rows([r for m, r in grouped if m == minute], in_minute, ("coin",))


# Largest liquidations


async def test_largest_is_exact_across_batches_and_minutes(backend: Backend) -> None:
    store = await backend.open()
    rnd = random.Random(11)
    # More than LARGEST_KEEP in one minute and in one hour, in batches of mixed sizes.
    events = [make_event(round(rnd.uniform(1, 1e7), 2), ts_ms=minutes_ago(rnd.choice([0, 0, 1, 7])),
                         coin=rnd.choice(["BTC", "ETH"])) for _ in range(400)]
    start = 0
    for size in [1, 7, 150, 3, 90, 149]:
        await put(store, events[start : start + size])
        start += size
    ranked = sorted(events, key=lambda e: -e.notional_usd)
    assert await store.largest(10, 10, now_ms=NOW_MS) == ranked[:10]
    assert await store.largest(10, LARGEST_KEEP, now_ms=NOW_MS) == ranked[:LARGEST_KEEP]
    assert await store.largest(10, 10 * LARGEST_KEEP, now_ms=NOW_MS) == ranked[:LARGEST_KEEP]
    recent = sorted((e for e in events if e.minute == NOW_MS // MINUTE),
                    key=lambda e: -e.notional_usd)
    assert await store.largest(1, 5, now_ms=NOW_MS) == recent[:5]
    assert await store.largest(10, 0, now_ms=NOW_MS) == []


# Completeness


async def test_completeness_names_the_weaker_levels(backend: Backend) -> None:
    store = await backend.open()
    await put(store, [
        make_event(1.0, venue="bybit"),
        make_event(1.0, venue="binance-usdm", completeness="throttled"),
        make_event(1.0, venue="binance-usdm", completeness="full"),
        make_event(1.0, venue="hyperliquid", completeness="inferred"),
        make_event(1.0, venue="hyperliquid", completeness="aggregated", coin="ETH"),
    ])
    rows = {r.venue: r.completeness for r in await store.totals(5, ("venue",), now_ms=NOW_MS)}
    assert rows == {
        "bybit": "full",
        "binance-usdm": "throttled",
        "hyperliquid": "aggregated,inferred",
    }
    assert overall(await store.totals(5, now_ms=NOW_MS)).completeness == (
        "aggregated,inferred,throttled"
    )
    by_coin = {r.coin: r.completeness for r in await store.totals(5, ("coin",), now_ms=NOW_MS)}
    assert by_coin == {"BTC": "inferred,throttled", "ETH": "aggregated"}


async def test_non_finite_values_are_refused(backend: Backend) -> None:
    store = await backend.open()
    await put(store, [make_event(float("nan")), make_event(float("inf")),
                      make_event(2.0, qty=float("nan")), make_event(3.0)])
    row = overall(await store.totals(1, now_ms=NOW_MS))
    assert (row.count, row.usd) == (1, 3.0)


# Exactly once


async def test_the_same_events_twice_count_once(backend: Backend) -> None:
    store = await backend.open()
    events = sample_events()
    await put(store, events)
    await put(store, events)
    await put(store, events[:10] + events[:10])
    check_rows(await store.totals(240, ("venue", "coin"), now_ms=NOW_MS), events,
               ("venue", "coin"))


async def test_overlapping_batches_count_once(backend: Backend) -> None:
    store = await backend.open(batch_size=37)
    events = sample_events()
    for start in range(0, len(events), 50):
        await store.add(events[max(0, start - 20) : start + 50])  # each overlaps the last
    assert await store.flush(10 * T) == 0
    check_rows(await store.totals(240, ("coin",), now_ms=NOW_MS), events, ("coin",))


async def test_two_clients_at_once_count_once(backend: Backend) -> None:
    first = await backend.open(batch_size=25)
    second = await backend.another_client(first, batch_size=40)
    events = sample_events()
    # Two collectors see the same stream, each missing a few events the other saw.
    seen_a = [e for i, e in enumerate(events) if i % 7 != 0]
    seen_b = [e for i, e in enumerate(events) if i % 7 != 1]
    chunks_a = [seen_a[i : i + 30] for i in range(0, len(seen_a), 30)]
    chunks_b = [seen_b[i : i + 30] for i in range(0, len(seen_b), 30)]
    empty: list[Liquidation] = []
    for a, b in itertools.zip_longest(chunks_a, chunks_b, fillvalue=empty):
        await asyncio.gather(first.add(a), second.add(b))
    assert await first.flush(10 * T) == 0
    assert await second.flush(10 * T) == 0
    check_rows(await first.totals(240, GROUP_KEYS, now_ms=NOW_MS), events, GROUP_KEYS)
    check_rows(await second.totals(240, (), now_ms=NOW_MS), events, ())


# Retention


async def test_buckets_expire_after_the_retention(backend: Backend) -> None:
    store = await backend.open(retention_hours=SHORT_TTL / 3600)
    await put(store, [make_event(5.0, ts_ms=minutes_ago(0)),
                      make_event(6.0, ts_ms=minutes_ago(90))])
    assert overall(await store.totals(120, now_ms=NOW_MS)).count == 2
    assert len(await store.largest(120, 10, now_ms=NOW_MS)) == 2
    await asyncio.sleep(SHORT_TTL + 0.3)
    assert overall(await store.totals(120, now_ms=NOW_MS)).count == 0
    assert await store.largest(120, 10, now_ms=NOW_MS) == []
    [(_, row)] = await store.minute_series(NOW_MS // MINUTE, NOW_MS // MINUTE)
    assert row.count == 0
    await put(store, [make_event(7.0, ts_ms=minutes_ago(0))])  # a fresh bucket starts at zero
    assert overall(await store.totals(120, now_ms=NOW_MS)).usd == 7.0


async def test_an_event_id_is_remembered_for_the_dedupe_ttl(backend: Backend) -> None:
    store = await backend.open(dedupe_ttl_hours=SHORT_TTL / 3600)
    event = make_event(9.0)
    await put(store, [event])
    await put(store, [event])
    assert overall(await store.totals(1, now_ms=NOW_MS)).count == 1
    await asyncio.sleep(SHORT_TTL + 0.3)
    await put(store, [event])  # forgotten: a replay this late counts again, by design
    assert overall(await store.totals(1, now_ms=NOW_MS)).count == 2


# Coverage


NOW_MINUTE = NOW_MS // MINUTE


def verdicts(venue: str, covered: dict[int, bool]) -> list[CoverageMinute]:
    """Verdicts for minutes given as minutes before NOW_MINUTE."""
    return [CoverageMinute(venue, NOW_MINUTE - ago, c) for ago, c in covered.items()]


async def test_coverage_rows_count_recorded_minutes_and_list_gaps(backend: Backend) -> None:
    store = await backend.open()
    await store.record_coverage(
        verdicts("okx", {0: True, 1: False, 2: True, 3: False, 90: False})
        + verdicts("bybit", {0: True, 1: True}), {"okx": 1.0, "bybit": 2.0})
    assert await store.heartbeats() == {"okx": 1.0, "bybit": 2.0}
    rows = await store.coverage(60, now_ms=NOW_MS)
    assert rows == [CoverageRow("bybit", 2, ()),
                    CoverageRow("okx", 4, (NOW_MINUTE - 3, NOW_MINUTE - 1))]
    [okx] = await store.coverage(120, now_ms=NOW_MS, venues=["okx"])
    assert okx.recorded == 5 and okx.gaps[0] == NOW_MINUTE - 90
    # A venue asked for without any record, and a window with none.
    assert await store.coverage(5, now_ms=NOW_MS, venues=["gate"]) == [CoverageRow("gate", 0, ())]
    assert await store.coverage(5, now_ms=NOW_MS - 4 * 3_600_000) == [
        CoverageRow("bybit", 0, ()), CoverageRow("okx", 0, ())]


async def test_covered_wins_whoever_writes_last(backend: Backend) -> None:
    store = await backend.open()
    other = await backend.another_client(store)
    await store.record_coverage(verdicts("okx", {1: False, 2: True}), {"okx": 1.0})
    await other.record_coverage(verdicts("okx", {1: True, 2: False, 3: False}), {"okx": 5.0})
    await store.record_coverage(verdicts("okx", {1: False, 3: False}), {})
    [row] = await store.coverage(10, now_ms=NOW_MS)
    assert row == CoverageRow("okx", 3, (NOW_MINUTE - 3,))
    assert await store.heartbeats() == {"okx": 5.0}


async def test_coverage_across_a_day_boundary(backend: Backend) -> None:
    store = await backend.open()
    midnight = (NOW_MINUTE // DAY_MINUTES) * DAY_MINUTES
    minutes = [CoverageMinute("okx", m, m % 2 == 0) for m in range(midnight - 3, midnight + 3)]
    await store.record_coverage(minutes, {"okx": 1.0})
    [row] = await store.coverage(6, now_ms=(midnight + 2) * MINUTE)
    assert row == CoverageRow("okx", 6, tuple(m for m in range(midnight - 3, midnight + 3)
                                              if m % 2))


async def test_coverage_expires_after_the_retention(backend: Backend) -> None:
    store = await backend.open(retention_hours=SHORT_TTL / 3600)
    await store.record_coverage(verdicts("okx", {1: False}), {"okx": 1.0})
    assert (await store.coverage(5, now_ms=NOW_MS, venues=["okx"]))[0].recorded == 1
    await asyncio.sleep(SHORT_TTL + 0.3)
    assert await store.heartbeats() == {}
    assert await store.coverage(5, now_ms=NOW_MS, venues=["okx"]) == [CoverageRow("okx", 0, ())]


# Cascades and claims


async def test_cascade_history_keeps_the_last_n_newest_first(backend: Backend) -> None:
    store = await backend.open(cascade_history=3)
    for i in range(5):
        await store.record_cascade({"id": f"c{i}", "state": "watch", "usd": 1000.0 * i})
    assert [c["id"] for c in await store.cascades()] == ["c4", "c3", "c2"]
    # A transition of a known cascade replaces its record and keeps its place.
    await store.record_cascade({"id": "c3", "state": "cascade", "usd": 9e6, "scope": ["BTC"]})
    history = await store.cascades()
    assert [c["id"] for c in history] == ["c4", "c3", "c2"]
    assert history[1] == {"id": "c3", "state": "cascade", "usd": 9e6, "scope": ["BTC"]}
    await store.record_cascade({"id": "c5", "state": "watch"})
    assert [c["id"] for c in await store.cascades(limit=2)] == ["c5", "c4"]
    assert [c["id"] for c in await store.cascades()] == ["c5", "c4", "c3"]
    assert await store.cascades(limit=0) == []


async def test_claim(backend: Backend) -> None:
    store = await backend.open()
    other = await backend.another_client(store)
    assert await store.claim("alert-1", SHORT_TTL) is True
    # Only a shared store can say no: the memory store has no other daemon to race.
    assert await other.claim("alert-1", SHORT_TTL) is (backend.kind == "memory")
    assert await other.claim("alert-2", SHORT_TTL) is True
    await asyncio.sleep(SHORT_TTL + 0.3)
    assert await other.claim("alert-1", SHORT_TTL) is True


async def test_lifecycle(backend: Backend) -> None:
    store = await backend.open()
    assert store.healthy()
    await put(store, [make_event()])
    assert await store.flush(1.0) == 0
    await store.aclose()
    await store.aclose()  # safe twice
