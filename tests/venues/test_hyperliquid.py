"""The Hyperliquid dialect: liquidation fills of the vaults' userFills, the optional trades
inference, mids, plans, bad input.

No public recording of a backstop liquidation exists, so the frames here are built from the
WsUserFills/WsFill/FillLiquidation schema (reference/exchanges.md §5.2a, §5.3) and the trade
schema of §5.3.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson
import pytest

import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import ConfigError, FrameError, InstrumentFetchError
from monitor.events import MarkPrice, PositionSide
from monitor.venues import make_dialect
from monitor.venues.hyperliquid import DEFAULT_VAULT_ADDRESSES, Hyperliquid, HyperliquidSession
from tests.support.golden import liquidations, marks

VAULT, VAULT_2, VAULT_3, LIQUIDATOR_4, LIQUIDATOR = DEFAULT_VAULT_ADDRESSES
USER = "0x1111111111111111111111111111111111111111"
OTHER = "0x2222222222222222222222222222222222222222"
NOW = 1_769_904_000.0
NOW_MS = int(NOW * 1000)
META_REQUEST = dialect.RestRequest(key="hyperliquid-meta", url="https://api.hyperliquid.xyz/info")


def trade(coin: str = "BTC", px: str = "95000", sz: str = "1.5", buyer: str = USER,
          seller: str = OTHER, tid: int = 1, time: int = NOW_MS) -> dict[str, Any]:
    return {"coin": coin, "side": "A", "px": px, "sz": sz, "hash": "0x00", "time": time,
            "tid": tid, "users": [buyer, seller]}


def trades_frame(*trades: dict[str, Any]) -> str:
    return orjson.dumps({"channel": "trades", "data": list(trades)}).decode()


def session(live: bool = False, **options: object) -> HyperliquidSession:
    """A session as `liqmon parse` and replay make it, or (``live``) a connection's."""
    hyperliquid = Hyperliquid(dialect.VenueSettings(options=options))
    book = instr.InstrumentBook("hyperliquid")
    parser = hyperliquid.session(book, hyperliquid.plans("wss://x", book)[0] if live else None)
    assert isinstance(parser, HyperliquidSession)
    return parser


def fill(coin: str = "BTC", side: str = "B", px: str = "95000", sz: str = "1.5", tid: int = 1,
         liquidation: dict[str, str] | None = None) -> dict[str, Any]:
    """A WsFill as userFills pushes it."""
    row: dict[str, Any] = {
        "coin": coin, "px": px, "sz": sz, "side": side, "time": NOW_MS, "startPosition": "0",
        "dir": "Open Long" if side == "B" else "Open Short", "closedPnl": "0", "hash": "0x00",
        "oid": 7, "crossed": True, "fee": "0", "tid": tid, "feeToken": "USDC"}
    if liquidation is not None:
        row["liquidation"] = liquidation
    return row


LIQ = {"liquidatedUser": USER, "markPx": "95010.0", "method": "backstop"}


def fills_frame(*fills: dict[str, Any], user: str = VAULT, snapshot: bool = False) -> str:
    data: dict[str, Any] = {"user": user, "fills": list(fills)}
    if snapshot:
        data["isSnapshot"] = True
    return orjson.dumps({"channel": "userFills", "data": data}).decode()


# -- userFills of the liquidator vaults -----------------------------------------------------


def test_default_vaults_include_liquidator_4_and_the_liquidator_vault() -> None:
    assert "0x2ed5c4484ea3ff8b57d5f2fb152a40d9f2b68308" in DEFAULT_VAULT_ADDRESSES
    assert "0x63c621a33714ec48660e32f2374895c8026a3a00" in DEFAULT_VAULT_ADDRESSES
    (plan,) = Hyperliquid(dialect.VenueSettings()).plans("wss://api.hyperliquid.xyz",
                                                         instr.InstrumentBook("hyperliquid"))
    subscriptions = [json.loads(f)["subscription"] for f in plan.subscribe_frames]
    assert subscriptions == [{"type": "allMids"}] + [
        {"type": "userFills", "user": v} for v in DEFAULT_VAULT_ADDRESSES]
    assert plan.expected_acks == 1 + len(DEFAULT_VAULT_ADDRESSES)


