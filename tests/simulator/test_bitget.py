"""The Bitget simulator: per-second aggregation, position sides, text ping, forced closes.

Its round trip and supervised play are in test_roundtrip.py with every other venue's.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import pytest

from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD
from monitor.simulator.venue_sim import Close, Frame, Liq, Out, SimNow
from monitor.simulator.venues import bitget as bitget_sim
from monitor.simulator.venues.bitget import BitgetSession, BitgetSim
from monitor.venues import make_dialect
from monitor.venues.dialect import Ack, Item, Pong, Rejection
from monitor.venues.instruments import InstrumentBook
from tests.support.simroundtrip import (
    START_MS,
    offline_roundtrip,
    opened as open_session,
    read_frames,
    scenario_events,
    sim_of,
)

VENUE = "bitget"
DIALECT = make_dialect(VENUE)
NOW = SimNow(START_MS, 100.0)
SUBSCRIBE = '{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"}]}'


sim = functools.partial(sim_of, VENUE, BitgetSim)


def opened(venue_sim: BitgetSim, reject: bool = False) -> BitgetSession:
    session = open_session(venue_sim, "/v3/ws/public", BitgetSession, reject=reject)
    session.on_open(NOW)
    return session


def read(outs: Sequence[Out]) -> list[Item]:
    return read_frames(DIALECT, DIALECT.session(InstrumentBook(VENUE)), outs, binary=False)


def test_only_the_largest_long_and_short_per_pair_per_second_are_pushed() -> None:
    venue_sim = sim()
    btc = [e for e in scenario_events(VENUE) if e.instrument == "BTCUSDT"]
    long, short = (next(e for e in btc if e.position_side is side) for side in PositionSide)
    small = dataclasses.replace(long, notional_usd=long.notional_usd / 2)
    big = dataclasses.replace(long, notional_usd=long.notional_usd * 3)
    liqs = [Liq(1, small, START_MS + 100), Liq(2, big, START_MS + 200),
            Liq(3, long, START_MS + 300), Liq(4, short, START_MS + 400),
            Liq(5, long, START_MS + 1_100)]  # the next second
    for liq in liqs:
        venue_sim.on_liquidation(liq)
    (first,) = venue_sim.flush(SimNow(START_MS + 1_000, 1.0))
    assert {liq.seq for liq in first.liquidations} == {2, 4}
    (second,) = venue_sim.flush(SimNow(START_MS + 2_000, 1.0))
    assert [liq.seq for liq in second.liquidations] == [5]
    got = [i for i in read([Frame(first.payload)]) if isinstance(i, Liquidation)]
    assert sorted((g.position_side.value, round(g.notional_usd, 2)) for g in got) == sorted(
        [("long", round(big.notional_usd, 2)), ("short", round(short.notional_usd, 2))])


def test_acks_tickers_and_refusals() -> None:
    _liqs, _got, (conn,) = offline_roundtrip(VENUE, [])
    assert sum(isinstance(i, Ack) for i in conn.items) == 5
    marks = {m.instrument: m for m in reversed(conn.items) if isinstance(m, MarkPrice)}
    assert set(marks) == {"BTCUSDT", "ETHUSDT"}
    assert marks["BTCUSDT"].price == COIN_PRICES_USD["BTC"]
    venue_sim = sim()
    for session, text in (
        (opened(venue_sim, reject=True), SUBSCRIBE),
        (opened(venue_sim), SUBSCRIBE.replace("usdt-futures", "spot")),
        (opened(venue_sim),
         '{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"ticker",'
         '"symbol":"NOPEUSDT"}]}'),
        (opened(venue_sim), "{}"),
    ):
        (notice,) = read(session.on_text(text, NOW))
        assert isinstance(notice, Rejection)
    assert venue_sim.open("/v2/ws/public", "", reject=False) is None


def test_text_ping_keeps_the_connection_and_silence_or_age_closes_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    venue_sim = sim()
    session = opened(venue_sim)
    ping = DIALECT.ping_frame(1.0)
    assert ping == "ping"
    later = SimNow(START_MS, NOW.wall + 100.0)
    assert read(session.on_text(ping, later)) == [Pong()]
    assert session.tick(SimNow(START_MS, later.wall + 119.0)) == ()
    (close,) = session.tick(SimNow(START_MS, later.wall + 120.0))
    assert isinstance(close, Close)  # two minutes without a ping
    monkeypatch.setattr(bitget_sim, "LIFETIME_SECONDS", 50.0)
    young = opened(venue_sim)
    young.on_text(ping, SimNow(START_MS, NOW.wall + 40.0))
    assert young.tick(SimNow(START_MS, NOW.wall + 45.0)) == ()
    (close,) = young.tick(SimNow(START_MS, NOW.wall + 50.0))
    assert isinstance(close, Close) and "24 h" in close.reason
