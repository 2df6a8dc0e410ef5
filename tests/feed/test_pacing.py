"""Paced reads (monitor/feed/pacing.py) against real websockets servers on loopback, over
ws:// and over wss:// with a throwaway certificate: a quiet connection's socket is read a
pause after its reader caught up, a burst's at once, nothing is lost or reordered, a close
does not wait the pause out, and under TLS the socket itself stops being read."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

from monitor.clock import SystemClock
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.feed.pacing import PACED_MAX_QUEUE, PacedTransport, paced_connection
from monitor.feed.ports import EventSink
from monitor.feed.supervisor import ConnectionRunner, FeedTiming
from monitor.metrics import Metrics
from monitor.venues import make_dialect
from monitor.venues.dialect import ConnectionPlan, DialectSession, VenueSettings
from monitor.venues.instruments import ContractKind, InstrumentBook, InstrumentSpec
from tests.support.timing import T

Handler = Callable[[ServerConnection], Awaitable[None]]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost (scripts/setup-test-env installs openssl)."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "localhost.pem", directory / "localhost.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return cert, key


@asynccontextmanager
async def server(
    handler: Handler, tls: bool, certificate: tuple[Path, Path]
) -> AsyncIterator[tuple[str, ssl.SSLContext | None]]:
    """The server's URL, and the client's TLS context (None for ws://)."""
    server_tls = client_tls = None
    if tls:
        server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_tls.load_cert_chain(*certificate)
        client_tls = ssl.create_default_context(cafile=str(certificate[0]))
    async with serve(handler, "127.0.0.1", 0, ssl=server_tls, compression=None) as srv:
        port = srv.sockets[0].getsockname()[1]
        yield f"{'wss' if tls else 'ws'}://localhost:{port}", client_tls


def counting(pause: float) -> type[ClientConnection]:
    """The paced connection class, counting what the transport hands websockets."""

    class Counting(paced_connection(pause)):  # type: ignore[misc]
        reads = 0

        def data_received(self, data: bytes) -> None:
            Counting.reads += 1
            super().data_received(data)

    return Counting


async def open_paced(url: str, client_tls: ssl.SSLContext | None, pause: float,
                     **kwargs: Any) -> ClientConnection:
    return await connect(url, ssl=client_tls, compression=None, max_queue=PACED_MAX_QUEUE,
                         create_connection=counting(pause), **kwargs)


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
@pytest.mark.parametrize("at_once", [False, True], ids=["quiet", "burst"])
async def test_the_next_read_waits_the_pause_unless_the_last_carried_a_burst(
    tls: bool, at_once: bool, certificate: tuple[Path, Path]
) -> None:
    pause = 2.0 * T

    async def handler(ws: ServerConnection) -> None:
        # The read after the handshake follows a write (the client's upgrade request), so
        # it is not paced: the pause starts once "second" has been taken.
        for message in ("first", "second", "third"):
            await ws.send(message)
            await asyncio.sleep(0.2 * T)
        await ws.wait_closed()

    async with server(handler, tls, certificate) as (url, client_tls):
        ws = await open_paced(url, client_tls, pause)
        try:
            assert await ws.recv() == "first"
            assert await ws.recv() == "second"
            if at_once:  # what the reader does once it has taken a liquidation
                transport = ws.transport
                assert isinstance(transport, PacedTransport)
                transport.read_now()
            took = time.monotonic()
            assert await asyncio.wait_for(ws.recv(), 5 * pause) == "third"
            waited = time.monotonic() - took
        finally:
            await ws.close()
    if at_once:
        assert waited < pause / 2
    else:
        assert waited >= pause * 0.85



async def test_a_liquidation_taken_while_frames_wait_makes_the_next_read_immediate(
    certificate: tuple[Path, Path]
) -> None:
    """read_now while websockets' queue is not empty (no pause pending yet): the resume
    that follows when the reader empties the queue is not paced."""
    pause = 3.0 * T

    async def handler(ws: ServerConnection) -> None:
        await ws.send("first")  # read at once: the client wrote its upgrade request
        await asyncio.sleep(0.2 * T)
        await ws.send("second")  # taken, then a pause
        await asyncio.sleep(0.2 * T)
        await ws.send("a")  # both wait in the kernel: one read brings them
        await ws.send("b")
        await asyncio.sleep(pause + 0.5 * T)
        await ws.send("c")
        await ws.wait_closed()

    async with server(handler, False, certificate) as (url, client_tls):
        ws = await open_paced(url, client_tls, pause)
        try:
            for expected in ("first", "second", "a"):
                assert await asyncio.wait_for(ws.recv(), 5 * pause) == expected
            transport = ws.transport
            assert isinstance(transport, PacedTransport)
            transport.read_now()  # "a" was a liquidation; "b" still waits in the queue
            assert await asyncio.wait_for(ws.recv(), 5 * pause) == "b"
            took = time.monotonic()
            assert await asyncio.wait_for(ws.recv(), 5 * pause) == "c"
            waited = time.monotonic() - took
        finally:
            await ws.close()
    assert waited < pause / 2, waited  # "c" came ~0.5 s after "b"; paced it would be ~3 s

@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
async def test_a_reply_to_what_the_connection_sent_is_read_when_it_comes(
    tls: bool, certificate: tuple[Path, Path]
) -> None:
    pause = 5.0 * T

    async def handler(ws: ServerConnection) -> None:
        await ws.send("first")  # read at once: the client wrote its upgrade request
        await asyncio.sleep(0.2 * T)
        await ws.send("second")  # paced from here
        async for request in ws:  # a subscription, a ping: answered at once
            text = request if isinstance(request, str) else request.decode()
            await ws.send(f"re: {text}")

    async with server(handler, tls, certificate) as (url, client_tls):
        ws = await open_paced(url, client_tls, pause)
        try:
            assert await ws.recv() == "first"
            assert await ws.recv() == "second"
            await asyncio.sleep(0.1)  # the socket is paused, its resume 5 s away
            took = time.monotonic()
            await ws.send("subscribe")
            assert await asyncio.wait_for(ws.recv(), 5 * pause) == "re: subscribe"
            waited = time.monotonic() - took
        finally:
            await ws.close()
    assert waited < pause / 5


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
async def test_a_quiet_stream_is_read_once_a_pause_and_loses_nothing(
    tls: bool, certificate: tuple[Path, Path]
) -> None:
    bursts, per_burst, gap, pause = 60, 5, 0.005, 0.1

    async def handler(ws: ServerConnection) -> None:
        for burst in range(bursts):
            for i in range(per_burst):
                await ws.send(f"{burst}.{i}")
            await asyncio.sleep(gap)
        await ws.send("end")
        await ws.wait_closed()

    async with server(handler, tls, certificate) as (url, client_tls):
        ws = await open_paced(url, client_tls, pause)
        got = []
        try:
            while (message := await asyncio.wait_for(ws.recv(), 30 * T)) != "end":
                got.append(message)
        finally:
            await ws.close()
    assert got == [f"{b}.{i}" for b in range(bursts) for i in range(per_burst)]
    # 60 bursts over >= 0.3 s: read as they came, ~60 reads; paced, about one a 0.1 s.
    assert type(ws).reads <= bursts // 4, type(ws).reads  # type: ignore[attr-defined]


async def test_nothing_is_read_while_frames_wait_for_the_reader(
    certificate: tuple[Path, Path]
) -> None:
    async def handler(ws: ServerConnection) -> None:
        for i in range(200):
            await ws.send(f"{i}")
            await asyncio.sleep(0.001)
        await ws.wait_closed()

    async with server(handler, False, certificate) as (url, client_tls):
        ws = await open_paced(url, client_tls, 0.01)
        try:
            await asyncio.sleep(0.5)  # the reader is away: frames wait in the kernel
            reads_while_away = type(ws).reads  # type: ignore[attr-defined]
            got = [await asyncio.wait_for(ws.recv(), 10 * T) for _ in range(200)]
        finally:
            await ws.close()
    # The handshake's read, then the read that brought the first frame: websockets' queue
    # is not empty from then on, so its transport stays paused until the reader comes.
    assert reads_while_away <= 2, reads_while_away
    assert got == [f"{i}" for i in range(200)]


async def test_under_tls_the_socket_is_not_read_while_paused(
    certificate: tuple[Path, Path]
) -> None:
    frames, pause = 150, 5.0 * T
    sent = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send("first")
        await asyncio.sleep(0.2 * T)  # the client took "first": its socket is paused by now
        for i in range(frames):  # ~1 kB each, over ~0.3 s, into the paused connection
            await ws.send(f"{i:04d}" + "x" * 1000)
            await asyncio.sleep(0.002)
        sent.set()
        await ws.wait_closed()

    async with server(handler, True, certificate) as (url, client_tls):
        ws = await open_paced(url, client_tls, pause)
        try:
            assert await ws.recv() == "first"
            await asyncio.wait_for(sent.wait(), 30 * T)
            await asyncio.sleep(0.1)
            transport = ws.transport
            assert isinstance(transport, PacedTransport)
            tls_transport: Any = transport._transport
            # Without the lowered high-water mark asyncio's TLS layer would have read all
            # ~150 kB into its buffer; paced, the first packet after the pause stops it.
            buffered = tls_transport.get_read_buffer_size()
            assert buffered < 50_000, buffered
            limits_paused = tls_transport.get_read_buffer_limits()
            transport._resume_now()  # what the pause's timer does
            limits_reading = tls_transport.get_read_buffer_limits()
            got = [await asyncio.wait_for(ws.recv(), 10 * T) for _ in range(frames)]
        finally:
            await ws.close()
    assert [g[:4] for g in got] == [f"{i:04d}" for i in range(frames)]
    assert limits_paused == (0, 1)
    # Put back as they were (asyncio's defaults: 64 KiB low, 256 KiB high) before reading.
    assert limits_reading == (64 * 1024, 256 * 1024)


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
async def test_a_close_does_not_wait_out_the_pause_or_the_waiting_frames(
    tls: bool, certificate: tuple[Path, Path]
) -> None:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))

    async def handler(ws: ServerConnection) -> None:
        for i in range(50):
            await ws.send(f"{i}")
        with suppress(Exception):  # the client's close ends it
            await ws.wait_closed()

    async with server(handler, tls, certificate) as (url, client_tls):
        ws = await open_paced(url, client_tls, 30.0, close_timeout=10.0)
        assert await ws.recv() == "0"  # the other 49 wait; a resume may be pending
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await ws.close()
        closed_in = time.monotonic() - started
    assert closed_in < 2.0 * T, closed_in  # not the 10 s close timeout, nor the 30 s pause
    assert ws.close_code == 1000
    await asyncio.sleep(0.05)
    assert errors == []


