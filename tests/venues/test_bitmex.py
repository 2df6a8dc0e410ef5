"""The BitMEX dialect: golden frames, real frames, notices, valuation, plans, bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.venues import make_dialect
from monitor.venues.bitmex import Bitmex, BitmexSession, timestamp_ms
from tests.support.golden import (
    events,
)
from tests.support.realdata import realdata_lines, requires_realdata

REQUEST = dialect.RestRequest(key="instrument/active", url="https://www.bitmex.com/api/v1/instrument/active")
NOW = 1_769_904_000.0
NOW_MS = int(NOW * 1000)


def row(symbol: str, root: str, quote: str, settle: str, *, typ: str = "FFWCSX",
        inverse: bool = False, quanto: bool = False, multiplier: float | None = None,
        u2p: float | None = None, u2s: float | None = None) -> dict[str, Any]:
    """One row of /api/v1/instrument/active (the fields the dialect reads)."""
    return {"symbol": symbol, "rootSymbol": root, "state": "Open", "typ": typ,
            "quoteCurrency": quote, "settlCurrency": settle, "isQuanto": quanto,
            "isInverse": inverse, "multiplier": multiplier,
            "underlyingToPositionMultiplier": u2p, "underlyingToSettleMultiplier": u2s}


# Contract terms as BitMEX lists them: XBTUSD 1 USD, XBTUSDT 1e-6 XBT, ETHUSD 100 satoshi
# per USD of ETH price (quanto, settled in XBt), ETHUSDT 1e-4 ETH.
XBTUSD = row("XBTUSD", "XBT", "USD", "XBt", inverse=True, multiplier=-1e8, u2s=-1e8)
XBTUSDT = row("XBTUSDT", "XBT", "USDT", "USDt", multiplier=1, u2p=1e6)
ETHUSD = row("ETHUSD", "ETH", "USD", "XBt", quanto=True, multiplier=100)
ETHUSDT = row("ETHUSDT", "ETH", "USDT", "USDt", multiplier=1, u2p=1e4)
BOOK_ROWS = [XBTUSD, XBTUSDT, ETHUSD, ETHUSDT]


def book_of(rows: list[Any]) -> instr.InstrumentBook:
    specs, following = Bitmex(dialect.VenueSettings()).parse_instruments(
        REQUEST, orjson.dumps(rows))
    assert following is None
    return instr.InstrumentBook("bitmex", specs)


def session(rows: list[Any] = BOOK_ROWS, symbols: tuple[str, ...] | None = None) -> BitmexSession:
    return Bitmex(dialect.VenueSettings(symbols=symbols)).session(book_of(rows))


def mark_frame(symbol: str = "XBTUSD", price: object = 90000.0, action: str = "update",
               **extra: object) -> str:
    data = {"symbol": symbol, "markPrice": price, "timestamp": "2026-02-01T00:00:00.000Z", **extra}
    return orjson.dumps({"table": "instrument", "action": action, "data": [data]}).decode()


def insert(*rows: dict[str, Any], action: str = "insert") -> str:
    return orjson.dumps({"table": "liquidation", "action": action, "data": list(rows)}).decode()


def liq_row(symbol: str = "XBTUSD", side: str = "Sell", price: object = 90000.0,
            qty: object = 1000, order_id: str = "id-1") -> dict[str, Any]:
    return {"orderID": order_id, "symbol": symbol, "side": side, "price": price, "leavesQty": qty}


# -- golden files ---------------------------------------------------------------------------


# -- real frames ----------------------------------------------------------------------------


@requires_realdata
def test_real_tardis_insert_and_delete() -> None:
    parser = session()
    insert_line, delete_line = realdata_lines("bitmex_liquidation.tardis.jsonl")
    (liq,) = events(parser.parse(insert_line, NOW))
    assert isinstance(liq, Liquidation)
    # XBTUSD Buy 9214 contracts at 10106: a short, 9214 USD (inverse: contracts are USD).
    assert (liq.instrument, liq.coin, liq.position_side) == ("XBTUSD", "BTC", "short")
    assert liq.notional_usd == 9214.0 and math.isclose(liq.qty_base, 9214 / 10106)
    assert liq.event_id == "bitmex:dd9cea25-207c-0dab-15b5-b88da776f500"
    assert liq.exchange_ts_ms == NOW_MS  # no timestamp on the row: the arrival time
    assert parser.parse(delete_line, NOW) == [dialect.Info("liquidation delete")]


# (symbol, side): (count, notional USD), worked from the 28 insert rows of the transcript.
# ETHUSD is valued with the XBTUSD mark of 90000 that the test sends first.
SESSION_EXPECTED = {
    ("ETHUSD", "long"): (4, 46269.5112),
    ("ETHUSD", "short"): (1, 11550.996),
    ("XBTUSD", "long"): (10, 1851300.0),
    ("XBTUSD", "short"): (6, 161100.0),
    ("XBTUSDT", "long"): (1, 8.944),
    ("XBTUSDT", "short"): (6, 22324.5617),
}


@requires_realdata
def test_real_session_transcript_counts_inserts_only() -> None:
    parser = session()
    assert events(parser.parse(mark_frame("XBTUSD", 90000.0), NOW))
    lines = list(realdata_lines("bitmex_liquidation_session.unattributed.jsonl"))
    assert len(lines) == 81
    items = [item for line in lines for item in parser.parse(line, NOW)]
    liqs = [i for i in items if isinstance(i, Liquidation)]
    assert len(liqs) == 28  # 28 inserts; 16 updates, 27 deletes and 4 partials count nothing
    assert len({liq.event_id for liq in liqs}) == 28
    totals: dict[tuple[str, str], list[float]] = {}
    for liq in liqs:
        total = totals.setdefault((liq.instrument, liq.position_side.value), [0, 0.0])
        total[0] += 1
        total[1] += liq.notional_usd
    assert totals.keys() == SESSION_EXPECTED.keys()
    for key, (count, notional) in SESSION_EXPECTED.items():
        assert totals[key][0] == count, key
        assert abs(totals[key][1] - notional) < 0.005, key
    assert sum(isinstance(i, dialect.Ack) for i in items) == 4
    assert [i for i in items if isinstance(i, dialect.Rejection)] == [dialect.Rejection(
        "Unrecognized request. See the docs or send 'help' for more details. Please see the "
        "documentation at https://www.bitmex.com/app/wsAPI.")]
    assert dialect.Info("welcome") in items
    assert not [i for i in items if isinstance(i, dialect.Invalid | dialect.Unrecognised)]


@requires_realdata
def test_real_instrument_frames() -> None:
    parser = session([])
    lines = list(realdata_lines("bitmex_instrument.tardis.jsonl"))
    assert len(lines) == 5
    for line in lines:
        items = parser.parse(line, NOW)
        # ETHM19 and LTCM19 are quoted in XBT, the updates carry no markPrice: no USD price.
        assert events(items) == []
        assert not [i for i in items if isinstance(i, dialect.Invalid | dialect.Unrecognised)]


@requires_realdata
def test_real_quote_frames_are_an_unknown_table() -> None:
    parser = session()
    lines = list(realdata_lines("bitmex_quote.jsonl"))
    assert len(lines) == 204
    for line in lines:
        assert parser.parse(line, NOW) == [dialect.Unrecognised("unknown_table")]


# -- valuation and sides --------------------------------------------------------------------


@pytest.mark.parametrize(("side", "expected"), [("Sell", "long"), ("Buy", "short")])
def test_order_side_sell_is_a_long(side: str, expected: str) -> None:
    (liq,) = events(session().parse(insert(liq_row(side=side)), NOW))
    assert isinstance(liq, Liquidation) and liq.position_side == PositionSide(expected)


def test_linear_and_inverse_notional() -> None:
    parser = session()
    (inverse,) = events(parser.parse(insert(liq_row("XBTUSD", qty=50000, price=100000.0)), NOW))
    assert isinstance(inverse, Liquidation)
    assert (inverse.notional_usd, inverse.qty_base) == (50000.0, 0.5)
    (linear,) = events(parser.parse(insert(liq_row("ETHUSDT", qty=25000, price=3000.0)), NOW))
    assert isinstance(linear, Liquidation)
    assert math.isclose(linear.qty_base, 2.5) and math.isclose(linear.notional_usd, 7500.0)


def test_quanto_needs_the_xbt_price_first() -> None:
    parser = session()
    frame = insert(liq_row("ETHUSD", qty=40, price=3000.0))
    with pytest.raises(FrameError) as excinfo:
        parser.parse(frame, NOW)
    assert excinfo.value.reason == "unknown_price"
    parser.parse(mark_frame("XBTUSDT", 80000.0), NOW)
    (liq,) = events(parser.parse(frame, NOW))
    assert isinstance(liq, Liquidation)
    # 40 x 100 sat x 3000 = 0.12 XBT at 80000 = 9600 USD.
    assert math.isclose(liq.notional_usd, 9600.0) and math.isclose(liq.qty_base, 3.2)


def test_one_bad_row_among_several_is_invalid() -> None:
    frame = insert(liq_row("XBTUSD", order_id="a"), liq_row("NOSUCH", order_id="b"),
                   liq_row("ETHUSD", order_id="c"))
    items = session().parse(frame, NOW)
    assert [e.event_id for e in events(items) if isinstance(e, Liquidation)] == ["bitmex:a"]
    assert sorted(i.reason for i in items if isinstance(i, dialect.Invalid)) == [
        "unknown_instrument", "unknown_price"]


def test_unknown_instrument() -> None:
    with pytest.raises(UnknownInstrument):
        session().parse(insert(liq_row("SOLUSD")), NOW)


def test_snapshots_and_updates_count_nothing() -> None:
    parser = session()
    for action in ("partial", "update", "delete"):
        assert parser.parse(insert(liq_row(), action=action), NOW) == [
            dialect.Info(f"liquidation {action}")]
    assert parser.parse(insert(liq_row(), action="bogus"), NOW) == [
        dialect.Unrecognised("unknown_action")]


def test_configured_symbols_filter() -> None:
    parser = session(symbols=("XBTUSDT",))
    assert events(parser.parse(insert(liq_row("XBTUSD")), NOW)) == []
    assert events(parser.parse(insert(liq_row("XBTUSDT")), NOW))


# -- mark prices ----------------------------------------------------------------------------


def test_mark_prices_merge_partial_terms_and_skip_indices_and_xbt_quotes() -> None:
    parser = session([])
    partial = orjson.dumps({"table": "instrument", "action": "partial", "data": [
        {"symbol": "SOLUSDT", "rootSymbol": "SOL", "quoteCurrency": "USDT", "markPrice": 150.5,
         "timestamp": "2026-02-01T00:00:01.500Z"},
        {"symbol": "ETHH26", "rootSymbol": "ETH", "quoteCurrency": "XBT", "markPrice": 0.03},
        {"symbol": ".BXBT", "lastPrice": 90000.0, "markPrice": 90000.0},
        {"symbol": "XBTUSD", "rootSymbol": "XBT", "quoteCurrency": "USD", "markPrice": None},
    ]}).decode()
    (sol,) = events(parser.parse(partial, NOW))
    assert sol == MarkPrice("bitmex", "SOLUSDT", "SOL", 150.5, 1769904001500, NOW)
    # Updates carry only changed fields: the terms come from the partial.
    (update,) = events(parser.parse(mark_frame("SOLUSDT", 151.0, timestamp=None), NOW))
    assert (update.coin, update.price, update.exchange_ts_ms) == ("SOL", 151.0, NOW_MS)
    assert events(parser.parse(mark_frame("NEVERSEEN", 1.0), NOW)) == []
    (xbt,) = events(parser.parse(mark_frame("XBTUSD", 90000.0), NOW))
    assert (xbt.coin, xbt.price) == ("BTC", 90000.0) and parser.xbt_usd == 90000.0
    assert parser.parse(mark_frame(action="delete"), NOW) == [dialect.Info("instrument delete")]


def test_mark_price_rows_with_errors_are_invalid() -> None:
    items = session().parse(mark_frame("XBTUSD", "garbage"), NOW)
    assert [type(i) for i in items] == [dialect.Invalid]


def test_timestamps() -> None:
    assert timestamp_ms("2019-06-01T00:00:19.163Z", 5) == 1559347219163
    assert timestamp_ms("2019-06-01T00:00:19", 5) == 1559347219000  # naive means UTC
    assert timestamp_ms("yesterday", 5) == 5
    assert timestamp_ms(None, 5) == 5


# -- notices --------------------------------------------------------------------------------


def test_ping_and_binary() -> None:
    bitmex = Bitmex(dialect.VenueSettings())
    assert bitmex.ping_frame(NOW) == "ping"
    assert bitmex.ping_interval_seconds is not None and bitmex.ping_interval_seconds <= 30
    assert bitmex.decode_binary(b'{"a":1}') == '{"a":1}'
    with pytest.raises(FrameError):
        bitmex.decode_binary(b"\xff\xfe")


# -- instruments ----------------------------------------------------------------------------


def test_instrument_requests() -> None:
    (request,) = Bitmex(dialect.VenueSettings()).instrument_requests("https://www.bitmex.com/")
    assert request.url == "https://www.bitmex.com/api/v1/instrument/active"


def test_instrument_specs() -> None:
    book = book_of([
        *BOOK_ROWS,
        row("TRXZ19", "TRX", "XBT", "XBt", typ="FFCCSX", multiplier=1e8, u2p=1),
        row("XBTEUR", "XBT", "EUR", "XBt", inverse=True, multiplier=-1e8, u2s=-1e8),
        row("XBT_USDT", "XBT", "USDT", "USDt", typ="IFXXXP"),
        row(".BXBT", "XBT", "USD", "", typ="MRCXXX"),
        row("NOPOS", "SOL", "USDT", "USDt", u2p=None),
        row("ODDQUANTO", "SOL", "USD", "Gwei", quanto=True, multiplier=100),
        {"symbol": "NOROOT", "typ": "FFWCSX"},
        "not an object",
    ])
    assert sorted(s.instrument for s in book) == [
        "ETHUSD", "ETHUSDT", "TRXZ19", "XBTUSD", "XBTUSDT"]
    specs = {s.instrument: s for s in book}
    assert (specs["XBTUSD"].kind, specs["XBTUSD"].contract_size, specs["XBTUSD"].coin) == (
        instr.ContractKind.INVERSE, 1.0, "BTC")
    assert (specs["XBTUSDT"].kind, specs["XBTUSDT"].contract_size) == (
        instr.ContractKind.LINEAR, 1e-6)
    assert (specs["ETHUSD"].kind, specs["ETHUSD"].contract_size, specs["ETHUSD"].category) == (
        instr.ContractKind.QUANTO, 1e-6, "XBT")
    assert (specs["TRXZ19"].quote, specs["TRXZ19"].contract_size) == ("XBT", 1.0)


@pytest.mark.parametrize("body", [b"<html>", b"{}", b'{"error":{"message":"x"}}'])
def test_bad_instrument_documents(body: bytes) -> None:
    with pytest.raises(InstrumentFetchError):
        Bitmex(dialect.VenueSettings()).parse_instruments(REQUEST, body)


# -- connection plans -----------------------------------------------------------------------


def test_plan_subscribes_instrument_before_liquidation() -> None:
    (plan,) = Bitmex(dialect.VenueSettings()).plans("wss://ws.bitmex.com", book_of(BOOK_ROWS))
    assert plan.url == "wss://ws.bitmex.com/realtime"
    (frame,) = plan.subscribe_frames
    assert json.loads(frame) == {"op": "subscribe", "args": ["instrument", "liquidation"]}
    assert plan.expected_acks == 2


def test_plan_with_symbols_and_the_simulator_prefix() -> None:
    bitmex = Bitmex(dialect.VenueSettings(symbols=("ETHUSD", "XBTUSDT")))
    (plan,) = bitmex.plans("ws://127.0.0.1:9/bitmex/", instr.InstrumentBook("bitmex"))
    assert plan.url == "ws://127.0.0.1:9/bitmex/realtime"
    args = json.loads(plan.subscribe_frames[0])["args"]
    assert args == ["instrument:ETHUSD", "instrument:XBTUSD", "instrument:XBTUSDT",
                    "liquidation:ETHUSD", "liquidation:XBTUSDT"]
    assert plan.expected_acks == len(args)


def test_registry_builds_the_dialect() -> None:
    bitmex = make_dialect("bitmex")
    assert isinstance(bitmex, Bitmex)
    assert bitmex.venue == "bitmex" and bitmex.completeness == "full"
    assert bitmex.needs_instruments
