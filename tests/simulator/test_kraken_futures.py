"""The Kraken Futures simulator speaks what the Kraken Futures dialect reads.

Two helpers here serve the dYdX and HTX simulator tests too: :func:`offline_roundtrip`
drives a venue sim sans-I/O with the dialect's own REST parsing, plans and sessions, and
:func:`through_supervisor` plays a scenario on the real simulator server to the real
connection supervisor.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest

from monitor.clock import SystemClock
from monitor.errors import InstrumentFetchError
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.feed.supervisor import ConnectionRunner, FeedTiming
from monitor.simulator.catalogue import COIN_PRICES_USD, listings, size_liquidation
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.scenarios.model import ScenarioEvent
from monitor.simulator.server import Simulator
from monitor.simulator.venue_sim import (
    Frame,
    Liq,
    Out,
    RestRequest,
    SimContext,
    SimNow,
    VenueSim,
)
from monitor.simulator.venues import make_venue_sim
from monitor.venues import make_dialect
from monitor.venues.dialect import (
    Ack,
    Dialect,
    DialectSession,
    Info,
    Item,
    Rejection,
    RestRequest as DialectRestRequest,
    VenueSettings,
)
from monitor.venues.instruments import InstrumentBook
from tests.support.timing import T

VENUE = "kraken-futures"
START_MS = 1_769_904_000_000


def scenario_events(venue: str, target_usd: float = 12_345.0) -> list[ScenarioEvent]:
    """One long and one short liquidation on every listing of ``venue``."""
    out = []
    for n, item in enumerate(listings(venue)):
        for side in PositionSide:
            sized = size_liquidation(item, COIN_PRICES_USD[item.coin], target_usd * (1 + n / 7))
            out.append(ScenarioEvent(float(n), "liquidation", venue, item.coin, item.symbol,
                                     side, sized.price, sized.qty_base, sized.notional_usd))
    return out


def liqs_of(events: Sequence[ScenarioEvent]) -> list[Liq]:
    return [Liq(seq, event, START_MS + 10 * seq) for seq, event in enumerate(events, 1)]


def assert_matches(liquidation: Liquidation, liq: Liq) -> None:
    event = liq.event
    assert (liquidation.venue, liquidation.instrument, liquidation.coin) == (
        event.venue, event.instrument, event.coin)
    assert liquidation.position_side == event.position_side
    assert liquidation.exchange_ts_ms == liq.ts_ms
    assert math.isclose(liquidation.price, event.price, rel_tol=1e-9)
    assert math.isclose(liquidation.qty_base, event.qty_base, rel_tol=1e-9)
    assert abs(liquidation.notional_usd - event.notional_usd) < 0.005
    assert liquidation.completeness == "full"


def book_from_sim(sim: VenueSim, dialect: Dialect) -> InstrumentBook:
    """Fetch every instrument document from the sim as the feed would, parse it."""
    book = InstrumentBook(dialect.venue)
    for request in dialect.instrument_requests("https://sim.invalid"):
        url = urlsplit(request.url)
        reply = sim.rest(RestRequest(request.method, url.path, dict(parse_qsl(url.query))))
        assert reply is not None and reply.status == 200, request
        specs, next_request = dialect.parse_instruments(request, reply.body)
        assert next_request is None and specs
        book.update(specs)
    return book


def decode(dialect: Dialect, data: str | bytes) -> str:
    return data if isinstance(data, str) else dialect.decode_binary(data)


@dataclass
class Connected:
    """One simulated connection and the dialect session reading it."""

    session: Any  # the venue's SimSession
    reader: DialectSession
    items: list[Item] = field(default_factory=list)

    def read(self, dialect: Dialect, outs: Sequence[Out]) -> None:
        for out in outs:
            assert isinstance(out, Frame), out  # no Close while subscribing
            self.items += self.reader.parse(decode(dialect, out.data), 1.0)


def connect_all(sim: VenueSim, dialect: Dialect, book: InstrumentBook, now: SimNow,
                prefix: str = "ws://sim.invalid") -> list[Connected]:
    """Open every planned connection and subscribe as the supervisor does."""
    out = []
    wall = now.wall
    for plan in dialect.plans(prefix, book):
        session = sim.open(urlsplit(plan.url).path, "", reject=False)
        assert session is not None, plan.url
        conn = Connected(session, dialect.session(book))
        conn.read(dialect, session.on_open(now))
        for text in plan.subscribe_frames:
            wall += plan.subscribe_interval_seconds
            conn.read(dialect, session.on_text(text, SimNow(now.exchange_ms, wall)))
        assert sum(isinstance(i, Ack) for i in conn.items) >= plan.expected_acks
        assert not [i for i in conn.items if isinstance(i, Rejection)]
        out.append(conn)
    return out


def offline_roundtrip(venue: str, events: Sequence[ScenarioEvent],
                      settings: VenueSettings | None = None,
                      ) -> tuple[list[Liq], list[Liquidation], list[Connected]]:
    """Publish ``events`` through the venue sim and read every frame with the dialect."""
    dialect = make_dialect(venue, settings)
    sim = make_venue_sim(SimContext(venue, was_sent=lambda seq: True))
    book = book_from_sim(sim, dialect)
    now = SimNow(START_MS, 100.0)
    conns = connect_all(sim, dialect, book, now)
    liqs = liqs_of(events)
    for liq in liqs:
        sim.on_liquidation(liq)
    got: list[Liquidation] = []
    for pub in sim.flush(SimNow(START_MS + 60_000, 200.0), final=True):
        for conn in conns:
            data = conn.session.render(pub)
            if data is not None:
                items = conn.reader.parse(decode(dialect, data), 1.0)
                conn.items += items
                got += [i for i in items if isinstance(i, Liquidation)]
    return liqs, got, conns


# -- through the real server and supervisor ---------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.events: list[Liquidation | MarkPrice] = []

    def put(self, venue: str, events: list[Liquidation | MarkPrice]) -> None:
        self.events += events


class Observer:
    def __init__(self) -> None:
        self.reconnects: list[str] = []
        self.invalid: list[str] = []

    def frame(self, venue: str, received_at: float) -> None:
        pass

    def frame_invalid(self, venue: str, reason: str) -> None:
        self.invalid.append(reason)

    def reconnect(self, venue: str, reason: str) -> None:
        self.reconnects.append(reason)

    def connections(self, venue: str, subscribed: int, total: int) -> None:
        pass


TIMING = FeedTiming(silence_limit_seconds=10 * T, open_timeout_seconds=5 * T,
                    ack_timeout_seconds=5 * T, backoff_initial_seconds=0.05,
                    backoff_max_seconds=0.2, healthy_after_seconds=60.0,
                    unknown_instrument_hold_seconds=1.0)


@dataclass
class Played:
    sink: Sink
    observer: Observer
    simulator: Simulator
    runners: list[ConnectionRunner]

    def liquidations(self) -> dict[str, Liquidation]:
        return {e.event_id: e for e in self.sink.events if isinstance(e, Liquidation)}


async def through_supervisor(
    venue: str, *, settings: VenueSettings | None = None, duration_seconds: float = 1200.0,
    speed: float = 600.0, linger_seconds: float = 0.0,
    session_factory: Callable[[DialectSession], DialectSession] | None = None,
) -> Played:
    """Play a calm scenario of ``venue`` on the simulator to supervised connections."""
    scenario = build_scenario("calm", venues=[venue], duration_seconds=duration_seconds)
    dialect = make_dialect(venue, settings)
    sink, observer = Sink(), Observer()
    simulator = Simulator(scenario, venues=[venue], speed=speed, wait_for_subscribers=5 * T)
    async with simulator:
        book = InstrumentBook(venue)
        async with httpx.AsyncClient(timeout=5 * T) as client:
            for request in dialect.instrument_requests(simulator.rest_base_url(venue)):
                response = await client.get(request.url)
                assert response.status_code == 200, request.url
                specs, _ = dialect.parse_instruments(request, response.content)
                book.update(specs)
        wrap = session_factory or (lambda s: s)
        runners = [
            ConnectionRunner(dialect, plan, lambda: wrap(dialect.session(book)), sink, observer,
                             SystemClock(), TIMING)
            for plan in dialect.plans(simulator.ws_base_url(venue), book)
        ]
        tasks = [asyncio.create_task(r.run()) for r in runners]
        try:
            async with asyncio.timeout(30 * T):
                await simulator.wait_finished()
            await asyncio.sleep(0.2 + linger_seconds)  # the last frames reach the reader
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return Played(sink, observer, simulator, runners)


def assert_received_what_was_sent(played: Played, venue: str) -> None:
    got = played.liquidations()
    sent = played.simulator.sent()
    assert sent.count(venue) > 0
    for side in PositionSide:
        mine = [e for e in got.values() if e.position_side is side]
        assert len(mine) == sent.get(venue, side).count
        assert math.isclose(sum(e.notional_usd for e in mine), sent.get(venue, side).usd,
                            rel_tol=1e-9, abs_tol=0.01)
    assert not played.observer.invalid


# -- Kraken Futures ---------------------------------------------------------------------------


def test_every_liquidation_round_trips() -> None:
    events = scenario_events(VENUE)
    liqs, got, _conns = offline_roundtrip(VENUE, events)
    assert len(got) == len(liqs) == 2 * len(listings(VENUE))
    for liquidation, liq in zip(got, liqs, strict=True):
        assert_matches(liquidation, liq)
    assert len({g.event_id for g in got}) == len(got)


def test_greeting_acks_snapshot_and_ticker() -> None:
    _liqs, _got, (conn,) = offline_roundtrip(VENUE, [])
    assert conn.items[0] == Info("info")
    assert Info("trade_snapshot") in conn.items
    marks = [i for i in conn.items if isinstance(i, MarkPrice)]
    assert {m.instrument for m in marks} == {item.symbol for item in listings(VENUE)}
    btc = next(m for m in marks if m.instrument == "PF_XBTUSD")
    assert (btc.coin, btc.price) == ("BTC", COIN_PRICES_USD["BTC"])


def test_snapshot_replays_sent_liquidations_as_history() -> None:
    dialect = make_dialect(VENUE)
    sim = make_venue_sim(SimContext(VENUE, was_sent=lambda seq: True))
    book = book_from_sim(sim, dialect)
    (first,) = connect_all(sim, dialect, book, SimNow(START_MS, 1.0))
    for liq in liqs_of(scenario_events(VENUE)[:2]):
        sim.on_liquidation(liq)
    for pub in sim.flush(SimNow(START_MS, 2.0)):
        assert first.session.render(pub) is not None
    late = sim.open("/ws/v1", "", reject=False)
    assert late is not None
    frames = late.on_text(orjson.dumps({"event": "subscribe", "feed": "trade",
                                        "product_ids": ["PF_XBTUSD"]}).decode(),
                          SimNow(START_MS, 3.0))
    snapshot = frames[1]
    assert isinstance(snapshot, Frame) and isinstance(snapshot.data, str)
    assert len(snapshot.liquidations) == 2 and '"trade_snapshot"' in snapshot.data
    assert dialect.session(book).parse(snapshot.data, 1.0) == [Info("trade_snapshot")]


def test_refusals_read_as_rejections() -> None:
    dialect = make_dialect(VENUE)
    sim = make_venue_sim(SimContext(VENUE, was_sent=lambda seq: True))
    reader = dialect.session(InstrumentBook(VENUE))
    now = SimNow(START_MS, 1.0)
    refused = sim.open("/ws/v1", "", reject=True)
    plain = sim.open("/ws/v1", "", reject=False)
    assert refused is not None and plain is not None
    subscribe = '{"event":"subscribe","feed":"trade","product_ids":["PF_XBTUSD"]}'
    unknown = '{"event":"subscribe","feed":"trade","product_ids":["PF_NOPEUSD"]}'
    for session, text in ((refused, subscribe), (plain, unknown), (plain, '{"event":"ping"}')):
        (frame,) = session.on_text(text, now)
        assert isinstance(frame, Frame) and isinstance(frame.data, str)
        (notice,) = reader.parse(frame.data, 1.0)
        assert isinstance(notice, Rejection)
    assert sim.open("/ws/v2", "", reject=False) is None
    assert sim.rest(RestRequest("GET", "/derivatives/api/v3/tickers", {})) is None


def test_instrument_document_reads_back() -> None:
    dialect = make_dialect(VENUE)
    book = book_from_sim(make_venue_sim(SimContext(VENUE, was_sent=lambda seq: True)), dialect)
    for item in listings(VENUE):
        spec = book.get(item.symbol)
        assert spec is not None
        assert (spec.coin, spec.kind, spec.contract_size) == (
            item.coin, item.spec.kind, item.spec.contract_size)
    with pytest.raises(InstrumentFetchError):
        dialect.parse_instruments(DialectRestRequest("instruments", "x"), b"<html>")


async def test_a_scenario_through_the_supervisor() -> None:
    played = await through_supervisor(VENUE)
    assert_received_what_was_sent(played, VENUE)
    assert played.observer.reconnects == []
    assert any(isinstance(e, MarkPrice) for e in played.sink.events)
