"""The Kraken Futures dialect: golden frames, real frames, notices, plans, bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError
from monitor.events import Liquidation, PositionSide
from monitor.venues import make_dialect
from monitor.venues.kraken_futures import (
    MAX_PRODUCTS_PER_CONNECTION,
    KrakenFutures,
    KrakenFuturesSession,
    product_terms,
)
from tests.support.golden import (
    events,
    liquidations,
)
from tests.support.realdata import realdata_lines, requires_realdata

REQUEST = dialect.RestRequest(key="instruments", url="https://futures.kraken.com/derivatives/api/v3/instruments")
NOW = 1_769_904_000.0


def instrument(symbol: str, kind: str = "flexible_futures", size: float = 1.0,
               base: str | None = None, tradeable: bool = True) -> dict[str, Any]:
    """One row of /derivatives/api/v3/instruments (the fields the dialect reads)."""
    row: dict[str, Any] = {"symbol": symbol, "type": kind, "tradeable": tradeable,
                           "contractSize": size, "tickSize": 0.5, "quote": "USD"}
    if base is not None:
        row["base"] = base
    return row


def book_of(rows: list[Any]) -> instr.InstrumentBook:
    specs, next_request = KrakenFutures(dialect.VenueSettings()).parse_instruments(
        REQUEST, orjson.dumps({"result": "success", "instruments": rows}))
    assert next_request is None
    return instr.InstrumentBook("kraken-futures", specs)


def session(rows: list[Any] | None = None, symbols: tuple[str, ...] | None = None
            ) -> KrakenFuturesSession:
    return KrakenFutures(dialect.VenueSettings(symbols=symbols)).session(book_of(rows or []))


def trade(product: str = "PF_XBTUSD", side: str = "sell", qty: Any = 0.5,
          price: Any = 90000.0, kind: str = "liquidation", **extra: Any) -> str:
    return orjson.dumps({"feed": "trade", "product_id": product, "uid": f"uid-{product}-{qty}",
                         "side": side, "type": kind, "seq": 1, "time": 1769904000000,
                         "qty": qty, "price": price, **extra}).decode()


# -- golden files ---------------------------------------------------------------------------


# -- real frames ----------------------------------------------------------------------------

# Worked by hand: PI_ is inverse, so qty is USD and notional = qty; taker sell = long.
REAL_EXPECTED = {
    "3ee209b8-bc9f-4ed5-965b-8c6208b26411": ("PI_XRPUSD", "XRP", "long", 12000.0, 12000 / 0.1736),
    "e7f3a144-5c04-4ed6-999e-5922cd0b6160": ("PI_ETHUSD", "ETH", "short", 250.0, 250 / 231.6),
}


@requires_realdata
def test_real_liquidation_frames() -> None:
    lines = list(realdata_lines("krakenfutures_trade_liquidation.tardis.jsonl"))
    assert len(lines) == 2
    for line in lines:
        (liq,) = events(session().parse(line, NOW))
        assert isinstance(liq, Liquidation)
        instrument, coin, side, notional, qty = REAL_EXPECTED[liq.event_id.split(":", 1)[1]]
        assert (liq.instrument, liq.coin, liq.position_side) == (instrument, coin, side)
        assert abs(liq.notional_usd - notional) < 0.005
        assert math.isclose(liq.qty_base, qty, rel_tol=1e-9)
        assert liq.exchange_ts_ms > 1_590_000_000_000
        assert liq.completeness == "full"


# -- valuation and side ---------------------------------------------------------------------


@pytest.mark.parametrize(("side", "expected"), [("sell", "long"), ("buy", "short")])
def test_taker_side_is_the_forced_order(side: str, expected: str) -> None:
    (liq,) = events(session().parse(trade(side=side), NOW))
    assert isinstance(liq, Liquidation) and liq.position_side == PositionSide(expected)


@pytest.mark.parametrize(
    ("product", "qty", "price", "notional", "qty_base"),
    [("PF_ETHUSD", 2.0, 2500.0, 5000.0, 2.0),  # linear: qty x price
     ("PI_XBTUSD", 10000, 80000.0, 10000.0, 0.125),  # inverse: qty is USD
     ("FI_XBTUSD_260327", 500, 100000.0, 500.0, 0.005),
     ("FF_XBTUSD_260327", 0.1, 90000.0, 9000.0, 0.1)],  # FF_ read as linear
)
def test_notional_by_product_family(product: str, qty: float, price: float, notional: float,
                                    qty_base: float) -> None:
    (liq,) = events(session().parse(trade(product, qty=qty, price=price), NOW))
    assert isinstance(liq, Liquidation)
    assert abs(liq.notional_usd - notional) < 0.005
    assert math.isclose(liq.qty_base, qty_base, rel_tol=1e-12)
    assert liq.coin in ("BTC", "ETH")


def test_inverse_contract_size_from_the_book() -> None:
    parser = session([instrument("PI_XBTUSD", "futures_inverse", size=10.0)])
    (liq,) = events(parser.parse(trade("PI_XBTUSD", qty=100, price=50000.0), NOW))
    assert isinstance(liq, Liquidation) and liq.notional_usd == 1000.0


def test_other_trade_types_are_not_liquidations() -> None:
    for kind in ("fill", "termination", "block"):
        assert session().parse(trade(kind=kind), NOW) == []


def test_event_id_is_the_uid() -> None:
    (liq,) = liquidations(session().parse(trade(), NOW))
    assert liq.event_id == "kraken-futures:uid-PF_XBTUSD-0.5"


def test_configured_symbols_filter() -> None:
    parser = session(symbols=("PF_ETHUSD",))
    assert parser.parse(trade("PF_XBTUSD"), NOW) == []
    assert len(events(parser.parse(trade("PF_ETHUSD"), NOW))) == 1


def test_product_terms() -> None:
    assert product_terms("PF_XBTUSD") == ("BTC", 1.0, False)
    assert product_terms("pi_ethusd") == ("ETH", 1.0, True)
    assert product_terms("PF_1000PEPEUSD") == ("PEPE", 1000.0, False)
    for bad in ("in_xbtusd", "rr_xbtusd", "PF_", "PF_XBT", "XBTUSD"):
        with pytest.raises(FrameError):
            product_terms(bad)


# -- notices --------------------------------------------------------------------------------


def test_decode_binary_and_no_application_ping() -> None:
    kraken = KrakenFutures(dialect.VenueSettings())
    assert kraken.decode_binary(b'{"event":"info"}') == '{"event":"info"}'
    with pytest.raises(FrameError):
        kraken.decode_binary(b"\xff")
    # Kraken's own client keeps the socket alive with protocol pings; see the module docs.
    assert kraken.ping_interval_seconds is None and kraken.ping_frame(NOW) is None


# -- instruments ----------------------------------------------------------------------------


def test_instrument_requests() -> None:
    (request,) = KrakenFutures(dialect.VenueSettings()).instrument_requests("https://futures.kraken.com/")
    assert request.url == "https://futures.kraken.com/derivatives/api/v3/instruments"
    assert request.method == "GET"


def test_instrument_specs() -> None:
    book = book_of([
        instrument("PF_XBTUSD", base="BTC"),
        instrument("PI_XBTUSD", "futures_inverse"),
        instrument("FI_ETHUSD_260327", "futures_inverse"),
        instrument("PF_OLDUSD", tradeable=False),
        {"symbol": "in_xbtusd", "type": "spot index", "tradeable": False},
        {"symbol": "rr_xbtusd", "type": "spot index"},
        {"symbol": "PF_BADUSD", "contractSize": "many"},
        "not an object",
    ])
    assert sorted(s.instrument for s in book) == ["FI_ETHUSD_260327", "PF_XBTUSD", "PI_XBTUSD"]
    linear = book.get("PF_XBTUSD")
    assert linear is not None and (linear.coin, linear.kind) == ("BTC", instr.ContractKind.LINEAR)
    inverse = book.get("PI_XBTUSD")
    assert inverse is not None and inverse.kind is instr.ContractKind.INVERSE
    assert (inverse.coin, inverse.contract_size, inverse.quote) == ("BTC", 1.0, "USD")


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"result":"error","error":"x"}',
                                  b'{"instruments":{}}'])
def test_bad_instrument_documents(body: bytes) -> None:
    with pytest.raises(InstrumentFetchError):
        KrakenFutures(dialect.VenueSettings()).parse_instruments(REQUEST, body)


# -- connection plans -----------------------------------------------------------------------


def test_plans_subscribe_trade_and_ticker_for_every_product() -> None:
    book = book_of([instrument("PF_XBTUSD"), instrument("PI_ETHUSD", "futures_inverse")])
    (plan,) = KrakenFutures(dialect.VenueSettings()).plans("wss://futures.kraken.com", book)
    assert plan.url == "wss://futures.kraken.com/ws/v1"
    assert [json.loads(f) for f in plan.subscribe_frames] == [
        {"event": "subscribe", "feed": "trade", "product_ids": ["PF_XBTUSD", "PI_ETHUSD"]},
        {"event": "subscribe", "feed": "ticker", "product_ids": ["PF_XBTUSD", "PI_ETHUSD"]},
    ]
    assert plan.expected_acks == 2


def test_plans_shard_and_use_the_simulator_prefix() -> None:
    rows = [instrument(f"PF_C{n:03d}USD") for n in range(MAX_PRODUCTS_PER_CONNECTION + 5)]
    plans = KrakenFutures(dialect.VenueSettings()).plans(
        "ws://127.0.0.1:9/kraken-futures", book_of(rows))
    assert [p.url for p in plans] == ["ws://127.0.0.1:9/kraken-futures/ws/v1"] * 2
    assert len({p.name for p in plans}) == 2
    products = [json.loads(p.subscribe_frames[0])["product_ids"] for p in plans]
    assert [len(p) for p in products] == [MAX_PRODUCTS_PER_CONNECTION, 5]
    assert sorted(products[0] + products[1]) == sorted(r["symbol"] for r in rows)


def test_plans_from_configured_symbols_and_fallback() -> None:
    kraken = KrakenFutures(dialect.VenueSettings(symbols=("PI_XBTUSD",)))
    (plan,) = kraken.plans("wss://futures.kraken.com", instr.InstrumentBook("kraken-futures"))
    assert json.loads(plan.subscribe_frames[0])["product_ids"] == ["PI_XBTUSD"]
    (plan,) = KrakenFutures(dialect.VenueSettings()).plans(
        "wss://x", instr.InstrumentBook("kraken-futures"))
    assert json.loads(plan.subscribe_frames[0])["product_ids"] == ["PF_XBTUSD"]


def test_registry_builds_the_dialect() -> None:
    kraken = make_dialect("kraken-futures")
    assert isinstance(kraken, KrakenFutures)
    assert kraken.venue == "kraken-futures" and kraken.completeness == "full"
