"""Binance USD-M and COIN-M dialects: golden frames, real frames, malformed input, plans.

The malformed and notice frames every venue has are tables in tests/venues/malformed/ and
notices/, run by test_contract.py; what is here is Binance's own.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, UnknownInstrument
from monitor.events import Liquidation, MarkPrice, PositionSide, event_id_from_fields
from monitor.venues import make_dialect
from monitor.venues.binance import BinanceCoinm, BinanceUsdm, new_liquidation
from tests.support.fuzz import DEEP
from tests.support.golden import (
    golden_files,
    only,
    only_liquidation,
    run_golden,
)
from tests.support.realdata import realdata_lines, requires_realdata

SAMPLE = (
    '{"e":"forceOrder","E":1698871323061,"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC",'
    '"q":"1.437","p":"35100.81","ap":"34959.70","X":"FILLED","l":"1.437","z":"1.437",'
    '"T":1698871323059}}'
)
COINM_SAMPLE = (
    '{"e":"forceOrder","E":1591154240950,"o":{"s":"BTCUSD_200925","ps":"BTCUSD","S":"SELL",'
    '"o":"LIMIT","f":"IOC","q":"1","p":"9425.5","ap":"9496.5","X":"FILLED","l":"1","z":"1",'
    '"T":1591154240949}}'
)


# -- fixtures --------------------------------------------------------------------------


def coinm_book(*specs: tuple[str, float]) -> instr.InstrumentBook:
    return instr.InstrumentBook("binance-coinm", [
        instr.InstrumentSpec("binance-coinm", symbol, symbol[:3], instr.ContractKind.INVERSE,
                             size, "USD", category=symbol.split("_")[0])
        for symbol, size in specs])


def usdm_session() -> dialect.DialectSession:
    return BinanceUsdm(dialect.VenueSettings()).session(instr.InstrumentBook("binance-usdm"))


# -- golden files ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", golden_files("binance-usdm") + golden_files("binance-coinm"), ids=lambda p: p.stem)
def test_golden_frames_read_the_same_on_a_warm_session(path: Path) -> None:
    # The second parse takes the fast path on the session's per-symbol cache.
    run_golden(path, repeat=2)


def test_reference_sample_side_and_notional() -> None:
    liq = only_liquidation(usdm_session().parse(SAMPLE, 1769904000.5))
    assert liq.position_side is PositionSide.SHORT  # BUY order: a short was closed
    assert round(liq.notional_usd, 2) == 50237.09  # z x ap = 1.437 x 34959.70
    assert liq.exchange_ts_ms == 1698871323059  # o.T, not the push time E
    assert liq.received_at == 1769904000.5
    assert liq.event_id == event_id_from_fields(
        "binance-usdm", "BTCUSDT", 1698871323059, "BUY", "1.437", "34959.70")


def test_fast_constructor_builds_the_same_value() -> None:
    liq = only_liquidation(usdm_session().parse(SAMPLE, 1.0))
    assert liq == Liquidation(**msgspec.structs.asdict(liq))
    rebuilt = new_liquidation(*msgspec.structs.astuple(liq))
    assert rebuilt == liq and hash(rebuilt) == hash(liq)
    with pytest.raises(AttributeError):
        rebuilt.price = 1.0  # type: ignore[misc]


def test_the_same_frame_twice_has_the_same_event_id() -> None:
    session = usdm_session()
    first = only_liquidation(session.parse(SAMPLE, 1.0))
    second = only_liquidation(session.parse(SAMPLE.replace('"E":1698871323061', '"E":1'), 2.0))
    assert first.event_id == second.event_id


def test_coinm_values_contracts_never_by_price() -> None:
    session = BinanceCoinm(dialect.VenueSettings()).session(coinm_book(("BTCUSD_200925", 100.0)))
    liq = only_liquidation(session.parse(COINM_SAMPLE, 1.0))
    assert liq.position_side is PositionSide.LONG
    assert liq.notional_usd == 100.0
    assert liq.qty_base == pytest.approx(100.0 / 9496.5)


def test_coinm_unknown_instrument_is_not_guessed_then_valued_after_refresh() -> None:
    book = coinm_book(("ETHUSD_PERP", 10.0))
    session = BinanceCoinm(dialect.VenueSettings()).session(book)
    with pytest.raises(UnknownInstrument) as caught:
        session.parse(COINM_SAMPLE, 1.0)
    assert caught.value.reason == "unknown_instrument"
    assert caught.value.instrument == "BTCUSD_200925"
    book.update(coinm_book(("BTCUSD_200925", 100.0)))
    assert only_liquidation(session.parse(COINM_SAMPLE, 1.0)).notional_usd == 100.0


def test_configured_symbols_filter_the_all_market_streams() -> None:
    session = BinanceUsdm(dialect.VenueSettings(symbols=("ETHUSDT",))).session(
        instr.InstrumentBook("binance-usdm"))
    assert session.parse(SAMPLE, 1.0) == []
    assert session.parse(SAMPLE, 1.0) == []  # the cached path filters too
    eth = SAMPLE.replace("BTCUSDT", "ETHUSDT")
    assert only_liquidation(session.parse(eth, 1.0)).coin == "ETH"
    marks = ('[{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1"},'
             '{"e":"markPriceUpdate","E":1,"s":"ETHUSDT","p":"2"}]')
    assert [m.instrument for m in session.parse(marks, 1.0)] == ["ETHUSDT"]  # type: ignore[union-attr]


# -- real frames -----------------------------------------------------------------------


@requires_realdata
def test_real_usdm_force_orders() -> None:
    session = usdm_session()
    count = 0
    for name in ("binance_usdm_forceOrder.tardis.jsonl",
                 "binance_usdm_forceOrder.unattributed.jsonl"):
        for line in realdata_lines(name):
            msg = orjson.loads(line)
            o = msg.get("data", msg)["o"]
            liq = only_liquidation(session.parse(line, 1.0))
            assert liq.position_side is (
                PositionSide.LONG if o["S"] == "SELL" else PositionSide.SHORT)
            assert abs(liq.notional_usd - float(o["z"]) * float(o["ap"])) < 0.005
            assert liq.qty_base == float(o["z"]) and liq.price == float(o["ap"])
            assert liq.exchange_ts_ms == o["T"]
            assert liq.instrument == o["s"] and liq.coin == o["s"].removesuffix("USDT")
            count += 1
    assert count == 7


@requires_realdata
def test_real_coinm_force_order() -> None:
    # 100 USD per BTC contract: the documented size (reference §3.5).
    session = BinanceCoinm(dialect.VenueSettings()).session(coinm_book(("BTCUSD_200925", 100.0)))
    [line] = realdata_lines("binance_coinm_forceOrder.tardis.jsonl")
    liq = only_liquidation(session.parse(line, 1.0))
    assert liq.position_side is PositionSide.LONG  # SELL
    assert liq.notional_usd == 300.0  # z = 3 contracts x 100 USD
    assert liq.qty_base == pytest.approx(300.0 / 9352.7)
    assert liq.coin == "BTC" and liq.exchange_ts_ms == 1594622954021


@requires_realdata
@pytest.mark.parametrize(("name", "dialect_cls"), [
    ("binance_usdm_markPrice.tardis.jsonl", BinanceUsdm),
    ("binance_coinm_markPrice.tardis.jsonl", BinanceCoinm),
])
def test_real_mark_prices(name: str, dialect_cls: type[BinanceUsdm]) -> None:
    session = dialect_cls(dialect.VenueSettings()).session(instr.InstrumentBook(dialect_cls.venue))
    lines = list(realdata_lines(name))
    for line in lines:
        data = orjson.loads(line)["data"]
        mark = only(session.parse(line, 1.0))
        assert isinstance(mark, MarkPrice)
        assert mark.price == float(data["p"]) and mark.coin == "BTC"
        assert mark.exchange_ts_ms == data["E"]
    assert len(lines) == 2


@requires_realdata
def test_real_frames_of_other_channels_are_unrecognised_not_errors() -> None:
    session = usdm_session()
    counts = {}
    for name in ("binance_usdm_bookTicker.jsonl", "binance_coinm_bookTicker.jsonl",
                 "binance_usdm_ticker.tardis.jsonl", "binance_coinm_ticker.tardis.jsonl"):
        items = [item for line in realdata_lines(name) for item in session.parse(line, 1.0)]
        assert set(items) == {dialect.Unrecognised("unknown_event")}
        counts[name] = len(items)
    assert counts == {"binance_usdm_bookTicker.jsonl": 2572,
                      "binance_coinm_bookTicker.jsonl": 9322,
                      "binance_usdm_ticker.tardis.jsonl": 1,
                      "binance_coinm_ticker.tardis.jsonl": 1}


# -- malformed input (the tables are tests/venues/malformed/ and notices/) ---------


_O = orjson.loads(SAMPLE)["o"]


def _with(**changes: object) -> str:
    o = {k: v for k, v in {**_O, **changes}.items() if v is not ...}
    return orjson.dumps({"e": "forceOrder", "E": 1, "o": o}).decode()


def test_deep_nesting_and_huge_numbers_are_read_safely() -> None:
    session = usdm_session()
    for frame in (SAMPLE.replace('"BUY"', DEEP), _with(T="9" * 5000),
                  SAMPLE.replace('"BTCUSDT"', DEEP)):
        with pytest.raises(FrameError):
            session.parse(frame, 1.0)
    rejection = only(session.parse('{"error":' + DEEP + ',"id":1}', 1.0))
    assert isinstance(rejection, dialect.Rejection) and rejection.message
    assert session.parse('{"code":1,"msg":' + DEEP + ',"id":1}', 1.0)
    assert session.parse('{"result":null,"id":' + DEEP + "}", 1.0) == [dialect.Ack("<list of 1>")]


def test_usdm_fallback_needs_a_positive_order_price() -> None:
    with pytest.raises(FrameError) as caught:
        usdm_session().parse(_with(z="0", p="0"), 1.0)
    assert caught.value.reason == "bad_value"


def test_missing_fill_falls_back_to_order_quantity_and_price() -> None:
    liq = only_liquidation(usdm_session().parse(_with(z=..., ap=...), 1.0))
    assert liq.notional_usd == pytest.approx(1.437 * 35100.81)
    assert liq.price == 35100.81 and liq.qty_base == 1.437


def test_one_bad_mark_price_row_keeps_the_others() -> None:
    frame = ('[{"e":"markPriceUpdate","E":5,"s":"BTCUSDT","p":"100.5"},'
             '{"e":"markPriceUpdate","E":5,"s":"ETHUSDT","p":"x"},'
             '{"e":"markPriceUpdate","E":5,"p":"1"}, 7]')
    items = usdm_session().parse(frame, 1.0)
    assert items[0] == MarkPrice("binance-usdm", "BTCUSDT", "BTC", 100.5, 5, 1.0)
    assert [i.reason for i in items[1:] if isinstance(i, dialect.Invalid)] == [
        "bad_value", "missing_field", "bad_value"]


# -- connection plans and instruments --------------------------------------------------


def test_dialects_satisfy_the_protocol_and_registry() -> None:
    usdm: dialect.Dialect = BinanceUsdm(dialect.VenueSettings())
    coinm: dialect.Dialect = BinanceCoinm(dialect.VenueSettings())
    assert isinstance(make_dialect("binance-usdm"), BinanceUsdm)
    assert isinstance(make_dialect("binance-coinm"), BinanceCoinm)
    for binance in (usdm, coinm):
        assert binance.completeness == "throttled"
        assert binance.ping_interval_seconds is None and binance.ping_frame(0.0) is None
        assert binance.max_lifetime_seconds == 23 * 3600
    assert not usdm.needs_instruments and coinm.needs_instruments


def test_usdm_plan_uses_the_routed_market_url() -> None:
    [plan] = BinanceUsdm(dialect.VenueSettings()).plans("ws://127.0.0.1:9/binance-usdm/",
                                                instr.InstrumentBook("binance-usdm"))
    assert plan.url == "ws://127.0.0.1:9/binance-usdm/market/ws"
    assert plan.subscribe_frames == (
        '{"method":"SUBSCRIBE","params":["!forceOrder@arr","!markPrice@arr@1s"],"id":1}',)
    assert plan.expected_acks == 1
    [real] = BinanceUsdm(dialect.VenueSettings()).plans("wss://fstream.binance.com",
                                                instr.InstrumentBook("binance-usdm"))
    assert real.url == "wss://fstream.binance.com/market/ws"


def test_coinm_plan_subscribes_a_mark_price_per_pair() -> None:
    book = coinm_book(("BTCUSD_PERP", 100.0), ("BTCUSD_250926", 100.0), ("ETHUSD_PERP", 10.0))
    [plan] = BinanceCoinm(dialect.VenueSettings()).plans("wss://dstream.binance.com", book)
    assert plan.url == "wss://dstream.binance.com/ws"
    [frame] = plan.subscribe_frames
    assert orjson.loads(frame) == {"method": "SUBSCRIBE", "id": 1, "params": [
        "!forceOrder@arr", "btcusd@markPrice@1s", "ethusd@markPrice@1s"]}
    assert plan.expected_acks == 1


def test_coinm_plan_many_pairs_and_configured_symbols() -> None:
    book = coinm_book(*((f"C{i:03d}USD_PERP", 10.0) for i in range(120)))
    [plan] = BinanceCoinm(dialect.VenueSettings()).plans("ws://h", book)
    params = [p for f in plan.subscribe_frames for p in orjson.loads(f)["params"]]
    assert len(params) == 121 and params[0] == "!forceOrder@arr"
    assert plan.expected_acks == len(plan.subscribe_frames) == 3
    assert [orjson.loads(f)["id"] for f in plan.subscribe_frames] == [1, 2, 3]
    configured_coinm = BinanceCoinm(dialect.VenueSettings(symbols=("SOLUSD_PERP",)))
    [configured] = configured_coinm.plans("ws://h", book)
    assert orjson.loads(configured.subscribe_frames[0])["params"] == [
        "!forceOrder@arr", "solusd@markPrice@1s"]
    [empty] = BinanceCoinm(dialect.VenueSettings()).plans(
        "ws://h", instr.InstrumentBook("binance-coinm"))
    assert "btcusd@markPrice@1s" in empty.subscribe_frames[0]


def test_exchange_info_documents() -> None:
    usdm = BinanceUsdm(dialect.VenueSettings())
    [request] = usdm.instrument_requests("https://fapi.binance.com/")
    assert request.url == "https://fapi.binance.com/fapi/v1/exchangeInfo"
    doc = {"symbols": [
        {"symbol": "1000PEPEUSDT", "baseAsset": "1000PEPE", "quoteAsset": "USDT",
         "contractType": "PERPETUAL"},
        {"symbol": "BROKEN"},
        "not an object",
        {"symbol": "BTCUSDC", "baseAsset": "BTC", "quoteAsset": "USDC"},
    ]}
    specs, next_request = usdm.parse_instruments(request, orjson.dumps(doc))
    assert next_request is None
    assert [(s.instrument, s.coin, s.base_multiplier, s.quote) for s in specs] == [
        ("1000PEPEUSDT", "PEPE", 1000.0, "USDT"), ("BTCUSDC", "BTC", 1.0, "USDC")]
    coinm = BinanceCoinm(dialect.VenueSettings())
    [request] = coinm.instrument_requests("https://dapi.binance.com")
    assert request.url == "https://dapi.binance.com/dapi/v1/exchangeInfo"
    specs, _ = coinm.parse_instruments(request, orjson.dumps({"symbols": [
        {"symbol": "ETHUSD_PERP", "pair": "ETHUSD", "baseAsset": "ETH", "quoteAsset": "USD",
         "contractSize": 10},
        {"symbol": "XRPUSD_PERP", "pair": "XRPUSD", "baseAsset": "XRP", "contractSize": 0}]}))
    assert [(s.instrument, s.kind, s.contract_size) for s in specs] == [
        ("ETHUSD_PERP", instr.ContractKind.INVERSE, 10.0)]


@pytest.mark.parametrize("body", [b"", b"[]", b'{"symbols":{}}', b'{"nothing":1}'])
def test_bad_exchange_info_is_an_instrument_fetch_error(body: bytes) -> None:
    from monitor.errors import InstrumentFetchError

    with pytest.raises(InstrumentFetchError):
        BinanceUsdm(dialect.VenueSettings()).parse_instruments(
            dialect.RestRequest("exchangeInfo", "u"), body)
