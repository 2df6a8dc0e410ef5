"""The Kraken Futures simulator: greeting, trade snapshot, refusals, instrument documents.

Its round trip and supervised play are in test_roundtrip.py with every other venue's.
"""

from __future__ import annotations

import orjson
import pytest

from monitor.errors import InstrumentFetchError
from monitor.events import MarkPrice
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.venue_sim import Frame, RestRequest, SimNow
from monitor.venues import make_dialect
from monitor.venues.dialect import Info, Rejection, RestRequest as DialectRestRequest
from monitor.venues.instruments import InstrumentBook
from tests.support.simroundtrip import (
    START_MS,
    book_from_sim,
    connect_all,
    liqs_of,
    offline_roundtrip,
    scenario_events,
    venue_sim,
)

VENUE = "kraken-futures"


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
    sim = venue_sim(VENUE)
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
    sim = venue_sim(VENUE)
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
    book = book_from_sim(venue_sim(VENUE), dialect)
    for item in listings(VENUE):
        spec = book.get(item.symbol)
        assert spec is not None
        assert (spec.coin, spec.kind, spec.contract_size) == (
            item.coin, item.spec.kind, item.spec.contract_size)
    with pytest.raises(InstrumentFetchError):
        dialect.parse_instruments(DialectRestRequest("instruments", "x"), b"<html>")
