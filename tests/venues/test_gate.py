"""The Gate dialect: golden frames, signed sizes, contract terms, pings, plans, bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import MarkPrice, PositionSide, event_id_from_fields
from monitor.venues import make_dialect
from monitor.venues.gate import MIN_FULL_PAGE, Gate, GateSession, settle_of
from tests.support.golden import liquidations

NOW = 1_769_904_000.0


def contract(name: str, multiplier: str = "0.0001", kind: str = "direct") -> dict[str, Any]:
    """One row of /api/v4/futures/{settle}/contracts (the fields the dialect reads)."""
    return {"name": name, "type": kind, "quanto_multiplier": multiplier, "mark_price": "1",
            "in_delisting": False}


BOOK_ROWS = [contract("BTC_USDT"), contract("ETH_USDT", "0.01"),
             contract("PEPE_USDT", "10000000"), contract("BTC_USD", "0", "inverse")]


def book_of(rows: list[Any]) -> instr.InstrumentBook:
    gate = Gate(dialect.VenueSettings())
    specs = []
    for settle in ("usdt", "btc"):
        mine = [r for r in rows
                if not isinstance(r, dict) or settle_of(str(r.get("name"))) == settle]
        request = dialect.RestRequest(key=settle, url="https://api.gateio.ws/x?limit=1000&offset=0")
        got, following = gate.parse_instruments(request, orjson.dumps(mine))
        assert following is None
        specs += got
    return instr.InstrumentBook("gate", specs)


def session(rows: list[Any] = BOOK_ROWS, symbols: tuple[str, ...] | None = None) -> GateSession:
    return Gate(dialect.VenueSettings(symbols=symbols)).session(book_of(rows))


def liq(contract_name: str = "BTC_USDT", size: object = -1000, price: object = "100000",
        **extra: object) -> dict[str, Any]:
    return {"contract": contract_name, "size": size, "price": price,
            "time_ms": 1769904000000, **extra}


def push(*rows: dict[str, Any], single: bool = False) -> str:
    result: Any = rows[0] if single else list(rows)
    return orjson.dumps({"time": 1769904001, "time_ms": 1769904001123,
                         "channel": "futures.public_liquidates", "event": "update",
                         "result": result}).decode()


def tickers(*rows: dict[str, Any]) -> str:
    return orjson.dumps({"time": 1769904002, "time_ms": 1769904002000,
                         "channel": "futures.tickers", "event": "update",
                         "result": list(rows)}).decode()


# -- golden files ---------------------------------------------------------------------------


# -- sides and valuation --------------------------------------------------------------------


@pytest.mark.parametrize(("size", "expected"), [(-5, "long"), (5, "short"), ("-2.5", "long"),
                                                ("7.5", "short")])
def test_negative_size_is_a_long(size: object, expected: str) -> None:
    (got,) = liquidations(session().parse(push(liq(size=size)), NOW))
    assert got.position_side == PositionSide(expected)
    assert math.isclose(got.qty_base, abs(float(str(size))) * 0.0001)


def test_linear_inverse_and_unit_multiplier() -> None:
    parser = session()
    btc, inverse, pepe = liquidations(parser.parse(push(
        liq("BTC_USDT", -20000, "90000"), liq("BTC_USD", 4500, "90000"),
        liq("PEPE_USDT", -3, "0.00001")), NOW))
    assert math.isclose(btc.qty_base, 2.0) and math.isclose(btc.notional_usd, 180000.0)
    assert (inverse.notional_usd, inverse.qty_base, inverse.coin) == (4500.0, 0.05, "BTC")
    assert math.isclose(pepe.qty_base, 3e7) and math.isclose(pepe.notional_usd, 300.0)


def test_contract_terms_are_required_for_usdt_contracts() -> None:
    with pytest.raises(UnknownInstrument):
        session().parse(push(liq("SOL_USDT")), NOW)
    # BTC_USD is valued by name even before the contract list arrives.
    (got,) = liquidations(session([]).parse(push(liq("BTC_USD", 100, "100000")), NOW))
    assert got.notional_usd == 100.0


def test_btc_settled_quanto_is_not_valued() -> None:
    rows = [*BOOK_ROWS, contract("ETH_USD", "0.000001")]
    with pytest.raises(FrameError) as excinfo:
        session(rows).parse(push(liq("ETH_USD")), NOW)
    assert excinfo.value.reason == "unsupported_contract"


@pytest.mark.parametrize(("row_time", "expected"), [
    ({"time_ms": 1769904000555}, 1769904000555),
    ({"time": 1769904000555}, 1769904000555),  # milliseconds since Gate's 2026-08 change
    ({"time": 1769904000}, 1769904000000),  # seconds before it
    ({}, 1769904001123),  # the frame's time_ms
])
def test_row_time(row_time: dict[str, int], expected: int) -> None:
    row = {"contract": "BTC_USDT", "size": -1, "price": "1", **row_time}
    (got,) = liquidations(session().parse(push(row), NOW))
    assert got.exchange_ts_ms == expected
    assert got.event_id == event_id_from_fields("gate", "BTC_USDT", expected, -1, "1")


def test_one_bad_row_among_several_and_configured_symbols() -> None:
    items = session().parse(push(liq(), liq("SOL_USDT"), liq(size=0)), NOW)
    assert len(liquidations(items)) == 1
    assert sorted(i.reason for i in items if isinstance(i, dialect.Invalid)) == [
        "bad_value", "unknown_instrument"]
    assert session(symbols=("ETH_USDT",)).parse(push(liq()), NOW) == []


def test_tickers() -> None:
    (mark,) = session().parse(tickers({"contract": "ETH_USDT", "mark_price": "3000.5"}), NOW)
    assert mark == MarkPrice("gate", "ETH_USDT", "ETH", 3000.5, 1769904002000, NOW)
    (mark,) = session().parse(tickers({"contract": "PEPE_USDT", "mark_price": "0.00001"}), NOW)
    assert isinstance(mark, MarkPrice) and math.isclose(mark.price, 0.00001)
    items = session().parse(tickers({"contract": "SOL_USDT", "mark_price": "150"},
                                    {"contract": "SOL_USDT"}), NOW)
    assert [type(i) for i in items] == [MarkPrice, dialect.Invalid]
    assert session(symbols=("BTC_USDT",)).parse(
        tickers({"contract": "ETH_USDT", "mark_price": "1"}), NOW) == []


# -- notices and pings ----------------------------------------------------------------------


def test_ping_embeds_the_time() -> None:
    gate = Gate(dialect.VenueSettings())
    assert json.loads(gate.ping_frame(1769904000.9) or "") == {
        "time": 1769904000, "channel": "futures.ping"}
    assert gate.ping_interval_seconds == 10.0
    assert gate.decode_binary(b"{}") == "{}"


# -- instruments ----------------------------------------------------------------------------


def test_instrument_requests_and_paging() -> None:
    gate = Gate(dialect.VenueSettings())
    usdt, btc, usd1 = gate.instrument_requests("https://api.gateio.ws/")
    assert usdt.url == "https://api.gateio.ws/api/v4/futures/usdt/contracts?limit=1000&offset=0"
    assert btc.url == "https://api.gateio.ws/api/v4/futures/btc/contracts?limit=1000&offset=0"
    # USD1-settled contracts since Gate's changelog of 2026-08-19.
    assert usd1.url == "https://api.gateio.ws/api/v4/futures/usd1/contracts?limit=1000&offset=0"
    full = [contract(f"C{n}_USDT") for n in range(MIN_FULL_PAGE)]
    specs, following = gate.parse_instruments(usdt, orjson.dumps(full))
    assert len(specs) == MIN_FULL_PAGE and following is not None
    assert following.url.endswith(f"/usdt/contracts?limit=1000&offset={MIN_FULL_PAGE}")
    assert following.key == "usdt"
    specs, last = gate.parse_instruments(following, orjson.dumps(full[:3]))
    assert len(specs) == 3 and last is None


def test_instrument_specs() -> None:
    book = book_of([*BOOK_ROWS, contract("ETH_USD", "0.000001"),
                    {"name": "BAD_USDT", "type": "direct", "quanto_multiplier": "0"},
                    {"type": "direct"}, "x"])
    specs = {s.instrument: s for s in book}
    assert sorted(specs) == ["BTC_USD", "BTC_USDT", "ETH_USD", "ETH_USDT", "PEPE_USDT"]
    assert (specs["BTC_USDT"].kind, specs["BTC_USDT"].contract_size) == (
        instr.ContractKind.LINEAR, 0.0001)
    assert (specs["BTC_USD"].kind, specs["BTC_USD"].contract_size) == (
        instr.ContractKind.INVERSE, 1.0)
    assert specs["ETH_USD"].kind is instr.ContractKind.QUANTO
    assert (specs["PEPE_USDT"].coin, specs["PEPE_USDT"].category) == ("PEPE", "usdt")


@pytest.mark.parametrize("body", [b"<html>", b"{}", b'{"label":"X","message":"y"}'])
def test_bad_instrument_documents(body: bytes) -> None:
    with pytest.raises(InstrumentFetchError):
        Gate(dialect.VenueSettings()).parse_instruments(
            dialect.RestRequest(key="usdt", url="x"), body)


# -- connection plans -----------------------------------------------------------------------


def test_plans_one_connection_per_settle_host() -> None:
    usdt, btc, usd1 = Gate(dialect.VenueSettings()).plans(
        "wss://fx-ws.gateio.ws", book_of(BOOK_ROWS))
    assert (usdt.url, btc.url, usd1.url) == ("wss://fx-ws.gateio.ws/v4/ws/usdt",
                                             "wss://fx-ws.gateio.ws/v4/ws/btc",
                                             "wss://fx-ws.gateio.ws/v4/ws/usd1")
    assert json.loads(usd1.subscribe_frames[1])["payload"] == ["BTC_USD1"]
    assert usdt.name != btc.name
    frames = [json.loads(f) for f in usdt.subscribe_frames]
    assert [(f["channel"], f["event"], f["payload"]) for f in frames] == [
        ("futures.public_liquidates", "subscribe", ["!all"]),
        ("futures.tickers", "subscribe", ["BTC_USDT", "ETH_USDT"])]
    assert all(isinstance(f["time"], int) and f["time"] > 0 for f in frames)
    assert json.loads(btc.subscribe_frames[1])["payload"] == ["BTC_USD"]
    assert usdt.expected_acks == btc.expected_acks == 2


def test_plans_with_symbols_and_the_simulator_prefix() -> None:
    gate = Gate(dialect.VenueSettings(symbols=("SOL_USDT", "BTC_USDT", "ETH_USD1")))
    plan, usd1 = gate.plans("ws://127.0.0.1:9/gate", instr.InstrumentBook("gate"))
    assert usd1.url == "ws://127.0.0.1:9/gate/v4/ws/usd1"
    assert plan.url == "ws://127.0.0.1:9/gate/v4/ws/usdt"
    assert [json.loads(f)["payload"] for f in plan.subscribe_frames] == [
        ["BTC_USDT", "SOL_USDT"], ["BTC_USDT", "SOL_USDT"]]


def test_registry_builds_the_dialect() -> None:
    gate = make_dialect("gate")
    assert isinstance(gate, Gate)
    # Every liquidation, batched, since Gate's changelog of 2026-08-20.
    assert gate.venue == "gate" and gate.completeness == "full"
    assert gate.needs_instruments
