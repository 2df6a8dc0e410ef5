"""Faults: parsed from their CLI string, and injected over loopback as a client sees them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from monitor.simulator import Faults, Simulator, parse_faults
from monitor.simulator.faults import NO_FAULTS, faults_for
from monitor.simulator.scenarios.model import scripted_scenario
from tests.support.daemon import wait_until
from tests.support.probe import Tally, plans, run_probe
from tests.support.timing import T

TIMEOUT = 10 * T

# --- parsing -----------------------------------------------------------------------------------


def test_parse_the_cli_string() -> None:
    faults = Faults.parse("drop=5,malformed=0.01,venues=bybit")
    assert faults == Faults(drop_every_seconds=5.0, malformed_ratio=0.01,
                            venues=frozenset({"bybit"}))  # fmt: skip
    assert Faults.parse("silent").silent_after_ack is True
    assert Faults.parse("silent=false").silent_after_ack is False
    assert Faults.parse(" reject , duplicate=0.5 , seed=3") == Faults(
        reject_subscription=True, duplicate_ratio=0.5, seed=3
    )
    stall = Faults.parse("stall_after=10,stall=30,venues=okx+binance-usdm|hyperliquid")
    assert (stall.stall_after_seconds, stall.stall_seconds) == (10.0, 30.0)
    assert stall.venues == frozenset({"okx", "binance-usdm", "hyperliquid"})
    assert Faults.parse("") == NO_FAULTS and not NO_FAULTS.active and faults.active


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("explode=1", "unknown fault 'explode'"),
        ("drop", "needs a value"),
        ("drop=soon", "expected a number"),
        ("malformed=2", "between 0 and 1"),
        ("drop=-1", "must not be negative"),
        ("silent=maybe", "expected true or false"),
        ("venues=", "at least one venue"),
    ],
)
def test_parse_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Faults.parse(text)


def test_rule_sets_per_venue() -> None:
    rules = parse_faults("silent,venues=binance-usdm;drop=5,venues=bybit;duplicate=0.1")
    assert faults_for("binance-usdm", rules).silent_after_ack is True
    assert faults_for("bybit", rules).drop_every_seconds == 5.0
    assert faults_for("okx", rules).duplicate_ratio == 0.1  # the catch-all
    assert faults_for("okx", None) == NO_FAULTS
    assert (
        faults_for("okx", Faults(silent_after_ack=True, venues=frozenset({"bybit"}))) == NO_FAULTS
    )


def test_stall_window() -> None:
    stall = Faults(stall_after_seconds=10, stall_seconds=5)
    assert [stall.stalled(age) for age in (9.9, 10, 14.9, 15)] == [False, True, True, False]
    assert Faults(stall_after_seconds=1).stalled(10_000)


# --- over loopback -----------------------------------------------------------------------------


@pytest.fixture
async def make_sim() -> AsyncIterator[Any]:
    sims: list[Simulator] = []

    async def start(faults: Faults | Sequence[Faults], venues: Sequence[str],
                    speed: float = 60) -> Simulator:  # fmt: skip
        scenario = scripted_scenario(venues, duration_seconds=900, every_seconds=1.0)
        sim = Simulator(scenario, speed=speed, venues=venues, faults=faults)
        await sim.start()
        sims.append(sim)
        return sim

    yield start
    for sim in sims:
        await sim.aclose()


async def subscribed(sim: Simulator, venue: str) -> ClientConnection:
    plan = plans(venue)[0]
    ws = await websockets.connect(sim.ws_base_url(venue) + plan.path)
    for frame in plan.frames:
        await ws.send(frame)
    return ws


async def frames_for(ws: ClientConnection, seconds: float) -> list[str]:
    out: list[str] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                message = await ws.recv()
                out.append(message if isinstance(message, str) else message.decode())
    return out


async def test_drop_closes_each_connection_abruptly(make_sim: Any) -> None:
    sim = await make_sim(Faults(drop_every_seconds=0.3 * T), ["okx"])
    loop = asyncio.get_running_loop()
    for _ in range(2):  # and again after reconnecting
        started = loop.time()
        ws = await subscribed(sim, "okx")
        with pytest.raises(ConnectionClosedError) as info:
            async with asyncio.timeout(TIMEOUT):
                while True:
                    await ws.recv()
        assert info.value.rcvd is None  # no close frame: the TCP connection just went
        assert 0.25 * T <= loop.time() - started < 3 * T


async def test_silent_after_ack_answers_control_frames_only(make_sim: Any) -> None:
    sim = await make_sim(Faults(silent_after_ack=True, venues=frozenset({"bybit"})),
                         ["bybit", "okx"])  # fmt: skip
    bybit = await subscribed(sim, "bybit")
    okx = await subscribed(sim, "okx")
    ack = orjson.loads(await asyncio.wait_for(bybit.recv(), TIMEOUT))
    assert ack["success"] is True  # the ack still comes ...
    await bybit.send('{"op":"ping"}')
    pong = orjson.loads(await asyncio.wait_for(bybit.recv(), TIMEOUT))
    assert pong["ret_msg"] == "pong"  # ... and pongs
    assert await frames_for(bybit, 0.6 * T) == []  # but no data, not even the ticker snapshot
    okx_frames = await frames_for(okx, 0.6 * T)
    assert any('"details"' in f for f in okx_frames)  # another venue is unaffected
    assert sim.sent().count("bybit") == 0 and sim.sent().count("okx") > 0
    await bybit.close()
    await okx.close()


async def test_stall_keeps_the_socket_but_sends_nothing(make_sim: Any) -> None:
    sim = await make_sim(Faults(stall_after_seconds=0.4 * T), ["binance-usdm"])
    ws = await subscribed(sim, "binance-usdm")
    before = await frames_for(ws, 0.3 * T)
    assert any("forceOrder" in f for f in before)
    await asyncio.sleep(0.3 * T)
    # What was in flight when the stall began: 0.1 s x T to arrive (once 0.01 s, which a
    # loaded machine's loop can overrun before reading what is already in the socket).
    await frames_for(ws, 0.1 * T)
    assert await frames_for(ws, 0.6 * T) == []
    # The socket is alive: websocket pings are still answered.
    await asyncio.wait_for(await ws.ping(), TIMEOUT)
    await ws.close()


async def test_stall_ends_after_its_duration(make_sim: Any) -> None:
    # The quiet window below ends by 0.7 s x T of the connection's age on an idle machine;
    # the stall lasts to 1.7 s x T, so a loaded one has a second of slack (once 0.09 s).
    sim = await make_sim(Faults(stall_after_seconds=0.2 * T, stall_seconds=1.5 * T), ["okx"])
    ws = await subscribed(sim, "okx")
    await asyncio.sleep(0.3 * T)
    await frames_for(ws, 0.1 * T)  # whatever was queued before the stall
    quiet = await frames_for(ws, 0.3 * T)
    assert quiet == []
    # Then data again, once the stall has run its course.
    async with asyncio.timeout(TIMEOUT):
        while '"details"' not in await ws.recv():
            pass
    await ws.close()


@pytest.mark.parametrize("venue", ["bybit", "okx", "hyperliquid", "binance-usdm"])
async def test_malformed_and_duplicate_frames_never_count(make_sim: Any, venue: str) -> None:
    faults = Faults(malformed_ratio=0.3, duplicate_ratio=0.3, seed=1)
    sim = await make_sim(faults, [venue], speed=200)
    tally = Tally()
    stop = asyncio.Event()
    probe = asyncio.create_task(run_probe({venue: sim.ws_base_url(venue)}, tally, stop, [venue]))
    # Until both faults have shown a few times (once a fixed second: too short under load).
    await wait_until(lambda: tally.malformed > 5 and tally.duplicates > 5, TIMEOUT)
    await sim.aclose()  # stops sending; the probe sees the close
    stop.set()
    await probe
    assert tally.malformed > 5 and tally.duplicates > 5
    received = tally.totals()[venue]
    sent = sim.sent()
    for side in ("long", "short"):
        assert received[side]["count"] == sent.get(venue, side).count > 0
        assert received[side]["usd"] == pytest.approx(sent.get(venue, side).usd, abs=0.01)


async def test_reject_uses_each_venues_error_shape(make_sim: Any) -> None:
    venues = ["binance-usdm", "bybit", "okx", "hyperliquid"]
    sim = await make_sim(Faults(reject_subscription=True), venues)
    replies = {}
    for venue in venues:
        ws = await subscribed(sim, venue)
        replies[venue] = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if venue == "binance-usdm":
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), TIMEOUT)
        await ws.close()
    assert replies["binance-usdm"]["error"] == {"code": 2, "msg": "Invalid request: invalid stream"}
    assert replies["bybit"]["success"] is False
    assert replies["bybit"]["ret_msg"].startswith("error:handler not found,topic:")
    assert replies["okx"]["event"] == "error" and replies["okx"]["code"] == "60018"
    assert replies["hyperliquid"]["channel"] == "error"
    assert sim.sent().count() == 0
