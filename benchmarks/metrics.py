"""Metrics benchmark: what one event costs the metrics, and how long a scrape holds the loop.

    .venv/bin/python benchmarks/metrics.py [--events 200000] [--repeat 5] [--scrapes 30]
        [--changes 5000]

The daemon's own :class:`monitor.metrics.Metrics`, on a fresh registry, with the 12 websocket
venues of the registry (as an all-venue daemon has), the
default coin list and the process collectors, as ``liqmon run`` builds it.

* ``per event``: ``Metrics.liquidation`` (and ``frame``, ``mark``) over ``--events`` prebuilt
  events spread over every venue, 25 coins (some outside the coin list, so ``other`` is hit)
  and both sides; thread CPU time, best of ``--repeat``, in nanoseconds per call.
* ``scrape``: the exposition of that registry once every label set has values, with
  ``--changes`` more liquidations counted before each scrape (so that values change as in a
  busy daemon): CPU time of prometheus_client's ``generate_latest`` (the reference) and of
  the endpoint's ``collect_for_exposition`` + ``render`` (the same bytes), best and median of
  ``--scrapes``.
* ``loop``: the real endpoint (``monitor.service.endpoint.MetricsServer``) on a free port, a
  ticker task sleeping 1 ms in a loop and counting 100 liquidations per tick, and
  ``--scrapes`` scrapes over HTTP from a thread; the longest ticker overshoot during the
  scrapes is how long a scrape blocked the event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import MetricsConfig
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.metrics import Metrics
from monitor.metrics.exposition import collect_for_exposition, render
from monitor.service import endpoint
from monitor.service.endpoint import MetricsServer
from monitor.venues import WEBSOCKET_VENUES

BASE_MS = 1_769_904_000_000
EXTRA_COINS = ("FOO", "BAR", "BAZ", "QUX", "ZED")


def build(venues: list[str]) -> tuple[CollectorRegistry, Metrics]:
    registry = CollectorRegistry()
    return registry, Metrics(registry, venues, MetricsConfig().coins)


def events(n: int, venues: list[str], seed: int = 3) -> list[Liquidation]:
    rng = random.Random(seed)
    coins = [*MetricsConfig().coins, *EXTRA_COINS]
    out = []
    for i in range(n):
        usd = rng.lognormvariate(8.5, 1.5)
        ts = BASE_MS + i
        out.append(Liquidation(
            rng.choice(venues), "X", rng.choice(coins),
            PositionSide.LONG if i % 2 else PositionSide.SHORT, 100.0, usd / 100.0, usd, ts,
            ts / 1000 + rng.uniform(0.0, 0.5), Completeness.FULL, f"id-{i}"))
    return out


def best_ns_per_call(fn: object, items: list[object], repeat: int) -> float:
    assert callable(fn)
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time_ns()
        for item in items:
            fn(item)
        best = min(best, (time.thread_time_ns() - started) / len(items))
    return best


def per_event(venues: list[str], n: int, repeat: int) -> None:
    _registry, metrics = build(venues)
    liqs = events(n, venues)
    marks = [MarkPrice(e.venue, e.instrument, e.coin, 100.0, e.exchange_ts_ms, e.received_at)
             for e in liqs]
    names = [e.venue for e in liqs]
    gc.freeze()
    print(f"per event ({n:,} events, best of {repeat}, thread CPU):")
    print(f"  Metrics.liquidation: {best_ns_per_call(metrics.liquidation, list(liqs), repeat):,.0f}"
          " ns/call")
    print(f"  Metrics.mark:        {best_ns_per_call(metrics.mark, list(marks), repeat):,.0f}"
          " ns/call")
    print(f"  Metrics.frame:       "
          f"{best_ns_per_call(lambda v: metrics.frame(v, 1.0), list(names), repeat):,.0f} ns/call")
    gc.unfreeze()


def populated(venues: list[str]) -> tuple[CollectorRegistry, Metrics]:
    registry, metrics = build(venues)
    for event in events(50_000, venues):
        metrics.liquidation(event)
        metrics.whale(event, "critical")
        metrics.mark(MarkPrice(event.venue, "X", event.coin, 100.0, 1, 1.0))
    for venue in venues:
        metrics.frame(venue, time.time())
        metrics.connections(venue, 1, 1)
        metrics.reconnect(venue, "closed")
        metrics.frame_invalid(venue, "bad_value")
    metrics.cascade_state([("global", "long", "critical"), ("coin:BTC", "long", "warning")])
    for channel in ("mqtt", "webhook"):
        metrics.add_channel(channel)
    return registry, metrics


def scrape_cpu(venues: list[str], scrapes: int, changes: int) -> None:
    registry, metrics = populated(venues)
    fresh = events(changes * scrapes, venues, seed=5)
    reference, endpoint = [], []
    size = 0
    for i in range(scrapes):
        # New values between scrapes, as a busy daemon has: the endpoint's cached lines are
        # formatted again for every series that changed.
        for event in fresh[i * changes:(i + 1) * changes]:
            metrics.liquidation(event)
        started = time.thread_time_ns()
        body = generate_latest(registry)
        reference.append((time.thread_time_ns() - started) / 1e6)
        started = time.thread_time_ns()
        ours = render(collect_for_exposition(registry))
        endpoint.append((time.thread_time_ns() - started) / 1e6)
        size = len(body)
        if ours.count(b"\n") != body.count(b"\n"):
            raise SystemExit("the endpoint's exposition has other lines than generate_latest's")
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"scrape render, {len(venues)} venues ({samples:,} samples, {size:,} bytes), "
          f"{changes:,} liquidations between scrapes, CPU per scrape (n={scrapes}):")
    print(f"  generate_latest:                     best {min(reference):.2f} ms, "
          f"median {statistics.median(reference):.2f} ms")
    print(f"  endpoint (collect_for_exposition + render): best {min(endpoint):.2f} ms, "
          f"median {statistics.median(endpoint):.2f} ms")


async def scrape_loop(venues: list[str], scrapes: int) -> None:
    registry, metrics = populated(venues)
    server = MetricsServer(registry, "127.0.0.1", 0, lambda: (True, "ok"))
    await server.start()
    serving = asyncio.create_task(server.serve())
    # The endpoint's own steps on the loop: thread CPU of each of its two calls.
    held: dict[str, list[float]] = {"collect": [], "render": []}

    def timed(name: str, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def call(arg: Any) -> Any:
            started = time.thread_time()
            try:
                return fn(arg)
            finally:
                held[name].append((time.thread_time() - started) * 1000)
        return call

    endpoint.collect_for_exposition = timed("collect", collect_for_exposition)
    endpoint.render = timed("render", render)
    # (slept from, woke at) of each 1 ms tick, and (from, to) of each scrape, both on the
    # monotonic clock (the loop's): a tick that overlaps a scrape and wakes late was held.
    ticks: list[tuple[float, float]] = []
    spans: list[tuple[float, float]] = []
    done = threading.Event()

    fresh = events(100 * 50 * scrapes, venues, seed=7)

    async def ticker() -> None:
        # 100 liquidations a tick keep the values changing, as in a busy daemon.
        n = 0
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.001)
            ticks.append((before, time.monotonic()))
            for event in fresh[n:n + 100]:
                metrics.liquidation(event)
            n = (n + 100) % len(fresh)

    def scraper() -> None:
        url = f"http://127.0.0.1:{server.port}/metrics"
        for _ in range(scrapes):
            started = time.monotonic()
            with urllib.request.urlopen(url, timeout=30) as response:
                response.read()
            spans.append((started, time.monotonic()))
            time.sleep(0.02)
        done.set()

    tick = asyncio.create_task(ticker())
    await asyncio.to_thread(scraper)
    await tick
    serving.cancel()
    await server.aclose()
    worst = [max([(woke - slept - 0.001) * 1000 for slept, woke in ticks
                  if slept < end and woke > start] or [0.0]) for start, end in spans]
    print(f"scrape over HTTP, {len(venues)} venues: event loop blocked per scrape "
          f"best {min(worst):.2f} ms, median {statistics.median(worst):.2f} ms, "
          f"max {max(worst):.2f} ms (longest 1 ms tick overshoot, wall, n={len(worst)})")
    for name, spent in held.items():
        if not spent:
            continue  # an endpoint without these steps (an older tree)
        print(f"  endpoint step {name} (loop thread CPU): best {min(spent):.2f} ms, median "
              f"{statistics.median(spent):.2f} ms, max {max(spent):.2f} ms (the first scrape "
              f"builds the caches)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=30)
    parser.add_argument("--changes", type=int, default=5000,
                        help="liquidations counted between two timed renders")
    args = parser.parse_args()
    # The websocket venues: the node source is a local file, not one more feed of a host.
    venues = list(WEBSOCKET_VENUES)
    per_event(venues, args.events, args.repeat)
    scrape_cpu(venues, args.scrapes, args.changes)
    asyncio.run(scrape_loop(venues, args.scrapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
