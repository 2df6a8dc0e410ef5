"""Replay, backtest and memory benchmark: liquidations per CPU-second, scenario build, RSS.

    .venv/bin/python benchmarks/replay.py [--liquidations 300000] [--repeat 3]
        [--recording PATH] [--skip-scenario] [--rss-liquidations 5000000] [--seed 0]
    .venv/bin/python benchmarks/replay.py --store-add 500000 [--repeat 5]

Four figures, each in CPU seconds of this process (``time.process_time``), best of
``--repeat``:

* ``replay``: a recording of Bybit frames made by the simulator's own venue encoder (the
  ``allLiquidation`` batches of 500 ms per symbol and the ``tickers`` price stream the
  daemon subscribes to; ``tests/support/recordings.py``), about 58 liquidations a second as
  on a 5-million-liquidation day, ``--liquidations`` in all, written to a JSON Lines file
  (not timed; ``--recording`` keeps it for the next run) and replayed from the file:
  read, parse, ingest (dedupe, metrics, memory store), detector. Then extrapolated to a day
  of 5,000,000 liquidations.
* ``backtest (recording)``: the same file through ``run_backtest`` (replay plus the
  report's minute series and coverage).
* ``backtest --scenario feb-2026``: building the scenario, and the whole backtest; then the
  same with the scenario read from the disk cache (a temporary directory), as every run
  after the first does.
* ``RSS``: in a child process (so that nothing above counts), ``--rss-liquidations``
  liquidations with real-shaped ids over 24 hours of exchange time (a 3-hour crash in the
  middle carries 60 % of them), handed to the daemon's ``Ingest`` with the memory store and
  the detector once per second of that time, as a daemon would; the child prints its RSS
  (``VmRSS``) and peak (``VmHWM``) before and after, and what the dedupes hold.

``--store-add N`` instead times ``MemoryStore.add`` alone (CPU per liquidation), to compare
trees (run the same script from a ``git archive`` of another commit).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.config import Config
from monitor.events import PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.scenarios.model import ScenarioEvent, liquidation_event
from tests.support.synth import poisson

DAY = 86_400
DAY_LIQUIDATIONS = 5_000_000
RATE = DAY_LIQUIDATIONS / DAY  # about 58 a second
CRASH_START, CRASH_SECONDS, CRASH_SHARE = 12 * 3600, 3 * 3600, 0.6


def best_cpu(repeat: int, run: Callable[[], Any]) -> tuple[float, Any]:
    """The least CPU time of ``repeat`` runs, and the last run's result."""
    best, result = math.inf, None
    for _ in range(repeat):
        gc.collect()
        started = time.process_time()
        result = run()
        best = min(best, time.process_time() - started)
    return best, result


# -- the recording -----------------------------------------------------------------------------


def scenario_events(liquidations: int, seed: int) -> Iterator[ScenarioEvent]:
    """Bybit liquidations at a day's mean rate, and a mark per coin per second."""
    rng = random.Random(seed)
    items = listings("bybit")
    coins = sorted({item.coin for item in items})
    prices = {coin: COIN_PRICES_USD[coin] for coin in coins}
    made = 0
    second = 0
    while made < liquidations:
        for coin in coins:
            prices[coin] *= math.exp(rng.gauss(-1e-5, 3e-4))
            yield ScenarioEvent(float(second), "mark", "", coin, "", None, prices[coin], 0, 0)
        n = min(poisson(rng, RATE), liquidations - made)
        for at in sorted(second + rng.random() for _ in range(n)):
            item = rng.choice(items)
            side = PositionSide.LONG if rng.random() < 0.9 else PositionSide.SHORT
            usd = min(rng.lognormvariate(8.5, 1.5), 5e6)
            yield liquidation_event(at, "bybit", item, side, prices[item.coin], usd,
                                    rng.uniform(0.0, 0.004))
        made += n
        second += 1


