"""The HTX dialect: gzip frames, ping echo, golden and real frames, instruments, bad input."""

from __future__ import annotations

import gzip
import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import Liquidation, event_id_from_fields
from monitor.venues import make_dialect
from monitor.venues.htx import MAX_FRAME_BYTES, Htx, HtxSession, is_linear_code
from tests.support.golden import (
    events,
    golden_files,
    liquidations,
)
from tests.support.realdata import realdata_lines, requires_realdata

NOW = 1_769_904_000.0


def contract(code: str, size: float, symbol: str | None = None, **extra: Any) -> dict[str, Any]:
    """One row of an HTX contract_info document (the fields the dialect reads)."""
    return {"symbol": symbol or code.split("-")[0].rstrip("0123456789"), "contract_code": code,
            "contract_size": size, "price_tick": 0.01, "contract_status": 1, **extra}


def book_of(documents: dict[str, list[Any]] | None) -> instr.InstrumentBook:
    """``documents`` maps a request key (usdt, coin-swap, coin-futures) to its ``data`` rows."""
    htx = Htx(dialect.VenueSettings())
    book = instr.InstrumentBook("htx")
    for key, rows in (documents or {}).items():
        specs, next_request = htx.parse_instruments(
            dialect.RestRequest(key, "https://api.hbdm.com/x"),
            orjson.dumps({"status": "ok", "data": rows, "ts": 1}))
        assert next_request is None
        book.update(specs)
    return book


BOOK = {
    "usdt": [contract("BTC-USDT", 0.001), contract("XRP-USDT", 10.0)],
    "coin-swap": [contract("BTC-USD", 100.0), contract("ETH-USD", 10.0),
                  contract("BSV-USD", 10.0)],
    "coin-futures": [contract("BTC200703", 100.0, "BTC"), contract("BTC200925", 100.0, "BTC")],
}


def session(documents: dict[str, list[Any]] | None = None,
            symbols: tuple[str, ...] | None = None) -> HtxSession:
    return Htx(dialect.VenueSettings(symbols=symbols)).session(book_of(BOOK if documents is None
                                                                       else documents))


def row(code: str = "BTC-USDT", direction: str = "sell", volume: Any = 100, price: Any = 50000.0,
        **extra: Any) -> dict[str, Any]:
    return {"contract_code": code, "symbol": code.split("-")[0], "direction": direction,
            "offset": "close", "volume": volume, "price": price, "created_at": 1769904000123,
            **extra}


def notify(*rows: Any, topic: str = "public.BTC-USDT.liquidation_orders") -> str:
    return orjson.dumps({"op": "notify", "topic": topic, "ts": 1769904000200,
                         "data": list(rows)}).decode()


# -- golden files ---------------------------------------------------------------------------


def test_golden_frames_survive_the_gzip_path() -> None:
    htx = Htx(dialect.VenueSettings())
    for path in golden_files("htx"):
        frame = json.loads(path.read_text())["frame"]
        assert htx.decode_binary(gzip.compress(frame.encode())) == frame


# -- real frames ----------------------------------------------------------------------------

# contract_code: (position side, notional USD), worked by hand. Coin-margined BTC contracts
# are 100 USD and others 10 USD (reference §13.6); USDT-margined rows carry trade_turnover.
REAL_EXPECTED = {
    ("BTC200703", 1450): ("long", 145_000.0),
    ("BTC200925", 319): ("long", 31_900.0),
    ("BTC200703", 218): ("short", 21_800.0),
    ("ETH-USD", 231): ("short", 2_310.0),
    ("BSV-USD", 3): ("long", 30.0),
    ("BTC-USDT", 227): ("long", 5_300.5635),
    ("ETH-USDT", 500): ("short", 12_231.3),
}


@requires_realdata
@pytest.mark.parametrize(
    "name", ["htx_liquidation_orders.tardis.jsonl", "htx_liquidation_orders.unattributed.jsonl"])
def test_real_liquidation_frames(name: str) -> None:
    lines = list(realdata_lines(name))
    assert lines
    htx = Htx(dialect.VenueSettings())
    parser = htx.session(book_of(BOOK))
    for line in lines:
        # The venue sends them gzip-compressed; the recording holds them inflated.
        text = htx.decode_binary(gzip.compress(line.encode()))
        (liq,) = events(parser.parse(text, NOW))
        assert isinstance(liq, Liquidation)
        volume = int(json.loads(line)["data"][0]["volume"])
        side, notional = REAL_EXPECTED[(liq.instrument, volume)]
        assert liq.position_side == side
        assert abs(liq.notional_usd - notional) < 0.005
        assert math.isclose(liq.qty_base * liq.price, notional, rel_tol=1e-3)
        assert liq.exchange_ts_ms > 1_590_000_000_000 and liq.completeness == "full"


