"""End-to-end benchmark: a local websocket server pushing at a fixed rate → ``liqmon run``.

    .venv/bin/python benchmarks/e2e.py [--mode liquidations] [--rate 20000] [--rows 20]
        [--seconds 20] [--warmup 5]
    .venv/bin/python benchmarks/e2e.py --mode prices [--rate 1000] [--symbols 500]
        [--mark-rows 600]
    .venv/bin/python benchmarks/e2e.py --profile /tmp/daemon.prof   # then pstats it
    .venv/bin/python benchmarks/e2e.py --task-cpu    # the daemon's CPU by event-loop task
    .venv/bin/python benchmarks/e2e.py --tls         # over wss://, as every real venue is

The daemon is the real one, ``python -m monitor run`` in a child process with the memory
store, configured only through ``LIQMON_`` environment overrides (as ``Simulator
.config_overrides`` builds them). Its websocket base URLs point at a push server in this
process; its REST base URLs (instrument lists) point at the exchange simulator
(``monitor.simulator``), which serves them and nothing else here.

``--mode liquidations``: Bybit ``allLiquidation`` frames of ``--rows`` rows (one symbol per
frame, as the venue sends them), real-shaped (the fields and string formats of the recorded
frames in shared/realdata), every row a distinct liquidation of $1k-$50k, both sides, at
``--rate`` liquidations a second, spread over the catalogue's linear perpetuals.

``--mode prices``: the price traffic of a quiet market. The instrument lists carry
``--symbols`` Bybit linear perpetuals and ``--mark-rows`` Binance USD-M ones (synthetic
listings added to the simulator's catalogue in this process); the server pushes Bybit ticker
deltas (the three shapes of the recorded ones, one symbol each, over every symbol) and,
once a second, Binance's all-market mark-price array of ``--mark-rows`` rows, ``--rate``
frames a second in all.

After ``--warmup`` seconds of load, the counters are read from the daemon's /metrics and its
CPU time (user + system, from /proc/<pid>/stat) at the start and the end of ``--seconds``.
Printed: what was offered and what the daemon counted, liquidations per daemon CPU-second,
the daemon's CPU share, drops (ingest queue and store buffer), invalid frames, and RSS.
Event-loop lag is not exposed on /metrics; benchmarks/notify.py measures it in-process.

``--tls``: the push server speaks ``wss://`` with a throwaway self-signed certificate for
``localhost`` (made with the ``openssl`` command), which the daemon trusts through
``SSL_CERT_FILE`` (``ssl.create_default_context`` reads it, as it reads the system store):
the daemon's own TLS context, its certificate and host name checks, and asyncio's TLS
layer, as on the venues' ``wss://``. Without it the frames come over plain ``ws://``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ssl

import orjson
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.server import ServerConnection, serve

from monitor.simulator import Scenario, Simulator, catalogue
from monitor.simulator.catalogue import COIN_PRICES_USD, Listing, fmt, listings

ROOT = Path(__file__).resolve().parents[1]
TICK_SECONDS = 0.005
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def linear_perps(venue: str) -> list[Listing]:
    return [item for item in listings(venue) if item.contract_type == "perpetual"
            and not item.inverse and item.coin in COIN_PRICES_USD]


def add_synthetic_listings(venue: str, count: int) -> list[Listing]:
    """``count`` linear perpetuals on ``venue``'s instrument list, copies of its BTC one under
    other symbols (the simulator prices coins, not symbols)."""
    model = next(item for item in linear_perps(venue) if item.coin == "BTC")
    quote = model.symbol.removeprefix("BTC")
    extra = tuple(
        dataclasses.replace(model, spec=dataclasses.replace(
            model.spec, instrument=f"SYN{i}{quote}"))
        for i in range(count))
    catalogue.CATALOGUE[venue] = (*catalogue.CATALOGUE[venue], *extra)
    return list(extra)


# -- frames (real-shaped: see shared/realdata/bybit_v5_allLiquidation.tardis.jsonl,
#    bybit_v5_linear_tickers.jsonl and binance_usdm_markPrice.tardis.jsonl) -------------


class LiquidationFrames:
    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.items = linear_perps("bybit")
        self.rng = random.Random(11)
        self.serial = 0

    def next(self) -> str:
        item = self.items[self.serial % len(self.items)]
        price = COIN_PRICES_USD[item.coin]
        now_ms = int(time.time() * 1000)
        rows = []
        for _ in range(self.rows):
            self.serial += 1
            qty = self.rng.uniform(1e3, 5e4) / price
            # The serial in the quantity's last digits keeps every row a distinct liquidation
            # (after a decimal point of its own where the listing's quantities have none: the
            # digits must not multiply the quantity, which the daemon's bounds would refuse).
            point = "" if item.qty_decimals else "."
            rows.append({"T": now_ms, "s": item.symbol, "S": "Sell" if self.serial % 2 else "Buy",
                         "v": f"{qty:.{item.qty_decimals}f}{point}{self.serial % 1_000_000:06d}",
                         "p": fmt(price, item.price_decimals)})
        topic = f"allLiquidation.{item.symbol}"
        return orjson.dumps({"topic": topic, "type": "snapshot", "ts": now_ms,
                             "data": rows}).decode()


class TickerFrames:
    def __init__(self, symbols: list[Listing]) -> None:
        self.symbols = symbols
        self.serial = 0

    def next(self) -> str:
        self.serial += 1
        item = self.symbols[self.serial % len(self.symbols)]
        price = fmt(COIN_PRICES_USD["BTC"] * (1 + (self.serial % 100) * 1e-5), 2)
        shape = self.serial // len(self.symbols) % 3
        return ticker_delta(item.symbol, price, shape, self.serial, int(time.time() * 1000))


def ticker_delta(symbol: str, price: str, shape: int, serial: int, ts_ms: int) -> str:
    """One Bybit ticker delta in one of the three shapes of the recorded ones: bid/ask
    only, with ``markPrice`` (the only one that carries an event), or a bid alone."""
    data: dict[str, Any] = {"symbol": symbol}
    if shape == 0:
        data |= {"bid1Price": price, "bid1Size": "6.054", "ask1Price": price,
                 "ask1Size": "10.486"}
    elif shape == 1:
        data |= {"markPrice": price, "openInterestValue": "3899995666.09",
                 "ask1Price": price, "ask1Size": "10.488",
                 "singleOpenInterestValue": "1949997833.04"}
    else:
        data |= {"bid1Price": price, "bid1Size": "6.124"}
    return orjson.dumps({"topic": f"tickers.{symbol}", "type": "delta", "data": data,
                         "cs": 753843900397 + serial, "ts": ts_ms}).decode()


def mark_array(symbols: list[Listing]) -> str:
    now_ms = int(time.time() * 1000)
    price = fmt(COIN_PRICES_USD["BTC"], 2)
    return orjson.dumps([
        {"e": "markPriceUpdate", "E": now_ms, "s": item.symbol, "p": price, "P": price,
         "i": price, "r": "0.00010000", "T": (now_ms // 28_800_000 + 1) * 28_800_000}
        for item in symbols]).decode()


# -- the push server ------------------------------------------------------------------


class PushServer:
    """Acknowledges Bybit and Binance subscriptions; keeps the subscribed connections."""

    def __init__(self) -> None:
        self.bybit_linear: list[ServerConnection] = []
        self.binance: list[ServerConnection] = []
        self.port = 0
        self.subscribed = asyncio.Event()
        self.needs_binance = False

    def _check(self) -> None:
        if self.bybit_linear and (self.binance or not self.needs_binance):
            self.subscribed.set()

    async def handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else ""
        async for message in ws:
            msg = orjson.loads(message)
            if msg.get("op") == "subscribe":
                await ws.send(orjson.dumps({"success": True, "ret_msg": "", "conn_id": "bench",
                                            "req_id": msg.get("req_id"),
                                            "op": "subscribe"}).decode())
                if path.endswith("/linear") and ws not in self.bybit_linear:
                    self.bybit_linear.append(ws)
                self._check()
            elif msg.get("method") == "SUBSCRIBE":
                await ws.send(orjson.dumps({"result": None, "id": msg.get("id")}).decode())
                if ws not in self.binance:
                    self.binance.append(ws)
                self._check()
            elif msg.get("op") == "ping":
                await ws.send(orjson.dumps({"ret_msg": "pong", "op": "ping"}).decode())


async def push(targets: Callable[[], list[tuple[ServerConnection, Callable[[], str], float]]],
               stop: asyncio.Event) -> int:
    """Send each target's frames at its rate (frames a second) until ``stop``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    sent: dict[int, int] = {}
    while not stop.is_set():
        elapsed = loop.time() - started
        for i, (ws, frame, rate) in enumerate(targets()):
            due = int(elapsed * rate) - sent.get(i, 0)
            for _ in range(due):
                await ws.send(frame())
            sent[i] = sent.get(i, 0) + due
        await asyncio.sleep(TICK_SECONDS)
    return sum(sent.values())


