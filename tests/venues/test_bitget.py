"""The Bitget dialect: golden frames, the real frame, amount = quote value, plans, bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.events import Completeness, MarkPrice, PositionSide
from monitor.venues import make_dialect
from monitor.venues.bitget import Bitget, BitgetSession, inst_type_of, symbol_coin
from tests.support.golden import (
    events,
    liquidations,
)
from tests.support.realdata import realdata_lines, requires_realdata

NOW = 1_769_904_000.0


def session(symbols: tuple[str, ...] | None = None,
            book: instr.InstrumentBook | None = None) -> BitgetSession:
    return Bitget(dialect.VenueSettings(symbols=symbols)).session(
        book or instr.InstrumentBook("bitget"))


def row(symbol: object = "BTCUSDT", side: object = "buy", price: object = "100000",
        amount: object = "5000", ts: object = "1769904000000") -> dict[str, Any]:
    return {"symbol": symbol, "side": side, "price": price, "amount": amount, "ts": ts}


def push(*rows: dict[str, Any], inst_type: str = "usdt-futures", action: str = "update") -> str:
    return orjson.dumps({"data": list(rows), "arg": {"instType": inst_type, "topic": "liquidation"},
                         "action": action, "ts": 1769904000100}).decode()


def ticker_push(symbol: str = "BTCUSDT", mark: object = "100010.5", **extra: object) -> str:
    return orjson.dumps({"action": "snapshot", "arg": {"instType": "usdt-futures",
                         "topic": "ticker", "symbol": symbol},
                         "data": [{"markPrice": mark, "lastPrice": "100000", **extra}],
                         "ts": 1769904000200}).decode()


# -- golden files ---------------------------------------------------------------------------


# -- the real frame: what ``amount`` means ---------------------------------------------------


@requires_realdata
def test_real_frame_amount_is_the_quote_value() -> None:
    (line,) = realdata_lines("bitget_liquidation.tardis.jsonl")
    ape, ip = liquidations(session().parse(line, NOW))
    # amount / price gives whole multiples of each pair's 0.1 size step (83.1 APE,
    # 286.5 IP), which a size could not: amount is the USDT value, not a quantity.
    assert (ape.instrument, ape.coin, ape.position_side) == ("APEUSDT", "APE", PositionSide.LONG)
    assert ape.notional_usd == 13.70319
    assert math.isclose(ape.qty_base, 83.1, rel_tol=1e-12)
    assert (ip.instrument, ip.coin, ip.position_side) == ("IPUSDT", "IP", PositionSide.LONG)
    assert ip.notional_usd == 143.330431857868
    assert math.isclose(ip.qty_base, 286.5, rel_tol=1e-12)
    assert (ape.exchange_ts_ms, ip.exchange_ts_ms) == (1777358886549, 1777358876983)
    assert ape.completeness == ip.completeness == Completeness.AGGREGATED
    assert ape.event_id != ip.event_id and ape.event_id.startswith("bitget:")


# -- sides, symbols, filters -----------------------------------------------------------------


@pytest.mark.parametrize(("side", "expected"), [("buy", "long"), ("sell", "short")])
def test_side_is_the_position_side(side: str, expected: str) -> None:
    (liq,) = liquidations(session().parse(push(row(side=side)), NOW))
    assert liq.position_side == PositionSide(expected)
    assert (liq.notional_usd, liq.qty_base) == (5000.0, 0.05)


@pytest.mark.parametrize(("symbol", "inst_type", "coin"), [
    ("BTCUSD", "coin-futures", "BTC"),
    ("ETHUSD_CM", "coin-futures", "ETH"),
    ("BTCPERP", "usdc-futures", "BTC"),
    ("SOLUSDC", "usdc-futures", "SOL"),
    ("1000SATSUSDT", "usdt-futures", "SATS"),
])
def test_product_types_and_symbols(symbol: str, inst_type: str, coin: str) -> None:
    (liq,) = liquidations(session().parse(push(row(symbol), inst_type=inst_type), NOW))
    assert (liq.instrument, liq.coin, liq.notional_usd) == (symbol, coin, 5000.0)
    assert inst_type_of(symbol) == inst_type
    assert symbol_coin(symbol)[0] == coin


def test_unit_multiplier_and_the_book() -> None:
    (liq,) = liquidations(session().parse(push(row("1000SATSUSDT", price="0.02")), NOW))
    assert math.isclose(liq.price, 0.00002) and math.isclose(liq.qty_base, 250_000_000.0)
    spec = instr.InstrumentSpec("bitget", "XUSDT", "X", instr.ContractKind.LINEAR, 1.0, "USDT")
    (liq,) = liquidations(session(book=instr.InstrumentBook("bitget", [spec])).parse(
        push(row("XUSDT")), NOW))
    assert liq.coin == "X"


def test_event_ids_differ_by_every_identifying_field() -> None:
    ids = {liq.event_id for liq in liquidations(session().parse(push(
        row(), row(side="sell"), row(amount="5001"), row(ts="1769904000001"), row("ETHUSDT"),
        row(price="100001")), NOW))}
    assert len(ids) == 6
    again = liquidations(session().parse(push(row()), NOW))
    assert again[0].event_id in ids


def test_snapshot_configured_symbols_and_one_bad_row() -> None:
    assert session().parse(push(row(), action="snapshot"), NOW) == [
        dialect.Info("liquidation snapshot")]
    assert session().parse(push(row(), action="x"), NOW) == [dialect.Unrecognised("unknown_action")]
    assert session(symbols=("ETHUSDT",)).parse(push(row()), NOW) == []
    items = session().parse(push(row(), row(side="long")), NOW)
    assert len(liquidations(items)) == 1
    assert [i.reason for i in items if isinstance(i, dialect.Invalid)] == ["bad_value"]


def test_tickers() -> None:
    (mark,) = events(session().parse(ticker_push(), NOW))
    assert mark == MarkPrice("bitget", "BTCUSDT", "BTC", 100010.5, 1769904000200, NOW)
    (mark,) = events(session().parse(ticker_push(ts="1769904000300"), NOW))
    assert mark.exchange_ts_ms == 1769904000300
    two = orjson.dumps({"arg": {"instType": "usdt-futures", "topic": "ticker"}, "ts": 1,
                        "data": [{"symbol": "ETHUSDT", "markPrice": "3000"},
                                 {"symbol": "ETHUSDT"}]}).decode()
    items = session().parse(two, NOW)
    assert [type(i) for i in items] == [MarkPrice, dialect.Invalid]


# -- notices --------------------------------------------------------------------------------


def test_ping_rotation_and_no_instruments() -> None:
    bitget = Bitget(dialect.VenueSettings())
    assert bitget.ping_frame(NOW) == "ping" and bitget.ping_interval_seconds == 30.0
    assert bitget.max_lifetime_seconds is not None
    assert 20 * 3600 <= bitget.max_lifetime_seconds < 24 * 3600
    assert bitget.instrument_requests("https://api.bitget.com") == []
    assert bitget.parse_instruments(dialect.RestRequest("k", "u"), b"[]") == ([], None)
    assert not bitget.needs_instruments
    assert bitget.decode_binary(b"pong") == "pong"


# -- connection plans -----------------------------------------------------------------------


def test_plan_subscribes_every_product_type_and_tickers() -> None:
    (plan,) = Bitget(dialect.VenueSettings()).plans(
        "wss://ws.bitget.com", instr.InstrumentBook("bitget"))
    assert plan.url == "wss://ws.bitget.com/v3/ws/public"
    (frame,) = plan.subscribe_frames
    assert json.loads(frame) == {"op": "subscribe", "args": [
        {"instType": "usdt-futures", "topic": "liquidation"},
        {"instType": "coin-futures", "topic": "liquidation"},
        {"instType": "usdc-futures", "topic": "liquidation"},
        {"instType": "usdt-futures", "topic": "ticker", "symbol": "BTCUSDT"},
        {"instType": "usdt-futures", "topic": "ticker", "symbol": "ETHUSDT"},
    ]}
    assert plan.expected_acks == 5


def test_plan_with_symbols_and_the_simulator_prefix() -> None:
    bitget = Bitget(dialect.VenueSettings(symbols=("BTCUSD", "SOLUSDT")))
    (plan,) = bitget.plans("ws://127.0.0.1:9/bitget", instr.InstrumentBook("bitget"))
    assert plan.url == "ws://127.0.0.1:9/bitget/v3/ws/public"
    args = json.loads(plan.subscribe_frames[0])["args"]
    assert args[3:] == [{"instType": "coin-futures", "topic": "ticker", "symbol": "BTCUSD"},
                        {"instType": "usdt-futures", "topic": "ticker", "symbol": "SOLUSDT"}]
    assert plan.expected_acks == 5


def test_registry_builds_the_dialect() -> None:
    bitget = make_dialect("bitget")
    assert isinstance(bitget, Bitget)
    assert bitget.venue == "bitget" and bitget.completeness == "aggregated"
