"""The memory store's batch path: a batch counts what its events would one at a time.

``MemoryStore.add`` looks each side's cells of a coin up once a venue and minute and keeps
each bucket's smallest largest in a local; these compare its state after frames of such
runs, and after batches that interleave coins, with the state after the same events added
one by one.
"""

from __future__ import annotations

from typing import Any

from monitor.clock import VirtualClock
from monitor.events import Completeness, Liquidation, PositionSide
from monitor.store.config import StoreConfig
from monitor.store.memory import MemoryStore
from monitor.store.memory_buckets import unpack

T0_MS = 1_769_904_000_000  # 2026-02-01T00:00:00Z


def frames() -> list[list[Liquidation]]:
    out = []
    for n in range(120):
        venue = ("bybit", "okx")[n % 2]
        coin = ("BTC", "ETH", "DOGE")[n % 3]
        # Three frames a minute, some across an hour's end; rows of both sides, a change of
        # coin and one of minute mid-frame, and values that tie.
        ts = T0_MS - 30 * 60_000 + 20_000 * n
        rows = []
        for i in range(20):
            if i == 14:
                coin = "SOL"
            if i == 17:
                ts += 60_000
            usd = 1_000.0 * ((i * 7 + n) % 13 + 1)
            rows.append(Liquidation(
                venue, coin + "USDT", coin,
                PositionSide.LONG if (i + n) % 3 else PositionSide.SHORT, 10.0, usd / 10.0,
                usd, ts + i, ts / 1000.0 + 0.5,
                Completeness.THROTTLED if i == 5 else Completeness.FULL, f"{venue}:{n}:{i}"))
        out.append(rows)
    return out


def state(store: MemoryStore) -> list[Any]:
    out: list[Any] = []
    for buckets in (store._minutes, store._hours):
        for index in sorted(buckets):
            bucket = buckets[index]
            out.append((index, sorted(
                (group, c.usd, c.count, c.qty, c.largest_usd, c.mask, unpack(c.largest))
                for group, c in bucket.cells.items())))
            out.append(sorted((usd, event_id) for usd, event_id, _ in bucket.top))
    return out


async def test_a_batch_of_frames_counts_what_its_events_would_one_by_one() -> None:
    batched = MemoryStore(clock=VirtualClock(0.0), own_dedupe=False)
    one = MemoryStore(clock=VirtualClock(0.0), own_dedupe=False)
    events = [event for rows in frames() for event in rows]
    for start in range(0, len(events), 256):
        assert await batched.add(events[start:start + 256]) == len(events[start:start + 256])
    for event in events:
        await one.add([event])
    assert state(batched) == state(one)
    # And each bucket's largest are the 50 largest of its events by (usd, id), ties
    # included (the hour's are full of equal values).
    for buckets, size in ((batched._minutes, 60_000), (batched._hours, 3_600_000)):
        for index, bucket in buckets.items():
            mine = [e for e in events if e.exchange_ts_ms // size == index]
            expected = sorted(((e.notional_usd, e.event_id) for e in mine), reverse=True)[:50]
            assert sorted(((usd, i) for usd, i, _ in bucket.top), reverse=True) == expected
    assert all(type(group[2]) is str for bucket in batched._minutes.values()
               for group in bucket.cells)
    assert await batched.totals(180, ("venue", "coin", "position_side"), T0_MS + 3_600_000) \
        == await one.totals(180, ("venue", "coin", "position_side"), T0_MS + 3_600_000)
    assert await batched.largest(180, 50, T0_MS + 3_600_000) \
        == await one.largest(180, 50, T0_MS + 3_600_000)


def interleaved() -> list[Liquidation]:
    """Replay's batches: one venue's frames of a few rows each, coins taking turns, so a
    coin's cells are met again after other coins' in the same minute; the minute moves
    on mid-batch and a late row goes back to the one before."""
    out = []
    for n in range(400):
        coin = ("BTC", "ETH", "DOGE", "SOL")[n % 4]
        ts = T0_MS + 4_000 * n
        for i in range(1 + n % 3):
            usd = 500.0 * ((i * 5 + n) % 11 + 1)
            late = 60_000 if n % 37 == 5 else 0
            out.append(Liquidation(
                "bybit", coin + "USDT", coin,
                PositionSide.LONG if (i + n) % 4 else PositionSide.SHORT, 10.0, usd / 10.0,
                usd, ts + i - late, ts / 1000.0 + 0.5,
                Completeness.THROTTLED if n % 9 == 4 else Completeness.FULL, f"b:{n}:{i}"))
    return out


async def test_a_batch_of_interleaved_coins_counts_what_its_events_would_one_by_one() -> None:
    batched = MemoryStore(clock=VirtualClock(0.0), own_dedupe=False)
    one = MemoryStore(clock=VirtualClock(0.0), own_dedupe=False)
    events = interleaved()
    for start in range(0, len(events), 97):
        await batched.add(events[start:start + 97])
    for event in events:
        await one.add([event])
    assert state(batched) == state(one)


async def test_cells_found_by_a_batch_serve_the_next_ones_while_their_buckets_live() -> None:
    """A batch's cells are kept for the next batches of the same minute (replay's batches
    are a second each): after the minute's bucket expired and was made again, the new
    bucket counts only what came after, as a store that never saw the old rows."""
    clock = VirtualClock(0.0)
    store = MemoryStore(StoreConfig(retention_hours=1.0), clock=clock, own_dedupe=False)
    events = interleaved()
    first, second = events[:300], events[300:600]
    for start in range(0, len(first), 40):
        await store.add(first[start:start + 40])
    clock.advance(3600.0 + 1.0)  # every bucket written so far has expired
    fresh = MemoryStore(StoreConfig(retention_hours=1.0), clock=VirtualClock(clock.wall()),
                        own_dedupe=False)
    for start in range(0, len(second), 40):
        await store.add(second[start:start + 40])
        await fresh.add(second[start:start + 40])
    assert state(store) == state(fresh)
    # And batches that come back to a minute after others (late rows) count as one by one.
    one = MemoryStore(clock=VirtualClock(0.0), own_dedupe=False)
    batched = MemoryStore(clock=VirtualClock(0.0), own_dedupe=False)
    for event in events:
        await one.add([event])
    for start in range(0, len(events), 7):
        await batched.add(events[start:start + 7])
    assert state(batched) == state(one)


async def test_the_sweep_drops_each_bucket_when_a_scan_every_second_would() -> None:
    """The sweep scans the buckets only once one may have expired: the buckets held after
    each second are those whose expiry has not passed, as a scan every second gives."""
    clock = VirtualClock(0.0)
    store = MemoryStore(StoreConfig(retention_hours=1.0), clock=clock, own_dedupe=False)
    events = interleaved()
    for n, event in enumerate(events):
        # Writes spread over about two hours: buckets are renewed, expire and come back.
        clock.set(n * 11.0)
        await store.add([event])
        for buckets in (store._minutes, store._hours):
            assert all(bucket.expires_at > clock.wall() - 1.0 for bucket in buckets.values())
    for _ in range(3 * 3600):
        clock.advance(1.0)
        await store.totals(1)
        for buckets in (store._minutes, store._hours):
            assert all(bucket.expires_at > clock.wall() - 1.0 for bucket in buckets.values())
    assert not store._minutes and not store._hours