@pytest.mark.parametrize(("side", "expected"), [("B", "long"), ("A", "short")])
def test_a_liquidation_fill_counts_with_the_taken_over_side(side: str, expected: str) -> None:
    (liq,) = liquidations(session().parse(fills_frame(fill(side=side, liquidation=LIQ)), NOW))
    assert liq.position_side == PositionSide(expected)  # the vault buying takes over a long
    assert liq.completeness == "backstop"
    assert (liq.event_id, liq.coin, liq.price, liq.qty_base) == (
        "hyperliquid:1", "BTC", 95000.0, 1.5)
    assert abs(liq.notional_usd - 142500.0) < 0.005


def test_snapshot_skipped_and_ordinary_vault_fills_ignored() -> None:
    parser = session(live=True)
    snapshot = fills_frame(fill(liquidation=LIQ, tid=1), fill(tid=2), snapshot=True)
    (info,) = parser.parse(snapshot, NOW)
    assert isinstance(info, dialect.Info) and "snapshot" in info.detail
    frame = fills_frame(fill(tid=3), fill(side="A", tid=4, liquidation=LIQ), fill(tid=5),
                        user=LIQUIDATOR_4)
    got = liquidations(parser.parse(frame, NOW))
    assert [(liq.event_id, liq.position_side) for liq in got] == [
        ("hyperliquid:4", PositionSide.SHORT)]
    unwatched = fills_frame(fill(liquidation=LIQ), user=OTHER)
    assert parser.parse(unwatched, NOW) == [dialect.Unrecognised("fills_of_an_unwatched_user")]


def test_a_bad_liquidation_fill_among_good_ones_is_invalid() -> None:
    frame = fills_frame(fill(tid=1, liquidation=LIQ), fill(tid=2, side="X", liquidation=LIQ))
    items = session().parse(frame, NOW)
    assert [liq.event_id for liq in liquidations(items)] == ["hyperliquid:1"]
    assert len([i for i in items if isinstance(i, dialect.Invalid)]) == 1
    with pytest.raises(FrameError):
        session().parse(fills_frame(fill(px="nope", liquidation=LIQ)), NOW)


# -- the optional trades inference ----------------------------------------------------------


# -- who was liquidated ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("buyer", "seller", "expected"),
    [
        (VAULT, USER, "long"),  # the vault bought the position: a long was liquidated
        (USER, VAULT, "short"),
        (VAULT_2.upper().replace("0X", "0x"), USER, "long"),
        (USER, VAULT_3.upper().replace("0X", "0x"), "short"),
        (USER, OTHER, None),  # an ordinary trade
        (VAULT, VAULT_2, None),  # vault against vault: no user position
    ],
)
def test_side_from_the_vault_counterparty(buyer: str, seller: str, expected: str | None) -> None:
    items = session().parse(trades_frame(trade(buyer=buyer, seller=seller)), NOW)
    got = liquidations(items)
    if expected is None:
        assert items == []
    else:
        (liq,) = got
        assert liq.position_side == PositionSide(expected)
        assert liq.completeness == "inferred"
        assert abs(liq.notional_usd - 142500.0) < 0.005  # 95000 x 1.5
        assert (liq.coin, liq.price, liq.qty_base) == ("BTC", 95000.0, 1.5)


def test_configured_vault_addresses_replace_the_defaults() -> None:
    custom = "0xAbCdEf0000000000000000000000000000000001"
    parser = session(vault_addresses=[custom])
    frame = trades_frame(trade(buyer=VAULT, tid=1), trade(seller=custom.lower(), tid=2))
    (liq,) = liquidations(parser.parse(frame, NOW))
    assert (liq.event_id, liq.position_side) == ("hyperliquid:2", PositionSide.SHORT)
    with pytest.raises(ConfigError):
        Hyperliquid(dialect.VenueSettings(options={"vault_addresses": "0xabc"}))
    with pytest.raises(ConfigError):
        Hyperliquid(dialect.VenueSettings(options={"vault_addresses": []}))
    with pytest.raises(ConfigError):  # Hyperliquid allows 10 users per IP
        Hyperliquid(
            dialect.VenueSettings(options={"vault_addresses": [f"0x{i}" for i in range(11)]}))


def test_kpepe_is_scaled_to_pepe() -> None:
    frame = trades_frame(trade("kPEPE", px="0.02", sz="5000", buyer=VAULT))
    (liq,) = liquidations(session().parse(frame, NOW))
    assert (liq.instrument, liq.coin) == ("kPEPE", "PEPE")
    assert liq.qty_base == 5_000_000.0
    assert math.isclose(liq.price, 0.00002)
    assert abs(liq.notional_usd - 100.0) < 0.005
    assert math.isclose(liq.price * liq.qty_base, liq.notional_usd)