@requires_realdata
def test_real_coin_margined_frames_wait_for_their_contract_size() -> None:
    parser = session({})
    for line in realdata_lines("htx_liquidation_orders.tardis.jsonl"):
        if "-USDT" in line:
            assert len(events(parser.parse(line, NOW))) == 1  # trade_turnover suffices
        else:
            with pytest.raises(UnknownInstrument):
                parser.parse(line, NOW)


# -- valuation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("direction", "expected"), [("sell", "long"), ("buy", "short")])
def test_direction_is_the_order_side(direction: str, expected: str) -> None:
    frame = notify(row(direction=direction, amount=0.1, trade_turnover=5000.0))
    (liq,) = liquidations(session().parse(frame, NOW))
    assert liq.position_side == expected


def test_usdt_margined_falls_back_to_contract_size() -> None:
    (liq,) = events(session().parse(notify(row(volume=100, price=50000.0)), NOW))
    assert isinstance(liq, Liquidation)
    assert math.isclose(liq.qty_base, 0.1) and math.isclose(liq.notional_usd, 5000.0)
    with pytest.raises(UnknownInstrument):  # no turnover and no contract size: no guess
        session({}).parse(notify(row(code="DOGE-USDT")), NOW)


def test_coin_margined_is_never_multiplied_by_price() -> None:
    frame = notify(row(code="BTC-USD", volume=12, price=60000.0),
                   topic="public.BTC-USD.liquidation_orders")
    (liq,) = events(session().parse(frame, NOW))
    assert isinstance(liq, Liquidation)
    assert (liq.notional_usd, liq.qty_base) == (1200.0, 0.02)


def test_unknown_coin_margined_contract_holds_the_whole_frame() -> None:
    frame = notify(row(code="BTC-USD"), row(code="BTC260327", symbol="BTC"))
    with pytest.raises(UnknownInstrument) as excinfo:
        session().parse(frame, NOW)
    assert excinfo.value.instrument == "BTC260327"


def test_event_id_hashes_the_identifying_fields() -> None:
    frame = notify(row(amount=0.1, trade_turnover=5000.0))
    (first,) = liquidations(session().parse(frame, NOW))
    (again,) = liquidations(session().parse(frame, NOW + 9))
    assert first.event_id == again.event_id == event_id_from_fields(
        "htx", "BTC-USDT", 1769904000123, "sell", "100.0", "50000.0")
    other = notify(row(volume=101, amount=0.1, trade_turnover=5000.0))
    assert liquidations(session().parse(other, NOW))[0].event_id != first.event_id


def test_one_bad_row_among_good_ones_is_invalid() -> None:
    frame = notify(row(amount=0.1, trade_turnover=5000.0), row(direction="hold"),
                   row(volume=7, amount=0.007, trade_turnover=350.0))
    items = session().parse(frame, NOW)
    assert [e.notional_usd for e in liquidations(items)] == [5000.0, 350.0]
    (invalid,) = [i for i in items if isinstance(i, dialect.Invalid)]
    assert invalid.reason == "bad_value"


def test_configured_symbols_filter_by_code_or_symbol() -> None:
    by_code = session(symbols=("ETH-USDT",))
    assert by_code.parse(notify(row(amount=0.1, trade_turnover=5000.0)), NOW) == []
    by_symbol = session(symbols=("BTC",))
    frame = notify(row(code="BTC200703", symbol="BTC", volume=1),
                   topic="public.BTC.liquidation_orders")
    assert len(events(by_symbol.parse(frame, NOW))) == 1
    assert by_symbol.parse(notify(row(code="ETH-USDT", amount=1, trade_turnover=1)), NOW) == []


def test_linear_codes() -> None:
    assert is_linear_code("BTC-USDT") and is_linear_code("BTC-USDT-250926")
    assert not is_linear_code("BTC-USD") and not is_linear_code("BTC200703")


# -- gzip, ping, notices --------------------------------------------------------------------


def test_decode_binary() -> None:
    htx = Htx(dialect.VenueSettings())
    text = '{"op":"ping","ts":"1769904000000"}'
    assert htx.decode_binary(gzip.compress(text.encode())) == text
    assert htx.decode_binary(text.encode()) == text  # plain UTF-8 is tolerated
    for bad in (b"\x1f\x8b\x08\x00garbage", gzip.compress(text.encode())[:-12],
                gzip.compress(b"\xff\xfe"), b"\xff\xfe"):
        with pytest.raises(FrameError):
            htx.decode_binary(bad)


