"""The BitMEX simulator speaks what the BitMEX dialect reads, offline and via the supervisor."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from monitor.errors import InstrumentFetchError
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.venue_sim import Frame, Liq, RestRequest, SimContext, SimNow
from monitor.simulator.venues import make_venue_sim
from monitor.simulator.venues.bitmex import BitmexSession, BitmexSim, iso
from monitor.venues import make_dialect
from monitor.venues.bitmex import Bitmex
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
from tests.simulator.test_kraken_futures import (
    START_MS,
    assert_received_what_was_sent,
    book_from_sim,
    liqs_of,
    offline_roundtrip,
    scenario_events,
    through_supervisor,
)

VENUE = "bitmex"
NOW = SimNow(START_MS, 1.0)


def sim() -> BitmexSim:
    made = make_venue_sim(SimContext(VENUE, was_sent=lambda seq: True))
    assert isinstance(made, BitmexSim)
    return made


def opened(venue_sim: BitmexSim, reject: bool = False) -> BitmexSession:
    session = venue_sim.open("/realtime", "", reject=reject)
    assert isinstance(session, BitmexSession)
    return session


def reader(venue_sim: BitmexSim) -> DialectSession:
    dialect = make_dialect(VENUE)
    return dialect.session(book_from_sim(venue_sim, dialect))


def parse_all(session: DialectSession, frames: Any) -> list[Item]:
    items: list[Item] = []
    for frame in frames:
        assert isinstance(frame, Frame) and isinstance(frame.data, str)
        items += session.parse(frame.data, 1.0)
    return items


def assert_same(liquidation: Liquidation, liq: Liq) -> None:
    event = liq.event
    assert (liquidation.venue, liquidation.instrument, liquidation.coin) == (
        event.venue, event.instrument, event.coin)
    assert liquidation.position_side == event.position_side
    assert math.isclose(liquidation.price, event.price, rel_tol=1e-9)
    assert math.isclose(liquidation.qty_base, event.qty_base, rel_tol=1e-9)
    assert abs(liquidation.notional_usd - event.notional_usd) < 0.005
    assert liquidation.completeness == "full"
    # BitMEX rows carry no time: the dialect stamps the arrival time (1.0 s here).
    assert liquidation.exchange_ts_ms == 1000


def test_every_liquidation_round_trips() -> None:
    events = scenario_events(VENUE)
    liqs, got, _conns = offline_roundtrip(VENUE, events)
    assert len(got) == len(liqs) == 2 * len(listings(VENUE))
    for liquidation, liq in zip(got, liqs, strict=True):
        assert_same(liquidation, liq)
    assert len({g.event_id for g in got}) == len(got)


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
    dialect = make_dialect(VENUE)
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
    dialect = make_dialect(VENUE)
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


async def test_a_scenario_through_the_supervisor_with_text_pings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Bitmex, "ping_interval_seconds", 0.05)
    pongs: list[Pong] = []

    class Counting:
        def __init__(self, inner: DialectSession) -> None:
            self.inner = inner

        def parse(self, text: str, received_at: float) -> list[Item]:
            items = self.inner.parse(text, received_at)
            pongs.extend(i for i in items if isinstance(i, Pong))
            return items

    played = await through_supervisor(VENUE, session_factory=Counting)
    assert_received_what_was_sent(played, VENUE)
    assert played.observer.reconnects == []
    assert pongs  # the server answered the dialect's text pings
    assert any(isinstance(e, MarkPrice) for e in played.sink.events)
    assert {e.position_side for e in played.sink.events if isinstance(e, Liquidation)} == set(
        PositionSide)
