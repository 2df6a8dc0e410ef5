"""The dYdX simulator: greeting, oracle prices, deleveraging trades, socks' limits.

Its round trip and supervised play are in test_roundtrip.py with every other venue's.
"""

from __future__ import annotations

import functools

import orjson

from monitor.events import Liquidation, MarkPrice
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.venue_sim import Close, Frame, Publication, SimNow
from monitor.simulator.venues.dydx import CHANNEL_LIMIT, DydxSim, iso_ms
from monitor.venues import make_dialect
from monitor.venues.dialect import Ack, Info, Rejection
from monitor.venues.dydx import DELEVERAGED_INFO, iso_to_ms
from monitor.venues.instruments import InstrumentBook
from tests.support.simroundtrip import (
    START_MS,
    liqs_of,
    offline_roundtrip,
    scenario_events,
    sim_of,
)

VENUE = "dydx"


sim = functools.partial(sim_of, VENUE, DydxSim)


def subscribe(market: str, batched: bool = True) -> str:
    return orjson.dumps({"type": "subscribe", "channel": "v4_trades", "id": market,
                         "batched": batched}).decode()


def texts(outs: object) -> list[str]:
    assert isinstance(outs, list | tuple)
    return [o.data for o in outs if isinstance(o, Frame) and isinstance(o.data, str)]


def test_every_tenth_liquidation_comes_with_a_deleveraging_trade() -> None:
    liqs, got, (conn,) = offline_roundtrip(VENUE, scenario_events(VENUE))
    assert len(got) == len(liqs)
    # Reported, never counted.
    assert conn.items.count(Info(DELEVERAGED_INFO)) == len(liqs) // 10


def test_greeting_snapshot_and_oracle_prices() -> None:
    _liqs, _got, (conn,) = offline_roundtrip(VENUE, [])
    assert conn.items[0] == Info("connected")
    assert Ack("v4_markets") in conn.items
    assert sum(isinstance(i, Ack) for i in conn.items) == 1 + len(listings(VENUE))
    marks = {m.instrument: m for m in conn.items if isinstance(m, MarkPrice)}
    assert set(marks) == {item.symbol for item in listings(VENUE)}
    assert marks["BTC-USD"].price == COIN_PRICES_USD["BTC"]


def test_oracle_updates_and_unbatched_subscriptions() -> None:
    venue_sim = sim()
    reader = make_dialect(VENUE).session(InstrumentBook(VENUE))
    session = venue_sim.open("/v4/ws", "", reject=False)
    assert session is not None
    session.on_open(SimNow(START_MS, 0.0))
    session.on_text('{"type":"subscribe","channel":"v4_markets"}', SimNow(START_MS, 0.0))
    session.on_text(subscribe("ETH-USD", batched=False), SimNow(START_MS, 1.0))
    (event,) = scenario_events(VENUE)[2:3]  # ETH-USD, long
    (liq,) = liqs_of([event])
    venue_sim.on_liquidation(liq)
    pubs = venue_sim.flush(SimNow(START_MS + 2000, 2.0))
    frames = [session.render(pub) for pub in pubs]
    kinds = {orjson.loads(f)["type"] for f in frames if f is not None}
    assert kinds == {"channel_data"}  # v4_markets was subscribed without "batched"
    items = [i for f in frames if f is not None for i in reader.parse(f, 1.0)]
    assert [i.instrument for i in items if isinstance(i, Liquidation)] == ["ETH-USD"]
    marks = [i for i in items if isinstance(i, MarkPrice)]
    assert len(marks) == len(listings(VENUE))
    assert {m.exchange_ts_ms for m in marks} == {START_MS + 2000}


def test_subscriptions_are_limited_per_connection() -> None:
    session = sim().open("/v4/ws", "", reject=False)
    assert session is not None
    reader = make_dialect(VENUE).session(InstrumentBook(VENUE))

    def answer(market: str, wall: float) -> object:
        (notice,) = reader.parse(texts(session.on_text(subscribe(market),
                                                       SimNow(START_MS, wall)))[0], 1.0)
        return notice

    markets = [item.symbol for item in listings(VENUE)]
    for n, market in enumerate(markets):
        assert isinstance(answer(market, 0.5 * n), Ack)
    again = answer("BTC-USD", 100.0)
    assert isinstance(again, Rejection) and "already subscribed" in again.message
    # The sim lists fewer markets than the limit: fill the rest of it by hand.
    assert len(markets) < CHANNEL_LIMIT
    session.held.discard("v4_trades:BTC-USD")
    session.held.update(f"v4_trades:X{n}-USD" for n in range(CHANNEL_LIMIT - len(markets) + 1))
    over = answer("BTC-USD", 200.0)
    assert isinstance(over, Rejection) and "limit" in over.message


def test_subscribe_bursts_are_refused_and_closed() -> None:
    session = sim().open("/v4/ws", "", reject=False)
    assert session is not None
    reader = make_dialect(VENUE).session(InstrumentBook(VENUE))
    assert texts(session.on_text(subscribe("BTC-USD"), SimNow(START_MS, 10.0)))
    assert texts(session.on_text(subscribe("ETH-USD"), SimNow(START_MS, 10.1)))
    outs = session.on_text(subscribe("SOL-USD"), SimNow(START_MS, 10.2))
    (refusal,) = reader.parse(texts(outs)[0], 1.0)
    assert isinstance(refusal, Rejection) and "Too many subscribe attempts" in refusal.message
    assert isinstance(outs[-1], Close) and outs[-1].code == 1008


def test_the_dialects_plans_keep_within_the_limits() -> None:
    dialect = make_dialect(VENUE)
    book = InstrumentBook(VENUE)
    for plan in dialect.plans("ws://sim.invalid/dydx", book):
        session = sim().open("/v4/ws", "", reject=False)
        assert session is not None
        wall = 0.0
        for text in plan.subscribe_frames:
            outs = session.on_text(text, SimNow(START_MS, wall))
            assert not [o for o in outs if isinstance(o, Close)]
            wall += plan.subscribe_interval_seconds


def test_refusals_and_unknown_paths() -> None:
    venue_sim = sim()
    reader = make_dialect(VENUE).session(InstrumentBook(VENUE))
    refused = venue_sim.open("/v4/ws", "", reject=True)
    assert refused is not None
    (notice,) = reader.parse(texts(refused.on_text(subscribe("BTC-USD"), SimNow(0, 0.0)))[0],
                             1.0)
    assert isinstance(notice, Rejection) and "Invalid subscription id" in notice.message
    plain = venue_sim.open("/v4/ws", "", reject=False)
    assert plain is not None
    for text in ('{"type":"party"}', "{nope", '{"type":"subscribe","channel":"v4_nope"}'):
        (notice,) = reader.parse(texts(plain.on_text(text, SimNow(0, 5.0)))[0], 1.0)
        assert isinstance(notice, Rejection)
    assert plain.on_text('{"type":"ping"}', SimNow(0, 6.0)) == ()
    assert venue_sim.open("/v3/ws", "", reject=False) is None


def test_time_format_round_trips() -> None:
    for ts in (START_MS, START_MS + 7, 1_724_371_257_627):
        assert iso_to_ms(iso_ms(ts), "t") == ts
    pub = Publication(("v4_trades:BTC-USD",), '{"trades":[]}')
    session = sim().open("/v4/ws", "", reject=False)
    assert session is not None and session.render(pub) is None  # not subscribed
