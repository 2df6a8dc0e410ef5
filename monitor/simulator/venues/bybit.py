"""Bybit v5 public streams (linear and inverse), as the simulator serves them.

* Websocket paths ``/v5/public/linear`` and ``/v5/public/inverse``; a connection may only
  subscribe to symbols of its own category (others get ``Invalid symbol :[topic]``), and the
  total length of its args may not exceed 21,000 characters.
* ``allLiquidation.{symbol}``: every liquidation, batched per symbol in 500 ms frames whose
  ``data`` is an array; ``S`` is the position side (``Buy`` = a long was liquidated); ``v`` is
  base units on linear and USD contracts on inverse; ``p`` the bankruptcy price.
* ``tickers.{symbol}``: a ``snapshot`` right after the subscription, then ``delta`` frames
  carrying only the changed fields (mark, index and last price).
* ``{"op":"ping"}`` is answered with ``{"success":true,"ret_msg":"pong",...,"op":"ping"}``.
* REST ``/v5/market/instruments-info?category=linear|inverse``, paged with
  ``nextPageCursor``. Pages hold at most ``PAGE_SIZE`` instruments (the real default is 500),
  so that a client's paging is exercised on a short list.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, fmt, venue_price, venue_quantity

PAGE_SIZE = 5
BATCH_MS = 500
TICKER_MS = 100
ARGS_LIMIT = 21_000
TOPIC_KINDS = ("allLiquidation", "tickers", "liquidation", "publicTrade", "orderbook")
_CONTRACT_TYPES = {
    ("linear", "perpetual"): "LinearPerpetual",
    ("linear", "future"): "LinearFutures",
    ("inverse", "perpetual"): "InversePerpetual",
    ("inverse", "future"): "InverseFutures",
}


class BybitSim(common.VenueSimBase):
    venue = "bybit"
    price_interval_ms = TICKER_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self._batches = common.WindowedBatches(BATCH_MS, self._batch)  # per symbol
        self._cs = 1_000_000

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        if request.path != "/v5/market/instruments-info":
            return None
        category = request.query.get("category", "")
        items = [item for item in self.rest_listings() if item.spec.category == category]
        if not items:
            return _rest_error(10001, "params error: Category is invalid")
        symbol = request.query.get("symbol")
        if symbol:
            items = [item for item in items if item.symbol == symbol]
        start = 0
        if request.query.get("cursor"):
            last = _cursor_last(request.query["cursor"])
            names = [item.symbol for item in items]
            if last not in names:
                return _rest_error(10001, "params error: cursor is invalid")
            start = names.index(last) + 1
        try:
            limit = int(request.query.get("limit", "500"))
        except ValueError:
            return _rest_error(10001, "params error: limit is invalid")
        page = items[start : start + max(1, min(limit, PAGE_SIZE))]
        more = start + len(page) < len(items)
        cursor = (
            urllib.parse.quote(f"first={page[0].symbol}&last={page[-1].symbol}", safe="")
            if more and page
            else ""
        )
        return common.json_reply({
            "retCode": 0, "retMsg": "OK",
            "result": {"category": category, "list": [_instrument(i) for i in page],
                       "nextPageCursor": cursor},
            "retExtInfo": {}, "time": 1769904000000,
        })  # fmt: skip

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> BybitSession | None:
        for category in ("linear", "inverse"):
            if path == f"/v5/public/{category}":
                return BybitSession(self, category, reject)
        return None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._batches.add(liq.event.instrument, liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        return self._batches.due(now.exchange_ms, final) + self.price_publications(
            now.exchange_ms, lambda item: f"tickers.{item.symbol}",
            lambda item, ts_ms: self.ticker(item, ts_ms, False))

    def _batch(self, symbol: str, batch: list[venue_sim.Liq]) -> venue_sim.Publication:
        item = self.listing(symbol)
        rows = []
        for liq in batch:
            event = liq.event
            qty = venue_quantity(item, event.qty_base, event.notional_usd)
            rows.append({
                "T": liq.ts_ms, "s": item.symbol,
                "S": "Buy" if event.position_side is PositionSide.LONG else "Sell",
                "v": fmt(qty, item.qty_decimals),
                "p": fmt(venue_price(item, event.price), item.price_decimals),
            })  # fmt: skip
        topic = f"allLiquidation.{item.symbol}"
        pushed = (batch[-1].ts_ms // BATCH_MS + 1) * BATCH_MS
        payload = {"topic": topic, "type": "snapshot", "ts": pushed, "data": rows}
        return venue_sim.Publication((topic,), orjson.dumps(payload).decode(), tuple(batch))

    def ticker(self, item: Listing, ts_ms: int, snapshot: bool) -> str:
        mark = fmt(venue_price(item, self.prices.get(item.coin)), item.price_decimals)
        self._cs += 1
        data: dict[str, Any] = {"symbol": item.symbol}
        if snapshot:
            data |= {
                "tickDirection": "ZeroPlusTick", "price24hPcnt": "-0.012", "lastPrice": mark,
                "prevPrice24h": mark, "highPrice24h": mark, "lowPrice24h": mark,
                "prevPrice1h": mark, "markPrice": mark, "indexPrice": mark,
                "openInterest": "59891.732", "openInterestValue": "3899996265.01",
                "turnover24h": "1142118412.9021", "volume24h": "17573.9120",
                "nextFundingTime": str((ts_ms // 28_800_000 + 1) * 28_800_000),
                "fundingRate": "0.0001", "bid1Price": mark, "bid1Size": "1", "ask1Price": mark,
                "ask1Size": "1",
            }  # fmt: skip
        else:
            data |= {"markPrice": mark, "indexPrice": mark, "lastPrice": mark}
        kind = "snapshot" if snapshot else "delta"
        topic = f"tickers.{item.symbol}"
        return orjson.dumps(
            {"topic": topic, "type": kind, "data": data, "cs": self._cs, "ts": ts_ms}
        ).decode()


def _instrument(item: Listing) -> dict[str, Any]:
    spec = item.spec
    tick = fmt(10.0**-item.price_decimals, item.price_decimals)
    step = fmt(10.0**-item.qty_decimals, item.qty_decimals)
    base = (
        spec.instrument[: -len(spec.quote)] if spec.instrument.endswith(spec.quote) else spec.coin
    )
    if spec.category == "inverse":
        base = spec.coin
    return {
        "symbol": spec.instrument,
        "contractType": _CONTRACT_TYPES[(spec.category, item.contract_type)],
        "status": "Trading", "baseCoin": base, "quoteCoin": spec.quote,
        "launchTime": "1585526400000",
        "deliveryTime": "1774598400000" if item.contract_type == "future" else "0",
        "deliveryFeeRate": "", "priceScale": str(item.price_decimals),
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": tick, "maxPrice": "1999999.80", "tickSize": tick},
        "lotSizeFilter": {"maxOrderQty": "1000000", "minOrderQty": step, "qtyStep": step,
                          "postOnlyMaxOrderQty": "1000000", "maxMktOrderQty": "100000",
                          "minNotionalValue": "5"},
        "unifiedMarginTrade": True, "fundingInterval": 480,
        "settleCoin": spec.coin if spec.category == "inverse" else spec.quote,
        "copyTrading": "both", "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375",
        "isPreListing": False, "preListingInfo": None, "displayName": "",
    }  # fmt: skip


def _cursor_last(cursor: str) -> str:
    text = cursor
    for _ in range(3):  # clients pass the cursor through once or twice URL-encoded
        text = urllib.parse.unquote(text)
    return urllib.parse.parse_qs(text).get("last", [""])[0]


def _rest_error(code: int, message: str) -> venue_sim.RestReply:
    return common.json_reply({"retCode": code, "retMsg": message, "result": {}, "retExtInfo": {},
                       "time": 1769904000000})  # fmt: skip


class BybitSession(common.SessionBase[BybitSim]):
    def __init__(self, sim: BybitSim, category: str, reject: bool) -> None:
        super().__init__(sim, reject)
        self.category = category
        self.conn_id = common.conn_id()

    def _reply(self, op: str, success: bool, message: str, req_id: object) -> venue_sim.Frame:
        body: dict[str, Any] = {"success": success, "ret_msg": message, "conn_id": self.conn_id}
        if req_id is not None:
            body["req_id"] = req_id
        body["op"] = op
        return venue_sim.Frame(orjson.dumps(body).decode())

    def _invalid(self, topic: str) -> str | None:
        # Bybit refuses an unknown, delisted, wrong-endpoint or already-held topic with the
        # same words, naming the first bad topic only (reference/exchanges.md §4.8a).
        kind, _, symbol = topic.rpartition(".")
        item = self.sim.listings.get(symbol)
        if (kind.split(".")[0] not in TOPIC_KINDS or item is None
                or item.spec.category != self.category or topic in self.held):
            return f"error:handler not found,topic:{topic}"
        return None

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        request = common.json_request(text)
        if request is None:
            return [self._reply("", False, "error:request not json", None)]
        op = request.get("op")
        req_id = request.get("req_id")
        if op == "ping":
            return [self._reply("ping", True, "pong", req_id)]
        if op not in ("subscribe", "unsubscribe"):
            return [self._reply(str(op or ""), False, f"error:unsupported op: {op}", req_id)]
        args = request.get("args")
        if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
            return [self._reply(op, False, "error:args is empty or not a list", req_id)]
        if op == "unsubscribe":
            self.release(args)
            return [self._reply(op, True, "", req_id)]
        if self.reject:
            return [self._reply(op, False, f"error:handler not found,topic:{args[0]}", req_id)]
        for topic in args:
            problem = self._invalid(topic)
            if problem:
                return [self._reply(op, False, problem, req_id)]
        if sum(len(t) for t in self.held | set(args)) > ARGS_LIMIT:
            return [self._reply(op, False, f"error:args length exceeds {ARGS_LIMIT}", req_id)]
        self.hold(args)
        out: list[venue_sim.Out] = [self._reply(op, True, "", req_id)]
        for topic in args:
            if topic.startswith("tickers."):
                item = self.sim.listing(topic.removeprefix("tickers."))
                out.append(venue_sim.Frame(self.sim.ticker(item, now.exchange_ms, True),
                                           is_data=True))
        return out


def make(ctx: venue_sim.SimContext) -> BybitSim:
    return BybitSim(ctx)
