"""The Deribit simulator: JSON-RPC answers, heartbeats that must be answered, M/T trades."""

from __future__ import annotations

import math
from collections.abc import Sequence

import orjson
import pytest

from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.venue_sim import Close, Frame, Liq, Out, RestRequest, SimContext, SimNow
from monitor.simulator.venues import deribit as deribit_sim, make_venue_sim
from monitor.simulator.venues.deribit import DeribitSession, DeribitSim
from monitor.venues import make_dialect
from monitor.venues.dialect import Ack, DialectSession, Info, Item, Pong, Rejection, Reply
from monitor.venues.instruments import InstrumentBook
from tests.simulator.test_kraken_futures import (
    START_MS,
    assert_received_what_was_sent,
    book_from_sim,
    offline_roundtrip,
    scenario_events,
    through_supervisor,
)

VENUE = "deribit"
DIALECT = make_dialect(VENUE)
NOW = SimNow(START_MS, 100.0)


def sim() -> DeribitSim:
    made = make_venue_sim(SimContext(VENUE, was_sent=lambda seq: True))
    assert isinstance(made, DeribitSim)
    return made


def opened(venue_sim: DeribitSim, reject: bool = False) -> DeribitSession:
    session = venue_sim.open("/ws/api/v2", "", reject=reject)
    assert isinstance(session, DeribitSession)
    return session


def read(outs: Sequence[Out], reader: DialectSession | None = None) -> list[Item]:
    reader = reader or DIALECT.session(InstrumentBook(VENUE))
    items: list[Item] = []
    for out in outs:
        assert isinstance(out, Frame) and isinstance(out.data, str)
        items += reader.parse(out.data, 1.0)
    return items


def assert_same(liquidation: Liquidation, liq: Liq) -> None:
    event = liq.event
    assert (liquidation.venue, liquidation.instrument, liquidation.coin) == (
        event.venue, event.instrument, event.coin)
    assert liquidation.position_side == event.position_side
    assert liquidation.exchange_ts_ms == liq.ts_ms
    assert math.isclose(liquidation.price, event.price, rel_tol=1e-9)
    assert math.isclose(liquidation.qty_base, event.qty_base, rel_tol=1e-9)
    assert abs(liquidation.notional_usd - event.notional_usd) < 0.005
    assert liquidation.completeness == "full"


def test_every_liquidation_round_trips_as_maker_or_taker() -> None:
    events = scenario_events(VENUE)
    liqs, got, _conns = offline_roundtrip(VENUE, events)
    assert len(got) == len(liqs) == 2 * len(listings(VENUE))
    for liquidation, liq in zip(sorted(got, key=lambda g: g.exchange_ts_ms), liqs, strict=True):
        assert_same(liquidation, liq)
    assert len({g.event_id for g in got}) == len(got)


@pytest.mark.parametrize(("seq", "side", "flag", "direction"), [
    (1, PositionSide.LONG, "T", "sell"), (2, PositionSide.LONG, "M", "buy"),
    (3, PositionSide.SHORT, "T", "buy"), (4, PositionSide.SHORT, "M", "sell"),
])
def test_maker_and_taker_liquidations(seq: int, side: PositionSide, flag: str,
                                      direction: str) -> None:
    event = next(e for e in scenario_events(VENUE) if e.position_side is side)
    row = sim().trade(Liq(seq, event, START_MS))
    assert (row["liquidation"], row["direction"]) == (flag, direction)


def test_inverse_amounts_are_usd_and_linear_amounts_coin() -> None:
    venue_sim = sim()
    events = {e.instrument: e for e in scenario_events(VENUE)
              if e.position_side is PositionSide.LONG}
    inverse = venue_sim.trade(Liq(1, events["BTC-PERPETUAL"], START_MS))
    assert inverse["amount"] == events["BTC-PERPETUAL"].notional_usd
    assert inverse["contracts"] == inverse["amount"] / 10
    linear = venue_sim.trade(Liq(1, events["BTC_USDC-PERPETUAL"], START_MS))
    assert linear["amount"] == events["BTC_USDC-PERPETUAL"].qty_base


def test_trades_are_batched_per_instrument_every_100_ms() -> None:
    venue_sim = sim()
    event = scenario_events(VENUE)[0]
    for seq, offset in enumerate((0, 30, 60, 130), 1):
        venue_sim.on_liquidation(Liq(seq, event, START_MS + offset))
    pubs = venue_sim.flush(SimNow(START_MS + 100, 1.0))
    assert [len(p.liquidations) for p in pubs] == [3]
    assert venue_sim.flush(SimNow(START_MS + 150, 1.0)) == []
    assert [len(p.liquidations) for p in venue_sim.flush(SimNow(START_MS + 200, 1.0))] == [1]