def test_the_read_pause_is_configured_in_milliseconds_within_bounds() -> None:
    assert load_config(None, env={}).feed.read_pause_ms == 50.0
    assert load_config(None, env={"LIQMON_FEED__READ_PAUSE_MS": "0"}).feed.read_pause_ms == 0
    for bad in ("-1", "1001"):
        with pytest.raises(ConfigError) as info:
            load_config(None, env={"LIQMON_FEED__READ_PAUSE_MS": bad})
        assert info.value.key == "feed.read_pause_ms"
        assert bad in str(info.value)


def bybit_runner(sink: EventSink, pause: float) -> tuple[ConnectionRunner, DialectSession]:
    """A ConnectionRunner for one Bybit linear connection (BTCUSDT known), and a session."""
    dialect = make_dialect("bybit", VenueSettings())
    book = InstrumentBook("bybit", [InstrumentSpec("bybit", "BTCUSDT", "BTC",
                                                   ContractKind.LINEAR, 1.0, "USDT",
                                                   category="linear")])
    plan = ConnectionPlan("bybit-linear-0", "ws://127.0.0.1:1/x", ("x",), expected_acks=1)
    runner = ConnectionRunner(
        dialect, plan, lambda: dialect.session(book, plan), sink,
        Metrics(CollectorRegistry(), ["bybit"], ["BTC"], process_metrics=False),
        SystemClock(), FeedTiming(60.0, 10.0, 10.0, 1.0, 30.0, 60.0, 0.0, pause))
    return runner, dialect.session(book, plan)


