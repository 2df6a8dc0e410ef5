"""Binance USD-M (fstream) and COIN-M (dstream) futures, as the simulator serves them.

Paths under the venue prefix, as on the real hosts:

* USD-M: ``/market/ws``, ``/market/ws/<stream>``, ``/market/stream?streams=a/b`` (the routed
  URLs). The legacy ``/ws...`` and ``/stream...`` paths accept the connection and the
  SUBSCRIBE (with its ack) and then send nothing, which is what the retired route does.
* COIN-M: ``/ws``, ``/ws/<stream>``, ``/stream?streams=a/b``.
* REST: ``/fapi/v1/exchangeInfo`` and ``/dapi/v1/exchangeInfo`` (with ``contractSize``).

Streams: ``!forceOrder@arr`` and ``<symbol>@forceOrder`` (one order per frame; only the
latest order per symbol in each 1000 ms window is pushed, the others are dropped and never
count as sent), ``!markPrice@arr@1s`` (an array of every symbol), ``<symbol>@markPrice@1s``
and, on COIN-M, ``<pair>@markPrice@1s``. A SUBSCRIBE is acked with ``{"result":null,"id":N}``;
a malformed stream name gets ``{"error":{"code":2,"msg":"Invalid request: invalid stream"}}``
and the connection is closed, as observed on the venue.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, fmt, venue_price, venue_quantity

_STREAM = re.compile(r"^!?[A-Za-z0-9_]+@[A-Za-z0-9_@]+$")
_FUNDING_MS = 8 * 3600 * 1000
THROTTLE_MS = 1000


def _pair(item: Listing) -> str:
    return item.symbol.split("_", 1)[0]


class BinanceSim(common.VenueSimBase):
    """Both Binance futures venues; ``coinm`` selects dstream's paths, symbols and units."""

    price_interval_ms = THROTTLE_MS

    def __init__(self, ctx: venue_sim.SimContext, *, coinm: bool) -> None:
        self.venue = ctx.venue
        super().__init__(ctx)
        self.coinm = coinm
        self._pending: dict[str, venue_sim.Liq] = {}  # symbol -> latest liquidation of its window
        self._ready: list[venue_sim.Publication] = []
        self._info = orjson.dumps(self._exchange_info())

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        api = "/dapi/v1" if self.coinm else "/fapi/v1"
        if request.path == f"{api}/exchangeInfo":
            return venue_sim.RestReply(200, self._info)
        if request.path == f"{api}/ping":
            return common.json_reply({})
        return None

    def _exchange_info(self) -> dict[str, Any]:
        symbols = [self._symbol_info(item) for item in self.listings.values()]
        return {"timezone": "UTC", "serverTime": 1769904000000, "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": 2400},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200},
        ], "exchangeFilters": [], "symbols": symbols}  # fmt: skip

    def _symbol_info(self, item: Listing) -> dict[str, Any]:
        spec = item.spec
        base = spec.instrument[: -len(spec.quote)] if not self.coinm else spec.coin
        info: dict[str, Any] = {
            "symbol": spec.instrument,
            "pair": _pair(item) if self.coinm else spec.instrument,
            "contractType": "PERPETUAL" if item.contract_type == "perpetual" else "CURRENT_QUARTER",
            "deliveryDate": 4133404800000 if item.contract_type == "perpetual" else 1774598400000,
            "onboardDate": 1569398400000,
        }
        if self.coinm:
            info |= {"contractStatus": "TRADING", "contractSize": int(spec.contract_size),
                     "marginAsset": spec.coin}  # fmt: skip
        else:
            info |= {"status": "TRADING"}
        info |= {
            "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
            "baseAsset": base, "quoteAsset": spec.quote,
            "pricePrecision": item.price_decimals, "quantityPrecision": item.qty_decimals,
            "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
            "underlyingSubType": [], "triggerProtect": "0.0500", "liquidationFee": "0.012500",
            "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": fmt(10.0**-item.price_decimals,
                 item.price_decimals), "maxPrice": "4529764", "tickSize":
                 fmt(10.0**-item.price_decimals, item.price_decimals)},
                {"filterType": "LOT_SIZE", "stepSize": fmt(10.0**-item.qty_decimals,
                 item.qty_decimals), "maxQty": "1000000", "minQty": fmt(10.0**-item.qty_decimals,
                 item.qty_decimals)},
            ],
            "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                           "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
            "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        }  # fmt: skip
        if not self.coinm:
            info["marginAsset"] = spec.quote
        else:
            info["equalQtyPrecision"] = 4
        return info

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> BinanceSession | None:
        prefix = "" if self.coinm else "/market"
        routed = {f"{prefix}/ws": False, f"{prefix}/stream": True}
        legacy = {} if self.coinm else {"/ws": False, "/stream": True}
        for table, retired in ((routed, False), (legacy, True)):
            for base, combined in table.items():
                if path == base or (not combined and path.startswith(base + "/")):
                    streams = path[len(base) + 1 :].split("/") if path != base else []
                    if combined:
                        streams = _query_streams(query)
                    return BinanceSession(self, combined=combined, retired=retired,
                                          url_streams=streams, reject=reject)  # fmt: skip
        return None

    # --- scenario input and publications ------------------------------------------------------

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        symbol = liq.event.instrument
        previous = self._pending.get(symbol)
        if previous is not None and previous.ts_ms // THROTTLE_MS != liq.ts_ms // THROTTLE_MS:
            self._ready.append(self._force_order(previous))
        # Same window: the earlier order is dropped; only the latest of each second is pushed.
        self._pending[symbol] = liq

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        out, self._ready = self._ready, []
        for symbol, liq in list(self._pending.items()):
            if final or (liq.ts_ms // THROTTLE_MS + 1) * THROTTLE_MS <= now.exchange_ms:
                out.append(self._force_order(liq))
                del self._pending[symbol]
        if self.prices.due(now.exchange_ms):
            out += self._marks(now.exchange_ms)
        return out

    def _force_order(self, liq: venue_sim.Liq) -> venue_sim.Publication:
        event = liq.event
        item = self.listings[event.instrument]
        long = event.position_side is PositionSide.LONG
        ap = venue_price(item, event.price)
        limit = round(ap * (0.995 if long else 1.005), item.price_decimals)
        qty = fmt(venue_quantity(item, event.qty_base, event.notional_usd), item.qty_decimals)
        order: dict[str, Any] = {"s": item.symbol}
        if self.coinm:
            order["ps"] = _pair(item)
        order |= {
            "S": "SELL" if long else "BUY", "o": "LIMIT", "f": "IOC", "q": qty,
            "p": fmt(limit, item.price_decimals), "ap": fmt(ap, item.price_decimals),
            "X": "FILLED", "l": qty, "z": qty, "T": liq.ts_ms,
        }  # fmt: skip
        pushed = (liq.ts_ms // THROTTLE_MS + 1) * THROTTLE_MS
        payload = orjson.dumps({"e": "forceOrder", "E": pushed, "o": order}).decode()
        topics = ("!forceOrder@arr", f"{item.symbol.lower()}@forceOrder")
        return venue_sim.Publication(topics, payload, (liq,))

    def _mark_update(self, item: Listing, ts_ms: int) -> dict[str, Any]:
        multiplier = 1.0 if item.inverse else item.spec.base_multiplier
        mark = fmt(self.prices.get(item.coin) * multiplier, 8)
        perpetual = item.contract_type == "perpetual"
        return {
            "e": "markPriceUpdate", "E": ts_ms, "s": item.symbol, "p": mark, "P": mark,
            "i": mark, "r": "0.00010000" if perpetual else "",
            "T": (ts_ms // _FUNDING_MS + 1) * _FUNDING_MS if perpetual else 0,
        }  # fmt: skip

    def _marks(self, ts_ms: int) -> list[venue_sim.Publication]:
        subscribed = self.ctx.subscribed
        updates = [self._mark_update(item, ts_ms) for item in self.listings.values()]
        out = []
        if "!markPrice@arr@1s" in subscribed or "!markPrice@arr" in subscribed:
            out.append(venue_sim.Publication(("!markPrice@arr@1s", "!markPrice@arr"),
                                   orjson.dumps(updates).decode()))  # fmt: skip
        for update in updates:
            symbol = update["s"].lower()
            names = (f"{symbol}@markPrice@1s", f"{symbol}@markPrice")
            if any(name in subscribed for name in names):
                out.append(venue_sim.Publication(names, orjson.dumps(update).decode()))
        if self.coinm:
            for pair in sorted({_pair(item) for item in self.listings.values()}):
                names = (f"{pair.lower()}@markPrice@1s", f"{pair.lower()}@markPrice")
                if any(name in subscribed for name in names):
                    group = [u for u in updates if u["s"].startswith(pair + "_")]
                    out.append(venue_sim.Publication(names, orjson.dumps(group).decode()))
        return out


def _query_streams(query: str) -> list[str]:
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "streams":
            return [s for s in value.split("/") if s]
    return []


def _canonical(stream: str) -> str:
    # Symbol streams are lower case; the all-market names keep their case (!forceOrder@arr).
    if stream.startswith("!"):
        return stream
    name, _, rest = stream.partition("@")
    return f"{name.lower()}@{rest}"


class BinanceSession(common.SessionBase[BinanceSim]):
    def __init__(self, sim: BinanceSim, *, combined: bool, retired: bool,
                 url_streams: Sequence[str], reject: bool) -> None:  # fmt: skip
        super().__init__(sim, reject)
        self.combined = combined
        self.retired = retired
        self.names: dict[str, str] = {}  # canonical stream -> the client's spelling
        self._url_streams = list(url_streams)

    def _add(self, streams: Sequence[str]) -> None:
        for stream in streams:
            self.names.setdefault(_canonical(stream), stream)
        if not self.retired:
            self.hold([_canonical(s) for s in streams])

    def on_open(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        if self._url_streams:
            if self.reject or not all(_STREAM.match(s) for s in self._url_streams):
                return [venue_sim.Close(1008, "Invalid request")]
            self._add(self._url_streams)
        return []

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [_error(3, "Invalid JSON: expected value at line 1 column 1", None)]
        if not isinstance(request, dict):
            return [_error(2, "Invalid request: expected an object", None)]
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return [_error(2, "Invalid request: params must be a list of strings", request_id)]
            if self.reject or not all(_STREAM.match(p) for p in params):
                return [_error(2, "Invalid request: invalid stream", request_id),
                        venue_sim.Close(1008)]
            if method == "SUBSCRIBE":
                self._add(params)
            else:
                canonical = [_canonical(p) for p in params]
                for name in canonical:
                    self.names.pop(name, None)
                self.release(canonical)
            return [_result(None, request_id)]
        if method == "LIST_SUBSCRIPTIONS":
            return [_result(sorted(self.names.values()), request_id)]
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            return [_result(None if method == "SET_PROPERTY" else False, request_id)]
        return [_error(2, f"Invalid request: unknown variant `{method}`, expected one of "
                       "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, "
                       "`GET_PROPERTY`", request_id)]  # fmt: skip

    def render(self, pub: venue_sim.Publication) -> str | None:
        if self.retired:
            return None
        for topic in pub.topics:
            if topic in self.held:
                if not self.combined:
                    return pub.payload
                return (
                    '{"stream":'
                    + orjson.dumps(self.names[topic]).decode()
                    + ',"data":'
                    + (pub.payload + "}")
                )
        return None


def _result(result: object, request_id: object) -> venue_sim.Frame:
    return venue_sim.Frame(orjson.dumps({"result": result, "id": request_id}).decode())


def _error(code: int, msg: str, request_id: object) -> venue_sim.Frame:
    error = {"error": {"code": code, "msg": msg}, "id": request_id}
    return venue_sim.Frame(orjson.dumps(error).decode())


def make_usdm(ctx: venue_sim.SimContext) -> BinanceSim:
    return BinanceSim(ctx, coinm=False)


def make_coinm(ctx: venue_sim.SimContext) -> BinanceSim:
    return BinanceSim(ctx, coinm=True)
