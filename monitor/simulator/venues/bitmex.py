"""BitMEX's realtime websocket and ``instrument/active``, as the simulator serves them.

* Websocket path ``/realtime``; the server greets with ``{"info":"Welcome to the BitMEX
  Realtime API.",...}``. ``{"op":"subscribe","args":[...]}`` is acked once per arg with
  ``{"success":true,"subscribe":<arg>,"request":{...}}``; an unknown table or symbol (or the
  ``reject_subscription`` fault) gets ``{"status":400,"error":"...","meta":{},"request":{...}}``.
  Args are ``liquidation``, ``instrument``, or either with ``:<symbol>``.
* ``liquidation``: a ``partial`` (empty: no order rests when the client arrives) right after
  the subscription, then for every liquidation an ``insert`` row (``orderID``, ``side`` of
  the ORDER: ``Sell`` closes a long, ``price``, ``leavesQty`` in contracts), and a
  ``delete`` of the same order on the next flush: only the insert carries the liquidation.
* ``instrument``: a ``partial`` of every subscribed instrument (``markPrice``,
  ``rootSymbol``, ``quoteCurrency``, ...) right after the subscription, then ``update``
  rows carrying only ``symbol``, ``markPrice`` and ``timestamp`` on the price cadence.
* The text ``ping`` is answered with the text ``pong``.
* REST ``/api/v1/instrument/active``: a JSON array of instruments (futures and perpetuals
  with ``isInverse``, ``multiplier``, ``underlyingToPositionMultiplier``, ...; plus an index
  and a spot pair, which clients must skip).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, venue_price, venue_quantity

VENUE = "bitmex"
TABLES = ("liquidation", "instrument")
INSTRUMENT_MS = 1000
_ORDER_NAMESPACE = uuid.UUID("0c2f9a4e-7b1d-4e5f-8a6c-9d3b2e1f0a7c")
_LIQUIDATION_TYPES = {"orderID": "guid", "symbol": "symbol", "side": "symbol",
                      "price": "float", "leavesQty": "long"}  # fmt: skip


def iso(ts_ms: int) -> str:
    """BitMEX's timestamp format: ``2026-02-01T00:00:00.000Z``."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts_ms % 1000:03d}Z"


def _root(item: Listing) -> str:
    return "XBT" if item.coin == "BTC" else item.coin


