"""The transport floor: CPU per pushed price frame, received by ever more of the daemon.

    .venv/bin/python benchmarks/transport.py [--rates 1000,10000] [--seconds 5] [--warmup 1]
        [--repeat 3] [--clients raw,websockets,reader]
    # with picows and uvloop, from a venv of the benchmark's own (never the project's):
    python3.11 -m venv .venv-bench-transport
    .venv-bench-transport/bin/pip install . picows uvloop
    .venv-bench-transport/bin/python benchmarks/transport.py
    # the reader's own work per frame, in process, without a socket:
    .venv/bin/python benchmarks/transport.py --in-process 60000 --repeat 5
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python \
        benchmarks/transport.py --in-process 40000 --repeat 1 --only read   # and 20000

One server (this process) pushes the same traffic to one client at a time (a child
process): real-shaped Bybit ticker deltas (the three shapes of benchmarks/e2e.py's price
mode, ~250-300 bytes, over 500 symbols) at each of ``--rates`` frames a second, written
every 5 ms as e2e.py's server does, pre-framed so that the server's own cost stays small.
Each client is measured by its own CPU time (user + system, ``getrusage``) from the end of
``--warmup`` seconds of frames to the last frame, divided by the frames read in between:

- ``raw``: a bare ``asyncio.Protocol`` after the HTTP upgrade, counting bytes: the socket
  reads and the event loop, no websocket framing at all;
- ``websockets``: websockets' client, ``await ws.recv()`` in a loop, the daemon's connect
  options: the library's framing and its ``recv`` machinery;
- ``reader``: the daemon's own reader, a ``ConnectionRunner`` (monitor/feed/supervisor.py)
  with the Bybit dialect and a 500-symbol instrument book, the daemon's ``Metrics`` as its
  observer (frames counted, ~1 in 3 frames carries a mark price) and a sink that drops
  what it is given: websockets plus parse plus the supervisor;
- ``picows``, ``reader-picows`` (when picows is importable): a bare picows client, and the
  same reader with the prototype client of benchmarks/picows_transport.py in place of
  websockets; each ``*`` row also with uvloop's event loop when uvloop is importable.

The differences between rows are what each layer costs: ``raw`` is the floor of this
machine's wake-ups, ``websockets − raw`` the library's framing, ``reader − websockets``
liqmon's own per-frame work. Rows are interleaved per repeat; the median is printed, with
the voluntary context switches per frame (how often the client slept and was woken).

``--in-process FRAMES`` runs ``ConnectionRunner._read`` itself over a connection whose
frames are all buffered (``recv`` never suspends), with the same book, observer and sink,
and the dialect's parse alone on the same frames: the difference is the supervisor's own
work per frame, free of the wake-ups that dominate the rows above.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

ROOT = Path(__file__).resolve().parents[1]
TICK_SECONDS = 0.005
SYMBOLS = 500
POLL_SECONDS = 0.02
SUBSCRIBE = '{"req_id":"bench","op":"subscribe","args":["tickers.SYM0USDT"]}'


# -- the frames -------------------------------------------------------------------------


def ticker_frames() -> list[str]:
    """Every symbol in every shape once: Bybit ticker deltas as benchmarks/e2e.py makes them
    (only the shapes with ``markPrice`` carry an event)."""
    from e2e import ticker_delta  # benchmarks/ is this script's directory

    frames = [ticker_delta(f"SYM{serial % SYMBOLS}USDT",
                           f"{80000.0 * (1 + (serial % 100) * 1e-5):.2f}", serial // SYMBOLS,
                           serial, 1_769_904_000_000 + serial)
              for serial in range(3 * SYMBOLS)]
    # Interleaved, so that every 5 ms batch has the mix a real stream has.
    return [frames[i // 3 + (i % 3) * SYMBOLS] for i in range(len(frames))]


def wire(text: str) -> bytes:
    """An unmasked, unfragmented server text frame (RFC 6455 5.2)."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


# -- the server (this process) -----------------------------------------------------------


