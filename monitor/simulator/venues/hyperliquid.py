"""Hyperliquid's public websocket and info endpoint, as the simulator serves them.

Hyperliquid publishes no liquidation feed. Each scenario liquidation is a backstop: a
liquidator vault takes the position over. It goes out as the vault's fill on
``userFills`` of that vault, carrying the ``liquidation`` object (``liquidatedUser``,
``markPx``, ``method``), the vault buying a liquidated long and selling a liquidated short;
the vault's unwind fills (no ``liquidation`` object) are mixed in and never count. The same
takeover is also a public trade with the vault as counterparty (``users`` = [buyer,
seller]), for the optional trades inference; ordinary trades are noise there.

* ``{"type":"userFills","user":addr}`` is acked, then answered with a snapshot of the
  vault's recent fills flagged ``"isSnapshot": true`` (it counts as sent nowhere: a client
  skips it), then the vault's new fills as ``{"channel":"userFills","data":{"user",
  "fills"}}``.

* Websocket path ``/ws``. ``{"method":"subscribe","subscription":{"type":"trades","coin":C}}``
  and ``{"type":"allMids"}`` are acked with ``{"channel":"subscriptionResponse","data":{...}}``;
  a subscription the server cannot read gets ``{"channel":"error","data":"Error parsing JSON
  into valid websocket request: ..."}`` and a repeated one ``"Already subscribed: ..."``.
* A ``trades`` subscription is followed by the coin's recent trades (only liquidations some
  connection already received), then by new trades; ``allMids`` by the mids, then on the
  price cadence.
* ``{"method":"ping"}`` is answered with ``{"channel":"pong"}``.
* REST ``POST /info`` with ``{"type":"meta"}`` (also ``allMids`` and ``metaAndAssetCtxs``).
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, fmt, venue_price, venue_quantity

# The liquidator vaults of reference/exchanges.md §5.2a/§5.3 (the dialect's defaults).
LIQUIDATOR_VAULTS = (
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",
    "0x5e177e5e39c0f4e421f5865a6d8beed8d921cb70",
    "0x2ed5c4484ea3ff8b57d5f2fb152a40d9f2b68308",
    "0x63c621a33714ec48660e32f2374895c8026a3a00",
)
MIDS_MS = 500
RECENT_TRADES = 10


def _address(n: int) -> str:
    """A stable, made-up user address."""
    return "0x" + hashlib.blake2b(n.to_bytes(8, "big"), digest_size=20).hexdigest()


class HyperliquidSim(common.VenueSimBase):
    venue = "hyperliquid"
    price_interval_ms = MIDS_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self._pending: dict[str, list[venue_sim.Liq]] = {}
        # coin -> recent trades, with the liquidation each one carries (None for noise)
        self.recent: dict[str, deque[tuple[dict[str, Any], venue_sim.Liq | None]]] = {}
        # vault -> its recent fills, for the isSnapshot push
        self.recent_fills: dict[str, deque[dict[str, Any]]] = {}
        self._tid = 900_000_000_000_000

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        if request.path != "/info":
            return None
        if request.method != "POST":
            return venue_sim.RestReply(405, b"Method Not Allowed", "text/plain")
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            body = None
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "meta":
            return common.json_reply(self._meta())
        if kind == "allMids":
            return common.json_reply(self._mids())
        if kind == "metaAndAssetCtxs":
            ctxs = [{"markPx": mid, "midPx": mid, "oraclePx": mid, "funding": "0.0000125"}
                    for mid in self._mids().values()]  # fmt: skip
            return common.json_reply([self._meta(), ctxs])
        return venue_sim.RestReply(422, b"Failed to deserialize the JSON body into the target type",
                                   "text/plain")  # fmt: skip

    def _meta(self) -> dict[str, Any]:
        universe = [
            {"szDecimals": item.qty_decimals, "name": item.symbol, "maxLeverage": 40,
             "marginTableId": 50 + i}
            for i, item in enumerate(self.listings.values())
        ]  # fmt: skip
        tables = [
            [50 + i, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 40}]}]
            for i in range(len(universe))
        ]
        return {"universe": universe, "marginTables": tables, "collateralToken": 0}

    def _mids(self) -> dict[str, str]:
        return {
            name: fmt(venue_price(item, self.prices.get(item.coin)), item.price_decimals)
            for name, item in self.listings.items()
        }

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> HyperliquidSession | None:
        return HyperliquidSession(self, reject) if path == "/ws" else None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._pending.setdefault(liq.event.instrument, []).append(liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        trades: dict[str, list[tuple[dict[str, Any], venue_sim.Liq | None]]] = {}
        fills: dict[str, list[tuple[dict[str, Any], venue_sim.Liq | None]]] = {}
        for name, batch in self._pending.items():
            trades[name] = [(self._trade(self.listing(name), liq), liq) for liq in batch]
            for row, liq in trades[name]:
                assert liq is not None
                vault = _vault(liq)
                fills.setdefault(vault, []).append((self._fill(row, vault, liq), liq))
        self._pending = {}
        out = []
        if self.prices.due(now.exchange_ms):
            for vault in LIQUIDATOR_VAULTS:
                if f"userFills:{vault}" in self.ctx.subscribed and self.listings:
                    item = next(iter(self.listings.values()))
                    unwind = self._noise(item, now.exchange_ms, vault)
                    fills.setdefault(vault, []).append((self._fill(unwind, vault, None), None))
            for name, item in self.listings.items():
                if f"trades:{name}" in self.ctx.subscribed:
                    trades.setdefault(name, []).append((self._noise(item, now.exchange_ms), None))
            if "allMids" in self.ctx.subscribed:
                out.append(venue_sim.Publication(("allMids",), self.mids_push()))
        for vault, vault_fills in fills.items():
            self.recent_fills.setdefault(vault, deque(maxlen=RECENT_TRADES)).extend(
                row for row, _ in vault_fills)
            liqs = tuple(liq for _row, liq in vault_fills if liq is not None)
            payload = orjson.dumps({"channel": "userFills", "data": {
                "user": vault, "fills": [row for row, _ in vault_fills]}})
            out.append(venue_sim.Publication((f"userFills:{vault}",), payload.decode(), liqs))
        for name, rows in trades.items():
            self.recent.setdefault(name, deque(maxlen=RECENT_TRADES)).extend(rows)
            liqs = tuple(liq for _row, liq in rows if liq is not None)
            payload = orjson.dumps({"channel": "trades", "data": [row for row, _ in rows]})
            out.append(venue_sim.Publication((f"trades:{name}",), payload.decode(), liqs))
        return out

    def mids_push(self) -> str:
        return orjson.dumps({"channel": "allMids", "data": {"mids": self._mids()}}).decode()

    def _next_tid(self) -> int:
        self._tid += 1
        return self._tid

    def _fill(self, trade: dict[str, Any], vault: str, liq: venue_sim.Liq | None) -> dict[str, Any]:
        """The vault's side of ``trade`` as a WsFill; a takeover carries ``liquidation``."""
        buys = trade["users"][0] == vault
        row = {
            "coin": trade["coin"], "px": trade["px"], "sz": trade["sz"],
            "side": "B" if buys else "A", "time": trade["time"], "startPosition": "0.0",
            "dir": "Open Long" if buys else "Open Short", "closedPnl": "0.0",
            "hash": trade["hash"], "oid": trade["tid"] + 1, "crossed": liq is None,
            "fee": "0.0", "tid": trade["tid"], "feeToken": "USDC",
        }  # fmt: skip
        if liq is not None:
            liquidated = trade["users"][1] if buys else trade["users"][0]
            row["liquidation"] = {"liquidatedUser": liquidated, "markPx": trade["px"],
                                  "method": "backstop"}
        return row

    def _trade(self, item: Listing, liq: venue_sim.Liq) -> dict[str, Any]:
        event = liq.event
        long = event.position_side is PositionSide.LONG
        vault = _vault(liq)
        user = _address(liq.seq + 1)
        size = venue_quantity(item, event.qty_base, event.notional_usd)
        return {
            "coin": item.symbol, "side": "A" if long else "B",
            "px": fmt(venue_price(item, event.price), item.price_decimals),
            "sz": fmt(size, item.qty_decimals), "hash": f"0x{liq.seq:064x}", "time": liq.ts_ms,
            "tid": self._next_tid(), "users": [vault, user] if long else [user, vault],
        }  # fmt: skip

    def _noise(self, item: Listing, ts_ms: int, vault: str | None = None) -> dict[str, Any]:
        tid = self._next_tid()
        price = venue_price(item, self.prices.get(item.coin))
        size = max(10.0**-item.qty_decimals, round(500.0 / price, item.qty_decimals))
        users = [_address(tid * 7), _address(tid * 7 + 3)]
        if vault is not None:  # the vault unwinding: it trades like anyone else
            users[tid % 2] = vault
        return {
            "coin": item.symbol, "side": "B" if tid % 2 else "A",
            "px": fmt(price, item.price_decimals), "sz": fmt(size, item.qty_decimals),
            "hash": f"0x{tid:064x}", "time": ts_ms, "tid": tid, "users": users,
        }  # fmt: skip


