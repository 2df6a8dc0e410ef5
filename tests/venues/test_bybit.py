"""Bybit v5 dialect: golden frames, real frames, ticker merging, sharding, malformed input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.venues import make_dialect
from monitor.venues.bybit import (
    ARGS_CHAR_LIMIT,
    ARGS_PER_FRAME,
    Bybit,
    BybitSession,
    coin_of_bybit_symbol,
    kind_of_symbol,
)
from tests.support.golden import (
    golden_files,
    only,
    only_liquidation,
    run_golden,
)
from tests.support.realdata import realdata_lines, requires_realdata

SAMPLE = ('{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,'
          '"data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}')
LINEAR = "linear"
INVERSE = "inverse"


def spec(symbol: str, kind: instr.ContractKind, coin: str = "", multiplier: float = 1.0
         ) -> instr.InstrumentSpec:
    return instr.InstrumentSpec("bybit", symbol, coin or symbol[:3], kind, 1.0,
                          "USD" if kind is instr.ContractKind.INVERSE else "USDT",
                          base_multiplier=multiplier, category=kind.value)


def session(*specs: instr.InstrumentSpec, category: str | None = None) -> BybitSession:
    plan = (None if category is None
            else dialect.ConnectionPlan("p", f"ws://h/v5/public/{category}", (), 0))
    return Bybit(dialect.VenueSettings()).session(instr.InstrumentBook("bybit", specs), plan)


def frame(symbol: str, *rows: object) -> str:
    return orjson.dumps({"topic": f"allLiquidation.{symbol}", "type": "snapshot", "ts": 1,
                         "data": list(rows)}).decode()


def row(symbol: str = "BTCUSDT", side: object = "Buy", v: object = "0.5",
        p: object = "80000", t: object = 1769904000000) -> dict[str, Any]:
    return {"T": t, "s": symbol, "S": side, "v": v, "p": p}


# -- golden files and the side rule ----------------------------------------------------


@pytest.mark.parametrize("path", golden_files("bybit"), ids=lambda p: p.stem)
def test_golden_frames_read_the_same_on_a_warm_session(path: Path) -> None:
    run_golden(path, repeat=2)  # the second parse reads the session's cached symbol terms


def test_side_is_the_position_side_opposite_of_binance() -> None:
    s = session()
    buy = only_liquidation(s.parse(frame("BTCUSDT", row(side="Buy")), 1.0))
    sell = only_liquidation(s.parse(frame("BTCUSDT", row(side="Sell")), 1.0))
    assert buy.position_side is PositionSide.LONG
    assert sell.position_side is PositionSide.SHORT
    assert buy.completeness is Completeness.FULL
    assert round(buy.notional_usd, 2) == 40000.00  # linear: v x p


def test_reference_sample_notional() -> None:
    liq = only_liquidation(session().parse(SAMPLE, 2.0))
    assert liq.position_side is PositionSide.SHORT
    assert round(liq.notional_usd, 2) == 899.80  # 20000 x 0.04499
    assert liq.exchange_ts_ms == 1739502302929 and liq.received_at == 2.0


def test_inverse_notional_is_the_contract_count() -> None:
    liq = only_liquidation(session().parse(frame("BTCUSD", row("BTCUSD", v="8000", p="80000")),
                                           1.0))
    assert liq.notional_usd == 8000.0 and liq.qty_base == pytest.approx(0.1)


# -- linear or inverse: spec, then the connection's category, then the symbol ----------


def test_book_spec_wins_over_category_and_symbol() -> None:
    # A made-up case where the three sources disagree, to show their order.
    s = session(spec("ODDUSDT", instr.ContractKind.INVERSE, "ODD"), category=LINEAR)
    liq = only_liquidation(s.parse(frame("ODDUSDT", row("ODDUSDT", v="100", p="2")), 1.0))
    assert liq.notional_usd == 100.0


def test_category_wins_over_the_symbol_rule() -> None:
    on_inverse = session(category=INVERSE)
    liq = only_liquidation(on_inverse.parse(frame("ETHUSDZ26", row("ETHUSDZ26", v="500",
                                                                   p="2500")), 1.0))
    assert liq.notional_usd == 500.0 and liq.coin == "ETH"
    on_linear = session(category=LINEAR)
    liq = only_liquidation(on_linear.parse(frame("FOOUSDT", row("FOOUSDT", v="3", p="2")), 1.0))
    assert liq.notional_usd == 6.0


def test_unknown_kind_is_an_unknown_instrument() -> None:
    with pytest.raises(UnknownInstrument):
        session().parse(frame("FOOBAR", row("FOOBAR")), 1.0)


@pytest.mark.parametrize(("symbol", "kind"), [
    ("BTCUSDT", instr.ContractKind.LINEAR), ("ETHPERP", instr.ContractKind.LINEAR),
    ("BTCUSDC", instr.ContractKind.LINEAR), ("BTC-26DEC25", instr.ContractKind.LINEAR),
    ("BTCUSDT-26DEC25", instr.ContractKind.LINEAR), ("BTCUSD", instr.ContractKind.INVERSE),
    ("ETHUSD", instr.ContractKind.INVERSE), ("BTCUSDZ25", instr.ContractKind.INVERSE),
    ("BTCUSDH26", instr.ContractKind.INVERSE), ("FOOBAR", None), ("USD", None),
    ("BTC-29DEC23-40000-C", None), ("BTCUSDA25", None),
])
def test_kind_of_symbol(symbol: str, kind: instr.ContractKind | None) -> None:
    assert kind_of_symbol(symbol) is kind


@pytest.mark.parametrize(("symbol", "kind", "coin"), [
    ("BTCUSDT", instr.ContractKind.LINEAR, ("BTC", 1.0)),
    ("1000PEPEUSDT", instr.ContractKind.LINEAR, ("PEPE", 1000.0)),
    ("SHIB1000USDT", instr.ContractKind.LINEAR, ("SHIB", 1000.0)),
    ("ETHPERP", instr.ContractKind.LINEAR, ("ETH", 1.0)),
    ("BTC-26DEC25", instr.ContractKind.LINEAR, ("BTC", 1.0)),
    ("BTCUSDT-26DEC25", instr.ContractKind.LINEAR, ("BTC", 1.0)),
    ("BTCUSD", instr.ContractKind.INVERSE, ("BTC", 1.0)),
    ("BTCUSDZ25", instr.ContractKind.INVERSE, ("BTC", 1.0)),
])
def test_coin_of_bybit_symbol(symbol: str, kind: instr.ContractKind,
                              coin: tuple[str, float]) -> None:
    assert coin_of_bybit_symbol(symbol, kind) == coin


# -- real frames -----------------------------------------------------------------------


@requires_realdata
def test_real_all_liquidation_frames() -> None:
    s = session()
    count = 0
    for name in ("bybit_v5_allLiquidation.tardis.jsonl",
                 "bybit_v5_allLiquidation.unattributed.jsonl"):
        for line in realdata_lines(name):
            rows = orjson.loads(line)["data"]
            items = s.parse(line, 1.0)
            assert len(items) == len(rows)
            for liq, r in zip(items, rows, strict=True):
                assert isinstance(liq, Liquidation)
                assert liq.position_side is (
                    PositionSide.LONG if r["S"] == "Buy" else PositionSide.SHORT)
                assert abs(liq.notional_usd - float(r["v"]) * float(r["p"])) < 0.005
                assert liq.exchange_ts_ms == r["T"] and liq.coin == r["s"].removesuffix("USDT")
                count += 1
    assert count == 7


@requires_realdata
def test_real_legacy_liquidation_frames() -> None:
    s = session()
    lines = list(realdata_lines("bybit_liquidation_legacy.tardis.jsonl"))
    assert len(lines) == 5
    for line in lines:
        data = orjson.loads(line)["data"]
        liq = only_liquidation(s.parse(line, 1.0))
        size = float(data.get("size", data.get("qty")))
        price = float(data["price"])
        inverse = data["symbol"].endswith("USD")
        assert liq.notional_usd == pytest.approx(size if inverse else size * price, abs=0.005)
        assert liq.position_side is (
            PositionSide.LONG if data["side"] == "Buy" else PositionSide.SHORT)
        assert liq.exchange_ts_ms == data.get("updatedTime", data.get("time"))
        assert liq.completeness is Completeness.THROTTLED
    # ETHUSD inverse: 3655 USD contracts, never times the price.
    assert only_liquidation(s.parse(lines[0], 1.0)).notional_usd == 3655.0


@requires_realdata
def test_real_linear_tickers_are_merged() -> None:
    s = session(category=LINEAR)
    merged: dict[str, float] = {}
    marks = 0
    lines = [*realdata_lines("bybit_v5_linear_tickers.jsonl"),
             *realdata_lines("bybit_v5_linear_tickers.unattributed.jsonl")]
    for line in lines:
        msg = orjson.loads(line)
        items = s.parse(line, 1.0)
        symbol, raw = msg["data"]["symbol"], msg["data"].get("markPrice")
        changed = raw is not None and merged.get(symbol) != float(raw)
        if changed:
            merged[symbol] = float(raw)
            mark = only(items)
            assert mark == MarkPrice("bybit", symbol, symbol.removesuffix("USDT"),
                                     float(raw), msg["ts"], 1.0)
            marks += 1
        else:
            assert items == []
        assert s.mark_price(symbol) == merged.get(symbol)
    assert len(lines) == 760
    assert marks == 89  # 4 snapshots and 85 deltas that moved the mark
    assert 10_000 < merged["BTCUSDT"] < 1_000_000 and 0.01 < merged["DOGEUSDT"] < 10


@requires_realdata
def test_real_tickers_and_retired_instrument_info() -> None:
    s = session()
    counts: dict[str, int] = {}
    for line in realdata_lines("bybit_tickers_and_instrument_info.tardis.jsonl"):
        for item in s.parse(line, 1.0) or [dialect.Info("nothing")]:
            key = type(item).__name__
            counts[key] = counts.get(key, 0) + 1
    # 11 retired instrument_info frames and 2 option tickers are not ours; 3 snapshots
    # carry a mark; 2 deltas carry none.
    assert counts == {"Unrecognised": 13, "MarkPrice": 3, "Info": 2}
    assert s.mark_price("BTCUSD") == 28560.0 and s.mark_price("BTCUSDU23") == 29023.6


# -- tickers ---------------------------------------------------------------------------


def ticker(kind: str, ts: int, **data: object) -> str:
    return orjson.dumps({"topic": "tickers.1000PEPEUSDT", "type": kind, "ts": ts,
                         "data": {"symbol": "1000PEPEUSDT", **data}}).decode()


def test_ticker_deltas_merge_into_state() -> None:
    s = session(spec("1000PEPEUSDT", instr.ContractKind.LINEAR, "PEPE", 1000.0))
    [mark] = s.parse(ticker("snapshot", 1, markPrice="0.0100", lastPrice="0.0101"), 1.0)
    assert mark == MarkPrice("bybit", "1000PEPEUSDT", "PEPE", 0.00001, 1, 1.0)
    assert s.parse(ticker("delta", 2, lastPrice="0.0102"), 1.0) == []
    assert s.parse(ticker("delta", 3, markPrice="0.0100"), 1.0) == []  # unchanged
    [mark] = s.parse(ticker("delta", 4, markPrice="0.0110"), 1.0)
    assert isinstance(mark, MarkPrice) and mark.price == pytest.approx(0.000011)
    assert s.mark_price("1000PEPEUSDT") == 0.0110
    assert s.parse(ticker("snapshot", 5, markPrice=""), 1.0) == []


# -- malformed input (the tables are tests/venues/malformed/ and notices/) ---------


def test_deep_nesting_and_huge_numbers_are_read_safely() -> None:
    deep_text = "[" * 1000 + "]" * 1000  # repr() of this raises RecursionError
    s = session()
    for text in (SAMPLE.replace('"Sell"', deep_text), frame("BTCUSDT", row(t="9" * 5000)),
                 SAMPLE.replace('"ROSEUSDT"', deep_text)):
        with pytest.raises(FrameError):
            s.parse(text, 1.0)
    rejection = only(s.parse('{"success":false,"op":"subscribe","ret_msg":' + deep_text + "}",
                             1.0))
    assert isinstance(rejection, dialect.Rejection) and rejection.message
    ack = only(s.parse('{"success":true,"op":"subscribe","req_id":' + deep_text + "}", 1.0))
    assert isinstance(ack, dialect.Ack)
    with pytest.raises(InstrumentFetchError):
        Bybit(dialect.VenueSettings()).parse_instruments(
            dialect.RestRequest("linear", "https://x?category=linear"),
            ('{"retCode":1,"retMsg":' + deep_text + "}").encode())


def test_one_bad_row_in_a_batch_keeps_the_others() -> None:
    items = session().parse(frame("BTCUSDT", row(v="1"), row(v="oops"), 5, row(v="2")), 1.0)
    assert [type(i) for i in items] == [Liquidation, dialect.Invalid, dialect.Invalid, Liquidation]
    assert [i.reason for i in items if isinstance(i, dialect.Invalid)] == ["bad_value", "bad_value"]


def test_empty_batch() -> None:
    assert session().parse(frame("BTCUSDT"), 1.0) == []


# -- dialect, plans and instruments --------------------------------------------------


def test_dialect_attributes() -> None:
    bybit: dialect.Dialect = Bybit(dialect.VenueSettings())
    assert isinstance(make_dialect("bybit"), Bybit)
    assert bybit.completeness == "full"
    assert bybit.ping_interval_seconds == 20.0
    assert bybit.ping_frame(0.0) == '{"op":"ping"}'
    assert bybit.max_lifetime_seconds is None
    assert bybit.decode_binary(b'{"op":"pong"}') == '{"op":"pong"}'


def _book(linear: int, inverse: int) -> instr.InstrumentBook:
    return instr.InstrumentBook("bybit", [
        *(spec(f"COIN{i:04d}XYZUSDT", instr.ContractKind.LINEAR) for i in range(linear)),
        *(spec(f"INV{i:03d}USD", instr.ContractKind.INVERSE) for i in range(inverse)),
    ])


def test_plans_shard_under_the_args_limit() -> None:
    book = _book(linear=900, inverse=30)
    plans = Bybit(dialect.VenueSettings()).plans("ws://127.0.0.1:9/bybit/", book)
    linear = [p for p in plans if p.url == "ws://127.0.0.1:9/bybit/v5/public/linear"]
    inverse = [p for p in plans if p.url == "ws://127.0.0.1:9/bybit/v5/public/inverse"]
    assert len(linear) >= 2 and len(inverse) == 1 and len(plans) == len(linear) + 1
    seen: list[str] = []
    for plan in plans:
        args = []
        req_ids = set()
        for text in plan.subscribe_frames:
            message = orjson.loads(text)
            assert message["op"] == "subscribe" and 0 < len(message["args"]) <= ARGS_PER_FRAME
            req_ids.add(message["req_id"])
            args.extend(message["args"])
        assert len(req_ids) == len(plan.subscribe_frames) == plan.expected_acks
        assert sum(len(a) for a in args) <= ARGS_CHAR_LIMIT
        symbols = {a.split(".", 1)[1] for a in args}
        # Each symbol's price stream is on the same connection as its liquidations.
        assert sorted(args) == sorted(
            [f"allLiquidation.{s}" for s in symbols] + [f"tickers.{s}" for s in symbols])
        seen.extend(args)
    assert len(seen) == len(set(seen)) == 2 * 930
    assert len({p.name for p in plans}) == len(plans)


def test_plans_for_configured_symbols_split_by_category() -> None:
    bybit = Bybit(dialect.VenueSettings(symbols=("BTCUSDT", "BTCUSD", "ETHUSDZ26", "ODD")))
    plans = bybit.plans("wss://stream.bybit.com", instr.InstrumentBook("bybit"))
    args = {p.url.rsplit("/", 1)[1]: [a for f in p.subscribe_frames
                                      for a in orjson.loads(f)["args"]] for p in plans}
    assert args == {
        "linear": ["allLiquidation.BTCUSDT", "tickers.BTCUSDT", "allLiquidation.ODD",
                   "tickers.ODD"],
        "inverse": ["allLiquidation.BTCUSD", "tickers.BTCUSD", "allLiquidation.ETHUSDZ26",
                    "tickers.ETHUSDZ26"],
    }


def test_plans_wait_for_the_instrument_list() -> None:
    assert Bybit(dialect.VenueSettings()).plans("ws://h", instr.InstrumentBook("bybit")) == []


def test_session_learns_its_category_from_the_plan() -> None:
    bybit = Bybit(dialect.VenueSettings(symbols=("BTCUSDT",)))
    [plan] = bybit.plans("ws://h", instr.InstrumentBook("bybit"))
    # ETHUSD would be inverse by the symbol rule; on a linear connection it is linear.
    on_linear = bybit.session(instr.InstrumentBook("bybit"), plan)
    eth = frame("ETHUSD", row("ETHUSD", v="2", p="3"))
    assert only_liquidation(on_linear.parse(eth, 1.0)).notional_usd == 6.0
    assert only_liquidation(bybit.session(instr.InstrumentBook("bybit")).parse(eth, 1.0)
                            ).notional_usd == 2.0


def _page(category: str, symbols: list[tuple[str, str, str]], cursor: str) -> bytes:
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {
        "category": category, "nextPageCursor": cursor, "list": [
            {"symbol": s, "contractType": c, "status": "Trading", "baseCoin": b,
             "quoteCoin": "USD" if "Inverse" in c else "USDT"} for s, c, b in symbols]}})


def test_instrument_pages_follow_the_cursor() -> None:
    bybit = Bybit(dialect.VenueSettings())
    linear, inverse = bybit.instrument_requests("https://api.bybit.com/")
    assert linear == dialect.RestRequest(
        "linear", "https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000")
    assert inverse.url.endswith("category=inverse&limit=1000")
    specs, page2 = bybit.parse_instruments(linear, _page(
        "linear", [("1000PEPEUSDT", "LinearPerpetual", "1000PEPE"),
                   ("BTC-26DEC25", "LinearFutures", "BTC")], "first%3D1%26last%3D2"))
    assert [(s.instrument, s.kind, s.coin, s.base_multiplier, s.category) for s in specs] == [
        ("1000PEPEUSDT", instr.ContractKind.LINEAR, "PEPE", 1000.0, "linear"),
        ("BTC-26DEC25", instr.ContractKind.LINEAR, "BTC", 1.0, "linear")]
    assert page2 == dialect.RestRequest("linear#2", linear.url + "&cursor=first%3D1%26last%3D2")
    specs, page3 = bybit.parse_instruments(page2, _page(
        "linear", [("ETHUSDT", "LinearPerpetual", "ETH")], "next page"))
    assert page3 is not None and page3.key == "linear#3"
    assert page3.url == linear.url + "&cursor=next%20page"
    specs, last = bybit.parse_instruments(inverse, _page(
        "inverse", [("BTCUSDZ25", "InverseFutures", "BTC")], ""))
    assert last is None and specs[0].kind is instr.ContractKind.INVERSE


@pytest.mark.parametrize("body", [
    b"nope", b"[]", b'{"retCode":10001,"retMsg":"params error","result":{}}',
    b'{"retCode":0,"result":{"list":{}}}', b'{"retCode":0}'])
def test_bad_instrument_documents(body: bytes) -> None:
    bybit = Bybit(dialect.VenueSettings())
    with pytest.raises(InstrumentFetchError):
        bybit.parse_instruments(bybit.instrument_requests("https://x")[0], body)
