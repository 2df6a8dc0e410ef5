"""The BitMEX simulator: insert and delete rows, partials, mark updates, text ping, refusals.

Its round trip and supervised play are in test_roundtrip.py with every other venue's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import orjson
import pytest

from monitor.errors import InstrumentFetchError
from monitor.events import Liquidation, MarkPrice
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.venue_sim import Out, RestRequest, SimNow
from monitor.simulator.venues.bitmex import BitmexSession, BitmexSim, iso
from monitor.venues import make_dialect
from monitor.venues.dialect import (
    Ack,
    DialectSession,
    Info,
    Item,
    Pong,
    Rejection,
    RestRequest as DialectRestRequest,
    VenueSettings,
)
from tests.support.simroundtrip import (
    START_MS,
    book_from_sim,
    liqs_of,
    offline_roundtrip,
    opened as open_session,
    read_frames,
    scenario_events,
    sim_of,
)

VENUE = "bitmex"
DIALECT = make_dialect(VENUE)
NOW = SimNow(START_MS, 1.0)


sim = functools.partial(sim_of, VENUE, BitmexSim)


def opened(venue_sim: BitmexSim, reject: bool = False) -> BitmexSession:
    return open_session(venue_sim, "/realtime", BitmexSession, reject=reject)


def reader(venue_sim: BitmexSim) -> DialectSession:
    return DIALECT.session(book_from_sim(venue_sim, DIALECT))


def parse_all(session: DialectSession, frames: Sequence[Out]) -> list[Item]:
    return read_frames(DIALECT, session, frames, binary=False)


def test_insert_counts_and_the_following_delete_does_not() -> None:
    venue_sim = sim()
    session = opened(venue_sim)
    session.on_text('{"op":"subscribe","args":["liquidation"]}', NOW)
    (liq,) = liqs_of(scenario_events(VENUE)[:1])
    venue_sim.on_liquidation(liq)
    (insert,) = venue_sim.flush(SimNow(START_MS + 10, 2.0))
    (delete,) = venue_sim.flush(SimNow(START_MS + 20, 3.0))
    assert insert.liquidations == (liq,) and delete.liquidations == ()
    parser = reader(venue_sim)
    (liquidation,) = parser.parse(session.render(insert) or "", 1.0)
    assert isinstance(liquidation, Liquidation)
    assert liquidation.event_id == f"bitmex:{venue_sim.order_id(liq)}"
    assert parser.parse(session.render(delete) or "", 1.0) == [Info("liquidation delete")]
    assert venue_sim.flush(SimNow(START_MS + 30, 4.0)) == []


def test_welcome_acks_partials_and_mark_prices() -> None:
    _liqs, _got, (conn,) = offline_roundtrip(VENUE, [])
    assert conn.items[0] == Info("welcome")
    assert [i for i in conn.items if isinstance(i, Ack)] == [Ack("instrument"), Ack("liquidation")]
    assert Info("liquidation partial") in conn.items
    marks: dict[str, MarkPrice] = {}
    for item in conn.items:  # the partial's marks come first; later updates follow
        if isinstance(item, MarkPrice):
            marks.setdefault(item.instrument, item)
    assert set(marks) == {item.symbol for item in listings(VENUE)}
    assert (marks["XBTUSD"].coin, marks["XBTUSD"].price) == ("BTC", COIN_PRICES_USD["BTC"])
    assert marks["XBTUSD"].exchange_ts_ms == START_MS


def test_mark_updates_reach_instrument_subscribers() -> None:
    venue_sim = sim()
    session = opened(venue_sim)
    session.on_text('{"op":"subscribe","args":["instrument:XBTUSDT"]}', NOW)
    venue_sim.on_mark("BTC", 90_000.0, START_MS)
    pubs = venue_sim.flush(SimNow(START_MS + 5_000, 2.0))
    rendered = [text for pub in pubs if (text := session.render(pub)) is not None]
    assert len(rendered) == 1  # only the subscribed symbol
    (mark,) = reader(venue_sim).parse(rendered[0], 1.0)
    assert isinstance(mark, MarkPrice)
    assert (mark.instrument, mark.price, mark.exchange_ts_ms) == (
        "XBTUSDT", 90_000.0, START_MS + 5_000)


def test_text_ping_and_refusals() -> None:
    venue_sim = sim()
    parser = reader(venue_sim)
    dialect = DIALECT
    ping = dialect.ping_frame(1.0)
    assert ping is not None
    assert parse_all(parser, opened(venue_sim).on_text(ping, NOW)) == [Pong()]
    refused = opened(venue_sim, reject=True)
    for session, text in ((refused, '{"op":"subscribe","args":["liquidation"]}'),
                          (opened(venue_sim), '{"op":"subscribe","args":["trades"]}'),
                          (opened(venue_sim), '{"op":"subscribe","args":["liquidation:NOPE"]}'),
                          (opened(venue_sim), "help")):
        (notice,) = parse_all(parser, session.on_text(text, NOW))
        assert isinstance(notice, Rejection)
    assert venue_sim.open("/realtimemd", "", reject=False) is None
    assert venue_sim.rest(RestRequest("GET", "/api/v1/trade", {})) is None


def test_instrument_document_reads_back() -> None:
    venue_sim = sim()
    dialect = DIALECT
    book = book_from_sim(venue_sim, dialect)
    assert sorted(s.instrument for s in book) == sorted(i.symbol for i in listings(VENUE))
    for item in listings(VENUE):
        spec = book.get(item.symbol)
        assert spec is not None
        assert (spec.coin, spec.kind, spec.quote) == (item.coin, item.spec.kind, item.spec.quote)
        assert math.isclose(spec.contract_size, item.spec.contract_size, rel_tol=1e-12)
    with pytest.raises(InstrumentFetchError):
        dialect.parse_instruments(DialectRestRequest("instrument/active", "x"), b"{}")


def test_configured_symbols() -> None:
    events = scenario_events(VENUE)
    settings = VenueSettings(symbols=("XBTUSDT",))
    _liqs, got, (conn,) = offline_roundtrip(VENUE, events, settings)
    assert {g.instrument for g in got} == {"XBTUSDT"}
    assert len(got) == 2
    # XBTUSD is subscribed for the XBT/USD rate, but only configured symbols are emitted.
    assert {m.instrument for m in conn.items if isinstance(m, MarkPrice)} == {"XBTUSDT"}
    assert getattr(conn.reader, "xbt_usd", None) == COIN_PRICES_USD["BTC"]


def test_iso_timestamps() -> None:
    assert iso(1_769_904_000_123) == "2026-02-01T00:00:00.123Z"
    assert orjson.loads(orjson.dumps(iso(START_MS))) == "2026-02-01T00:00:00.000Z"
