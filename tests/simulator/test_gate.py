"""The Gate simulator: two settle hosts, signed sizes, the per-contract throttle, futures.ping.

Its round trip and supervised play are in test_roundtrip.py with every other venue's.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence

import orjson
import pytest

from monitor.errors import UnknownInstrument
from monitor.events import MarkPrice, PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.scenarios.model import ScenarioEvent
from monitor.simulator.venue_sim import Liq, Out, RestRequest, SimNow
from monitor.simulator.venues.gate import GateSession, GateSim
from monitor.venues import make_dialect
from monitor.venues.dialect import Ack, DialectSession, Item, Pong, Rejection
from monitor.venues.instruments import InstrumentBook
from tests.support.simroundtrip import (
    START_MS,
    book_from_sim,
    connect_all,
    liqs_of,
    opened as open_session,
    read_frames,
    scenario_events,
    sim_of,
)

VENUE = "gate"
DIALECT = make_dialect(VENUE)
NOW = SimNow(START_MS, 100.0)


sim = functools.partial(sim_of, VENUE, GateSim)


def opened(venue_sim: GateSim, settle: str = "usdt", reject: bool = False) -> GateSession:
    return open_session(venue_sim, f"/v4/ws/{settle}", GateSession, reject=reject)


def read(outs: Sequence[Out], reader: DialectSession | None = None) -> list[Item]:
    return read_frames(DIALECT, reader or DIALECT.session(book_from_sim(sim(), DIALECT)), outs,
                       binary=False)


def spaced(events: Sequence[ScenarioEvent]) -> list[Liq]:
    """One liquidation per second, so the per-contract throttle keeps them all."""
    return liqs_of(events, spacing_ms=1_000)


def test_size_sign_is_the_side() -> None:
    venue_sim = sim()
    for liq in spaced(scenario_events(VENUE)[:2]):
        venue_sim.on_liquidation(liq)
    pubs = venue_sim.flush(NOW, final=True)
    sizes = [json.loads(p.payload)["result"][0]["size"] for p in pubs]
    sides = [p.liquidations[0].event.position_side for p in pubs]
    assert sides == [PositionSide.LONG, PositionSide.SHORT]
    assert sizes[0] < 0 < sizes[1]


def test_every_liquidation_of_a_second_goes_out_in_one_batch() -> None:
    # Gate's changelog of 2026-08-20: batched, none dropped (it was one per contract per s).
    venue_sim = sim()
    btc = [e for e in scenario_events(VENUE) if e.instrument == "BTC_USDT"]
    eth = [e for e in scenario_events(VENUE) if e.instrument == "ETH_USDT"]
    for liq in [Liq(1, btc[0], START_MS + 100), Liq(2, btc[1], START_MS + 600),
                Liq(3, eth[0], START_MS + 700), Liq(4, btc[0], START_MS + 1_200)]:
        venue_sim.on_liquidation(liq)
    first = venue_sim.flush(SimNow(START_MS + 1_000, 1.0))
    (batch,) = first
    assert [liq.seq for liq in batch.liquidations] == [1, 2, 3]
    assert len(orjson.loads(batch.payload)["result"]) == 3  # contracts mixed in one push
    second = venue_sim.flush(SimNow(START_MS + 2_000, 1.0))
    assert [liq.seq for p in second for liq in p.liquidations] == [4]


def test_acks_tickers_pong_and_refusals() -> None:
    venue_sim = sim()
    book = book_from_sim(venue_sim, DIALECT)
    conns = connect_all(venue_sim, DIALECT, book, NOW)
    for conn in conns:
        assert sum(isinstance(i, Ack) for i in conn.items) == 2
    marks = {i.instrument: i for c in conns for i in c.items if isinstance(i, MarkPrice)}
    assert set(marks) == {"BTC_USDT", "ETH_USDT", "BTC_USD", "BTC_USD1"}
    assert marks["BTC_USD"].price == COIN_PRICES_USD["BTC"]
    ping = DIALECT.ping_frame(1_769_904_000.5)
    assert ping is not None
    assert read(opened(venue_sim).on_text(ping, NOW)) == [Pong()]
    subscribe = '{"time":1,"channel":"futures.public_liquidates","event":"subscribe","payload":%s}'
    for session, text in (
        (opened(venue_sim, reject=True), subscribe % '["!all"]'),
        (opened(venue_sim), subscribe % '["NOPE_USDT"]'),
        (opened(venue_sim, "btc"), subscribe % '["BTC_USDT"]'),  # a USDT contract on btc
        (opened(venue_sim), subscribe.replace("public_liquidates", "liquidates") % '["!all"]'),
    ):
        (notice,) = read(session.on_text(text, NOW))
        assert isinstance(notice, Rejection)
    assert venue_sim.open("/v4/ws/delivery/usdt", "", reject=False) is None


def test_contract_documents_read_back_and_page() -> None:
    venue_sim = sim()
    book = book_from_sim(venue_sim, DIALECT)
    assert sorted(s.instrument for s in book) == sorted(i.symbol for i in listings(VENUE))
    for item in listings(VENUE):
        spec = book.get(item.symbol)
        assert spec is not None and (spec.coin, spec.kind) == (item.coin, item.spec.kind)
        assert math.isclose(spec.contract_size, item.spec.contract_size, rel_tol=1e-12)
    page = venue_sim.rest(RestRequest("GET", "/api/v4/futures/usdt/contracts",
                                      {"limit": "2", "offset": "1"}))
    assert page is not None
    assert [row["name"] for row in json.loads(page.body)] == ["ETH_USDT", "SOL_USDT"]
    bad = venue_sim.rest(RestRequest("GET", "/api/v4/futures/eur/contracts", {}))
    assert bad is not None and bad.status == 400
    assert venue_sim.rest(RestRequest("GET", "/api/v4/futures/usdt/tickers", {})) is None


def test_unknown_contracts_wait_for_the_book() -> None:
    venue_sim = sim()
    venue_sim.on_liquidation(spaced(scenario_events(VENUE)[:1])[0])
    (pub,) = venue_sim.flush(NOW, final=True)
    empty = DIALECT.session(InstrumentBook(VENUE))
    with pytest.raises(UnknownInstrument):
        empty.parse(pub.payload, 1.0)