def test_a_read_that_brought_a_liquidation_makes_the_next_read_immediate() -> None:
    from monitor.feed.ports import Event

    class Sink:
        def put(self, venue: str, events: list[Event]) -> None:
            pass

    runner, session = bybit_runner(Sink(), 0.02)
    ts = int(time.time() * 1000)
    liquidation = orjson.dumps({"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": ts,
                                "data": [{"T": ts, "s": "BTCUSDT", "S": "Buy", "v": "0.5",
                                          "p": "80000.00"}]}).decode()

    def ticker(mark: str) -> str:
        return orjson.dumps({"topic": "tickers.BTCUSDT", "type": "delta", "cs": 1, "ts": ts,
                             "data": {"symbol": "BTCUSDT", "markPrice": mark}}).decode()

    counted = [0]

    def read(*texts: str) -> bool:
        """Whether these frames carried a liquidation: what makes the reader read at once."""
        for text in texts:
            runner._frames.take(session, text, time.monotonic(), time.time())
        seen, counted[0] = counted[0], runner._frames.liquidation_frames
        return seen != counted[0]

    assert read(ticker("80000.10")) is False  # a mark price: quiet
    assert read(liquidation) is True
    assert read() is False  # nothing new since: quiet again
    assert read(ticker("80000.20"), liquidation, ticker("80000.30")) is True
    assert read(ticker("80000.40")) is False