def write_day(path: Path, liquidations: int, seed: int) -> int:
    from tests.support.recordings import simulated_frames, write_recording

    return write_recording(path, simulated_frames(scenario_events(liquidations, seed)))


# -- replay and backtest ----------------------------------------------------------------------


def time_replay(path: Path, repeat: int) -> None:
    from monitor.backtest import run_backtest
    from monitor.replay import replay

    size_mb = path.stat().st_size / 1e6
    cpu, result = best_cpu(repeat, lambda: asyncio.run(replay(path, Config(), simulated=True)))
    liqs = result.liquidations
    print(f"replay of {path.name} ({size_mb:,.0f} MB): {result.frames:,} frames, {liqs:,} "
          f"liquidations, {result.marks:,} marks, {result.invalid_frames} invalid, "
          f"{len(result.cascades)} cascade transitions")
    print(f"  replay: {cpu:.2f} s CPU (best of {repeat}): {liqs / cpu:,.0f} liquidations per "
          f"CPU-second, {result.frames / cpu:,.0f} frames/s; a day of "
          f"{DAY_LIQUIDATIONS:,}: ~{DAY_LIQUIDATIONS * cpu / liqs:.0f} s")
    cpu, report = best_cpu(repeat, lambda: run_backtest(recording=path, simulated=True))
    print(f"  backtest (recording): {cpu:.2f} s CPU: {report.liquidations / cpu:,.0f} "
          f"liquidations per CPU-second; a day: ~{DAY_LIQUIDATIONS * cpu / liqs:.0f} s")


def time_scenario(repeat: int) -> None:
    from monitor.backtest import run_backtest
    from monitor.simulator import scenarios

    env = "LIQMON_SCENARIO_CACHE_DIR"  # monitor.simulator.scenarios.disk_cache.ENV

    def fresh_process(run: Callable[[], Any], cache: str) -> Callable[[], Any]:
        def timed() -> Any:
            # What `liqmon backtest --scenario` pays in a new process: no scenario in this
            # process's cache; built ("off") or read from the disk cache (a directory).
            os.environ[env] = cache
            if hasattr(scenarios, "clear_cache"):
                scenarios.clear_cache()
            return run()
        return timed

    def build() -> Any:
        return scenarios.build_scenario("feb-2026")

    def backtest() -> Any:
        return run_backtest(scenario="feb-2026")

    previous = os.environ.get(env)
    try:
        with tempfile.TemporaryDirectory(prefix="liqmon-scenario-cache-") as disk:
            built, scenario = best_cpu(repeat, fresh_process(build, "off"))
            whole, report = best_cpu(repeat, fresh_process(backtest, "off"))
            fresh_process(build, disk)()  # writes the file (not timed)
            loaded, _ = best_cpu(repeat, fresh_process(build, disk))
            whole_cached, _ = best_cpu(repeat, fresh_process(backtest, disk))
    finally:
        if previous is None:
            os.environ.pop(env, None)
        else:
            os.environ[env] = previous
    events = len(scenario.events) if not callable(scenario.events) else 0
    print(f"backtest --scenario feb-2026: {events:,} events ({report.liquidations:,} "
          f"liquidations), best of {repeat}, CPU:")
    print(f"  built: {built:.3f} s, whole backtest {whole:.3f} s (build {built / whole:.0%})")
    print(f"  from the disk cache: {loaded:.3f} s, whole backtest {whole_cached:.3f} s "
          f"(load {loaded / whole_cached:.0%})")


# -- RSS ------------------------------------------------------------------------------------


def proc_status() -> dict[str, float]:
    """VmRSS and VmHWM of this process, MB."""
    found: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(value.split()[0]) / 1024
    return found


