"""Store benchmark: write throughput and 24 h window read latency, Redis and memory.

    .venv/bin/python benchmarks/store.py [--minutes 1440] [--burst 200000] [--reads 50]
                                         [--batch-size 500]

Starts its own redis-server on a free loopback port (no persistence), then for Redis and
for the memory store:

- write a burst: ``--burst`` liquidations within 10 minutes, shaped like the night of
  1 February 2026 (venue and coin shares, 94% longs). Throughput of the real path:
  ``open_store`` → buffer → batches → one Lua script per batch, added in chunks of 100 as
  ingest does; the clock stops when ``flush`` reports nothing left.
- write 24 h dense: ``--minutes`` minutes x 5 venues x 20 coins x 2 sides, one liquidation
  per cell per minute (288,000 events): every minute bucket is full, the worst case both
  for writing (no two events share a cell) and for a window read.
- read, on that data: ``totals`` over 24 h overall and by (venue, coin, position_side),
  ``largest(24 h, 10)``, and a 5-minute total by venue; p50/p99 over ``--reads`` runs.

Besides wall time it prints this process's CPU time and redis-server's main-thread CPU
time (INFO cpu): on a shared machine, wall time includes waiting for a core.

Sustained mode (``--sustained``, Redis only) offers a steady rate instead of a burst:

    .venv/bin/python benchmarks/store.py --sustained [--rates 10000,20000,50000]
                                         [--seconds 10] [--buffer-size 100000]

For each rate it starts a fresh redis-server and a fresh store (``open_store``, the daemon's
buffered path with the default ``[store]`` settings but ``--buffer-size``), adds frames of
20 liquidations on a 5 ms tick so that ``rate`` events/s are offered (the burst's shape,
minutes following the offered time), and reports the events dropped, the largest backlog, the
backlog left at the end, client and redis CPU per second offered, and redis memory per
event. A rate is sustained when nothing is dropped and the backlog never grows past one
second of events. The last line names the highest sustained rate.

Script mode (``--script``) times the write script alone, without the buffer:

    .venv/bin/python benchmarks/store.py --script [--burst 200000] [--batch-sizes 500,2000,5000]

For each batch size: ``RedisStore.prepare`` CPU per event, then every batch written once
(all new) and once more (all counted before), each with redis's own time in the script
(INFO commandstats) per event.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.events import Completeness, Liquidation, PositionSide
from monitor.store.base import Store
from monitor.store.config import StoreConfig
from monitor.store.connect import connect
from monitor.store.factory import open_store
from monitor.store.lua import ADD_EVENTS
from monitor.store.redis import RedisStore
from tests.support.ports import free_port

VENUES = ("binance-usdm", "bybit", "okx", "hyperliquid", "bitmex")
COINS = (
    "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "SUI",
    "LTC", "TRX", "DOT", "TON", "PEPE", "HYPE", "BCH", "NEAR", "WIF", "APT",
)
END_MS = 1_769_904_000_000 + 30_000  # a fixed "now", mid-minute
ADD_CHUNK = 100


def make_events(minutes: int) -> list[Liquidation]:
    events = []
    first = END_MS // 60_000 - minutes + 1
    n = 0
    for minute in range(first, first + minutes):
        for venue in VENUES:
            for c, coin in enumerate(COINS):
                for side in (PositionSide.LONG, PositionSide.SHORT):
                    n += 1
                    usd = 1000.0 + (n * 7919) % 250_000 + c
                    ts = minute * 60_000 + (n * 131) % 60_000
                    events.append(Liquidation(
                        venue, coin + "USDT", coin, side, 100.0, usd / 100.0, usd, ts,
                        ts / 1000.0, Completeness.FULL, f"{venue}:{n}",
                    ))
    return events


# Shaped like the night of 1 February 2026 (reference/feb-2026-crash.md): Hyperliquid over
# 40%, Bybit 22%, Binance next; mostly ETH, BTC, SOL, DOGE; 94% longs.
VENUE_WEIGHTS = (0.2, 0.22, 0.13, 0.4, 0.05)
COIN_WEIGHTS = tuple([30.0, 25.0, 12.0, 5.0, 8.0] + [1.0] * (len(COINS) - 5))


def make_burst(count: int, minutes: int) -> list[Liquidation]:
    """A crash: ``count`` liquidations within a few minutes, lognormal sizes."""
    rnd = random.Random(7)
    first_ms = END_MS - minutes * 60_000
    events = []
    venues = rnd.choices(VENUES, VENUE_WEIGHTS, k=count)
    coins = rnd.choices(COINS, COIN_WEIGHTS, k=count)
    for n in range(count):
        ts = first_ms + n * minutes * 60_000 // count
        venue, coin = venues[n], coins[n]
        side = PositionSide.LONG if rnd.random() < 0.94 else PositionSide.SHORT
        usd = round(rnd.lognormvariate(8.0, 1.6), 2)
        events.append(Liquidation(
            venue, coin + "USDT", coin, side, 100.0, usd / 100.0, usd, ts, ts / 1000.0,
            Completeness.FULL, f"{venue}:burst:{n}",
        ))
    return events


def start_redis(directory: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    server = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(directory), "--logfile", ""],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(500):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, port
        except OSError:
            time.sleep(0.01)
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def write(store: Store, events: list[Liquidation]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), ADD_CHUNK):
        await store.add(events[i : i + ADD_CHUNK])
        if i % (ADD_CHUNK * 20) == 0:
            await asyncio.sleep(0)  # ingest yields to the loop between frames
    left = await store.flush(600.0)
    if left:
        raise RuntimeError(f"{left} events were not written")
    return time.perf_counter() - wall, time.process_time() - cpu


async def latency(call: Callable[[], Awaitable[Any]], runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return statistics.median(samples) * 1000, p99 * 1000


def redis_cpu_seconds(port: int | None) -> float:
    """redis-server's main-thread CPU time so far (INFO cpu), 0 without a server."""
    if port is None:
        return 0.0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"INFO cpu\r\n")
        data = b""
        while b"used_cpu_sys_main_thread" not in data or not data.endswith(b"\r\n"):
            data += s.recv(65536)
    fields = dict(
        line.split(":", 1) for line in data.decode().splitlines() if ":" in line
    )
    return float(fields["used_cpu_user_main_thread"]) + float(fields["used_cpu_sys_main_thread"])