async def test_the_read_after_a_lone_liquidation_frame_is_not_paced(
    certificate: tuple[Path, Path]
) -> None:
    """Through the runner's reader: a liquidation that came alone in its read is parsed
    after websockets decided the next read (when the frame left its queue), so the reader
    resumes reading once it has taken it; the next liquidation is not held a pause."""
    from monitor.events import Liquidation
    from monitor.feed.ports import Event

    pause = 3.0 * T
    arrived: dict[str, float] = {}
    both = asyncio.Event()

    class Sink:
        def put(self, venue: str, events: list[Event]) -> None:
            for e in events:
                if isinstance(e, Liquidation):
                    arrived[str(e.qty_base)] = time.monotonic()
            if len(arrived) == 2:
                both.set()

    def frame(qty: str) -> str:
        ts = int(time.time() * 1000)
        return orjson.dumps({"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": ts,
                             "data": [{"T": ts, "s": "BTCUSDT", "S": "Buy", "v": qty,
                                       "p": "80000.00"}]}).decode()

    sent: dict[str, float] = {}

    def ticker() -> str:  # a delta without a mark price: no event
        return orjson.dumps({"topic": "tickers.BTCUSDT", "type": "delta", "cs": 1,
                             "ts": int(time.time() * 1000),
                             "data": {"symbol": "BTCUSDT", "bid1Price": "80000.0"}}).decode()

    async def handler(ws: ServerConnection) -> None:
        # The first read follows the handshake's write and is not paced; from the second
        # on the connection is quiet.
        for _ in range(2):
            await ws.send(ticker())
            await asyncio.sleep(0.3 * T)
        # Each liquidation alone in its read: the first waits the pause, the second is
        # sent once the first has been read.
        await ws.send(frame("0.5"))
        sent["0.5"] = time.monotonic()
        await asyncio.sleep(pause + 0.5 * T)
        await ws.send(frame("0.7"))
        sent["0.7"] = time.monotonic()
        await ws.wait_closed()

    runner, session = bybit_runner(Sink(), pause)
    async with server(handler, False, certificate) as (url, _no_tls):
        ws = await connect(url, compression=None, max_queue=PACED_MAX_QUEUE,
                           create_connection=paced_connection(pause))
        reader = asyncio.create_task(runner._read(ws, session, time.monotonic()))
        try:
            await asyncio.wait_for(both.wait(), 10 * pause)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await ws.close()
    first, second = arrived["0.5"] - sent["0.5"], arrived["0.7"] - sent["0.7"]
    assert first >= pause * 0.7, first  # the first read of the burst waited the pause
    assert second < pause / 3, second  # the next did not