async def feed_day(liquidations: int, seed: int, debug_memory: bool = False) -> None:
    from prometheus_client import CollectorRegistry

    from monitor.clock import VirtualClock
    from monitor.detector.engine import Detector
    from monitor.events import Completeness, Liquidation, MarkPrice, event_id_from_fields
    from monitor.ingest import Ingest
    from monitor.metrics import Metrics
    from monitor.store.config import StoreConfig
    from monitor.store.factory import open_store

    t0 = 1_769_904_000
    config = Config()
    clock = VirtualClock(float(t0))
    metrics = Metrics(CollectorRegistry(), list(config.enabled_venues()), config.metrics.coins,
                      process_metrics=False)
    # As the daemon opens it: ingest's dedupe is the only one.
    store = await open_store(StoreConfig(backend="memory"), metrics, clock, behind_ingest=True)
    detector = Detector(config.detector)
    ingest = Ingest(store, detector, metrics, clock, capacity=10_000_000,
                    bounds=config.feed.bounds())
    rng = random.Random(seed)
    venues = ("binance-usdm", "bybit", "okx", "hyperliquid", "bitget", "gate")
    coins = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "SUI")
    base = liquidations * (1 - CRASH_SHARE) / DAY
    shape_mean = 2 / math.pi  # of the crash's half-sine
    crash = liquidations * CRASH_SHARE / (CRASH_SECONDS * shape_mean)
    before = proc_status()
    made = 0
    started = time.process_time()
    for second in range(DAY):
        rate = base
        if CRASH_START <= second < CRASH_START + CRASH_SECONDS:
            rate += crash * math.sin(math.pi * (second - CRASH_START) / CRASH_SECONDS)
        at = t0 + second
        clock.set(at)
        n = poisson(rng, rate)
        for _ in range(n):
            venue = venues[made % len(venues)]
            coin = coins[rng.randrange(len(coins))]
            ts = at * 1000 + rng.randrange(1000)
            usd = min(rng.lognormvariate(8.5, 1.5), 5e6)
            side = PositionSide.LONG if rng.random() < 0.8 else PositionSide.SHORT
            ident = event_id_from_fields(venue, coin, ts, side.value, usd, made)
            ingest.put(venue, [Liquidation(venue, coin + "USDT", coin, side, 100.0, usd / 100,
                                           usd, ts, at + 0.05, Completeness.FULL, ident)])
            made += 1
        ingest.put("binance-usdm", [MarkPrice("binance-usdm", c + "USDT", c, 100.0,
                                              at * 1000, at + 0.5) for c in coins])
        await ingest.drain(3600)
        ingest.accepting = True
        detector.evaluate(float(at))
    cpu = time.process_time() - started
    gc.collect()
    after = proc_status()
    print(f"RSS: {made:,} liquidations over 24 h through ingest (dedupe, metrics) → memory "
          f"store → detector in {cpu:.0f} s CPU ({made / cpu:,.0f}/s)")
    print(f"  before: RSS {before['VmRSS']:.0f} MB; after: RSS {after['VmRSS']:.0f} MB, "
          f"peak {after['VmHWM']:.0f} MB")
    own = store._dedupe  # type: ignore[attr-defined]
    print(f"  counted {ingest.counted_total:,}; ingest dedupe holds "
          f"{len(ingest._dedupe):,} ids, the memory store's "
          f"{'none (behind ingest)' if own is None else f'{len(own):,}'}")
    if debug_memory:
        minutes = store._minutes  # type: ignore[attr-defined]
        hours = store._hours  # type: ignore[attr-defined]
        buckets = [*minutes.values(), *hours.values()]
        print(f"  memory store: {len(minutes):,} minute and {len(hours):,} hour buckets, "
              f"{sum(len(b.cells) for b in buckets):,} cells, "
              f"{sum(len(b.top) for b in buckets):,} top events; it counts "
              f"{sum(c.count for b in hours.values() for c in b.cells.values()):,}")
        sys._debugmallocstats()  # pymalloc: blocks in use against arenas held (to stderr)
    await store.aclose()


