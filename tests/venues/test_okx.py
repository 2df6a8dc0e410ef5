"""The OKX dialect: golden frames, real frames, notices, replay handling, plans, bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import ConfigError, FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import Liquidation, MarkPrice, PositionSide, event_id_from_fields
from monitor.venues import make_dialect
from monitor.venues.okx import Okx, OkxSession
from monitor.venues.okx_instruments import spec_from_instrument
from tests.support.golden import (
    events,
    liquidations,
)
from tests.support.realdata import realdata_lines, requires_realdata

REQUEST = dialect.RestRequest(key="okx-SWAP", url="https://www.okx.com/api/v5/public/instruments")
NOW = 1_769_904_000.0  # 2026-02-01T00:00:00Z, the arrival time of the hand-made frames
NOW_MS = int(NOW * 1000)


def instrument(inst_id: str, ct_val: str, ct_val_ccy: str, ct_type: str = "linear",
               inst_type: str = "SWAP", ct_mult: str = "1") -> dict[str, str]:
    """One row of /api/v5/public/instruments as OKX returns it (fields the dialect reads)."""
    family = "-".join(inst_id.split("-")[:2])
    return {"instType": inst_type, "instId": inst_id, "uly": family, "instFamily": family,
            "settleCcy": family.split("-")[1] if ct_type == "linear" else family.split("-")[0],
            "ctVal": ct_val, "ctMult": ct_mult, "ctValCcy": ct_val_ccy, "ctType": ct_type,
            "state": "live"}


def book_of(rows: list[Any], okx: Okx | None = None) -> instr.InstrumentBook:
    okx = okx or Okx(dialect.VenueSettings())
    body = orjson.dumps({"code": "0", "msg": "", "data": rows})
    specs, next_request = okx.parse_instruments(REQUEST, body)
    assert next_request is None
    return instr.InstrumentBook("okx", specs)


BOOK_ROWS = [
    instrument("BTC-USDT-SWAP", "0.01", "BTC"),
    instrument("ETH-USDT-SWAP", "0.1", "ETH"),
    instrument("BTC-USD-SWAP", "100", "USD", "inverse"),
    instrument("BTC-USDC-SWAP", "0.0001", "BTC"),
    instrument("ETH-USD-260626", "10", "USD", "inverse", "FUTURES"),
]


def liquidation_frame(inst_id: str, *details: dict[str, str], inst_type: str = "SWAP") -> str:
    family = "-".join(inst_id.split("-")[:2])
    return orjson.dumps({
        "arg": {"channel": "liquidation-orders", "instType": inst_type},
        "data": [{"details": list(details), "instFamily": family, "instId": inst_id,
                  "instType": inst_type, "uly": family}],
    }).decode()


def detail(sz: str = "10", px: str = "60000", ts: int = NOW_MS, side: str = "sell",
           pos_side: str = "long") -> dict[str, str]:
    return {"bkLoss": "0", "bkPx": px, "ccy": "", "posSide": pos_side, "side": side, "sz": sz,
            "ts": str(ts)}


def session(rows: list[dict[str, Any]] = BOOK_ROWS, **options: object) -> OkxSession:
    okx = Okx(dialect.VenueSettings(options=options))
    session = okx.session(book_of(rows, okx))
    assert isinstance(session, OkxSession)
    return session


# -- golden files ---------------------------------------------------------------------------


# -- real frames ----------------------------------------------------------------------------

# Contract values for the instruments in ../shared/realdata/okx_liquidation-orders.*.jsonl:
# BTC-USDT-SWAP 0.01 BTC: OKX's documented value (reference/exchanges.md §8.6).
# XRP-USD-230929 10 USD: OKX's coin-margined XRP contracts are 10 USD (v3 instruments document
#   "XRP-USD-SWAP ... contract_val 10 ... contract_val_currency USD"; delivery futures of the
#   same family use the same face value).
# CELO-USDT-SWAP 1 CELO: OKX's listing announcement ("Face Value 1 CELO").
# CNPY-USDT-SWAP and MUBARAK-USDT-SWAP: no published value found; 1 is ASSUMED, so these two
#   check side, parsing and the linear formula, not OKX's real contract size.
REAL_INSTRUMENTS = [
    instrument("BTC-USDT-SWAP", "0.01", "BTC"),
    instrument("XRP-USD-230929", "10", "USD", "inverse", "FUTURES"),
    instrument("CELO-USDT-SWAP", "1", "CELO"),
    instrument("CNPY-USDT-SWAP", "1", "CNPY"),
    instrument("MUBARAK-USDT-SWAP", "1", "MUBARAK"),
]
# instId: (position side, qty_base, notional_usd), worked by hand from each line.
REAL_EXPECTED = {
    "XRP-USD-230929": ("short", 390 / 0.55205, 390.0),  # 39 x 10 USD, inverse
    "BTC-USDT-SWAP": ("long", 0.0855, 7067.06235),  # 8.55 x 0.01 BTC x 82655.7
    "CELO-USDT-SWAP": ("short", 19979.0, 1914.58757),  # 19979 x 1 x 0.09583
    "CNPY-USDT-SWAP": ("short", 2137.0, 889.4194),  # 2137 x 1 x 0.4162
    "MUBARAK-USDT-SWAP": ("long", 2.0, 0.145364),  # 2 x 1 x 0.072682
}


@requires_realdata
@pytest.mark.parametrize(
    "name", ["okx_liquidation-orders.tardis.jsonl", "okx_liquidation-orders.unattributed.jsonl"]
)
def test_real_liquidation_frames(name: str) -> None:
    parser = Okx(dialect.VenueSettings()).session(book_of(REAL_INSTRUMENTS))
    lines = list(realdata_lines(name))
    assert lines
    for line in lines:
        items = parser.parse(line, 1.0)
        (liq,) = events(items)
        assert isinstance(liq, Liquidation)
        side, qty, notional = REAL_EXPECTED[liq.instrument]
        assert liq.position_side == side
        assert math.isclose(liq.qty_base, qty, rel_tol=1e-9)
        assert abs(liq.notional_usd - notional) < 0.005
        assert liq.exchange_ts_ms > 1_600_000_000_000
        assert liq.completeness == "throttled"


@requires_realdata
def test_real_mark_price_frames() -> None:
    parser = Okx(dialect.VenueSettings()).session(instr.InstrumentBook("okx"))
    lines = list(realdata_lines("okx_mark-price.tardis.jsonl"))
    assert len(lines) == 4
    marks: list[MarkPrice] = []
    for line in lines:
        items = parser.parse(line, 1.0)
        if '"OPTION"' in line:
            # An option's mark is in coin, not USD: nothing to count.
            assert events(items) == [] and isinstance(items[0], dialect.Info)
        else:
            (mark,) = events(items)
            assert isinstance(mark, MarkPrice)
            marks.append(mark)
    assert [(m.instrument, m.coin, m.price) for m in marks] == [
        ("FIL-USDT-220325", "FIL", 36.232),
        ("FIL-USDT-220325", "FIL", 36.662),
        ("WNCG-USDT-SWAP", "WNCG", 2.1729),
    ]


@requires_realdata
@pytest.mark.parametrize("name", ["okx_tickers.jsonl", "okx_tickers.tardis.jsonl"])
def test_real_ticker_frames_are_unrecognised_not_errors(name: str) -> None:
    parser = Okx(dialect.VenueSettings()).session(instr.InstrumentBook("okx"))
    lines = list(realdata_lines(name))
    assert lines
    for line in lines:
        assert parser.parse(line, 1.0) == [dialect.Unrecognised("unknown_channel")]


# -- valuation and side ---------------------------------------------------------------------


def test_every_data_element_and_every_detail_is_read() -> None:
    frame = orjson.dumps({
        "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
        "data": [
            {"instId": "BTC-USDT-SWAP", "details": [detail("1"), detail("2"), detail("3")]},
            {"instId": "ETH-USDT-SWAP", "details": [detail("4", "3000")]},
        ],
    }).decode()
    got = liquidations(session().parse(frame, NOW))
    assert [(e.instrument, e.qty_base) for e in got] == [
        ("BTC-USDT-SWAP", 0.01), ("BTC-USDT-SWAP", 0.02), ("BTC-USDT-SWAP", 0.03),
        ("ETH-USDT-SWAP", pytest.approx(0.4)),
    ]


@pytest.mark.parametrize(
    ("pos_side", "side", "expected"),
    [("long", "sell", "long"), ("short", "buy", "short"), ("net", "sell", "long"),
     ("net", "buy", "short"), ("", "sell", "long"), ("", "buy", "short"),
     # posSide names the position; it wins over the order side.
     ("long", "buy", "long"), ("short", "sell", "short")],
)
def test_side(pos_side: str, side: str, expected: str) -> None:
    frame = liquidation_frame("BTC-USDT-SWAP", detail(side=side, pos_side=pos_side))
    (liq,) = events(session().parse(frame, NOW))
    assert isinstance(liq, Liquidation)
    assert liq.position_side == PositionSide(expected)


def test_missing_pos_side_uses_the_order_side() -> None:
    row = detail(side="sell")
    del row["posSide"]
    (liq,) = events(session().parse(liquidation_frame("BTC-USDT-SWAP", row), NOW))
    assert isinstance(liq, Liquidation) and liq.position_side is PositionSide.LONG


def test_linear_with_multiplier_and_usdc_quote() -> None:
    rows = [instrument("BTC-USDC-SWAP", "0.0001", "BTC", ct_mult="10")]
    frame = liquidation_frame("BTC-USDC-SWAP", detail("50", "100000"))
    (liq,) = events(session(rows).parse(frame, NOW))
    assert isinstance(liq, Liquidation)
    assert math.isclose(liq.qty_base, 0.05)  # 50 x 0.0001 x 10
    assert abs(liq.notional_usd - 5000.0) < 0.005


def test_unknown_instrument_is_never_guessed() -> None:
    frame = liquidation_frame("DOGE-USDT-SWAP", detail())
    with pytest.raises(UnknownInstrument) as excinfo:
        session().parse(frame, NOW)
    assert excinfo.value.reason == "unknown_instrument"
    assert excinfo.value.instrument == "DOGE-USDT-SWAP"


def test_event_id_is_stable_and_distinct() -> None:
    frame = liquidation_frame("BTC-USDT-SWAP", detail("10"), detail("11"))
    first = liquidations(session().parse(frame, NOW))
    again = liquidations(session().parse(frame, NOW + 5))
    assert [e.event_id for e in first] == [e.event_id for e in again]
    assert first[0].event_id != first[1].event_id
    assert first[0].event_id == event_id_from_fields(
        "okx", "BTC-USDT-SWAP", str(NOW_MS), "sell", "10", "60000")


def test_configured_symbols_filter_liquidations() -> None:
    okx = Okx(dialect.VenueSettings(symbols=("ETH-USDT-SWAP",)))
    parser = okx.session(book_of(BOOK_ROWS))
    assert events(parser.parse(liquidation_frame("BTC-USDT-SWAP", detail()), NOW)) == []
    # An unwatched instrument is not valued, so it cannot be unknown either.
    assert events(parser.parse(liquidation_frame("DOGE-USDT-SWAP", detail()), NOW)) == []
    assert len(events(parser.parse(liquidation_frame("ETH-USDT-SWAP", detail()), NOW))) == 1


# -- the first push replays recent orders ---------------------------------------------------


def test_first_push_drops_old_rows_and_keeps_fresh_ones() -> None:
    parser = session()
    old, fresh = NOW_MS - 120_000, NOW_MS - 2_000
    frame = liquidation_frame("BTC-USDT-SWAP", detail("1", ts=old), detail("2", ts=fresh))
    items = parser.parse(frame, NOW)
    assert [e.exchange_ts_ms for e in events(items)] == [fresh]
    assert any(isinstance(i, dialect.Info) and "replayed" in i.detail for i in items)
    # Later pushes are kept whatever their age: OKX does not order them by time.
    later = liquidation_frame("BTC-USDT-SWAP", detail("3", ts=old))
    assert [e.exchange_ts_ms for e in events(parser.parse(later, NOW + 1))] == [old]


def test_first_push_is_tracked_per_instrument_type() -> None:
    parser = session()
    old = NOW_MS - 120_000
    swap = liquidation_frame("BTC-USDT-SWAP", detail(ts=NOW_MS))
    futures = liquidation_frame("ETH-USD-260626", detail(ts=old), inst_type="FUTURES")
    assert len(events(parser.parse(swap, NOW))) == 1
    assert events(parser.parse(futures, NOW)) == []  # FUTURES' own first push
    assert len(events(parser.parse(futures, NOW))) == 1


def test_replay_age_is_configurable_and_zero_keeps_only_the_future() -> None:
    parser = session(replay_max_age_seconds=600)
    frame = liquidation_frame("BTC-USDT-SWAP", detail(ts=NOW_MS - 120_000))
    assert len(events(parser.parse(frame, NOW))) == 1
    with pytest.raises(ConfigError):
        Okx(dialect.VenueSettings(options={"replay_max_age_seconds": "soon"}))


# -- mark prices ----------------------------------------------------------------------------


def test_mark_price_of_an_unknown_swap_uses_its_name() -> None:
    frame = ('{"arg":{"channel":"mark-price","instId":"1000SATS-USDT-SWAP"},"data":[{"instType":'
             '"SWAP","instId":"1000SATS-USDT-SWAP","markPx":"0.25","ts":"1769904000000"}]}')
    (mark,) = events(session().parse(frame, NOW))
    assert isinstance(mark, MarkPrice)
    assert (mark.coin, mark.price) == ("SATS", 0.00025)


# -- malformed input ------------------------------------------------------------------------

def test_one_bad_row_among_good_ones_is_invalid_and_the_rest_count() -> None:
    frame = liquidation_frame("BTC-USDT-SWAP", detail("1"), detail(sz="x"), detail("3"))
    items = session().parse(frame, NOW)
    assert [e.qty_base for e in liquidations(items)] == [0.01, 0.03]
    (invalid,) = [i for i in items if isinstance(i, dialect.Invalid)]
    assert invalid.reason == "bad_value"


def test_decode_binary() -> None:
    okx = Okx(dialect.VenueSettings())
    assert okx.decode_binary(b"pong") == "pong"
    with pytest.raises(FrameError):
        okx.decode_binary(b"\xff\xfe")


# -- instruments ----------------------------------------------------------------------------


def test_instrument_requests() -> None:
    requests = Okx(dialect.VenueSettings()).instrument_requests("https://www.okx.com/")
    assert [r.url for r in requests] == [
        "https://www.okx.com/api/v5/public/instruments?instType=SWAP",
        "https://www.okx.com/api/v5/public/instruments?instType=FUTURES",
    ]
    assert all(r.method == "GET" for r in requests)
    assert len({r.key for r in requests}) == 2


def test_instrument_specs() -> None:
    book = book_of([
        *BOOK_ROWS,
        {**instrument("BTC-USD-250328-90000-C", "0.01", "BTC"), "instType": "OPTION"},
        instrument("XAU-USDT-SWAP", "0.001", "OZ"),  # valued in ounces, not in its base coin
        {"instType": "SWAP", "instId": "BROKEN-USDT-SWAP", "ctVal": "", "ctType": "linear"},
        "not an object",
    ])
    assert sorted(s.instrument for s in book) == sorted(r["instId"] for r in BOOK_ROWS)
    btc = book.get("BTC-USDT-SWAP")
    assert btc == instr.InstrumentSpec("okx", "BTC-USDT-SWAP", "BTC", instr.ContractKind.LINEAR,
                                       0.01, "USDT", 1.0, "SWAP")
    inverse = book.get("BTC-USD-SWAP")
    assert inverse is not None and inverse.kind is instr.ContractKind.INVERSE
    assert (inverse.contract_size, inverse.quote) == (100.0, "USD")
    futures = book.get("ETH-USD-260626")
    assert futures is not None and futures.category == "FUTURES"


def test_instrument_family_falls_back_to_the_instrument_id() -> None:
    row = instrument("1000PEPE-USDT-SWAP", "1", "1000PEPE")
    del row["uly"], row["instFamily"]
    spec = spec_from_instrument(row)
    assert spec is not None and (spec.coin, spec.base_multiplier) == ("PEPE", 1000.0)


@pytest.mark.parametrize(
    "body", [b"<html>", b"[]", b'{"code":"50011","msg":"Too Many Requests","data":[]}',
             b'{"code":"0","data":{}}'],
)
def test_bad_instrument_documents(body: bytes) -> None:
    with pytest.raises(InstrumentFetchError):
        Okx(dialect.VenueSettings()).parse_instruments(REQUEST, body)


# -- connection plans -----------------------------------------------------------------------


def test_plans_default() -> None:
    okx = Okx(dialect.VenueSettings())
    (plan,) = okx.plans("wss://ws.okx.com:8443", book_of(BOOK_ROWS))
    assert plan.url == "wss://ws.okx.com:8443/ws/v5/public"
    (frame,) = plan.subscribe_frames
    request = json.loads(frame)
    assert request["op"] == "subscribe" and request["id"] == "1"
    assert request["args"] == [
        {"channel": "liquidation-orders", "instType": "SWAP"},
        {"channel": "liquidation-orders", "instType": "FUTURES"},
        # one SWAP per coin for prices, USDT before USDC before inverse
        {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
        {"channel": "mark-price", "instId": "ETH-USDT-SWAP"},
    ]
    assert plan.expected_acks == 4


def test_plans_keep_liquidations_apart_from_the_long_price_lists() -> None:
    # OKX refuses per argument: the liquidation channel shares its connection only with a
    # few mark prices (its canary), BTC and ETH first.
    rows = [instrument(f"C{i:03d}-USDT-SWAP", "1", f"C{i:03d}") for i in range(450)]
    rows += [instrument("ETH-USDT-SWAP", "0.1", "ETH"), instrument("BTC-USDT-SWAP", "0.01", "BTC")]
    okx = Okx(dialect.VenueSettings(options={"mark_price_topics_per_connection": 200}))
    plans = okx.plans("ws://127.0.0.1:9000/okx", book_of(rows))
    assert [p.name for p in plans] == ["okx-0", "okx-1", "okx-2", "okx-3"]
    assert {p.url for p in plans} == {"ws://127.0.0.1:9000/okx/ws/v5/public"}
    args = [[a for f in p.subscribe_frames for a in json.loads(f)["args"]] for p in plans]
    assert [len(a) for a in args] == [5, 200, 200, 49]
    assert [p.expected_acks for p in plans] == [5, 200, 200, 49]
    assert {a.get("instId") for a in args[0][2:]} == {"BTC-USDT-SWAP", "ETH-USDT-SWAP",
                                                      "C000-USDT-SWAP"}
    assert plans[0].topics[:2] == ("liquidation-orders:SWAP", "liquidation-orders:FUTURES")
    liquidation_args = [a for shard in args for a in shard if a["channel"] == "liquidation-orders"]
    assert liquidation_args == [a for a in args[0] if a["channel"] == "liquidation-orders"]
    assert len(liquidation_args) == 2
    marks = [a["instId"] for shard in args for a in shard if a["channel"] == "mark-price"]
    assert sorted(marks) == sorted(r["instId"] for r in rows)


def test_subscribe_frames_stay_under_the_request_size_limit() -> None:
    rows = [instrument(f"LONGNAME{i:04d}-USDT-SWAP", "1", f"LONGNAME{i:04d}") for i in range(1500)]
    okx = Okx(dialect.VenueSettings(options={"mark_price_topics_per_connection": 1500}))
    _liquidations, plan = okx.plans("wss://ws.okx.com:8443", book_of(rows))
    assert len(plan.subscribe_frames) > 1
    assert all(len(f) < 64 * 1024 for f in plan.subscribe_frames)
    ids = [json.loads(f)["id"] for f in plan.subscribe_frames]
    assert ids == [str(i) for i in range(1, len(ids) + 1)]
    assert sum(len(json.loads(f)["args"]) for f in plan.subscribe_frames) == plan.expected_acks


def test_plans_with_configured_symbols_and_an_empty_book() -> None:
    okx = Okx(dialect.VenueSettings(symbols=("ETH-USDT-SWAP", "BTC-USD-SWAP")))
    (plan,) = okx.plans("wss://ws.okx.com:8443", instr.InstrumentBook("okx"))
    args = json.loads(plan.subscribe_frames[0])["args"]
    assert [a.get("instId") for a in args[2:]] == ["ETH-USDT-SWAP", "BTC-USD-SWAP"]
    (bare,) = Okx(dialect.VenueSettings()).plans("wss://ws.okx.com:8443",
                                                 instr.InstrumentBook("okx"))
    assert bare.expected_acks == 2


def test_dialect_contract() -> None:
    okx = make_dialect("okx")
    assert okx.completeness == "throttled"
    assert okx.needs_instruments is True
    assert okx.ping_interval_seconds == 25.0
    assert okx.ping_frame(0.0) == "ping"
    assert okx.max_lifetime_seconds is None
    with pytest.raises(ConfigError):
        Okx(dialect.VenueSettings(options={"mark_price_topics_per_connection": 0}))
