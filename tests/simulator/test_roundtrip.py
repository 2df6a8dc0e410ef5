"""The simulator's encoders are the inverse of the dialects: parse(encode(event)) == event.

Every simulated venue, from one table of what differs between them (completeness, throttles,
hosts, keepalives): one long and one short liquidation on each listing read back sans I/O, and
a calm scenario through the real server to the connection supervisor. The per-venue files
keep only what is particular to a venue.

Sans I/O first (a hypothesis property over every listing of the five venues: the frame a
subscribed connection would receive, read by the venue's dialect), then over loopback (the
feb-2026 scenario through each dialect's own REST requests, plans and sessions: what the
dialects read equals what the simulator counted as sent, per venue and side, to the cent).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings, strategies as st

from monitor.errors import FrameError
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.simulator import Simulator, build_scenario
from monitor.simulator.catalogue import COIN_PRICES_USD, Listing, listings
from monitor.simulator.scenarios.model import ScenarioEvent, liquidation_event
from monitor.simulator.venue_sim import Liq, SimNow, VenueSim
from monitor.simulator.venues import SIMULATORS
from monitor.venues import VENUES, make_dialect
from monitor.venues.dialect import Ack, Dialect, DialectSession, Item, Pong, Reply, VenueSettings
from tests.support.simroundtrip import (
    Connected,
    Keeping,
    assert_matches,
    assert_received_what_was_sent,
    book_from_sim,
    connect_all,
    fetch_book,
    offline_roundtrip,
    scenario_events,
    through_supervisor,
    venue_sim,
)
from tests.support.timing import T

FIVE = ("binance-usdm", "binance-coinm", "bybit", "okx", "hyperliquid")
BASE_MS = 1_769_904_000_000


@dataclass
class Wire:
    """One venue: its simulator, the dialect, and the subscribed connections of its plans."""

    venue: str
    sim: VenueSim
    dialect: Dialect
    connections: list[Connected]
    clock: Iterator[int]


_WIRES: dict[str, Wire] = {}


def wire(venue: str) -> Wire:
    if venue not in _WIRES:
        sim = venue_sim(venue, mark_interval_ms=1_000_000)
        dialect = make_dialect(venue)
        connections = connect_all(sim, dialect, book_from_sim(sim, dialect), SimNow(BASE_MS, 0.0))
        _WIRES[venue] = Wire(venue, sim, dialect, connections, itertools.count(BASE_MS, 5_000))
    return _WIRES[venue]


def round_trip(venue: str, event: ScenarioEvent) -> list[Liquidation]:
    w = wire(venue)
    ts_ms = next(w.clock)
    w.sim.on_liquidation(Liq(1, event, ts_ms))
    publications = w.sim.flush(SimNow(ts_ms + 1_000, 0.0), final=True)
    parsed = []
    for conn in w.connections:
        for pub in publications:
            text = conn.session.render(pub)
            if text is None:
                continue
            assert isinstance(text, str)
            items = conn.reader.parse(text, ts_ms / 1000 + 0.5)
            parsed += [item for item in items if isinstance(item, Liquidation)]
    return parsed


@st.composite
def liquidations(draw: st.DrawFn) -> ScenarioEvent:
    venue = draw(st.sampled_from(FIVE))
    item: Listing = draw(st.sampled_from(listings(venue)))
    side = draw(st.sampled_from(PositionSide))
    price = COIN_PRICES_USD[item.coin] * draw(st.floats(0.3, 3.0))
    usd = draw(st.floats(50.0, 300e6))
    return liquidation_event(0.0, venue, item, side, price, usd, 0.0)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(liquidations())
def test_parse_of_encode_gives_back_the_event(event: ScenarioEvent) -> None:
    parsed = round_trip(event.venue, event)
    assert len(parsed) == 1, parsed
    (liq,) = parsed
    assert (liq.venue, liq.instrument, liq.coin, liq.position_side) == (
        event.venue, event.instrument, event.coin, event.position_side,
    )  # fmt: skip
    assert abs(liq.notional_usd - event.notional_usd) <= 0.01
    assert liq.qty_base == pytest.approx(event.qty_base, rel=1e-9)
    assert liq.price == pytest.approx(event.price, rel=1e-9)


@pytest.mark.parametrize("venue", FIVE)
def test_every_listing_round_trips(venue: str) -> None:
    for item in listings(venue):
        for side in PositionSide:
            event = liquidation_event(0.0, venue, item, side, COIN_PRICES_USD[item.coin], 25_000,
                                      0.001)  # fmt: skip
            (liq,) = round_trip(venue, event)
            assert (liq.instrument, liq.position_side) == (item.symbol, side)
            assert abs(liq.notional_usd - event.notional_usd) <= 0.01


# --- every venue: the facts that differ, one round trip for all ----------------------------------


@dataclass(frozen=True)
class Keepalive:
    """How a test makes a venue's keepalive fast, and what shows it was answered: a ``Pong``
    (the server answered the dialect's ping) or a ``Reply`` (the dialect answered the server)."""

    setting: str  # a dotted name, monkeypatched to ``value``
    value: float
    answer: type[Item]
    at_least: int = 1


@dataclass(frozen=True)
class Facts:
    completeness: str = "full"
    qty_rel_tol: float = 1e-9
    # A second apart where the venue pushes at most one liquidation per contract per second.
    spacing_ms: int = 10
    connections: int = 1
    # BitMEX rows carry no time: the dialect stamps the arrival time (1.0 s here).
    arrival_stamped: bool = False
    keepalive: Keepalive | None = None
    symbols: tuple[str, ...] = ()  # configured for the supervised play
    speed: float = 600.0
    linger_seconds: float = 0.0
    marks: bool = True  # the dialect subscribes a price stream


FACTS: dict[str, Facts] = {
    "binance-usdm": Facts(completeness="throttled", spacing_ms=1000),
    "binance-coinm": Facts(completeness="throttled", spacing_ms=1000),
    "bybit": Facts(connections=2),  # linear and inverse
    "okx": Facts(completeness="throttled", spacing_ms=1000,
                 connections=2),  # liquidations apart from the long price list
    "hyperliquid": Facts(completeness="backstop"),  # the vaults' liquidation fills
    "kraken-futures": Facts(),
    "bitmex": Facts(arrival_stamped=True,
                    keepalive=Keepalive("monitor.venues.bitmex.Bitmex.ping_interval_seconds",
                                        0.05, Pong)),
    # A 10 s heartbeat becomes 0.1 s of wall time: several test_requests during the play,
    # each answered, so the server never closes the socket.
    "deribit": Facts(keepalive=Keepalive("monitor.simulator.venues.deribit.HEARTBEAT_WALL_SCALE",
                                         0.01, Reply, at_least=3), linger_seconds=0.3),
    # Per-second aggregation keeps the largest long and short: one of each survives.
    "bitget": Facts(completeness="aggregated", qty_rel_tol=1e-6,
                    keepalive=Keepalive("monitor.venues.bitget.Bitget.ping_interval_seconds",
                                        0.05, Pong)),
    # socks' subscription limits: three markets, a slower play.
    "dydx": Facts(symbols=("BTC-USD", "ETH-USD", "SOL-USD"), speed=400.0),
    # One connection per notification host; about 25 server pings per connection answered.
    "htx": Facts(connections=3, linger_seconds=0.5, marks=False,
                 keepalive=Keepalive("monitor.simulator.venues.htx.PING_INTERVAL_SECONDS", 0.1,
                                     Reply)),
    # One connection per settle host (usdt, btc, usd1); every liquidation, batched.
    "gate": Facts(completeness="full", connections=3,
                  keepalive=Keepalive("monitor.venues.gate.Gate.ping_interval_seconds", 0.05,
                                      Pong)),
}
SUPERVISED = ("kraken-futures", "bitmex", "deribit", "bitget", "dydx", "htx", "gate")


def test_every_simulated_venue_has_its_facts() -> None:
    assert set(FACTS) == set(SIMULATORS) == set(VENUES) - {"hyperliquid-node"}


@pytest.mark.parametrize("venue", sorted(FACTS))
def test_every_liquidation_round_trips(venue: str) -> None:
    facts = FACTS[venue]
    liqs, got, conns = offline_roundtrip(venue, scenario_events(venue),
                                         spacing_ms=facts.spacing_ms)
    assert len(conns) == facts.connections
    assert len(got) == len(liqs) == 2 * len(listings(venue))
    assert len({g.event_id for g in got}) == len(got)
    by_key: dict[tuple[str, PositionSide | None], Liquidation] = {
        (g.instrument, g.position_side): g for g in got}
    for liq in liqs:
        assert_matches(by_key[(liq.event.instrument, liq.event.position_side)], liq,
                       completeness=facts.completeness, qty_rel_tol=facts.qty_rel_tol,
                       exchange_ts_ms=1000 if facts.arrival_stamped else None)


@pytest.mark.parametrize("venue", SUPERVISED)
async def test_a_scenario_through_the_supervisor(venue: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    facts = FACTS[venue]
    answers = Keeping(facts.keepalive.answer if facts.keepalive else Pong)
    if facts.keepalive is not None:
        monkeypatch.setattr(facts.keepalive.setting, facts.keepalive.value)
    settings = VenueSettings(symbols=facts.symbols) if facts.symbols else None
    played = await through_supervisor(venue, settings=settings, speed=facts.speed,
                                      linger_seconds=facts.linger_seconds,
                                      session_factory=answers)
    assert_received_what_was_sent(played, venue)
    assert played.observer.reconnects == []
    assert all(r.subscribed for r in played.runners)
    liquidations = played.liquidations().values()
    assert all(e.completeness == facts.completeness for e in liquidations)
    assert {e.position_side for e in liquidations} == set(PositionSide)
    assert any(isinstance(e, MarkPrice) for e in played.sink.events) == facts.marks
    if facts.symbols:
        assert {e.instrument for e in liquidations} <= set(facts.symbols)
    else:
        assert len(played.runners) == facts.connections
    if facts.keepalive is not None:
        assert len(answers.kept) >= facts.keepalive.at_least


# --- over loopback -------------------------------------------------------------------------------


async def read(url: str, frames: tuple[str, ...], reader: DialectSession, dialect: Dialect,
               out: dict[str, Liquidation], finished: asyncio.Event) -> int:  # fmt: skip
    """Read until the simulator has finished and the connection has gone quiet."""
    acks = 0
    async with websockets.connect(url, max_size=None) as ws:
        for frame in frames:
            await ws.send(frame)
        while True:
            try:
                message = await asyncio.wait_for(ws.recv(), 0.5 * T)
            except TimeoutError:
                if finished.is_set():
                    break
                continue
            text = message if isinstance(message, str) else dialect.decode_binary(message)
            try:
                items = reader.parse(text, time.time())
            except FrameError as exc:
                raise AssertionError(f"{dialect.venue}: {exc}: {text[:200]}") from exc
            for item in items:
                if isinstance(item, Liquidation):
                    out[item.event_id] = item
                acks += isinstance(item, Ack)
    return acks


async def test_feb_2026_through_the_dialects_equals_what_was_sent() -> None:
    scenario = build_scenario("feb-2026", venues=FIVE, duration_seconds=1800)
    received: dict[str, dict[str, Liquidation]] = {venue: {} for venue in FIVE}
    finished = asyncio.Event()
    async with (
        Simulator(scenario, speed=300, venues=FIVE, wait_for_subscribers=20 * T) as sim,
        httpx.AsyncClient(timeout=10 * T) as client,
    ):
        readers: list[tuple[int, asyncio.Task[int]]] = []
        for venue in FIVE:
            dialect = make_dialect(venue)
            book = await fetch_book(client, dialect, sim.rest_base_url(venue))
            for plan in dialect.plans(sim.ws_base_url(venue), book):
                reading = read(plan.url, plan.subscribe_frames, dialect.session(book), dialect,
                               received[venue], finished)  # fmt: skip
                readers.append((plan.expected_acks, asyncio.create_task(reading)))
        await asyncio.wait_for(sim.wait_finished(), 120 * T)
        finished.set()
        for expected, reader in readers:
            assert await reader == expected
        sent = sim.sent()
    for venue in FIVE:
        for side in PositionSide:
            got = [liq for liq in received[venue].values() if liq.position_side is side]
            assert len(got) == sent.get(venue, side).count > 0, (venue, side)
            usd = sum(liq.notional_usd for liq in got)
            assert usd == pytest.approx(sent.get(venue, side).usd, abs=0.01 * len(got))
