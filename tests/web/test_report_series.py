"""ReportSeries fed as a backtest feeds it (frames as a stretch, liquidations a run at a
time) collects what one call per frame and per liquidation collects."""

from __future__ import annotations

import random

from monitor.events import Completeness, Liquidation, PositionSide
from monitor.feed.recorder import RawFrame
from monitor.web.report import ReportSeries

T0 = 1_769_904_000.0


def frames() -> list[RawFrame]:
    rng = random.Random(7)
    out = []
    at = T0
    for n in range(3_000):
        # Stretches of one venue, silences past a limit, a frame back in time now and then.
        venue = ("bybit", "okx", "gate")[(n // 40) % 3 if n % 11 else 1]
        at += rng.choice((0.2, 0.7, 3.0, 75.0)) if n % 97 else -30.0
        out.append(RawFrame(venue, at, "{}"))
    return out


def liquidations() -> list[Liquidation]:
    rng = random.Random(3)
    return [Liquidation(
        "bybit", "BTCUSDT", "BTC", rng.choice((PositionSide.LONG, PositionSide.SHORT)), 1.0,
        1.0, rng.uniform(1, 1e6), int(T0 * 1000) + rng.randrange(0, 600_000), T0,
        Completeness.FULL, f"b:{n}") for n in range(2_000)]


def test_a_stretch_of_frames_and_runs_of_liquidations_collect_what_each_one_does() -> None:
    limits = {"bybit": 60.0, "okx": 20.0}
    one, batched = ReportSeries(["BTC"], limits), ReportSeries(["BTC"], limits)
    minutes_one: dict[str, set[int]] = {}
    for raw in frames():
        one.frame(raw.venue, raw.received_at)
        minutes_one.setdefault(raw.venue, set()).add(int(raw.received_at // 60))
    minutes: dict[str, set[int]] = {}
    assert list(batched.frames(frames(), minutes)) == frames()
    assert batched.gaps == one.gaps and len(one.gaps) > 100
    assert minutes == minutes_one
    events = liquidations()
    for event in events:
        one.liquidation(event)
    for start in range(0, len(events), 13):
        batched.liquidations(events[start:start + 13])
    assert batched.minutes == one.minutes
