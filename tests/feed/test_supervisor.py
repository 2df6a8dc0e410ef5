"""The one connection supervisor against the exchange simulator, over loopback."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.server import ServerConnection, serve

from monitor.clock import SystemClock
from monitor.feed.ports import Event
from monitor.feed.supervisor import FRAMES_PER_SLICE, ConnectionRunner, FeedTiming
from monitor.metrics import Metrics
from monitor.simulator.faults import Faults, parse_faults
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from monitor.venues import make_dialect
from monitor.venues.dialect import ConnectionPlan, VenueSettings
from monitor.venues.instruments import ContractKind, InstrumentBook, InstrumentSpec
from tests.support.daemon import counted, running_daemon, sample, sent, wait_until
from tests.support.timing import T

FIVE = ("binance-usdm", "binance-coinm", "bybit", "okx", "hyperliquid")


def calm(minutes: float = 30.0) -> object:
    return build_scenario("calm", seed=3, venues=FIVE, duration_seconds=minutes * 60)


def reconnects(app: object, venue: str, reason: str) -> float:
    return sample(app, "liqmon_feed_reconnects_total", {"venue": venue, "reason": reason})


async def test_every_venue_subscribes_and_counts_exactly_what_was_sent(tmp_path: Path) -> None:
    async with Simulator(calm(), speed=900, venues=FIVE, start_wall=time.time(),
                         wait_for_subscribers=10 * T) as sim, running_daemon(sim, tmp_path) as app:
        await sim.wait_finished()
        await wait_until(lambda: counted(app) == sent(sim), 5 * T)
        for venue in FIVE:
            assert sample(app, "liqmon_feed_connected", {"venue": venue}) == 1
            assert sample(app, "liqmon_frames_total", {"venue": venue}) > 0
    assert sum(c for c, _ in sent(sim).values()) > 50


async def test_a_feed_silent_after_its_ack_is_reconnected_within_its_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faults = Faults(silent_after_ack=True, venues=frozenset({"binance-usdm"}))
    limit = 1.0 * T
    async with Simulator(calm(600), speed=60, venues=FIVE, faults=faults,
                         start_wall=time.time()) as sim:
        env = {"LIQMON_VENUES__BINANCE_USDM__SILENCE_LIMIT_SECONDS": str(limit)}
        async with running_daemon(sim, tmp_path, env) as app:
            await wait_until(
                lambda: sample(app, "liqmon_feed_subscribed_connections",
                               {"venue": "binance-usdm"}) == 1, 5 * T)
            subscribed_at = time.monotonic()
            await wait_until(lambda: reconnects(app, "binance-usdm", "stale") >= 1,
                             limit + 3 * T)
            assert time.monotonic() - subscribed_at < limit + 2 * T
            await wait_until(lambda: reconnects(app, "binance-usdm", "stale") >= 2, 4 * limit)
            # The other venues are not disturbed.
            assert reconnects(app, "bybit", "stale") == 0
    assert "no frame for" in caplog.text


async def test_reconnect_after_a_drop_and_events_keep_flowing(tmp_path: Path) -> None:
    faults = Faults(drop_every_seconds=0.7 * T, venues=frozenset({"bybit"}))
    async with Simulator(calm(120), speed=600, venues=FIVE, faults=faults,
                         start_wall=time.time(), wait_for_subscribers=10 * T) as sim:
        async with running_daemon(sim, tmp_path) as app:
            await wait_until(lambda: reconnects(app, "bybit", "closed") >= 2, 10 * T)
            before = counted(app).get(("bybit", "long"), (0, 0.0))[0]
            await wait_until(
                lambda: counted(app).get(("bybit", "long"), (0, 0.0))[0] > before, 10 * T)
            assert reconnects(app, "okx", "closed") == 0


async def test_a_rejected_subscription_is_an_error_with_the_venue_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    faults = Faults(reject_subscription=True, venues=frozenset({"okx"}))
    caplog.set_level(logging.ERROR)
    async with Simulator(calm(60), speed=600, venues=FIVE, faults=faults,
                         start_wall=time.time()) as sim, running_daemon(sim, tmp_path) as app:
        await wait_until(lambda: reconnects(app, "okx", "rejected") >= 1, 5 * T)
        assert sample(app, "liqmon_feed_connected", {"venue": "okx"}) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("okx rejected the subscription:" in m for m in errors), errors


async def test_malformed_frames_are_counted_while_valid_ones_still_flow(tmp_path: Path) -> None:
    faults = parse_faults("malformed=0.3,duplicate=0.2,seed=4")
    async with Simulator(calm(), speed=900, venues=FIVE, faults=faults,
                         start_wall=time.time(), wait_for_subscribers=10 * T) as sim:
        async with running_daemon(sim, tmp_path) as app:
            await sim.wait_finished()
            await wait_until(lambda: counted(app) == sent(sim), 5 * T)
            invalid = sum(
                sample(app, "liqmon_frames_invalid_total", {"venue": v, "reason": r})
                for v in FIVE
                for r in ("malformed_json", "missing_field", "bad_value", "unrecognised"))
            assert invalid > 0
            duplicates = sum(sample(app, "liqmon_duplicate_events_total", {"venue": v})
                             for v in FIVE)
            assert duplicates > 0


async def test_rotation_opens_the_new_connection_before_closing_the_old(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monitor.venues import binance

    monkeypatch.setattr(binance.BinanceUsdm, "max_lifetime_seconds", 0.5 * T)
    async with Simulator(calm(), speed=900, venues=FIVE, start_wall=time.time(),
                         wait_for_subscribers=10 * T) as sim, running_daemon(sim, tmp_path) as app:
        await sim.wait_finished()
        await wait_until(lambda: counted(app) == sent(sim), 5 * T)
        assert reconnects(app, "binance-usdm", "rotation") >= 2
        assert reconnects(app, "binance-usdm", "closed") == 0


async def test_topics_sharded_over_several_connections_all_subscribe(tmp_path: Path) -> None:
    async with Simulator(calm(), speed=900, venues=FIVE, start_wall=time.time(),
                         wait_for_subscribers=10 * T) as sim:
        env = {"LIQMON_VENUES__HYPERLIQUID__OPTIONS": "{coins_per_connection = 3, "
               "subscribe_interval_seconds = 0.01, infer_from_trades = true}"}
        async with running_daemon(sim, tmp_path, env) as app:
            await wait_until(lambda: sample(app, "liqmon_feed_connected",
                                            {"venue": "hyperliquid"}) == 1, 10 * T)
            assert sample(app, "liqmon_feed_subscribed_connections",
                          {"venue": "hyperliquid"}) >= 3
            await sim.wait_finished()
            await wait_until(lambda: counted(app) == sent(sim), 5 * T)



def _liquidation_frame(n: int, rows: int) -> str:
    data = [{"T": 1_769_904_000_000 + n, "s": "BTCUSDT", "S": "Sell",
             "v": f"0.{n * rows + i + 1:06d}", "p": "80000.0"} for i in range(rows)]
    return orjson.dumps({"topic": "allLiquidation.BTCUSDT", "type": "snapshot",
                         "ts": 1_769_904_000_000 + n, "data": data}).decode()


async def test_a_backlog_of_frames_is_read_in_bounded_slices() -> None:
    """A burst buffered at once is parsed a slice at a time, other tasks running between.

    A ticker task counts event-loop steps (it yields with sleep(0) in a loop); the sink
    notes the step in which each frame's events arrive. No step may carry more than
    FRAMES_PER_SLICE frames, however many arrived in one socket read.
    """
    frames, rows = 400, 20
    burst = [_liquidation_frame(n, rows) for n in range(frames)]

    async def venue(ws: ServerConnection) -> None:
        request = orjson.loads(await ws.recv())
        await ws.send(orjson.dumps({"success": True, "op": "subscribe",
                                    "req_id": request["req_id"]}).decode())
        # Sent back to back: the client's socket reads find many frames at a time.
        for text in burst:
            await ws.send(text)
        await ws.wait_closed()

    steps = [0]
    per_step: Counter[int] = Counter()
    received: list[Event] = []

    class Sink:
        def put(self, venue: str, events: list[Event]) -> None:
            per_step[steps[0]] += 1
            received.extend(events)

    async def ticker() -> None:
        while True:
            steps[0] += 1
            await asyncio.sleep(0)

    dialect = make_dialect("bybit", VenueSettings())
    book = InstrumentBook("bybit", [InstrumentSpec(
        "bybit", "BTCUSDT", "BTC", ContractKind.LINEAR, 1.0, "USDT", category="linear")])
    timing = FeedTiming(10 * T, 5 * T, 5 * T, 0.05 * T, 0.5 * T, 1.0, 0.0)
    subscribe = '{"req_id":"r1","op":"subscribe","args":["allLiquidation.BTCUSDT"]}'
    async with serve(venue, "127.0.0.1", 0, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        plan = ConnectionPlan("bybit-linear-0", f"ws://127.0.0.1:{port}/v5/public/linear",
                              (subscribe,), expected_acks=1)
        runner = ConnectionRunner(
            dialect, plan, lambda: dialect.session(book, plan), Sink(),
            Metrics(CollectorRegistry(), ["bybit"], ["BTC"], process_metrics=False),
            SystemClock(), timing)
        tasks = [asyncio.create_task(runner.run()), asyncio.create_task(ticker())]
        try:
            await wait_until(lambda: len(received) == frames * rows, 10 * T, interval=0.01)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    assert len({e.event_id for e in received}) == frames * rows
    assert max(per_step.values()) <= FRAMES_PER_SLICE, per_step.most_common(3)
    # The backlog really was there: some steps carried a full slice.
    assert max(per_step.values()) == FRAMES_PER_SLICE