def test_decode_binary_refuses_a_decompression_bomb() -> None:
    bomb = gzip.compress(b" " * (MAX_FRAME_BYTES + 1))
    with pytest.raises(FrameError) as excinfo:
        Htx(dialect.VenueSettings()).decode_binary(bomb)
    assert excinfo.value.reason == "bad_gzip"


@pytest.mark.parametrize("ts", ['"1769904000000"', "1769904000000"])
def test_server_ping_is_answered_with_the_same_ts(ts: str) -> None:
    (reply,) = session().parse(f'{{"op":"ping","ts":{ts}}}', NOW)
    assert isinstance(reply, dialect.Reply)
    assert reply.text == f'{{"op":"pong","ts":{ts}}}'


def test_market_host_ping_form_is_answered_too() -> None:
    assert session().parse('{"ping":1769904000000}', NOW) == [
        dialect.Reply('{"pong":1769904000000}')]


# -- instruments and plans ------------------------------------------------------------------


def test_instrument_requests() -> None:
    requests = Htx(dialect.VenueSettings()).instrument_requests("https://api.hbdm.com/")
    assert {r.key: r.url for r in requests} == {
        "usdt": "https://api.hbdm.com/linear-swap-api/v1/swap_contract_info?business_type=all",
        "coin-swap": "https://api.hbdm.com/swap-api/v1/swap_contract_info",
        "coin-futures": "https://api.hbdm.com/api/v1/contract_contract_info",
    }


def test_instrument_specs() -> None:
    book = book_of({**BOOK, "usdt": [
        contract("BTC-USDT", 0.001, trade_partition="USDT"),
        contract("BTC-USDT-260327", 0.001, business_type="futures"),
        {"symbol": "BAD", "contract_code": "BAD-USDT", "contract_size": 0},
        "not an object"]})
    linear = book.get("BTC-USDT-260327")
    assert linear is not None and linear.kind is instr.ContractKind.LINEAR
    assert (linear.contract_size, linear.quote, linear.category) == (0.001, "USDT", "usdt")
    inverse = book.get("BTC200703")
    assert inverse is not None and (inverse.kind, inverse.contract_size, inverse.quote) == (
        instr.ContractKind.INVERSE, 100.0, "USD")
    assert "BAD-USDT" not in book


@pytest.mark.parametrize("body", [
    b"<html>", b"[]", b'{"status":"error","err-code":1032,"err-msg":"too many requests"}',
    b'{"status":"ok","data":{}}'])
def test_bad_instrument_documents(body: bytes) -> None:
    with pytest.raises(InstrumentFetchError):
        Htx(dialect.VenueSettings()).parse_instruments(dialect.RestRequest("usdt", "x"), body)


def test_the_contract_code_decides_the_margin_kind_whatever_the_request() -> None:
    # ``liqmon parse --instruments`` tries each request on a file: the rows must decide.
    body = orjson.dumps({"status": "ok", "data": [
        contract("ETH-USD", 10.0), contract("BTC200703", 100.0, "BTC"),
        contract("BTC-USDT", 0.001)]})
    for key in ("usdt", "coin-swap", "coin-futures", "file"):
        specs, _ = Htx(dialect.VenueSettings()).parse_instruments(
            dialect.RestRequest(key, "x"), body)
        assert [(s.instrument, s.kind, s.category) for s in specs] == [
            ("ETH-USD", instr.ContractKind.INVERSE, "coin-swap"),
            ("BTC200703", instr.ContractKind.INVERSE, "coin-futures"),
            ("BTC-USDT", instr.ContractKind.LINEAR, "usdt")]


def test_plans_one_connection_per_notification_host() -> None:
    plans = Htx(dialect.VenueSettings()).plans("ws://127.0.0.1:9/htx", instr.InstrumentBook("htx"))
    assert [p.url for p in plans] == [
        "ws://127.0.0.1:9/htx/linear-swap-notification",
        "ws://127.0.0.1:9/htx/swap-notification",
        "ws://127.0.0.1:9/htx/notification",
    ]
    assert len({p.name for p in plans}) == 3
    for plan in plans:
        (frame,) = plan.subscribe_frames
        request = json.loads(frame)
        assert request["op"] == "sub" and request["topic"] == "public.*.liquidation_orders"
        assert plan.expected_acks == 1


def test_registry_builds_the_dialect() -> None:
    htx = make_dialect("htx")
    assert isinstance(htx, Htx) and htx.needs_instruments
    assert htx.ping_interval_seconds is None  # the server pings; we answer