def time_store_add(liquidations: int, repeat: int, seed: int) -> None:
    """CPU per liquidation of ``MemoryStore.add`` alone, in batches of 20 at the mean rate of
    a day of 5M: with the store's own dedupe (as opened on its own) and, where the tree
    has it, without (as the daemon opens it, behind ingest)."""
    import inspect

    from monitor.clock import VirtualClock
    from monitor.events import Completeness, Liquidation, event_id_from_fields
    from monitor.store.memory import MemoryStore

    rng = random.Random(seed)
    t0 = 1_769_904_000
    venues = ("binance-usdm", "bybit", "okx", "hyperliquid", "bitget", "gate")
    coins = ("BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "SUI")
    events: list[Liquidation] = []
    for i in range(liquidations):
        venue, coin = venues[i % len(venues)], coins[rng.randrange(len(coins))]
        ts = t0 * 1000 + i * DAY * 1000 // DAY_LIQUIDATIONS  # a 5M day's mean rate
        usd = min(rng.lognormvariate(8.5, 1.5), 5e6)
        side = PositionSide.LONG if rng.random() < 0.8 else PositionSide.SHORT
        events.append(Liquidation(venue, coin + "USDT", coin, side, 100.0, usd / 100, usd, ts,
                                  ts / 1000 + 0.05, Completeness.FULL,
                                  event_id_from_fields(venue, coin, ts, side.value, usd, i)))
    batches = [events[i : i + 20] for i in range(0, len(events), 20)]
    variants: dict[str, dict[str, Any]] = {"own dedupe": {}}
    if "own_dedupe" in inspect.signature(MemoryStore).parameters:
        variants["behind ingest"] = {"own_dedupe": False}

    async def fill(options: dict[str, Any]) -> None:
        clock = VirtualClock(float(t0))
        store = MemoryStore(clock=clock, **options)
        for batch in batches:
            clock.set(batch[0].exchange_ts_ms / 1000)
            await store.add(batch)

    for name, options in variants.items():
        cpu, _ = best_cpu(repeat, lambda options=options: asyncio.run(fill(options)))
        print(f"MemoryStore.add, {name}: {cpu * 1e9 / liquidations:,.0f} ns CPU per "
              f"liquidation ({liquidations:,} in batches of 20, best of {repeat})")


def rss_child(liquidations: int, seed: int) -> None:
    """Run the RSS figure in a fresh interpreter, so the timings above do not count."""
    subprocess.run([sys.executable, __file__, "--rss-only", "--rss-liquidations",
                    str(liquidations), "--seed", str(seed)], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--liquidations", type=int, default=300_000,
                        help="liquidations in the recording replayed")
    parser.add_argument("--recording", type=Path, default=None,
                        help="keep the recording here (made when missing, reused otherwise)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-replay", action="store_true")
    parser.add_argument("--skip-scenario", action="store_true")
    parser.add_argument("--rss-liquidations", type=int, default=DAY_LIQUIDATIONS,
                        help="0 skips the RSS figure")
    parser.add_argument("--rss-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--debug-memory", action="store_true",
                        help="with --rss-only: the memory store's size and pymalloc's stats")
    parser.add_argument("--store-add", type=int, default=0, metavar="N",
                        help="only: CPU per liquidation of MemoryStore.add over N of them")
    args = parser.parse_args()
    if args.store_add:
        time_store_add(args.store_add, args.repeat, args.seed)
        return 0
    if args.rss_only:
        asyncio.run(feed_day(args.rss_liquidations, args.seed, args.debug_memory))
        return 0
    if not args.skip_replay:
        with tempfile.TemporaryDirectory() as tmp:
            path = args.recording or Path(tmp) / "day.jsonl"
            if not path.exists():
                started = time.perf_counter()
                frames = write_day(path, args.liquidations, args.seed)
                print(f"recording: {frames:,} frames written in "
                      f"{time.perf_counter() - started:.0f} s (not timed)")
            time_replay(path, args.repeat)
    if not args.skip_scenario:
        time_scenario(args.repeat)
    if args.rss_liquidations > 0:
        rss_child(args.rss_liquidations, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
