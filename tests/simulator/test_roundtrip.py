"""The simulator's encoders are the inverse of the dialects: parse(encode(event)) == event.

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
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings, strategies as st

from monitor.errors import FrameError
from monitor.events import Liquidation, PositionSide
from monitor.simulator import Simulator, build_scenario
from monitor.simulator.catalogue import COIN_PRICES_USD, Listing, listings
from monitor.simulator.scenarios.model import ScenarioEvent, liquidation_event
from monitor.simulator.venue_sim import Frame, Liq, SimContext, SimNow, SimSession, VenueSim
from monitor.simulator.venues import make_venue_sim
from monitor.venues import make_dialect
from monitor.venues.dialect import Ack, Dialect, DialectSession, RestRequest
from monitor.venues.instruments import InstrumentBook
from tests.support.timing import T

FIVE = ("binance-usdm", "binance-coinm", "bybit", "okx", "hyperliquid")
BASE_MS = 1_769_904_000_000


def rest_path(url: str, venue: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if p)
    return parts.path.removeprefix(f"/{venue}"), query


def book_from_sim(dialect: Dialect, sim: VenueSim) -> InstrumentBook:
    """The dialect's instrument book, read from the simulator's REST documents."""
    from monitor.simulator.venue_sim import RestRequest as SimRequest

    book = InstrumentBook(dialect.venue)
    for first in dialect.instrument_requests(f"http://sim/{dialect.venue}"):
        request: RestRequest | None = first
        while request is not None:
            path, query = rest_path(request.url, dialect.venue)
            reply = sim.rest(SimRequest(request.method, path, query, request.body or b""))
            assert reply is not None and reply.status == 200, (request, reply)
            specs, request = dialect.parse_instruments(request, reply.body)
            book.update(specs)
    return book


@dataclass
class Wire:
    """One venue: its simulator, the dialect, and the subscribed connections of its plans."""

    venue: str
    sim: VenueSim
    dialect: Dialect
    connections: list[tuple[SimSession, DialectSession]]
    clock: Iterator[int]


_WIRES: dict[str, Wire] = {}


def wire(venue: str) -> Wire:
    if venue in _WIRES:
        return _WIRES[venue]
    sim = make_venue_sim(SimContext(venue, lambda seq: True, 1_000_000))
    dialect = make_dialect(venue)
    book = book_from_sim(dialect, sim)
    now = SimNow(BASE_MS, 0.0)
    connections = []
    for plan in dialect.plans(f"ws://sim/{venue}", book):
        parts = urlsplit(plan.url)
        session = sim.open(parts.path.removeprefix(f"/{venue}"), parts.query, reject=False)
        assert session is not None, plan.url
        reader = dialect.session(book)
        acks = 0
        for text in [f.data for f in session.on_open(now) if isinstance(f, Frame)] + [
            f.data
            for frame in plan.subscribe_frames
            for f in session.on_text(frame, now)
            if isinstance(f, Frame)
        ]:
            assert isinstance(text, str)
            acks += sum(isinstance(item, Ack) for item in reader.parse(text, BASE_MS / 1000))
        assert acks == plan.expected_acks, (venue, plan.name)
        connections.append((session, reader))
    _WIRES[venue] = Wire(venue, sim, dialect, connections, itertools.count(BASE_MS, 5_000))
    return _WIRES[venue]


def round_trip(venue: str, event: ScenarioEvent) -> list[Liquidation]:
    w = wire(venue)
    ts_ms = next(w.clock)
    w.sim.on_liquidation(Liq(1, event, ts_ms))
    publications = w.sim.flush(SimNow(ts_ms + 1_000, 0.0), final=True)
    parsed = []
    for session, reader in w.connections:
        for pub in publications:
            text = session.render(pub)
            if text is None:
                continue
            assert isinstance(text, str)
            items = reader.parse(text, ts_ms / 1000 + 0.5)
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


# --- over loopback -------------------------------------------------------------------------------


async def fetch_book(client: httpx.AsyncClient, dialect: Dialect, rest: str) -> InstrumentBook:
    book = InstrumentBook(dialect.venue)
    for first in dialect.instrument_requests(rest):
        request: RestRequest | None = first
        while request is not None:
            response = await client.request(request.method, request.url, content=request.body)
            response.raise_for_status()
            specs, request = dialect.parse_instruments(request, response.content)
            book.update(specs)
    return book


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
