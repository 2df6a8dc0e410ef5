"""Frames held for unknown instruments: indexed, retried once, capped, never quadratic."""

from __future__ import annotations

import asyncio
import time

import orjson
from websockets.asyncio.server import ServerConnection, serve

from monitor.clock import SystemClock
from monitor.feed.held import HeldFrame, HeldFrames
from monitor.feed.instruments import InstrumentService
from monitor.feed.supervisor import ConnectionRunner, FeedTiming
from monitor.venues.dialect import VenueSettings
from monitor.venues.okx import Okx
from tests.support.ports import free_port
from tests.support.simroundtrip import Observer
from tests.support.timing import T


def frame(n: int, deadline: float = 10.0, instrument: str = "A") -> HeldFrame:
    return HeldFrame(instrument, f"frame {n}", float(n), deadline)


def test_held_frames_leave_once_at_the_refresh_retried_only_if_it_brought_them() -> None:
    held = HeldFrames(cap=3)
    assert held.add(frame(1), 7) and held.add(frame(2, instrument="B"), 7)
    assert held.add(frame(3), 7)
    assert not held.add(frame(4), 7)  # over the cap: the caller counts it given up
    assert not held.due(7, now=1.0)  # nothing to do until a refresh or a deadline
    assert held.due(8, now=1.0)
    out = [(f.text, retry) for f, retry in held.release({"A"}, now=1.0)]
    assert out == [("frame 1", True), ("frame 3", True), ("frame 2", False)]
    assert len(held) == 0


def test_held_frames_past_their_deadline_are_given_up_without_a_refresh() -> None:
    held = HeldFrames()
    held.add(frame(1, deadline=5.0), 1)
    held.add(frame(2, deadline=9.0), 1)
    assert held.due(1, now=5.0)
    assert [(f.text, retry) for f, retry in held.release(None, now=5.0)] == [("frame 1", False)]
    assert len(held) == 1 and not held.due(1, now=6.0)


class Sink:
    def __init__(self) -> None:
        self.events = 0

    def put(self, venue: str, events: list[object]) -> None:
        self.events += len(events)


def liquidation_frame(n: int) -> bytes:
    return orjson.dumps({
        "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
        "data": [{"details": [{"bkLoss": "0", "bkPx": "5.7", "ccy": "", "posSide": "long",
                               "side": "sell", "sz": "86", "ts": str(int(time.time() * 1000))}],
                  "instFamily": f"NEW{n}-USDT", "instId": f"NEW{n}-USDT-SWAP",
                  "instType": "SWAP", "uly": f"NEW{n}-USDT"}]})


async def test_500_unknown_instrument_frames_a_second_keep_the_loop_responsive() -> None:
    rate, seconds = 500, 5.0 * T
    sent = asyncio.Event()

    async def venue(ws: ServerConnection) -> None:
        request = orjson.loads(await ws.recv())
        for arg in request["args"]:
            await ws.send(orjson.dumps({"event": "subscribe", "arg": arg}).decode())
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            for _ in range(rate // 50):
                n += 1
                await ws.send(liquidation_frame(n).decode())
            await asyncio.sleep(0.02)
        sent.set()
        await ws.wait_closed()

    port = free_port()
    dialect = Okx(VenueSettings(symbols=("BTC-USDT-SWAP",)))
    # A real instrument service whose REST venue is unreachable: nothing is ever learned,
    # every frame waits for a refresh that brings nothing.
    instruments = InstrumentService(dialect, f"http://127.0.0.1:{free_port()}",
                                    refresh_seconds=3600.0, cache_dir=None)
    plan = dialect.plans(f"ws://127.0.0.1:{port}", instruments.book)[0]
    observer, sink = Observer(), Sink()
    timing = FeedTiming(silence_limit_seconds=60.0, open_timeout_seconds=5 * T,
                        ack_timeout_seconds=5 * T, backoff_initial_seconds=0.1,
                        backoff_max_seconds=1.0, healthy_after_seconds=60.0,
                        unknown_instrument_hold_seconds=3600.0)
    runner = ConnectionRunner(dialect, plan, lambda: dialect.session(instruments.book, plan),
                              sink, observer, SystemClock(), timing, instruments=instruments)
    worst = 0.0
    async with serve(venue, "127.0.0.1", port):
        task = asyncio.create_task(runner.run())
        while not sent.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            worst = max(worst, time.monotonic() - before - 0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert worst < 0.1, f"the event loop stalled for {worst * 1000:.0f} ms"
    # Over the cap, frames are given up and counted, not held without bound.
    assert observer.invalid.count("held_overflow") >= rate * seconds - 2000 - rate
    assert sink.events == 0