async def bench(name: str, config: StoreConfig, burst: list[Liquidation],
                dense: list[Liquidation], reads: int, minutes: int,
                port: int | None = None) -> list[tuple[str, str, str]]:
    store = await open_store(config)
    rows = []
    try:
        for label, events in (("burst", burst), (f"{minutes}m x 200 cells", dense)):
            server_before = redis_cpu_seconds(port)
            seconds, cpu = await write(store, events)
            server = redis_cpu_seconds(port) - server_before
            rate = len(events) / seconds
            detail = f"{seconds:.2f} s wall, {cpu:.2f} s client CPU"
            if port is not None:
                detail += f", {server:.2f} s redis CPU"
            rows.append((name, f"write {len(events):,} ({label})",
                         f"{rate:,.0f} events/s ({detail})"))
        totals = await store.totals(minutes, now_ms=END_MS)
        if totals[0].count != len(burst) + len(dense):
            wrote = len(burst) + len(dense)
            raise RuntimeError(f"{name}: counted {totals[0].count}, wrote {wrote}")
        by_all = ("venue", "coin", "position_side")
        checks: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            (f"read totals {minutes}m overall", lambda: store.totals(minutes, now_ms=END_MS)),
            (f"read totals {minutes}m by venue,coin,side",
             lambda: store.totals(minutes, by_all, now_ms=END_MS)),
            (f"read largest {minutes}m top 10",
             lambda: store.largest(minutes, 10, now_ms=END_MS)),
            ("read totals 5m by venue", lambda: store.totals(5, ("venue",), now_ms=END_MS)),
        ]
        for label, call in checks:
            p50, p99 = await latency(call, reads)
            rows.append((name, label, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
        return rows
    finally:
        await store.aclose()


FRAME_ROWS = 20
TICK_SECONDS = 0.005


def redis_used_memory(port: int) -> int:
    client = redis.Redis(port=port)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()


async def sustain(rate: int, seconds: float, buffer_size: int) -> dict[str, float]:
    """Offer ``rate`` events/s for ``seconds`` into a fresh buffered Redis store."""
    total = int(rate * seconds)
    events = make_burst(total, max(1, int(seconds // 60) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_redis(Path(tmp))
        try:
            config = StoreConfig(backend="redis", url=f"redis://127.0.0.1:{port}/0",
                                 buffer_size=buffer_size)
            store = await open_store(config)
            try:
                memory_before = redis_used_memory(port)
                server_before = redis_cpu_seconds(port)
                cpu = time.process_time()
                start = time.perf_counter()
                offered = 0
                backlog = 0
                while offered < total:
                    due = min(total, int((time.perf_counter() - start) * rate))
                    while offered < due:
                        n = min(FRAME_ROWS, due - offered)
                        await store.add(events[offered : offered + n])
                        offered += n
                    backlog = max(backlog, store.pending)  # type: ignore[attr-defined]
                    await asyncio.sleep(TICK_SECONDS)
                offer_wall = time.perf_counter() - start
                left_at_end = store.pending  # type: ignore[attr-defined]
                left = await store.flush(120.0)
                drain = time.perf_counter() - start - offer_wall
                client_cpu = time.process_time() - cpu
                server_cpu = redis_cpu_seconds(port) - server_before
                dropped = store.dropped_total  # type: ignore[attr-defined]
                counted = (await store.totals(60 * 24, now_ms=END_MS))[0].count
                memory = redis_used_memory(port) - memory_before
            finally:
                await store.aclose()
        finally:
            proc.kill()
            proc.wait()
    if counted + dropped + left != total:
        raise RuntimeError(f"{rate}/s: counted {counted}, dropped {dropped}, left {left}, "
                           f"offered {total}")
    return {
        "rate": rate, "offered": total, "wall": offer_wall, "dropped": dropped,
        "backlog": backlog, "left": left_at_end, "drain": drain,
        "client_cpu": client_cpu, "server_cpu": server_cpu,
        "bytes_per_event": memory / max(1, counted),
    }


async def sustained(rates: list[int], seconds: float, buffer_size: int) -> None:
    best = 0
    print(f"sustained: frames of {FRAME_ROWS} every {TICK_SECONDS * 1000:.0f} ms tick, "
          f"{seconds:g} s per rate, buffer {buffer_size:,}, default batch/flush settings")
    for rate in rates:
        r = await sustain(rate, seconds, buffer_size)
        ok = r["dropped"] == 0 and r["backlog"] <= rate and r["wall"] < seconds * 1.1
        if ok:
            best = max(best, rate)
        print(
            f"  {rate:>7,}/s offered {int(r['offered']):,} in {r['wall']:.1f} s: "
            f"dropped {int(r['dropped']):,}, largest backlog {int(r['backlog']):,}, "
            f"drained in {r['drain']:.2f} s; CPU per second offered: client "
            f"{r['client_cpu'] / seconds:.2f}, redis {r['server_cpu'] / seconds:.2f}; "
            f"redis memory {r['bytes_per_event']:.0f} B/event"
            f"{'' if ok else '  NOT SUSTAINED'}")
    print(f"highest sustained rate: {best:,} events/s")


async def script_cost(burst: list[Liquidation], sizes: list[int]) -> None:
    print(f"script: {len(burst):,} burst events; per event: client prepare CPU, redis time "
          "in the script (INFO commandstats) for new events and for events counted before")
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            proc, port = start_redis(Path(tmp))
            try:
                config = StoreConfig(backend="redis", url=f"redis://127.0.0.1:{port}/0")
                client, _ = connect(config)
                store = RedisStore(client, config)
                plain = redis.Redis(port=port)
                try:
                    cpu = time.process_time()
                    batches = [store.prepare(burst[i : i + size])
                               for i in range(0, len(burst), size)]
                    prepare = (time.process_time() - cpu) / len(burst) * 1e6
                    await store.ping()
                    script_us = []
                    plain.script_load(ADD_EVENTS)
                    for _ in range(2):
                        plain.config_resetstat()
                        for batch in batches:
                            await store.write_prepared(batch)
                        stats = plain.info("commandstats")
                        script_us.append(stats["cmdstat_evalsha"]["usec"] / len(burst))
                finally:
                    plain.close()
                    await store.aclose()
            finally:
                proc.kill()
                proc.wait()
        print(f"  batch {size:>5,}: prepare {prepare:.2f} µs, script {script_us[0]:.2f} µs "
              f"new, {script_us[1]:.2f} µs counted before")


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=int, default=1440, help="minutes of data (24 h)")
    parser.add_argument("--reads", type=int, default=50, help="reads per latency figure")
    parser.add_argument("--burst", type=int, default=200_000, help="events in the burst")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--sustained", action="store_true",
                        help="offer steady rates to the buffered Redis store instead")
    parser.add_argument("--rates", default="10000,20000,30000,50000,70000,100000",
                        help="events/s to offer, comma-separated (--sustained)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate (--sustained)")
    parser.add_argument("--buffer-size", type=int, default=StoreConfig().buffer_size)
    parser.add_argument("--script", action="store_true",
                        help="time prepare and the write script alone, per batch size")
    parser.add_argument("--batch-sizes", default="500,2000,5000", help="(--script)")
    args = parser.parse_args()
    if args.script:
        sizes = [int(n) for n in args.batch_sizes.split(",") if n]
        await script_cost(make_burst(args.burst, 10), sizes)
        return
    if args.sustained:
        rates = [int(r) for r in args.rates.split(",") if r]
        await sustained(rates, args.seconds, args.buffer_size)
        return
    dense = make_events(args.minutes)
    burst = make_burst(args.burst, 10)
    common = {"buffer_size": len(dense) + len(burst), "batch_size": args.batch_size}
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_redis(Path(tmp))
        try:
            url = f"redis://127.0.0.1:{port}/0"
            redis_cfg = StoreConfig(backend="redis", url=url, **common)
            rows += await bench("redis", redis_cfg, burst, dense, args.reads, args.minutes, port)
        finally:
            proc.kill()
            proc.wait()
    memory_cfg = StoreConfig(**common)
    rows += await bench("memory", memory_cfg, burst, dense, args.reads, args.minutes)
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    print(f"burst: {len(burst):,} events in 10 minutes; dense: {len(VENUES)} venues x "
          f"{len(COINS)} coins x 2 sides x {args.minutes} minutes, one event per cell-minute; "
          f"batch size {args.batch_size}")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    asyncio.run(main())
