"""The simulator as the dialects' test oracle: a venue sim read by its own dialect.

Sans-I/O: :func:`book_from_sim` reads the sim's instrument documents with the dialect's own
requests (pages followed), :func:`connect_all` opens and subscribes every planned connection
as the supervisor does, and :func:`offline_roundtrip` publishes scenario events through the
sim and parses every frame each connection receives. Over loopback: :func:`through_supervisor`
plays a calm scenario on the real simulator server to real connection supervisors.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import httpx

from monitor.clock import SystemClock
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.feed.supervisor import ConnectionRunner, FeedTiming
from monitor.simulator.catalogue import COIN_PRICES_USD, listings, size_liquidation
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.scenarios.model import ScenarioEvent
from monitor.simulator.server import Simulator
from monitor.simulator.venue_sim import Frame, Liq, Out, RestRequest, SimContext, SimNow, VenueSim
from monitor.simulator.venues import make_venue_sim
from monitor.venues import make_dialect
from monitor.venues.dialect import (
    Ack,
    Dialect,
    DialectSession,
    Item,
    Rejection,
    RestRequest as DialectRestRequest,
    VenueSettings,
)
from monitor.venues.instruments import InstrumentBook
from tests.support.timing import T

START_MS = 1_769_904_000_000
SIM_HTTP = "http://sim.invalid"
SIM_WS = "ws://sim.invalid"
SimT = TypeVar("SimT")
SessionT = TypeVar("SessionT")


def venue_sim(venue: str, mark_interval_ms: int = 1000) -> VenueSim:
    """A venue sim that counts every liquidation as sent."""
    return make_venue_sim(SimContext(venue, lambda seq: True, mark_interval_ms))


def sim_of(venue: str, kind: type[SimT]) -> SimT:
    """:func:`venue_sim`, checked to be the venue's own class."""
    made = venue_sim(venue)
    assert isinstance(made, kind), made
    return made


def opened(sim: VenueSim, path: str, kind: type[SessionT], *, reject: bool = False,
           query: str = "") -> SessionT:
    """A session of ``sim`` on ``path``, checked to be the venue's own session class."""
    session = sim.open(path, query, reject=reject)
    assert isinstance(session, kind), (path, session)
    return session


def scenario_events(venue: str, target_usd: float = 12_345.0) -> list[ScenarioEvent]:
    """One long and one short liquidation on every listing of ``venue``."""
    out = []
    for n, item in enumerate(listings(venue)):
        for side in PositionSide:
            sized = size_liquidation(item, COIN_PRICES_USD[item.coin], target_usd * (1 + n / 7))
            out.append(ScenarioEvent(float(n), "liquidation", venue, item.coin, item.symbol,
                                     side, sized.price, sized.qty_base, sized.notional_usd))
    return out


def liqs_of(events: Sequence[ScenarioEvent], spacing_ms: int = 10) -> list[Liq]:
    """``events`` as sim liquidations, ``spacing_ms`` apart from START_MS on."""
    return [Liq(seq, event, START_MS + spacing_ms * seq) for seq, event in enumerate(events, 1)]


def assert_matches(liquidation: Liquidation, liq: Liq, *, completeness: str = "full",
                   qty_rel_tol: float = 1e-9, exchange_ts_ms: int | None = None) -> None:
    """What the dialect read is what the sim sent; ``exchange_ts_ms`` where the venue stamps
    no time of its own and the dialect takes the arrival time."""
    event = liq.event
    assert (liquidation.venue, liquidation.instrument, liquidation.coin) == (
        event.venue, event.instrument, event.coin)
    assert liquidation.position_side == event.position_side
    assert liquidation.exchange_ts_ms == (liq.ts_ms if exchange_ts_ms is None else exchange_ts_ms)
    assert math.isclose(liquidation.price, event.price, rel_tol=1e-9)
    assert math.isclose(liquidation.qty_base, event.qty_base, rel_tol=qty_rel_tol)
    assert abs(liquidation.notional_usd - event.notional_usd) < 0.005
    assert liquidation.completeness == completeness


def book_from_sim(sim: VenueSim, dialect: Dialect) -> InstrumentBook:
    """Fetch every instrument document from the sim as the feed would (pages followed)."""
    book = InstrumentBook(dialect.venue)
    for first in dialect.instrument_requests(SIM_HTTP):
        request: DialectRestRequest | None = first
        read = 0
        while request is not None:
            url = urlsplit(request.url)
            reply = sim.rest(RestRequest(request.method, url.path, dict(parse_qsl(url.query)),
                                         request.body or b""))
            assert reply is not None and reply.status == 200, (request, reply)
            specs, request = dialect.parse_instruments(request, reply.body)
            book.update(specs)
            read += len(specs)
        assert read > 0, first  # each document lists instruments
    return book


