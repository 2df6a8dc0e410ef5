"""The dYdX v4 dialect: golden frames, batching, deleveraging, notices, shards, bad input."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.venues import make_dialect
from monitor.venues.dydx import (
    DELEVERAGED_INFO,
    MAX_TRADES_SUBSCRIPTIONS_PER_CONNECTION,
    SUBSCRIBE_INTERVAL_SECONDS,
    Dydx,
    DydxSession,
    iso_to_ms,
)
from tests.support.golden import events, liquidations

REQUEST = dialect.RestRequest(key="perpetualMarkets", url="https://indexer.dydx.trade/v4/perpetualMarkets")
NOW = 1_769_904_000.0


def market(ticker: str, status: str = "ACTIVE", oracle: str = "100") -> dict[str, Any]:
    """One entry of /v4/perpetualMarkets ``markets`` (the fields the dialect reads)."""
    return {"clobPairId": "0", "ticker": ticker, "status": status, "oraclePrice": oracle,
            "atomicResolution": -10, "stepSize": "0.0001", "tickSize": "1"}


def book_of(markets: dict[str, Any]) -> instr.InstrumentBook:
    specs, next_request = Dydx(dialect.VenueSettings()).parse_instruments(
        REQUEST, orjson.dumps({"markets": markets}))
    assert next_request is None
    return instr.InstrumentBook("dydx", specs)


def session(symbols: tuple[str, ...] | None = None) -> DydxSession:
    return Dydx(dialect.VenueSettings(symbols=symbols)).session(instr.InstrumentBook("dydx"))


def trade_row(kind: str = "LIQUIDATED", side: str = "SELL", size: Any = "0.5",
              price: Any = "60000", trade_id: str = "01aa",
              created: Any = "2026-02-01T00:00:00.000Z") -> dict[str, Any]:
    return {"id": trade_id, "size": size, "price": price, "side": side, "createdAt": created,
            "type": kind, "createdAtHeight": "100"}


def trades_frame(*rows: dict[str, Any], market_id: str = "BTC-USD", batched: bool = False) -> str:
    contents: Any = [{"trades": [row]} for row in rows] if batched else {"trades": list(rows)}
    return orjson.dumps({
        "type": "channel_batch_data" if batched else "channel_data", "connection_id": "c",
        "message_id": 9, "id": market_id, "channel": "v4_trades", "version": "2.1.0",
        "contents": contents}).decode()


# -- golden files ---------------------------------------------------------------------------


# -- trades ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "expected"), [("SELL", "long"), ("BUY", "short")])
def test_taker_side_is_the_liquidation_order(side: str, expected: str) -> None:
    (liq,) = events(session().parse(trades_frame(trade_row(side=side)), NOW))
    assert isinstance(liq, Liquidation)
    assert liq.position_side == PositionSide(expected)
    assert (liq.notional_usd, liq.qty_base, liq.price) == (30000.0, 0.5, 60000.0)
    assert (liq.exchange_ts_ms, liq.event_id, liq.completeness) == (
        1_769_904_000_000, "dydx:01aa", "full")


def test_deleveraging_is_reported_apart_and_never_a_liquidation() -> None:
    items = session().parse(trades_frame(trade_row("DELEVERAGED"), trade_row(trade_id="01ab"),
                                         batched=True), NOW)
    assert items[0] == dialect.Info(DELEVERAGED_INFO)
    assert [e.event_id for e in liquidations(items)] == ["dydx:01ab"]


def test_ordinary_trades_are_ignored() -> None:
    frame = trades_frame(trade_row("LIMIT"), trade_row("MARKET"), trade_row("LIQUIDATION"))
    assert session().parse(frame, NOW) == []


def test_every_batch_and_every_row_is_read() -> None:
    frame = trades_frame(trade_row(trade_id="a"), trade_row(trade_id="b", side="BUY"),
                         trade_row(trade_id="c"), batched=True)
    assert [(e.event_id, e.position_side) for e in liquidations(session().parse(frame, NOW))] == [
        ("dydx:a", "long"), ("dydx:b", "short"), ("dydx:c", "long")]


def test_one_bad_row_among_good_ones_is_invalid() -> None:
    frame = trades_frame(trade_row(trade_id="a"), trade_row(size="x"), trade_row(trade_id="c"))
    items = session().parse(frame, NOW)
    assert [e.event_id for e in liquidations(items)] == ["dydx:a", "dydx:c"]
    (invalid,) = [i for i in items if isinstance(i, dialect.Invalid)]
    assert invalid.reason == "bad_value"


def test_coin_from_the_market_ticker() -> None:
    (liq,) = events(session().parse(trades_frame(trade_row(size="1000", price="0.01"),
                                                 market_id="1000PEPE-USD"), NOW))
    assert isinstance(liq, Liquidation)
    assert (liq.coin, liq.qty_base, liq.price, liq.notional_usd) == (
        "PEPE", 1_000_000.0, 0.00001, 10.0)


def test_configured_markets_filter() -> None:
    parser = session(symbols=("ETH-USD",))
    assert parser.parse(trades_frame(trade_row()), NOW) == []
    assert len(events(parser.parse(trades_frame(trade_row(), market_id="ETH-USD"), NOW))) == 1


def test_iso_times() -> None:
    assert iso_to_ms("2024-08-23T00:00:57.627Z", "t") == 1_724_371_257_627
    assert iso_to_ms("2024-08-23T00:00:57Z", "t") == 1_724_371_257_000
    assert iso_to_ms("2024-08-23T02:00:57.627+02:00", "t") == 1_724_371_257_627
    assert iso_to_ms("2024-08-23T00:00:57.627", "t") == 1_724_371_257_627  # naive = UTC
    for bad in ("yesterday", 1724371257627, None, "2024-13-01T00:00:00Z"):
        with pytest.raises(FrameError):
            iso_to_ms(bad, "t")


# -- prices and notices ---------------------------------------------------------------------


def test_markets_subscription_acks_and_carries_current_oracle_prices() -> None:
    frame = orjson.dumps({
        "type": "subscribed", "connection_id": "c", "message_id": 1, "channel": "v4_markets",
        "contents": {"markets": {"BTC-USD": market("BTC-USD", oracle="83000.5"),
                                 "ETH-USD": {**market("ETH-USD"), "oraclePrice": None}}}}).decode()
    items = session().parse(frame, NOW)
    assert items[0] == dialect.Ack("v4_markets")
    (mark,) = events(items)
    assert isinstance(mark, MarkPrice)
    assert (mark.instrument, mark.price, mark.exchange_ts_ms) == ("BTC-USD", 83000.5, NOW * 1000)


def test_oracle_price_without_effective_time_uses_arrival() -> None:
    frame = ('{"type":"channel_data","channel":"v4_markets","contents":{"oraclePrices":'
             '{"SOL-USD":{"price":"118.25"}}}}')
    (mark,) = events(session().parse(frame, NOW))
    assert isinstance(mark, MarkPrice) and (mark.coin, mark.exchange_ts_ms) == ("SOL", NOW * 1000)


def test_one_bad_oracle_price_is_invalid() -> None:
    frame = ('{"type":"channel_data","channel":"v4_markets","contents":{"oraclePrices":'
             '{"SOL-USD":{"price":"x"},"BTC-USD":{"price":"1"}}}}')
    items = session().parse(frame, NOW)
    assert [m.instrument for m in events(items)] == ["BTC-USD"]
    assert any(isinstance(i, dialect.Invalid) for i in items)


def test_no_application_ping() -> None:
    dydx = Dydx(dialect.VenueSettings())
    assert dydx.ping_interval_seconds is None and dydx.ping_frame(NOW) is None
    assert dydx.decode_binary(b"{}") == "{}"


# -- instruments and plans ------------------------------------------------------------------


def test_instrument_specs() -> None:
    (request,) = Dydx(dialect.VenueSettings()).instrument_requests("https://indexer.dydx.trade/")
    assert request.url == "https://indexer.dydx.trade/v4/perpetualMarkets"
    book = book_of({"BTC-USD": market("BTC-USD"), "ETH-USD": market("ETH-USD", "CANCEL_ONLY"),
                    "OLD-USD": market("OLD-USD", "FINAL"), "BROKEN": market("BROKEN"),
                    "1000PEPE-USD": market("1000PEPE-USD"), "X-USD": "not an object"})
    assert sorted(s.instrument for s in book) == ["1000PEPE-USD", "BTC-USD", "ETH-USD"]
    pepe = book.get("1000PEPE-USD")
    assert pepe is not None and (pepe.coin, pepe.base_multiplier, pepe.kind) == (
        "PEPE", 1000.0, instr.ContractKind.LINEAR)


@pytest.mark.parametrize("body", [b"<html>", b"[]", b'{"errors":[{"msg":"x"}]}',
                                  b'{"markets":[]}'])
def test_bad_instrument_documents(body: bytes) -> None:
    with pytest.raises(InstrumentFetchError):
        Dydx(dialect.VenueSettings()).parse_instruments(REQUEST, body)


def test_plans_shard_at_the_per_connection_limit() -> None:
    n = 2 * MAX_TRADES_SUBSCRIPTIONS_PER_CONNECTION + 3
    book = book_of({f"C{i:03d}-USD": market(f"C{i:03d}-USD") for i in range(n)})
    plans = Dydx(dialect.VenueSettings()).plans("ws://127.0.0.1:9/dydx", book)
    assert [p.url for p in plans] == ["ws://127.0.0.1:9/dydx/v4/ws"] * 3
    assert len({p.name for p in plans}) == 3
    seen: list[str] = []
    for plan in plans:
        frames = [json.loads(f) for f in plan.subscribe_frames]
        assert frames[0] == {"type": "subscribe", "channel": "v4_markets", "batched": True}
        trades = frames[1:]
        assert len(trades) <= MAX_TRADES_SUBSCRIPTIONS_PER_CONNECTION
        assert all(f["channel"] == "v4_trades" and f["batched"] is True for f in trades)
        seen += [f["id"] for f in trades]
        assert plan.expected_acks == len(frames)
        assert plan.subscribe_interval_seconds == SUBSCRIBE_INTERVAL_SECONDS == 0.5
    assert sorted(seen) == sorted(s.instrument for s in book)


def test_plans_from_configured_symbols_and_fallback() -> None:
    (plan,) = Dydx(dialect.VenueSettings(symbols=("ETH-USD",))).plans(
        "wss://indexer.dydx.trade", instr.InstrumentBook("dydx"))
    assert plan.url == "wss://indexer.dydx.trade/v4/ws"
    assert json.loads(plan.subscribe_frames[1])["id"] == "ETH-USD"
    (plan,) = Dydx(dialect.VenueSettings()).plans("wss://x", instr.InstrumentBook("dydx"))
    assert json.loads(plan.subscribe_frames[1])["id"] == "BTC-USD"


def test_registry_builds_the_dialect() -> None:
    dydx = make_dialect("dydx")
    assert isinstance(dydx, Dydx) and dydx.completeness == "full"