class HyperliquidSession(common.SessionBase[HyperliquidSim]):
    @staticmethod
    def _error(message: str) -> venue_sim.Frame:
        return venue_sim.Frame(orjson.dumps({"channel": "error", "data": message}).decode())

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        parse_error = f"Error parsing JSON into valid websocket request: {text[:200]}"
        request = common.json_request(text)
        if request is None:
            return [self._error(parse_error)]
        method = request.get("method")
        if method == "ping":
            return [venue_sim.Frame('{"channel":"pong"}')]
        subscription = request.get("subscription")
        if method not in ("subscribe", "unsubscribe") or not isinstance(subscription, dict):
            return [self._error(parse_error)]
        kind = subscription.get("type")
        user = subscription.get("user")
        if kind == "allMids":
            topic = "allMids"
        elif kind == "userFills" and isinstance(user, str) and user.startswith("0x"):
            topic = f"userFills:{user.lower()}"
        elif kind == "trades" and isinstance(subscription.get("coin"), str):
            topic = f"trades:{subscription['coin']}"
        else:
            return [self._error(parse_error)]
        if self.reject:
            return [self._error(parse_error)]
        ack = venue_sim.Frame(orjson.dumps({
            "channel": "subscriptionResponse",
            "data": {"method": method, "subscription": subscription}}).decode())
        if method == "unsubscribe":
            self.release([topic])
            return [ack]
        if topic in self.held:
            return [self._error(f"Already subscribed: {orjson.dumps(subscription).decode()}")]
        self.hold([topic])
        if topic == "allMids":
            return [ack, venue_sim.Frame(self.sim.mids_push(), is_data=True)]
        if kind == "userFills":
            vault = topic.partition(":")[2]
            history = {"isSnapshot": True, "user": vault,
                       "fills": list(self.sim.recent_fills.get(vault, ()))}
            push = orjson.dumps({"channel": "userFills", "data": history}).decode()
            return [ack, venue_sim.Frame(push, is_data=True)]
        recent = [
            (row, liq)
            for row, liq in self.sim.recent.get(subscription["coin"], ())
            if liq is None or self.sim.ctx.was_sent(liq.seq)
        ]
        if not recent:
            return [ack]
        snapshot = orjson.dumps({"channel": "trades", "data": [row for row, _ in recent]})
        liqs = tuple(liq for _, liq in recent if liq is not None)
        return [ack, venue_sim.Frame(snapshot.decode(), is_data=True, liquidations=liqs)]


def _vault(liq: venue_sim.Liq) -> str:
    """Which liquidator vault takes a scenario liquidation over (most go to the first)."""
    return LIQUIDATOR_VAULTS[(0, 0, 0, 1, 2, 3, 4)[liq.seq % 7]]


def make(ctx: venue_sim.SimContext) -> HyperliquidSim:
    return HyperliquidSim(ctx)