def decode(dialect: Dialect, data: str | bytes) -> str:
    return data if isinstance(data, str) else dialect.decode_binary(data)


def read_frames(dialect: Dialect, reader: DialectSession, outs: Sequence[Out],
                binary: bool | None = None) -> list[Item]:
    """Parse every frame of ``outs``, each binary or text as ``binary`` says (None: either);
    a Close among them fails the test."""
    items: list[Item] = []
    for out in outs:
        assert isinstance(out, Frame), out
        if binary is not None:
            assert isinstance(out.data, bytes if binary else str), out.data
        items += reader.parse(decode(dialect, out.data), 1.0)
    return items


@dataclass
class Connected:
    """One simulated connection and the dialect session reading it."""

    session: Any  # the venue's SimSession
    reader: DialectSession
    items: list[Item] = field(default_factory=list)

    def read(self, dialect: Dialect, outs: Sequence[Out]) -> None:
        self.items += read_frames(dialect, self.reader, outs)


def connect_all(sim: VenueSim, dialect: Dialect, book: InstrumentBook, now: SimNow
                ) -> list[Connected]:
    """Open every planned connection and subscribe as the supervisor does: each plan gets
    exactly the acks it expects and no rejection."""
    out = []
    wall = now.wall
    for plan in dialect.plans(SIM_WS, book):
        url = urlsplit(plan.url)
        session = sim.open(url.path, url.query, reject=False)
        assert session is not None, plan.url
        conn = Connected(session, dialect.session(book))
        conn.read(dialect, session.on_open(now))
        for text in plan.subscribe_frames:
            wall += plan.subscribe_interval_seconds
            conn.read(dialect, session.on_text(text, SimNow(now.exchange_ms, wall)))
        assert sum(isinstance(i, Ack) for i in conn.items) == plan.expected_acks, plan.name
        assert not [i for i in conn.items if isinstance(i, Rejection)]
        out.append(conn)
    return out


def offline_roundtrip(venue: str, events: Sequence[ScenarioEvent],
                      settings: VenueSettings | None = None, spacing_ms: int = 10,
                      ) -> tuple[list[Liq], list[Liquidation], list[Connected]]:
    """Publish ``events`` through the venue sim and read every frame with the dialect."""
    dialect = make_dialect(venue, settings)
    sim = venue_sim(venue)
    book = book_from_sim(sim, dialect)
    conns = connect_all(sim, dialect, book, SimNow(START_MS, 100.0))
    liqs = liqs_of(events, spacing_ms)
    for liq in liqs:
        sim.on_liquidation(liq)
    end_ms = START_MS + spacing_ms * (len(liqs) + 1) + 60_000
    got: list[Liquidation] = []
    for pub in sim.flush(SimNow(end_ms, 200.0), final=True):
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
        self.refused: list[str] = []

    def frame(self, venue: str, received_at: float) -> None:
        pass

    def data(self, venue: str, received_at: float) -> None:
        pass

    def frame_invalid(self, venue: str, reason: str) -> None:
        self.invalid.append(reason)

    def reconnect(self, venue: str, reason: str) -> None:
        self.reconnects.append(reason)

    def connections(self, venue: str, subscribed: int, total: int) -> None:
        pass

    def completeness_of(self, venue: str, completeness: str) -> None:
        pass

    def topic_refused(self, venue: str) -> None:
        self.refused.append(venue)


class Keeping:
    """A session factory whose sessions keep aside every item of ``kinds`` they read (the
    pongs or replies that show a keepalive was answered); ``drop`` leaves them out of what
    the supervisor sees, as a client that never answers would."""

    def __init__(self, *kinds: type, drop: bool = False) -> None:
        self.kinds = kinds
        self.drop = drop
        self.kept: list[Item] = []

    def __call__(self, inner: DialectSession) -> DialectSession:
        keeping = self

        class Session:
            def parse(self, text: str, received_at: float) -> list[Item]:
                items = inner.parse(text, received_at)
                keeping.kept += [i for i in items if isinstance(i, keeping.kinds)]
                if keeping.drop:
                    return [i for i in items if not isinstance(i, keeping.kinds)]
                return items

        return Session()


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


async def fetch_book(client: httpx.AsyncClient, dialect: Dialect, rest_base: str
                     ) -> InstrumentBook:
    """The dialect's instrument book over HTTP from ``rest_base`` (pages followed)."""
    book = InstrumentBook(dialect.venue)
    for first in dialect.instrument_requests(rest_base):
        request: DialectRestRequest | None = first
        while request is not None:
            response = await client.request(request.method, request.url, content=request.body)
            assert response.status_code == 200, (request.url, response.status_code)
            specs, request = dialect.parse_instruments(request, response.content)
            book.update(specs)
    return book


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
        async with httpx.AsyncClient(timeout=5 * T) as client:
            book = await fetch_book(client, dialect, simulator.rest_base_url(venue))
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