class PushServer:
    def __init__(self, rate: float, total: int) -> None:
        self.rate = rate
        self.total = total
        self.frames = [wire(text) for text in ticker_frames()]

    async def handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            if ws.request is not None and ws.request.path.startswith("/sub"):
                request = orjson.loads(await ws.recv())
                await ws.send(orjson.dumps({"success": True, "ret_msg": "", "op": "subscribe",
                                            "req_id": request.get("req_id")}).decode())
            drain = asyncio.create_task(self._drain(ws))
            transport = ws.transport
            write = transport.write
            frames, count, loop = self.frames, len(self.frames), asyncio.get_running_loop()
            started, sent = loop.time(), 0
            while sent < self.total and not transport.is_closing():
                due = min(self.total, int((loop.time() - started) * self.rate))
                try:
                    while sent < due:
                        write(frames[sent % count])
                        sent += 1
                except RuntimeError:  # the client closed its side (write_eof): it is done
                    break
                await asyncio.sleep(TICK_SECONDS)
            await ws.wait_closed()
            drain.cancel()
        except ConnectionClosed:
            pass

    @staticmethod
    async def _drain(ws: Any) -> None:
        async for _message in ws:  # the reader's application pings, if any
            pass


# -- the clients (a child process each) --------------------------------------------------


class Meter:
    """CPU from the first poll that sees ``skip`` frames to the first that sees ``total``:
    each end is read at most POLL_SECONDS late, and the frames are counted at that moment."""

    def __init__(self, skip: int, total: int, count: Callable[[], float]) -> None:
        self.skip, self.total, self.count = skip, total, count
        self.start: tuple[float, resource.struct_rusage] | None = None
        self.result: dict[str, float] | None = None

    async def run(self) -> dict[str, float]:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            n = self.count()
            if self.start is None and n >= self.skip:
                self.start = (n, resource.getrusage(resource.RUSAGE_SELF))
            if self.start is not None and n >= self.total:
                n0, r0 = self.start
                r1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
                frames = n - n0
                return {"frames": frames, "cpu": cpu,
                        "vcsw": (r1.ru_nvcsw - r0.ru_nvcsw) / frames}


