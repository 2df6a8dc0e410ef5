"""Feed coverage: the pure tracker and bitmap form, then the writer over a real Redis."""

from __future__ import annotations

import logging
import uuid

import pytest
from prometheus_client import CollectorRegistry

from monitor.clock import VirtualClock
from monitor.metrics import Metrics
from monitor.store.config import StoreConfig
from monitor.store.coverage import (
    CoverageMinute,
    CoverageRow,
    CoverageTracker,
    day_bits,
    describe_gaps,
    down_minutes,
    gap_ranges,
    read_day,
    silent_minutes,
)
from monitor.store.coverage_writer import CoverageWriter
from monitor.store.factory import open_store
from tests.fixtures.redis import RedisServer

M = 60.0
T0 = 29_498_400 * M  # on a minute boundary


def verdicts(minutes: list[CoverageMinute]) -> list[tuple[int, bool]]:
    return [(int(m.minute - T0 // M), m.covered) for m in minutes]


def take_until(tracker: CoverageTracker, since: float, until: float) -> list[tuple[int, bool]]:
    """Take every 20 s, as the daemon's writer takes every 5 s."""
    out: list[CoverageMinute] = []
    at = since
    while at < until:
        at = min(at + 20.0, until)
        out += tracker.take(at)
    return verdicts(out)


def test_a_minute_is_covered_only_when_subscribed_from_start_to_end() -> None:
    tracker = CoverageTracker(["okx"], T0 + 10)
    tracker.connections("okx", 0, 2, T0 + 11)
    tracker.connections("okx", 1, 2, T0 + 12)
    tracker.connections("okx", 2, 2, T0 + 15)  # minute 0 started uncovered
    assert tracker.take(T0 + 59) == []  # nothing finished yet
    assert take_until(tracker, T0 + 59, T0 + 2 * M + 29) == [(0, False), (1, True)]
    tracker.connections("okx", 1, 2, T0 + 2 * M + 30)  # a drop in minute 2
    tracker.connections("okx", 2, 2, T0 + 2 * M + 31)
    assert take_until(tracker, T0 + 2 * M + 31, T0 + 4 * M + 1) == [(2, False), (3, True)]
    # A venue with no connection planned is not covered.
    tracker.connections("okx", 0, 0, T0 + 5 * M + 1)
    assert take_until(tracker, T0 + 5 * M + 1, T0 + 7 * M) == [(4, True), (5, False),
                                                              (6, False)]
    tracker.connections("unknown", 1, 1, T0 + 7 * M)  # not tracked: ignored


def test_a_venue_added_or_removed_mid_minute_is_a_gap_there() -> None:
    tracker = CoverageTracker([], T0)
    tracker.add_venue("gate", T0 + 5)
    tracker.connections("gate", 1, 1, T0 + 6)
    assert take_until(tracker, T0 + 6, T0 + 2 * M + 7) == [(0, False), (1, True)]
    tracker.remove_venue("gate", T0 + 2 * M + 7)
    assert verdicts(tracker.take(T0 + 2 * M + 8)) == [(2, False)]
    assert tracker.venues == []


def test_a_stall_of_the_daemon_is_a_gap_whatever_the_connections_said() -> None:
    # A jump of the wall clock alone is no stall (the demo's market clock runs 120x).
    quick = CoverageTracker(["okx"], T0 - 1)
    quick.connections("okx", 1, 1, T0 - 1)
    assert verdicts(quick.take(T0 + 3 * M)) == [(-1, False), (0, True), (1, True), (2, True)]
    tracker = CoverageTracker(["okx"], T0 - 1)
    tracker.connections("okx", 1, 1, T0 - 1)
    assert take_until(tracker, T0 - 1, T0 + M + 1) == [(-1, False), (0, True)]
    # The process was stopped from minute 1 to well into minute 4.
    later = T0 + 4 * M + 20
    assert verdicts(tracker.take(later, stalled=True)) == [(1, False), (2, False), (3, False)]
    assert take_until(tracker, later, T0 + 6 * M) == [(4, False), (5, True)]


def test_down_minutes_run_from_the_heartbeat_to_the_start_within_the_retention() -> None:
    beats = {"okx": T0 + 30, "bybit": T0 - 10 * M}
    down = down_minutes(beats, ["okx", "bybit", "gate"], T0 + 3 * M + 5, retention_minutes=5)
    assert [(v, int(m - T0 // M)) for v, m, c in down if not c] == [
        ("okx", 0), ("okx", 1), ("okx", 2),
        ("bybit", -2), ("bybit", -1), ("bybit", 0), ("bybit", 1), ("bybit", 2)]
    assert all(not c for _, _, c in down)


def test_gap_ranges_and_silent_minutes() -> None:
    assert gap_ranges([7, 1, 2, 3, 3]) == [(1, 3), (7, 7)]
    assert gap_ranges([]) == []
    assert silent_minutes({"okx": [1, 2, 3], "bybit": [1, 3], "gate": []}) == [
        CoverageRow("bybit", 3, (2,)), CoverageRow("gate", 3, (1, 2, 3)),
        CoverageRow("okx", 3, ())]
    # Minutes without any frame inside the recording are gaps of every venue.
    assert silent_minutes({"okx": [1, 4]}) == [CoverageRow("okx", 4, (2, 3))]
    assert silent_minutes({}) == []
    assert describe_gaps([]) == "no gap"
    assert describe_gaps([0, 1, 5]) == "3 min of gaps: 00:00-00:02 UTC, 00:05-00:06 UTC"
    assert describe_gaps(list(range(0, 20, 2)), most=2).endswith(", and 8 more")


def test_bitmaps_round_trip_as_redis_numbers_its_bits() -> None:
    day = 20_484
    base = day * 1440
    bits = day_bits([CoverageMinute("okx", base, True), CoverageMinute("okx", base + 3, False)])
    assert bits == {("okx", day): [0, 1, 6]}
    # What GET returns after SETBIT 0, 1 and 6: bits from the high end of each byte.
    data = bytes([0b1100_0010])
    assert list(read_day(data, day, base, base + 1439)) == [(base, True), (base + 3, False)]
    assert list(read_day(data, day, base + 1, base + 2)) == []
    assert list(read_day(None, day, base, base + 5)) == []


class Gauge:
    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def feed_gap_minutes(self, venue: str, minutes: int) -> None:
        self.values[venue] = minutes


async def advance(writer: CoverageWriter, clock: VirtualClock, until: float) -> bool:
    """Move the clock to ``until``, writing every 20 s as the daemon's writer does."""
    landed = True
    while clock.wall() < until:
        clock.set(min(clock.wall() + 20.0, until))
        landed = await writer.write()
    return landed


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_the_writer_records_minutes_and_the_gauge_counts_the_last_hour(
    redis_server: RedisServer, backend: str
) -> None:
    config = StoreConfig(backend=backend, url=redis_server.url, key_prefix="cw")
    clock = VirtualClock(T0 + 20)
    store = await open_store(config, clock=clock)
    gauge = Gauge()
    writer = CoverageWriter(store, gauge, clock, ["okx"], retention_hours=48)
    assert gauge.values == {"okx": 0}
    writer.connections("okx", 1, 1)
    assert await advance(writer, clock, T0 + 3 * M + 1)
    assert gauge.values == {"okx": 1}  # the start minute
    rows = await store.coverage(10, now_ms=int(clock.wall() * 1000))
    assert rows == [CoverageRow("okx", 3, (int(T0 // M),))]
    assert await store.heartbeats() == {"okx": clock.wall()}
    assert await advance(writer, clock, T0 + 62 * M)
    assert gauge.values == {"okx": 0}  # the gap left the last hour
    await store.aclose()


async def test_the_writer_takes_a_pause_of_its_monotonic_clock_as_a_stall() -> None:
    clock = VirtualClock(T0 - 1)  # wall and monotonic move together
    store = await open_store(StoreConfig(backend="memory"), clock=clock)
    gauge = Gauge()
    writer = CoverageWriter(store, gauge, clock, ["okx"], retention_hours=48)
    writer.connections("okx", 1, 1)
    assert await advance(writer, clock, T0 + M + 1)
    clock.set(T0 + 4 * M + 20)  # stopped (SIGSTOP, a suspended host) for three minutes
    assert await writer.write()
    assert await advance(writer, clock, T0 + 6 * M)
    [row] = await store.coverage(10, now_ms=int(clock.wall() * 1000))
    assert row.gaps == tuple(int(T0 // M) + m for m in (-1, 1, 2, 3, 4))
    assert gauge.values == {"okx": 5}


async def test_a_restarted_daemon_records_the_minutes_it_was_down(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    config = StoreConfig(backend="redis", url=redis_server.url, key_prefix="r" + uuid.uuid4().hex)
    clock = VirtualClock(T0 + 1)
    store = await open_store(config, clock=clock)
    first = CoverageWriter(store, Gauge(), clock, ["okx", "bybit"], retention_hours=48)
    first.connections("okx", 1, 1)
    first.connections("bybit", 1, 1)
    assert await advance(first, clock, T0 + 2 * M + 30)
    # Killed here; started again in minute 7, with one venue more.
    clock.set(T0 + 7 * M + 10)
    gauge = Gauge()
    second = CoverageWriter(store, gauge, clock, ["okx", "bybit", "gate"], retention_hours=48)
    second.connections("okx", 1, 1)
    with caplog.at_level(logging.WARNING):
        assert await advance(second, clock, T0 + 8 * M + 1)
    assert "okx: recorded 5 minutes as a feed gap" in caplog.text
    rows = {r.venue: r for r in await store.coverage(10, now_ms=int(clock.wall() * 1000))}
    first_minute = int(T0 // M)
    assert rows["okx"] == CoverageRow("okx", 8, tuple(first_minute + m for m in (0, 2, 3, 4, 5,
                                                                                  6, 7)))
    assert rows["bybit"].gaps == tuple(first_minute + m for m in (0, 2, 3, 4, 5, 6, 7))
    assert rows["gate"] == CoverageRow("gate", 1, (first_minute + 7,))  # no heartbeat before
    assert gauge.values == {"okx": 6, "bybit": 6, "gate": 1}
    await store.aclose()


async def test_the_writer_keeps_verdicts_while_redis_is_down(redis_server: RedisServer) -> None:
    config = StoreConfig(backend="redis", url=redis_server.url, key_prefix="down",
                         connect_timeout_seconds=0.2, socket_timeout_seconds=0.2)
    clock = VirtualClock(T0 - 1)
    store = await open_store(config, clock=clock)
    writer = CoverageWriter(store, Gauge(), clock, ["okx"], retention_hours=48)
    writer.connections("okx", 1, 1)
    assert await advance(writer, clock, T0 + 40)
    redis_server.stop()
    assert not await advance(writer, clock, T0 + 2 * M)
    redis_server.start()
    assert await advance(writer, clock, T0 + 3 * M)
    [row] = await store.coverage(5, now_ms=int(clock.wall() * 1000))
    assert row == CoverageRow("okx", 4, (int(T0 // M) - 1,))  # the start minute only
    await store.aclose()


def test_metrics_tell_connection_listeners_and_export_the_gauge() -> None:
    metrics = Metrics(CollectorRegistry(), ["okx"], ["BTC"], process_metrics=False)
    heard: list[tuple[str, int, int]] = []
    metrics.connection_listeners.append(lambda *a: heard.append(a))
    metrics.connections("okx", 1, 2)
    metrics.feed_gap_minutes("okx", 4)
    assert heard == [("okx", 1, 2)]
    assert metrics.registry.get_sample_value("liqmon_feed_gaps_last_hour", {"venue": "okx"}) == 4
