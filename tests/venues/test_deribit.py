"""The Deribit dialect: golden frames, real frames, M/T/MT sides, heartbeats, plans, bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError
from monitor.events import MarkPrice, PositionSide
from monitor.venues import make_dialect
from monitor.venues.deribit import Deribit, DeribitSession, future_terms
from tests.support.golden import (
    events,
    liquidations,
)
from tests.support.realdata import realdata_lines, requires_realdata

NOW = 1_769_904_000.0
CHANNELS = ["trades.future.BTC.100ms", "trades.future.ETH.100ms", "trades.future.USDC.100ms",
            "ticker.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.100ms"]


def session(symbols: tuple[str, ...] | None = None,
            book: instr.InstrumentBook | None = None) -> DeribitSession:
    return Deribit(dialect.VenueSettings(symbols=symbols)).session(
        book or instr.InstrumentBook("deribit"))


def trade(flag: object = "T", direction: object = "sell", amount: object = 1000.0,
          price: object = 95000.0, instrument: object = "BTC-PERPETUAL",
          trade_id: object = "1", **extra: object) -> dict[str, Any]:
    row: dict[str, Any] = {"trade_seq": 1, "trade_id": trade_id, "timestamp": 1769904000000,
                           "tick_direction": 0, "price": price, "instrument_name": instrument,
                           "direction": direction, "amount": amount, **extra}
    if flag is not None:
        row["liquidation"] = flag
    return row


def trades(*rows: dict[str, Any], channel: str = "trades.future.BTC.100ms") -> str:
    return orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                         "params": {"channel": channel, "data": list(rows)}}).decode()


def ticker(instrument: str = "BTC-PERPETUAL", mark: object = 95010.5) -> str:
    return orjson.dumps({"jsonrpc": "2.0", "method": "subscription", "params": {
        "channel": f"ticker.{instrument}.100ms",
        "data": {"timestamp": 1769904000001, "instrument_name": instrument, "mark_price": mark,
                 "index_price": 95000.0}}}).decode()


# -- golden files ---------------------------------------------------------------------------


# -- real frames ----------------------------------------------------------------------------


@requires_realdata
def test_real_liquidation_trades() -> None:
    parser = session()
    taker, maker = (liquidations(parser.parse(line, NOW))
                    for line in realdata_lines("deribit_trades_liquidation.tardis.jsonl"))
    # "T", direction sell, 1120 USD at 4469.5: the taker, a long, was liquidated.
    (liq,) = taker
    assert (liq.position_side, liq.notional_usd, liq.exchange_ts_ms) == (
        PositionSide.LONG, 1120.0, 1584058044032)
    assert math.isclose(liq.qty_base, 1120 / 4469.5)
    assert liq.event_id == "deribit:BTC-PERPETUAL:66460463"
    # "M", direction buy, 2500 USD: the maker sold, so a long was liquidated.
    (liq,) = maker
    assert (liq.position_side, liq.notional_usd) == (PositionSide.LONG, 2500.0)
    assert liq.event_id == "deribit:BTC-PERPETUAL:66460626"


@requires_realdata
@pytest.mark.parametrize(("name", "lines", "marks"), [
    ("deribit_ticker.jsonl", 181, 0),  # all option tickers: premiums, not USD prices
    ("deribit_ticker.tardis.jsonl", 10, 2),  # two BTC-PERPETUAL tickers among options
])
def test_real_ticker_frames(name: str, lines: int, marks: int) -> None:
    parser = session()
    texts = list(realdata_lines(name))
    assert len(texts) == lines
    found: list[MarkPrice] = []
    for text in texts:
        items = parser.parse(text, NOW)
        assert not [i for i in items if not isinstance(i, MarkPrice)]
        found.extend(i for i in items if isinstance(i, MarkPrice))
    assert len(found) == marks
    for mark in found:
        assert (mark.instrument, mark.coin) == ("BTC-PERPETUAL", "BTC")
    if marks:
        assert [m.price for m in found] == [10094.1, 8304.39]


# -- sides and amounts ----------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "direction", "expected"), [
    ("T", "sell", ["long"]), ("T", "buy", ["short"]),
    ("M", "sell", ["short"]), ("M", "buy", ["long"]),
    ("MT", "sell", ["long", "short"]), ("MT", "buy", ["short", "long"]),
])
def test_liquidated_side(flag: str, direction: str, expected: list[str]) -> None:
    got = liquidations(session().parse(trades(trade(flag, direction)), NOW))
    assert [liq.position_side.value for liq in got] == expected
    assert all(liq.notional_usd == 1000.0 for liq in got)  # MT: each side the full amount
    assert len({liq.event_id for liq in got}) == len(got)


@pytest.mark.parametrize(("instrument", "amount", "price", "notional", "qty"), [
    ("BTC-PERPETUAL", 10000.0, 100000.0, 10000.0, 0.1),
    ("ETH-27DEC26", 3000.0, 3000.0, 3000.0, 1.0),
    ("BTC_USDC-PERPETUAL", 0.5, 100000.0, 50000.0, 0.5),
    ("ETH_USDT-PERPETUAL", 2.0, 3000.0, 6000.0, 2.0),
])
def test_inverse_amounts_are_usd_and_linear_amounts_base(
        instrument: str, amount: float, price: float, notional: float, qty: float) -> None:
    (liq,) = liquidations(session().parse(
        trades(trade(amount=amount, price=price, instrument=instrument)), NOW))
    assert math.isclose(liq.notional_usd, notional) and math.isclose(liq.qty_base, qty)


def test_the_book_overrides_the_name_rule() -> None:
    deribit = Deribit(dialect.VenueSettings())
    body = orjson.dumps({"jsonrpc": "2.0", "result": [{
        "instrument_name": "XRP_USDC-PERPETUAL", "kind": "future", "instrument_type": "reversed",
        "base_currency": "XRP", "quote_currency": "USD", "contract_size": 10}]})
    specs, _ = deribit.parse_instruments(deribit.instrument_requests("https://x")[2], body)
    (liq,) = liquidations(session(book=instr.InstrumentBook("deribit", specs)).parse(
        trades(trade(instrument="XRP_USDC-PERPETUAL", amount=100.0, price=2.0)), NOW))
    assert (liq.notional_usd, liq.qty_base, liq.coin) == (100.0, 50.0, "XRP")


def test_plain_trades_and_configured_symbols() -> None:
    assert session().parse(trades(trade(flag=None), trade(flag=None)), NOW) == []
    parser = session(symbols=("ETH-PERPETUAL",))
    assert parser.parse(trades(trade()), NOW) == []
    assert events(parser.parse(ticker(), NOW)) == []
    assert liquidations(parser.parse(trades(trade(instrument="ETH-PERPETUAL")), NOW))


def test_one_bad_row_among_several_is_invalid() -> None:
    items = session().parse(trades(trade(trade_id="a"), trade(direction="up"), trade(flag="X")),
                            NOW)
    assert [liq.event_id for liq in liquidations(items)] == ["deribit:BTC-PERPETUAL:a"]
    assert [i.reason for i in items if isinstance(i, dialect.Invalid)] == ["bad_value", "bad_value"]


def test_future_terms() -> None:
    assert future_terms("BTC-PERPETUAL") == ("BTC", 1.0, True)
    assert future_terms("ETH-27DEC26") == ("ETH", 1.0, True)
    assert future_terms("SOL_USDC-PERPETUAL") == ("SOL", 1.0, False)
    assert future_terms("1000PEPE_USDC-PERPETUAL") == ("PEPE", 1000.0, False)
    for name in ("BTC-27DEC26-100000-C", "BTC_USDC", "BTC-FS-27DEC26_PERP", ""):
        with pytest.raises(FrameError):
            future_terms(name)


def test_option_liquidations_are_not_valued() -> None:
    with pytest.raises(FrameError):
        session().parse(trades(trade(instrument="BTC-27DEC26-100000-C")), NOW)


# -- heartbeats and answers ------------------------------------------------------------------


def test_test_request_is_answered_with_public_test() -> None:
    parser = session()
    frame = '{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}'
    first, second = parser.parse(frame, NOW), parser.parse(frame, NOW)
    assert isinstance(first[0], dialect.Reply) and isinstance(second[0], dialect.Reply)
    answer = json.loads(first[0].text)
    assert answer == {"jsonrpc": "2.0", "id": answer["id"], "method": "public/test", "params": {}}
    assert json.loads(second[0].text)["id"] == answer["id"] + 1
    # The answer's result is a pong, not a subscription ack.
    result = orjson.dumps({"jsonrpc": "2.0", "id": answer["id"],
                           "result": {"version": "1.2.26"}}).decode()
    assert parser.parse(result, NOW) == [dialect.Pong()]
    assert parser.parse('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}',
                        NOW) == [dialect.Info("heartbeat")]
    assert parser.parse('{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"x"}}', NOW) == [
        dialect.Unrecognised("unknown_heartbeat")]


def test_no_application_ping() -> None:
    deribit = Deribit(dialect.VenueSettings())
    assert deribit.ping_frame(NOW) is None and deribit.ping_interval_seconds is None
    assert deribit.decode_binary(b"{}") == "{}"


# -- instruments ----------------------------------------------------------------------------


def test_instrument_requests() -> None:
    requests = Deribit(dialect.VenueSettings()).instrument_requests("https://www.deribit.com/")
    assert [r.url for r in requests] == [
        f"https://www.deribit.com/api/v2/public/get_instruments?currency={c}&kind=future"
        for c in ("BTC", "ETH", "USDC")]


def test_instrument_specs() -> None:
    body = orjson.dumps({"jsonrpc": "2.0", "result": [
        {"instrument_name": "BTC-PERPETUAL", "kind": "future", "instrument_type": "reversed",
         "base_currency": "BTC", "quote_currency": "USD", "contract_size": 10.0,
         "settlement_currency": "BTC"},
        {"instrument_name": "BTC_USDC-PERPETUAL", "kind": "future", "instrument_type": "linear",
         "base_currency": "BTC", "quote_currency": "USDC", "contract_size": 0.001},
        {"instrument_name": "ETH-27DEC26", "kind": "future", "future_type": "reversed"},
        {"instrument_name": "BTC-27DEC26-100000-C", "kind": "option"},
        {"instrument_name": "BTC_USDC", "kind": "spot"},
        {"kind": "future"},
        7,
    ]})
    request = dialect.RestRequest(key="BTC", url="https://x")
    specs, following = Deribit(dialect.VenueSettings()).parse_instruments(request, body)
    assert following is None
    got = {s.instrument: (s.coin, s.kind, s.quote) for s in specs}
    assert got == {"BTC-PERPETUAL": ("BTC", instr.ContractKind.INVERSE, "USD"),
                   "BTC_USDC-PERPETUAL": ("BTC", instr.ContractKind.LINEAR, "USDC"),
                   "ETH-27DEC26": ("ETH", instr.ContractKind.INVERSE, "USD")}


@pytest.mark.parametrize("body", [b"nope", b"[]", b'{"error":{"code":1}}', b'{"result":{}}'])
def test_bad_instrument_documents(body: bytes) -> None:
    with pytest.raises(InstrumentFetchError):
        Deribit(dialect.VenueSettings()).parse_instruments(
            dialect.RestRequest(key="BTC", url="x"), body)


# -- connection plans -----------------------------------------------------------------------


def test_plan_sets_the_heartbeat_then_subscribes() -> None:
    (plan,) = Deribit(dialect.VenueSettings()).plans(
        "wss://www.deribit.com", instr.InstrumentBook("deribit"))
    assert plan.url == "wss://www.deribit.com/ws/api/v2"
    heartbeat, subscribe = (json.loads(f) for f in plan.subscribe_frames)
    assert heartbeat == {"jsonrpc": "2.0", "id": 1, "method": "public/set_heartbeat",
                         "params": {"interval": 10}}
    assert subscribe == {"jsonrpc": "2.0", "id": 2, "method": "public/subscribe",
                         "params": {"channels": CHANNELS}}
    assert plan.expected_acks == 2


def test_plan_with_symbols_and_the_simulator_prefix() -> None:
    deribit = Deribit(dialect.VenueSettings(symbols=("BTC_USDC-PERPETUAL", "ETH-27DEC26-3000-C")))
    (plan,) = deribit.plans("ws://127.0.0.1:9/deribit", instr.InstrumentBook("deribit"))
    assert plan.url == "ws://127.0.0.1:9/deribit/ws/api/v2"
    assert json.loads(plan.subscribe_frames[1])["params"]["channels"] == [
        "trades.BTC_USDC-PERPETUAL.100ms", "trades.ETH-27DEC26-3000-C.100ms",
        "ticker.BTC_USDC-PERPETUAL.100ms"]


def test_registry_builds_the_dialect() -> None:
    deribit = make_dialect("deribit")
    assert isinstance(deribit, Deribit)
    assert deribit.venue == "deribit" and deribit.completeness == "full"
    assert not deribit.needs_instruments
