"""Metrics benchmark: what one event costs the metrics, and how long a scrape holds the loop.

    .venv/bin/python benchmarks/metrics.py [--events 200000] [--repeat 5] [--scrapes 30]

The daemon's own :class:`monitor.metrics.Metrics`, on a fresh registry, with the 12 websocket
venues of the registry (as an all-venue daemon has), the
default coin list and the process collectors, as ``liqmon run`` builds it.

* ``per event``: ``Metrics.liquidation`` (and ``frame``, ``mark``) over ``--events`` prebuilt
  events spread over every venue, 25 coins (some outside the coin list, so ``other`` is hit)
  and both sides; thread CPU time, best of ``--repeat``, in nanoseconds per call.
* ``scrape``: the exposition of that registry once every label set has values, as the
  endpoint renders it (``prometheus_client.generate_latest``); CPU time per render, best and
  median of ``--scrapes``.
* ``loop``: the real endpoint (``monitor.service.endpoint.MetricsServer``) on a free port, a
  ticker task sleeping 1 ms in a loop, and ``--scrapes`` scrapes over HTTP from a thread; the
  longest ticker overshoot during the scrapes is how long a scrape blocked the event loop.
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry, generate_latest

from monitor.config import MetricsConfig
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.metrics import Metrics
from monitor.service.endpoint import MetricsServer
from monitor.venues import WEBSOCKET_VENUES

BASE_MS = 1_769_904_000_000
EXTRA_COINS = ("FOO", "BAR", "BAZ", "QUX", "ZED")


def build(venues: list[str]) -> tuple[CollectorRegistry, Metrics]:
    registry = CollectorRegistry()
    return registry, Metrics(registry, venues, MetricsConfig().coins)


def events(n: int, venues: list[str]) -> list[Liquidation]:
    rng = random.Random(3)
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


def scrape_cpu(venues: list[str], scrapes: int) -> None:
    registry, _metrics = populated(venues)
    times = []
    size = 0
    for _ in range(scrapes):
        started = time.thread_time_ns()
        body = generate_latest(registry)
        times.append((time.thread_time_ns() - started) / 1e6)
        size = len(body)
    samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))
    print(f"scrape render, {len(venues)} venues ({samples:,} samples, {size:,} bytes): "
          f"best {min(times):.2f} ms, median {statistics.median(times):.2f} ms CPU "
          f"(n={scrapes})")


async def scrape_loop(venues: list[str], scrapes: int) -> None:
    registry, _metrics = populated(venues)
    server = MetricsServer(registry, "127.0.0.1", 0, lambda: (True, "ok"))
    await server.start()
    serving = asyncio.create_task(server.serve())
    # (slept from, woke at) of each 1 ms tick, and (from, to) of each scrape, both on the
    # monotonic clock (the loop's): a tick that overlaps a scrape and wakes late was held.
    ticks: list[tuple[float, float]] = []
    spans: list[tuple[float, float]] = []
    done = threading.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.001)
            ticks.append((before, time.monotonic()))

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scrapes", type=int, default=30)
    args = parser.parse_args()
    # The websocket venues: the node source is a local file, not one more feed of a host.
    venues = list(WEBSOCKET_VENUES)
    per_event(venues, args.events, args.repeat)
    scrape_cpu(venues, args.scrapes)
    asyncio.run(scrape_loop(venues, args.scrapes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