def test_event_id_is_the_trade_id_and_several_trades_count() -> None:
    frame = trades_frame(trade(buyer=VAULT, tid=10), trade(tid=11),
                         trade(seller=VAULT, tid=12, px="94000"))
    got = liquidations(session().parse(frame, NOW))
    assert [(liq.event_id, liq.exchange_ts_ms) for liq in got] == [
        ("hyperliquid:10", NOW_MS), ("hyperliquid:12", NOW_MS)]


# -- the first trades push of a coin is a snapshot ------------------------------------------


def test_offline_no_wall_clock_rule_drops_the_first_push() -> None:
    # `liqmon parse` and replay read recordings hours old: every row counts.
    old = NOW_MS - 3_600_000
    frame = trades_frame(trade(buyer=VAULT, tid=1, time=old), trade(buyer=VAULT, tid=2, time=old))
    assert len(liquidations(session().parse(frame, NOW))) == 2


def test_first_push_per_coin_drops_old_rows() -> None:
    parser = session(live=True)
    old, fresh = NOW_MS - 300_000, NOW_MS - 1_000
    first = trades_frame(trade(buyer=VAULT, tid=1, time=old), trade(buyer=VAULT, tid=2, time=fresh))
    items = parser.parse(first, NOW)
    assert [liq.event_id for liq in liquidations(items)] == ["hyperliquid:2"]
    assert any(isinstance(i, dialect.Info) and "snapshot" in i.detail for i in items)
    later = trades_frame(trade(buyer=VAULT, tid=3, time=old))
    assert len(liquidations(parser.parse(later, NOW))) == 1
    other_coin = trades_frame(trade("ETH", buyer=VAULT, tid=4, time=old))
    assert liquidations(parser.parse(other_coin, NOW)) == []  # ETH's own first push


# -- prices ---------------------------------------------------------------------------------


def all_mids(mids: dict[str, str]) -> str:
    return orjson.dumps({"channel": "allMids", "data": {"mids": mids}}).decode()


def test_mids_only_when_changed_and_only_for_acknowledged_coins() -> None:
    parser = session()
    first = marks(parser.parse(all_mids({"BTC": "95000", "ETH": "3100"}), NOW))
    assert [(m.coin, m.price, m.exchange_ts_ms) for m in first] == [
        ("BTC", 95000.0, NOW_MS), ("ETH", 3100.0, NOW_MS)]
    assert marks(parser.parse(all_mids({"BTC": "95000", "ETH": "3101"}), NOW + 1)) == [
        MarkPrice("hyperliquid", "ETH", "ETH", 3101.0, NOW_MS + 1000, NOW + 1)]
    ack = ('{"channel":"subscriptionResponse","data":{"method":"subscribe",'
           '"subscription":{"type":"trades","coin":"SOL"}}}')
    (notice,) = parser.parse(ack, NOW)
    assert isinstance(notice, dialect.Ack) and "SOL" in notice.detail
    # From now on this connection prices only the coins whose trades it carries.
    got = marks(parser.parse(all_mids({"BTC": "1", "ETH": "2", "SOL": "150.5"}), NOW + 2))
    assert [m.coin for m in got] == ["SOL"]


def test_a_bad_mid_is_invalid_and_the_others_count() -> None:
    items = session().parse(all_mids({"BTC": "x", "ETH": "3100"}), NOW)
    assert [m.coin for m in marks(items)] == ["ETH"]
    assert [i.reason for i in items if isinstance(i, dialect.Invalid)] == ["bad_value"]
    with pytest.raises(FrameError):
        session().parse(all_mids({"BTC": "x"}), NOW)


# -- notices --------------------------------------------------------------------------------


# -- malformed input ------------------------------------------------------------------------

def test_one_bad_trade_among_good_ones_is_invalid() -> None:
    frame = trades_frame(trade(buyer=VAULT, tid=1), {**trade(), "users": None},
                         trade(seller=VAULT, tid=3))
    items = session().parse(frame, NOW)
    assert [liq.event_id for liq in liquidations(items)] == ["hyperliquid:1", "hyperliquid:3"]
    assert len([i for i in items if isinstance(i, dialect.Invalid)]) == 1


# -- instruments and plans ------------------------------------------------------------------