# -- the daemon -------------------------------------------------------------------------


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


async def scrape(port: int) -> dict[str, float]:
    """Every sample of /metrics summed over its labels, by sample name."""
    text = await asyncio.to_thread(get, f"http://127.0.0.1:{port}/metrics")
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            totals[s.name] = totals.get(s.name, 0.0) + s.value
    return totals


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def wait_ready(port: int, daemon: asyncio.subprocess.Process, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if daemon.returncode is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode}")
        try:
            await asyncio.to_thread(get, f"http://127.0.0.1:{port}/readyz")
            return
        except OSError:
            await asyncio.sleep(0.2)
    raise RuntimeError("the daemon did not get ready")


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate and key for ``localhost`` and 127.0.0.1, valid for a day."""
    cert, key = directory / "localhost.pem", directory / "localhost.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="liqmon-e2e-tls-") as certs:
        server_tls: ssl.SSLContext | None = None
        env_tls: dict[str, str] = {}
        if args.tls:
            cert, key = self_signed(Path(certs))
            server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_tls.load_cert_chain(cert, key)
            env_tls = {"SSL_CERT_FILE": str(cert)}
        return await run_with(args, server_tls, env_tls)


async def run_with(args: argparse.Namespace, server_tls: ssl.SSLContext | None,
                   env_tls: dict[str, str]) -> dict[str, Any]:
    prices = args.mode == "prices"
    venues = ["bybit", "binance-usdm"] if prices else ["bybit"]
    bybit_symbols = add_synthetic_listings("bybit", args.symbols) if prices else []
    binance_symbols = add_synthetic_listings("binance-usdm", args.mark_rows) if prices else []
    scenario = Scenario("e2e-bench", 3600.0, lambda: iter(()), {})
    server = PushServer()
    server.needs_binance = prices
    metrics_port = free_port()
    async with Simulator(scenario, speed=1.0, venues=venues) as sim, \
            serve(server.handle, "127.0.0.1", 0, compression=None, max_size=1 << 24,
                  ssl=server_tls) as ws_server:
        server.port = ws_server.sockets[0].getsockname()[1] if ws_server.sockets else 0
        env = {**os.environ, **sim.config_overrides(), **env_tls}
        base = f"wss://localhost:{server.port}" if server_tls else f"ws://127.0.0.1:{server.port}"
        for venue in venues:
            env[f"LIQMON_VENUES__{venue.upper().replace('-', '_')}__WS_BASE_URL"] = (
                f"{base}/{venue}")
        with tempfile.TemporaryDirectory(prefix="liqmon-e2e-") as tmp:
            env |= {"LIQMON_METRICS__PORT": str(metrics_port),
                    "LIQMON_FEED__INSTRUMENT_CACHE_DIR": tmp,
                    "LIQMON_LOGGING__LEVEL": "ERROR", "LIQMON_STORE__BACKEND": "memory"}
            profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
            if args.task_cpu:
                # benchmarks/task_cpu/sitecustomize.py times every loop callback by task.
                env["PYTHONPATH"] = os.pathsep.join(
                    p for p in (str(ROOT / "benchmarks" / "task_cpu"), env.get("PYTHONPATH"))
                    if p)
                env["LIQMON_BENCH_TASK_CPU"] = str(Path(tmp) / "task-cpu.txt")
            # The prototype picows client (benchmarks/picows_transport.py) runs the same
            # command line with the supervisor's websocket client replaced.
            command = (["-m", "monitor"] if args.daemon_transport == "websockets" else
                       [str(ROOT / "benchmarks" / "picows_transport.py")])
            if args.uvloop:
                command = [str(ROOT / "benchmarks" / "picows_transport.py"), "--uvloop"]
                if args.daemon_transport == "websockets":
                    command.append("--websockets")
            daemon = await asyncio.create_subprocess_exec(
                sys.executable, *profile, *command, "run", env=env, cwd=ROOT,
                stdin=subprocess.DEVNULL)
            try:
                return await measure(args, server, daemon, metrics_port, bybit_symbols,
                                     binance_symbols)
            finally:
                daemon.terminate()
                try:
                    await asyncio.wait_for(daemon.wait(), 30)
                except TimeoutError:
                    daemon.kill()
                task_cpu = Path(tmp) / "task-cpu.txt"
                if args.task_cpu and task_cpu.exists():
                    print("daemon CPU by event-loop task, whole life (start-up included):")
                    print(task_cpu.read_text(), end="")


async def measure(args: argparse.Namespace, server: PushServer,
                  daemon: asyncio.subprocess.Process, port: int, bybit_symbols: list[Listing],
                  binance_symbols: list[Listing]) -> dict[str, Any]:
    await wait_ready(port, daemon, 120.0)
    await server.subscribed.wait()
    await asyncio.sleep(1.0)  # the last subscriptions of the shards
    if args.mode == "prices":
        tickers = TickerFrames(bybit_symbols)
        marks: Callable[[], str] = lambda: mark_array(binance_symbols)  # noqa: E731

        def targets() -> list[tuple[ServerConnection, Callable[[], str], float]]:
            return [(server.bybit_linear[0], tickers.next, args.rate - 1.0),
                    (server.binance[0], marks, 1.0)]
        offered_unit = "price frames"
    else:
        frames = LiquidationFrames(args.rows)

        def targets() -> list[tuple[ServerConnection, Callable[[], str], float]]:
            return [(server.bybit_linear[0], frames.next, args.rate / args.rows)]
        offered_unit = "liquidations"
    stop = asyncio.Event()
    pusher = asyncio.create_task(push(targets, stop))
    await asyncio.sleep(args.warmup)
    before, cpu0, t0 = await scrape(port), cpu_seconds(daemon.pid), time.monotonic()
    await asyncio.sleep(args.seconds)
    after, cpu1, t1 = await scrape(port), cpu_seconds(daemon.pid), time.monotonic()
    stop.set()
    await pusher

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    return {"unit": offered_unit, "wall": t1 - t0, "cpu": cpu1 - cpu0,
            "liquidations": delta("liqmon_liquidations_total"),
            "frames": delta("liqmon_frames_total"),
            "invalid": delta("liqmon_frames_invalid_total"),
            "ingest_dropped": delta("liqmon_ingest_dropped_events_total"),
            "store_dropped": delta("liqmon_store_dropped_events_total"),
            "rss_mb": rss_mb(daemon.pid)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("liquidations", "prices"), default="liquidations")
    parser.add_argument("--rate", type=float, default=None,
                        help="liquidations a second (default 20000) or price frames a second "
                             "(default 1000)")
    parser.add_argument("--rows", type=int, default=20, help="rows per liquidation frame")
    parser.add_argument("--symbols", type=int, default=500, help="Bybit symbols (prices)")
    parser.add_argument("--mark-rows", type=int, default=600, help="Binance mark array rows")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--profile", metavar="PATH", default=None,
                        help="run the daemon under cProfile, its stats written to PATH at exit "
                             "(CPU figures then include the profiler's overhead)")
    parser.add_argument("--task-cpu", action="store_true",
                        help="print the daemon's thread CPU by event-loop task at its exit "
                             "(benchmarks/task_cpu/sitecustomize.py)")
    parser.add_argument("--tls", action="store_true",
                        help="push over wss:// (a self-signed certificate the daemon is told "
                             "to trust), as the venues do")
    parser.add_argument("--daemon-transport", choices=("websockets", "picows"),
                        default="websockets",
                        help="picows: the daemon with the prototype client of "
                             "benchmarks/picows_transport.py (run this script from a venv "
                             "with picows; see that file)")
    parser.add_argument("--uvloop", action="store_true",
                        help="the daemon on uvloop's event loop (a venv with uvloop)")
    args = parser.parse_args()
    if args.rate is None:
        args.rate = 1000.0 if args.mode == "prices" else 20_000.0
    r = asyncio.run(run(args))
    wall, cpu = r["wall"], r["cpu"]
    print(f"e2e {args.mode}: offered {args.rate:,.0f} {r['unit']}/s for {wall:.1f}s "
          f"({os.cpu_count()} CPUs); daemon client {args.daemon_transport}, "
          f"{'wss://' if args.tls else 'ws://'}"
          f"{', uvloop' if args.uvloop else ''}")
    print(f"  daemon: {r['frames'] / wall:,.0f} frames/s, {r['liquidations'] / wall:,.0f} "
          f"liquidations/s counted; CPU {cpu:.2f}s = {100 * cpu / wall:.1f}% of a core; "
          f"RSS {r['rss_mb']:.0f} MB")
    if r["liquidations"]:
        print(f"  liquidations per daemon CPU-second: {r['liquidations'] / cpu:,.0f}")
    print(f"  drops: ingest queue {r['ingest_dropped']:.0f}, store buffer "
          f"{r['store_dropped']:.0f}; invalid frames {r['invalid']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