async def client_raw(url: str, meter_for: Callable[[Callable[[], float]], Meter],
                     frame_bytes: float) -> dict[str, float]:
    received = [0]
    header = [True]

    class Raw(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            key = base64.b64encode(os.urandom(16)).decode()
            cast(asyncio.WriteTransport, transport).write(
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n".encode())

        def data_received(self, data: bytes) -> None:
            if header[0]:
                header[0] = False
                data = data[data.index(b"\r\n\r\n") + 4:]
            received[0] += len(data)

    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    transport, _ = await asyncio.get_running_loop().create_connection(Raw, host, int(port))
    try:
        return await meter_for(lambda: received[0] / frame_bytes).run()
    finally:
        transport.close()


async def client_websockets(url: str, meter_for: Callable[[Callable[[], float]], Meter]
                            ) -> dict[str, float]:
    from websockets.asyncio.client import connect

    from monitor.feed.supervisor import PROTOCOL_PING_SECONDS

    count = [0]
    async with connect(url, open_timeout=None, ping_interval=PROTOCOL_PING_SECONDS,
                       ping_timeout=PROTOCOL_PING_SECONDS, close_timeout=1.0,
                       max_size=16 * 1024 * 1024, compression=None, proxy=None) as ws:
        async def read() -> None:
            recv = ws.recv
            while True:
                await recv()
                count[0] += 1

        reader = asyncio.create_task(read())
        try:
            return await meter_for(lambda: count[0]).run()
        finally:
            reader.cancel()


async def client_picows(url: str, meter_for: Callable[[Callable[[], float]], Meter]
                        ) -> dict[str, float]:
    import picows

    count = [0]
    text = picows.WSMsgType.TEXT

    class Listener(picows.WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type is text:
                frame.get_payload_as_utf8_text()
                count[0] += 1

    transport, _ = await picows.ws_connect(Listener, url)
    try:
        return await meter_for(lambda: count[0]).run()
    finally:
        transport.disconnect()


async def client_reader(url: str, meter_for: Callable[[Callable[[], float]], Meter],
                        picows_client: bool) -> dict[str, float]:
    from prometheus_client import CollectorRegistry

    from monitor.clock import SystemClock
    from monitor.feed.ports import Event
    from monitor.feed.supervisor import ConnectionRunner, FeedTiming
    from monitor.metrics import Metrics
    from monitor.venues import make_dialect
    from monitor.venues.dialect import ConnectionPlan, VenueSettings
    from monitor.venues.instruments import ContractKind, InstrumentBook, InstrumentSpec

    if picows_client:
        import picows_transport

        picows_transport.install()

    class Drop:
        def put(self, venue: str, events: list[Event]) -> None:
            pass

    dialect = make_dialect("bybit", VenueSettings())
    book = InstrumentBook("bybit", [
        InstrumentSpec("bybit", f"SYM{i}USDT", "BTC", ContractKind.LINEAR, 1.0, "USDT",
                       category="linear") for i in range(SYMBOLS)])
    plan = ConnectionPlan("bybit-linear-0", url, (SUBSCRIBE,), expected_acks=1)
    metrics = Metrics(CollectorRegistry(), ["bybit"], ["BTC"], process_metrics=False)
    timing = FeedTiming(60.0, 10.0, 10.0, 1.0, 30.0, 60.0, 0.0)
    runner = ConnectionRunner(dialect, plan, lambda: dialect.session(book, plan), Drop(),
                              metrics, SystemClock(), timing)
    task = asyncio.create_task(runner.run())
    try:
        return await meter_for(metrics.frames_total).run()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def run_client(args: argparse.Namespace) -> None:
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    frame_bytes = statistics.fmean(len(wire(text)) for text in ticker_frames())

    def meter_for(count: Callable[[], float]) -> Meter:
        return Meter(args.skip, args.total, count)

    url = args.url
    clients: dict[str, Callable[[], Any]] = {
        "raw": lambda: client_raw(url, meter_for, frame_bytes),
        "websockets": lambda: client_websockets(url, meter_for),
        "picows": lambda: client_picows(url, meter_for),
        "reader": lambda: client_reader(url, meter_for, picows_client=False),
        "reader-picows": lambda: client_reader(url, meter_for, picows_client=True),
    }
    result = asyncio.run(asyncio.wait_for(clients[args.client](), args.timeout))
    print(json.dumps(result), flush=True)


# -- in process: the reader's own work, no socket ----------------------------------------


class Buffered:
    """A connection whose frames are all buffered: ``recv`` never suspends (websockets' own
    ``recv`` does not either when a frame is waiting), and a normal close ends it."""

    def __init__(self, frames: list[str]) -> None:
        self._next = iter(frames).__next__

    async def recv(self) -> str:
        try:
            return self._next()
        except StopIteration:
            from websockets.exceptions import ConnectionClosedOK

            raise ConnectionClosedOK(None, None) from None

    async def send(self, message: str) -> None:
        pass

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


def in_process(frames: int, repeat: int, only: str | None) -> None:
    """Thread CPU per frame of ``ConnectionRunner._read`` over buffered frames (the reader
    with parse, the observer and the sink), and of the dialect's parse alone on the same
    frames; best of ``repeat``. Their difference is the supervisor's own work per frame.
    ``only`` runs one of the two, for instruction counts (see ``main``'s help)."""
    from prometheus_client import CollectorRegistry

    from monitor.clock import SystemClock
    from monitor.feed.ports import Event
    from monitor.feed.supervisor import ConnectionRunner, FeedTiming
    from monitor.metrics import Metrics
    from monitor.venues import make_dialect
    from monitor.venues.dialect import ConnectionPlan, VenueSettings
    from monitor.venues.instruments import ContractKind, InstrumentBook, InstrumentSpec

    class Drop:
        def put(self, venue: str, events: list[Event]) -> None:
            pass

    texts = ticker_frames()
    stream = [texts[i % len(texts)] for i in range(frames)]
    dialect = make_dialect("bybit", VenueSettings())
    book = InstrumentBook("bybit", [
        InstrumentSpec("bybit", f"SYM{i}USDT", "BTC", ContractKind.LINEAR, 1.0, "USDT",
                       category="linear") for i in range(SYMBOLS)])
    plan = ConnectionPlan("bybit-linear-0", "ws://127.0.0.1:1/sub", (SUBSCRIBE,),
                          expected_acks=1)
    timing = FeedTiming(60.0, 10.0, 10.0, 1.0, 30.0, 60.0, 0.0)

    async def read() -> float:
        metrics = Metrics(CollectorRegistry(), ["bybit"], ["BTC"], process_metrics=False)
        runner = ConnectionRunner(dialect, plan, lambda: dialect.session(book, plan), Drop(),
                                  metrics, SystemClock(), timing)
        ws: Any = Buffered(stream)
        started = time.thread_time()
        reason, _ = await runner._read(ws, dialect.session(book, plan), time.monotonic())
        cpu = time.thread_time() - started
        assert reason == "closed" and metrics.frames_total() == frames, reason
        return cpu

    def parse() -> float:
        session = dialect.session(book, plan)
        wall = time.time
        started = time.thread_time()
        for text in stream:
            session.parse(text, wall())
        return time.thread_time() - started

    reads, parses = [], []
    for _ in range(repeat):
        if only != "parse":
            reads.append(asyncio.run(read()) / frames * 1e6)
        if only != "read":
            parses.append(parse() / frames * 1e6)
    print(f"in process, {frames:,} buffered Bybit ticker frames, best of {repeat} "
          "(thread CPU, µs per frame):")
    for name, runs in (("ConnectionRunner._read", reads), ("session.parse alone", parses)):
        if runs:
            print(f"  {name:<22} {min(runs):.2f} ({' / '.join(f'{v:.2f}' for v in runs)})")
    if reads and parses:
        print(f"  the reader's own work  {min(reads) - min(parses):.2f}")


# -- the driver --------------------------------------------------------------------------


def importable(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def variants(names: list[str]) -> list[tuple[str, str]]:
    out = []
    for name in names:
        if name.endswith("picows") and not importable("picows"):
            continue
        out.append((name, "asyncio"))
        if importable("uvloop"):
            out.append((name, "uvloop"))
    return out


async def measure(client: str, loop: str, rate: float, seconds: float, warmup: float
                  ) -> dict[str, float]:
    from websockets.asyncio.server import serve

    skip, total = int(rate * warmup), int(rate * (warmup + seconds))
    server = PushServer(rate, total + int(rate * 0.2))  # the last poll may come after
    async with serve(server.handle, "127.0.0.1", 0, compression=None) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        path = "/sub" if client.startswith("reader") else "/"
        child = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--client", client, "--loop", loop,
            "--url", f"ws://127.0.0.1:{port}{path}", "--skip", str(skip), "--total", str(total),
            "--timeout", str(warmup + seconds + 30.0),
            stdout=subprocess.PIPE, cwd=ROOT)
        out, _ = await child.communicate()
    if child.returncode != 0:
        raise RuntimeError(f"client {client} ({loop}) exited with {child.returncode}")
    result: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="1000,10000", help="frames a second, comma-separated")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", default="raw,websockets,reader,picows,reader-picows")
    parser.add_argument("--in-process", type=int, default=0, metavar="FRAMES",
                        help="instead: the reader's own work per frame, in process, over "
                             "FRAMES buffered frames (no socket)")
    parser.add_argument("--only", choices=("read", "parse"), default=None,
                        help="with --in-process: run only one of the two (instruction counts: "
                             "callgrind at 40,000 and 20,000 frames, --repeat 1, the "
                             "difference divided by 20,000)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="asyncio", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--skip", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--timeout", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.in_process:
        in_process(args.in_process, args.repeat, args.only)
        return 0
    if args.client:
        run_client(args)
        return 0
    rows = variants([c.strip() for c in args.clients.split(",") if c.strip()])
    rates = [float(r) for r in args.rates.split(",")]
    print(f"transport floor: Bybit ticker deltas pushed over loopback, {args.seconds:g} s "
          f"after {args.warmup:g} s of warm-up, median of {args.repeat}; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    for rate in rates:
        results: dict[tuple[str, str], list[dict[str, float]]] = {row: [] for row in rows}
        for _ in range(args.repeat):
            for client, loop in rows:
                results[(client, loop)].append(
                    asyncio.run(measure(client, loop, rate, args.seconds, args.warmup)))
        print(f"  {rate:,.0f} frames/s: client, loop: CPU µs per frame (runs) -> % of a core; "
              "voluntary context switches per frame")
        for (client, loop), runs in results.items():
            per_frame = [r["cpu"] / r["frames"] * 1e6 for r in runs]
            mid = statistics.median(per_frame)
            print(f"    {client:<14} {loop:<8} {mid:6.1f} µs "
                  f"({' / '.join(f'{v:.1f}' for v in per_frame)}) -> "
                  f"{mid * rate / 1e4:5.1f} %; "
                  f"{statistics.median(r['vcsw'] for r in runs):.2f} cs/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