class BitmexSim(common.VenueSimBase):
    venue = VENUE
    price_interval_ms = INSTRUMENT_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self._pending: list[venue_sim.Liq] = []
        self._to_delete: list[venue_sim.Liq] = []

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        if request.path != "/api/v1/instrument/active":
            return None
        rows = [self.instrument_row(item, 0) for item in self.listings.values()]
        rows.append({"symbol": ".BXBT", "rootSymbol": "XBT", "typ": "MRCXXX", "state": "Unlisted",
                     "quoteCurrency": "USD", "markPrice": None})  # fmt: skip
        rows.append({"symbol": "XBT_USDT", "rootSymbol": "XBT", "typ": "IFXXXP",
                     "state": "Open", "quoteCurrency": "USDT", "settlCurrency": "USDt",
                     "isInverse": False, "isQuanto": False, "multiplier": 1})  # fmt: skip
        return common.json_reply(rows)

    def instrument_row(self, item: Listing, ts_ms: int) -> dict[str, Any]:
        """An instrument as ``instrument/active`` and the table's partial show it."""
        spec = item.spec
        inverse = item.inverse
        return {
            "symbol": item.symbol, "rootSymbol": _root(item), "state": "Open",
            "typ": "FFWCSX" if item.contract_type == "perpetual" else "FFCCSX",
            "underlying": _root(item), "quoteCurrency": spec.quote,
            "settlCurrency": "XBt" if inverse else "USDt",
            "isQuanto": False, "isInverse": inverse,
            "multiplier": -100_000_000 if inverse else 1,
            "underlyingToPositionMultiplier": None if inverse else 1.0 / spec.contract_size,
            "underlyingToSettleMultiplier": -100_000_000 if inverse else None,
            "quoteToSettleMultiplier": None if inverse else 1_000_000,
            "tickSize": 10.0**-item.price_decimals, "lotSize": 1,
            "markPrice": venue_price(item, self.prices.get(item.coin)),
            "timestamp": iso(ts_ms),
        }  # fmt: skip

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> BitmexSession | None:
        return BitmexSession(self, reject) if path == "/realtime" else None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._pending.append(liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        out = [self._table("delete", liq, ()) for liq in self._to_delete]
        out += [self._table("insert", liq, (liq,)) for liq in self._pending]
        self._to_delete, self._pending = self._pending, []
        if final:
            out += [self._table("delete", liq, ()) for liq in self._to_delete]
            self._to_delete = []
        if self.prices.due(now.exchange_ms):
            for item in self.listings.values():
                topic = f"instrument:{item.symbol}"
                if topic in self.ctx.subscribed or "instrument" in self.ctx.subscribed:
                    out.append(venue_sim.Publication(("instrument", topic),
                                                     self.mark_update(item, now.exchange_ms)))
        return out

    def _table(
        self, action: str, liq: venue_sim.Liq, carried: tuple[venue_sim.Liq, ...]
    ) -> venue_sim.Publication:
        item = self.listings[liq.event.instrument]
        row: dict[str, Any] = {"orderID": self.order_id(liq), "symbol": item.symbol}
        if action == "insert":
            event = liq.event
            row["side"] = "Sell" if event.position_side is PositionSide.LONG else "Buy"
            row["price"] = venue_price(item, event.price)
            row["leavesQty"] = int(venue_quantity(item, event.qty_base, event.notional_usd))
        body = {"table": "liquidation", "action": action, "data": [row]}
        return venue_sim.Publication(("liquidation", f"liquidation:{item.symbol}"),
                                     orjson.dumps(body).decode(), carried)

    @staticmethod
    def order_id(liq: venue_sim.Liq) -> str:
        return str(uuid.uuid5(_ORDER_NAMESPACE, str(liq.seq)))

    def mark_update(self, item: Listing, ts_ms: int) -> str:
        row = {"symbol": item.symbol, "markPrice": venue_price(item, self.prices.get(item.coin)),
               "timestamp": iso(ts_ms)}  # fmt: skip
        return orjson.dumps({"table": "instrument", "action": "update", "data": [row]}).decode()


class BitmexSession(common.SessionBase[BitmexSim]):
    def on_open(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        welcome = {"info": "Welcome to the BitMEX Realtime API.", "version": "2.0.0",
                   "timestamp": iso(now.exchange_ms), "docs": "https://www.bitmex.com/app/wsAPI",
                   "heartbeatEnabled": False, "limit": {"remaining": 719}}  # fmt: skip
        return [venue_sim.Frame(orjson.dumps(welcome).decode())]

    @staticmethod
    def _error(status: int, message: str, request: object) -> venue_sim.Frame:
        body = {"status": status, "error": message, "meta": {}, "request": request}
        return venue_sim.Frame(orjson.dumps(body).decode())

    def _problem(self, arg: object) -> str | None:
        if not isinstance(arg, str):
            return "Invalid subscription argument."
        table, _, symbol = arg.partition(":")
        if table not in TABLES:
            return f"Unknown table: {table}"
        if symbol and symbol not in self.sim.listings:
            return f"Unknown or expired symbol: {symbol}"
        return None

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        if text == "ping":
            return [venue_sim.Frame("pong")]
        request = common.json_request(text)
        if request is None or request.get("op") not in ("subscribe", "unsubscribe"):
            return [self._error(400, "Unrecognized request. See the docs or send 'help' for more "
                                "details. Please see the documentation at "
                                "https://www.bitmex.com/app/wsAPI.", {})]  # fmt: skip
        op = request["op"]
        args = request.get("args")
        args = [args] if isinstance(args, str) else args
        if not isinstance(args, list) or not args:
            return [self._error(400, "Invalid subscription arguments.", request)]
        if self.reject:
            return [self._error(400, f"Unknown table: {args[0]}", request)]
        for arg in args:
            problem = self._problem(arg)
            if problem:
                return [self._error(400, problem, request)]
        if op == "unsubscribe":
            self.release(args)
            return [venue_sim.Frame(orjson.dumps(
                {"success": True, "unsubscribe": a, "request": request}).decode()) for a in args]
        out: list[venue_sim.Out] = []
        for arg in args:
            out.append(venue_sim.Frame(orjson.dumps({"success": True, "subscribe": arg,
                                                     "request": request}).decode()))  # fmt: skip
            self.hold([arg])
            out.append(self._partial(arg, now))
        return out

    def _partial(self, arg: str, now: venue_sim.SimNow) -> venue_sim.Frame:
        table, _, symbol = arg.partition(":")
        body: dict[str, Any] = {"table": table, "action": "partial"}
        if table == "liquidation":
            # No liquidation order rests when the client arrives: a real partial lists the
            # ones still in the book, which were inserted (and counted) before.
            body |= {"keys": ["orderID"], "types": _LIQUIDATION_TYPES, "filter": {}, "data": []}
            return venue_sim.Frame(orjson.dumps(body).decode(), is_data=True)
        items = [self.sim.listings[symbol]] if symbol else list(self.sim.listings.values())
        body |= {"keys": ["symbol"], "filter": {"symbol": symbol} if symbol else {},
                 "data": [self.sim.instrument_row(i, now.exchange_ms) for i in items]}
        return venue_sim.Frame(orjson.dumps(body).decode(), is_data=True)


def make(ctx: venue_sim.SimContext) -> BitmexSim:
    return BitmexSim(ctx)
