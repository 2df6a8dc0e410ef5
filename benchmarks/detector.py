"""Detector benchmark: events per second through the cascade detector alone.

    .venv/bin/python benchmarks/detector.py [--events 5000000] [--marks-per-second 20]
        [--seed 0] [--replay]

The input is a synthetic crash day: 24 h of a busy market (liquidations on 10 venues and 60
coins, both sides) with a 3-hour long flush in the middle that carries most of the day's
events, about ``--events`` liquidations in all, plus ``--marks-per-second`` mark prices. It
is built one hour at a time outside the timed section; the clock covers only
``on_liquidation``, ``on_mark_price`` and ``evaluate``, called once per simulated second
as the daemon does. It prints the figures and the alerts the day produced.

Each chunk of input is moved out of the garbage collector's sight (``gc.freeze``) while it
is fed, so the figures are the detector's, not the collector's scanning of prebuilt input.

``--replay`` also times the replay path (raw frames → Bybit dialect → ingest with dedupe and
metrics → memory store → detector) on ``--replay-sample`` liquidations of Bybit frames, one
per frame, with a price frame per symbol per second, and extrapolates the time a day of
``--events`` would take.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.alerts import AlertState, CascadeAlert, alert_log_line
from monitor.detector.config import DetectorConfig
from monitor.detector.engine import Detector
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.feed.recorder import RawFrame
from tests.support.synth import poisson

T0 = 1_769_904_000  # 2026-02-01 00:00:00 UTC
DAY = 86_400
CRASH_START, CRASH_SECONDS = 12 * 3600, 3 * 3600
CRASH_SHARE = 0.6  # of the day's liquidations
VENUES = ("binance-usdm", "bybit", "okx", "hyperliquid", "bitget", "gate", "bitmex",
          "deribit", "kraken-futures", "htx")
VENUE_WEIGHTS = (0.22, 0.2, 0.12, 0.2, 0.08, 0.06, 0.04, 0.03, 0.02, 0.03)
COINS = tuple(["BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "SUI"]
              + [f"ALT{i}" for i in range(50)])
COIN_WEIGHTS = tuple(1.0 / (i + 1) for i in range(len(COINS)))
THROTTLED = {"binance-usdm", "okx", "bitget", "gate"}

Item = tuple[int, Liquidation | MarkPrice]  # (second, event)


def crash_shape(x: float) -> float:
    return x * x * (1.0 - x) ** 1.5 if x < 1.0 else 0.0


CHUNK_SECONDS = 600


def chunk_events(rng: random.Random, chunk: int, per_second_base: float, crash_scale: float,
                 marks_per_second: int, serial: list[int]) -> list[Item]:
    """Ten minutes of the day: each second's liquidations then its marks, in time order."""
    out: list[Item] = []
    prices = {coin: 100.0 for coin in COINS[:marks_per_second]}
    for sec in range(chunk * CHUNK_SECONDS, (chunk + 1) * CHUNK_SECONDS):
        rate = per_second_base
        crashing = CRASH_START <= sec < CRASH_START + CRASH_SECONDS
        if crashing:
            rate += crash_scale * crash_shape((sec - CRASH_START) / CRASH_SECONDS)
        n = poisson(rng, rate)
        at = T0 + sec
        venues = rng.choices(VENUES, VENUE_WEIGHTS, k=n)
        coins = rng.choices(COINS, COIN_WEIGHTS, k=n)
        for venue, coin in zip(venues, coins, strict=True):
            long = rng.random() < (0.94 if crashing else 0.5)
            usd = min(rng.lognormvariate(8.5, 1.5), 5e7)
            serial[0] += 1
            ts = at * 1000 + rng.randrange(1000)
            out.append((sec, Liquidation(
                venue, coin + "USDT", coin, PositionSide.LONG if long else PositionSide.SHORT,
                100.0, usd / 100.0, usd, ts, ts / 1000 + 0.1,
                Completeness.THROTTLED if venue in THROTTLED else Completeness.FULL,
                f"{venue}:{serial[0]}")))
        drift = -0.0002 if crashing else 0.0
        for coin in prices:
            prices[coin] *= math.exp(drift + rng.gauss(0.0, 1e-4))
            out.append((sec, MarkPrice("binance-usdm", coin + "USDT", coin, prices[coin],
                                       at * 1000 + 500, at + 0.6)))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000, help="liquidations in the day")
    parser.add_argument("--marks-per-second", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--replay", action="store_true", help="also time the replay path")
    parser.add_argument("--replay-sample", type=int, default=300_000,
                        help="liquidations in the replay sample")
    args = parser.parse_args()
    detector_day(args)
    if args.replay:
        replay_figures(args.events, args.replay_sample, args.seed)
    return 0


def detector_day(args: argparse.Namespace) -> None:
    shape_mean = sum(crash_shape((i + 0.5) / 1000) for i in range(1000)) / 1000
    crash_events = args.events * CRASH_SHARE
    crash_scale = crash_events / (CRASH_SECONDS * shape_mean)
    base = args.events * (1 - CRASH_SHARE) / DAY

    rng = random.Random(args.seed)
    detector = Detector(DetectorConfig())
    on_liq, on_mark, evaluate = detector.on_liquidation, detector.on_mark_price, detector.evaluate
    alerts: list[CascadeAlert] = []
    whales = 0
    liqs = marks = 0
    timed = 0.0
    cpu = 0.0
    build = 0.0
    serial = [0]
    for chunk in range(DAY // CHUNK_SECONDS):
        started = time.perf_counter()
        items = chunk_events(rng, chunk, base, crash_scale, args.marks_per_second, serial)
        build += time.perf_counter() - started
        gc.freeze()
        started = time.perf_counter()
        cpu_started = time.process_time()
        last = -1
        for sec, event in items:
            if sec != last:
                alerts.extend(evaluate(T0 + sec + 0.05))
                last = sec
            if type(event) is Liquidation:
                whales += len(on_liq(event))
                liqs += 1
            else:
                on_mark(event)  # type: ignore[arg-type]
                marks += 1
        timed += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        del items
        gc.unfreeze()
    started, cpu_started = time.perf_counter(), time.process_time()
    alerts.extend(evaluate(T0 + DAY + 3600))
    timed += time.perf_counter() - started
    cpu += time.process_time() - cpu_started

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total = liqs + marks
    print(f"crash day: {liqs:,} liquidations + {marks:,} marks over 24 h "
          f"(input built in {build:.1f} s, not timed)")
    print(f"detector alone: {cpu:.2f} s CPU ({timed:.2f} s wall) for {total:,} events and "
          f"{DAY + 3600:,} evaluate steps")
    print(f"  {total / cpu:,.0f} events/s, {cpu / total * 1e6:.2f} us/event "
          f"({liqs / cpu:,.0f} liquidations/s), by CPU time")
    print(f"  peak RSS {rss_mb:,.0f} MB (includes ten minutes of prebuilt input)")
    firing = [a for a in alerts if a.status is AlertState.FIRING]
    print(f"alerts: {len(firing)} cascades ({len(alerts)} transitions), {whales:,} whale alerts")
    for alert in alerts:
        print("  " + time.strftime("%H:%M:%S", time.gmtime(alert.at)) + " "
              + alert_log_line(alert))


REPLAY_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT", "LINKUSDT",
                  "AVAXUSDT", "SUIUSDT", "ADAUSDT", "WIFUSDT", "HYPEUSDT", "LTCUSDT", "TRXUSDT")


def bybit_frames(liquidations: int, seed: int) -> list[RawFrame]:
    """A crash-day's mix as Bybit frames: one liquidation per ``allLiquidation`` frame (the
    worst case: no batching), one ``tickers`` delta per symbol per second."""
    import orjson

    rng = random.Random(seed)
    seconds = max(1, liquidations // 60)  # about 60 liquidations a second
    frames: list[RawFrame] = []
    for sec in range(seconds):
        at = T0 + sec
        for symbol in REPLAY_SYMBOLS:
            ticker = {"topic": f"tickers.{symbol}", "type": "delta", "cs": sec, "ts": at * 1000,
                      "data": {"symbol": symbol, "markPrice": "100.5", "indexPrice": "100.4"}}
            frames.append(RawFrame("bybit", at + 0.01, orjson.dumps(ticker).decode()))
        for i in range(poisson(rng, 60.0)):
            ts = at * 1000 + rng.randrange(1000)
            symbol = rng.choice(REPLAY_SYMBOLS)
            row = {"T": ts, "s": symbol, "S": "Buy" if rng.random() < 0.9 else "Sell",
                   "v": f"{rng.uniform(1, 500):.2f}", "p": "100.5"}
            text = orjson.dumps({"topic": f"allLiquidation.{symbol}", "type": "snapshot",
                                 "ts": ts + 1, "data": [row], "n": i}).decode()
            frames.append(RawFrame("bybit", ts / 1000 + 0.05, text))
    frames.sort(key=lambda f: f.received_at)
    return frames


def replay_figures(day_events: int, sample: int, seed: int) -> None:
    from monitor.config import Config
    from monitor.replay import replay

    started = time.perf_counter()
    frames = bybit_frames(sample, seed)
    build = time.perf_counter() - started
    gc.freeze()
    cpu_started, started = time.process_time(), time.perf_counter()
    result = asyncio.run(replay(iter(frames), Config(), simulated=True))
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - started
    gc.unfreeze()
    print(f"replay, parse + ingest (dedupe, metrics, memory store) + detect (Bybit frames built "
          f"in {build:.1f} s, not timed): {result.frames:,} frames, {result.liquidations:,} "
          f"liquidations, {result.marks:,} marks, {result.invalid_frames} invalid")
    per_liq = cpu / max(result.liquidations, 1)
    print(f"  {cpu:.2f} s CPU ({wall:.2f} s wall): {result.frames / cpu:,.0f} frames/s, "
          f"{result.liquidations / cpu:,.0f} liquidations/s with their share of price frames")
    print(f"  a day of {day_events:,} liquidations at this rate: ~{day_events * per_liq:.0f} s")


if __name__ == "__main__":
    raise SystemExit(main())