def test_subscribe_heartbeat_and_ticker() -> None:
    _liqs, _got, (conn,) = offline_roundtrip(VENUE, [])
    assert [i for i in conn.items if isinstance(i, Ack)] == [
        Ack("public/set_heartbeat"), Ack("public/subscribe")]
    marks = [i for i in conn.items if isinstance(i, MarkPrice)]
    first = {m.instrument: m for m in reversed(marks)}
    assert set(first) == {"BTC-PERPETUAL", "ETH-PERPETUAL"}
    assert first["BTC-PERPETUAL"].price == COIN_PRICES_USD["BTC"]


def test_test_requests_must_be_answered() -> None:
    venue_sim = sim()
    session = opened(venue_sim)
    reader = DIALECT.session(InstrumentBook(VENUE))
    (plan,) = DIALECT.plans("ws://sim.invalid", InstrumentBook(VENUE))
    for text in plan.subscribe_frames:
        read(session.on_text(text, NOW), reader)
    assert session.tick(SimNow(START_MS, 105.0)) == ()  # not due before the interval
    (reply,) = read(session.tick(SimNow(START_MS, 110.0)), reader)
    assert isinstance(reply, Reply)
    assert read(session.on_text(reply.text, NOW), reader) == [Pong()]
    (again,) = read(session.tick(SimNow(START_MS, 120.0)), reader)
    assert isinstance(again, Reply)
    # Not answered this time: at the next interval the server closes the connection.
    (close,) = session.tick(SimNow(START_MS, 130.0))
    assert isinstance(close, Close)


def test_refusals_read_as_rejections() -> None:
    venue_sim = sim()
    subscribe = '{"jsonrpc":"2.0","id":2,"method":"public/subscribe","params":{"channels":%s}}'
    cases = [
        (opened(venue_sim, reject=True), subscribe % '["trades.future.BTC.100ms"]'),
        (opened(venue_sim), subscribe % '["trades.future.BTC.raw"]'),
        (opened(venue_sim), subscribe % '["trades.NOPE-PERPETUAL.100ms"]'),
        (opened(venue_sim), '{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat",'
                            '"params":{"interval":5}}'),
    ]
    for session, text in cases:
        (notice,) = read(session.on_text(text, NOW))
        assert isinstance(notice, Rejection)
    assert venue_sim.open("/ws/api/v1", "", reject=False) is None
    assert venue_sim.rest(RestRequest("GET", "/api/v2/public/ticker", {})) is None
    reply = venue_sim.rest(RestRequest("GET", "/api/v2/public/get_instruments", {}))
    assert reply is not None and reply.status == 400


def test_per_instrument_subscriptions_get_their_own_channel() -> None:
    venue_sim = sim()
    session = opened(venue_sim)
    session.on_text('{"jsonrpc":"2.0","id":2,"method":"public/subscribe",'
                    '"params":{"channels":["trades.ETH-PERPETUAL.100ms"]}}', NOW)
    eth = next(e for e in scenario_events(VENUE) if e.instrument == "ETH-PERPETUAL")
    btc = next(e for e in scenario_events(VENUE) if e.instrument == "BTC-PERPETUAL")
    venue_sim.on_liquidation(Liq(1, eth, START_MS))
    venue_sim.on_liquidation(Liq(2, btc, START_MS))
    rendered = [t for p in venue_sim.flush(NOW, final=True) if (t := session.render(p))]
    (text,) = rendered
    assert orjson.loads(text)["params"]["channel"] == "trades.ETH-PERPETUAL.100ms"
    (liquidation,) = read([Frame(text)])
    assert isinstance(liquidation, Liquidation) and liquidation.instrument == "ETH-PERPETUAL"


def test_instrument_documents_read_back() -> None:
    book = book_from_sim(sim(), DIALECT)
    assert sorted(s.instrument for s in book) == sorted(i.symbol for i in listings(VENUE))
    for item in listings(VENUE):
        spec = book.get(item.symbol)
        assert spec is not None and (spec.coin, spec.kind) == (item.coin, item.spec.kind)


def test_heartbeat_info_is_not_a_liquidation() -> None:
    reader = DIALECT.session(InstrumentBook(VENUE))
    text = '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}'
    assert reader.parse(text, 1.0) == [Info("heartbeat")]


async def test_a_scenario_through_the_supervisor_answering_heartbeats(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A 10 s heartbeat becomes 0.1 s of wall time: several test_requests during the play.
    monkeypatch.setattr(deribit_sim, "HEARTBEAT_WALL_SCALE", 0.01)
    replies: list[Reply] = []

    class Counting:
        def __init__(self, inner: DialectSession) -> None:
            self.inner = inner

        def parse(self, text: str, received_at: float) -> list[Item]:
            items = self.inner.parse(text, received_at)
            replies.extend(i for i in items if isinstance(i, Reply))
            return items

    played = await through_supervisor(VENUE, session_factory=Counting, linger_seconds=0.3)
    assert_received_what_was_sent(played, VENUE)
    assert len(replies) >= 3  # answered every time, so the server never closed the socket
    assert played.observer.reconnects == []
