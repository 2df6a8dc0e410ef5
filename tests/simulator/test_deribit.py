"""The Deribit simulator: JSON-RPC answers, heartbeats that must be answered, M/T trades.

Its round trip and supervised play are in test_roundtrip.py with every other venue's.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import orjson
import pytest

from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.venue_sim import Close, Frame, Liq, Out, RestRequest, SimNow
from monitor.simulator.venues.deribit import DeribitSession, DeribitSim
from monitor.venues import make_dialect
from monitor.venues.dialect import Ack, DialectSession, Info, Item, Pong, Rejection, Reply
from monitor.venues.instruments import InstrumentBook
from tests.support.simroundtrip import (
    START_MS,
    book_from_sim,
    offline_roundtrip,
    opened as open_session,
    read_frames,
    scenario_events,
    sim_of,
)

VENUE = "deribit"
DIALECT = make_dialect(VENUE)
NOW = SimNow(START_MS, 100.0)


sim = functools.partial(sim_of, VENUE, DeribitSim)


def opened(venue_sim: DeribitSim, reject: bool = False) -> DeribitSession:
    return open_session(venue_sim, "/ws/api/v2", DeribitSession, reject=reject)


def read(outs: Sequence[Out], reader: DialectSession | None = None) -> list[Item]:
    return read_frames(DIALECT, reader or DIALECT.session(InstrumentBook(VENUE)), outs,
                       binary=False)


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