META = {
    "universe": [
        {"name": "BTC", "szDecimals": 5, "maxLeverage": 40},
        {"name": "ETH", "szDecimals": 4, "maxLeverage": 25},
        {"name": "kPEPE", "szDecimals": 0, "maxLeverage": 10},
        {"name": "MATIC", "szDecimals": 1, "maxLeverage": 20, "isDelisted": True},
        {"szDecimals": 1},
    ],
    "marginTables": [],
}


def test_instrument_request_and_meta() -> None:
    hyperliquid = Hyperliquid(dialect.VenueSettings())
    (request,) = hyperliquid.instrument_requests("https://api.hyperliquid.xyz")
    assert (request.url, request.method) == ("https://api.hyperliquid.xyz/info", "POST")
    assert request.body is not None and json.loads(request.body) == {"type": "meta"}
    specs, next_request = hyperliquid.parse_instruments(request, orjson.dumps(META))
    assert next_request is None
    assert [(s.instrument, s.coin, s.base_multiplier) for s in specs] == [
        ("BTC", "BTC", 1.0), ("ETH", "ETH", 1.0), ("kPEPE", "PEPE", 1000.0)]
    assert all(s.kind is instr.ContractKind.LINEAR and s.quote == "USDC" for s in specs)
    for body in (b"nope", b"[]", b'{"universe":{}}'):
        with pytest.raises(InstrumentFetchError):
            hyperliquid.parse_instruments(META_REQUEST, body)


def test_plans_shard_coins_with_all_mids_on_every_connection() -> None:
    universe = [{"name": f"C{i}"} for i in range(120)]
    hyperliquid = Hyperliquid(dialect.VenueSettings(options={"coins_per_connection": 50,
                                                             "infer_from_trades": True}))
    specs, _ = hyperliquid.parse_instruments(META_REQUEST, orjson.dumps({"universe": universe}))
    fills, *plans = hyperliquid.plans("ws://127.0.0.1:9100/hyperliquid/",
                                      instr.InstrumentBook("hyperliquid", specs))
    assert fills.name == "hyperliquid"
    assert [p.name for p in plans] == ["hyperliquid-1", "hyperliquid-2", "hyperliquid-3"]
    assert [p.url for p in plans] == ["ws://127.0.0.1:9100/hyperliquid/ws"] * 3
    assert [p.expected_acks for p in plans] == [51, 51, 21]
    assert all(p.subscribe_interval_seconds == 0.25 for p in plans)
    subscriptions = [[json.loads(f) for f in p.subscribe_frames] for p in plans]
    for shard in subscriptions:
        assert all(s["method"] == "subscribe" for s in shard)
        assert shard[0]["subscription"] == {"type": "allMids"}
    coins = [s["subscription"]["coin"] for shard in subscriptions for s in shard[1:]]
    assert coins == [u["name"] for u in universe]


def test_plans_with_configured_symbols() -> None:
    hyperliquid = Hyperliquid(dialect.VenueSettings(symbols=("BTC", "kPEPE"), options={
        "subscribe_interval_seconds": 1, "infer_from_trades": True}))
    _fills, plan = hyperliquid.plans(
        "wss://api.hyperliquid.xyz", instr.InstrumentBook("hyperliquid"))
    assert plan.url == "wss://api.hyperliquid.xyz/ws"
    assert plan.subscribe_interval_seconds == 1.0
    assert [json.loads(f)["subscription"] for f in plan.subscribe_frames] == [
        {"type": "allMids"}, {"type": "trades", "coin": "BTC"}, {"type": "trades", "coin": "kPEPE"}]
    with pytest.raises(ConfigError):
        Hyperliquid(dialect.VenueSettings(options={"infer_from_trades": "yes"}))


def test_dialect_contract() -> None:
    hyperliquid = make_dialect("hyperliquid")
    assert isinstance(hyperliquid, Hyperliquid)
    assert hyperliquid.venue == "hyperliquid"
    assert hyperliquid.completeness == "backstop"
    assert hyperliquid.needs_instruments is False
    assert hyperliquid.ping_interval_seconds is not None and hyperliquid.ping_interval_seconds < 60
    assert json.loads(hyperliquid.ping_frame(0.0) or "") == {"method": "ping"}
    assert hyperliquid.max_lifetime_seconds is None
    assert hyperliquid.decode_binary(b'{"channel":"pong"}') == '{"channel":"pong"}'
    with pytest.raises(ConfigError):
        Hyperliquid(dialect.VenueSettings(options={"coins_per_connection": 0}))
