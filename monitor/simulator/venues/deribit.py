"""Deribit's JSON-RPC websocket and ``public/get_instruments``, as the simulator serves them.

* Websocket path ``/ws/api/v2``. Requests are JSON-RPC 2.0 and every answer echoes the
  ``id``: ``public/subscribe`` answers with the list of channels subscribed; an unknown
  channel (or the ``reject_subscription`` fault) gets an ``error`` (``-32602 Invalid
  params``); an unknown method ``-32601 Method not found``.
* ``public/set_heartbeat`` (``interval`` >= 10 s) answers ``"ok"``; from then on the server
  sends ``{"method":"heartbeat","params":{"type":"test_request"}}`` every interval of wall
  time, and closes the connection when the previous ``test_request`` got no ``public/test``
  request in between, as Deribit does. ``public/test`` answers ``{"version":...}``.
* ``trades.future.{BTC,ETH,USDC}.100ms`` (every future of a currency; linear ones are under
  ``USDC``) and ``trades.<instrument>.100ms``: trades batched in 100 ms windows (one frame
  per instrument and window).
  Each liquidation is a trade with a ``liquidation`` field: ``T`` (the taker was liquidated,
  so ``direction`` sell closed a long) or ``M`` (the maker was: ``direction`` buy closed a
  long), alternating. ``amount`` is USD on inverse futures and coin on linear ones.
* ``ticker.<instrument>.100ms``: the instrument's ``mark_price`` at once, then on the price
  cadence.
* REST ``/api/v2/public/get_instruments?currency=BTC|ETH|USDC&kind=future``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, venue_price, venue_quantity

VENUE = "deribit"
BATCH_MS = 100
TICKER_MS = 100
MIN_HEARTBEAT_SECONDS = 10
# Wall seconds per heartbeat second: tests shrink it to see several heartbeats in a second.
HEARTBEAT_WALL_SCALE = 1.0
CURRENCIES = ("BTC", "ETH", "USDC")
VERSION = "1.2.26"


def currency_of(item: Listing) -> str:
    """The currency a future is listed under: its coin (inverse) or USDC (linear)."""
    return item.coin if item.inverse else item.spec.quote


class DeribitSim(common.VenueSimBase):
    venue = VENUE
    price_interval_ms = TICKER_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self._batches = common.WindowedBatches(BATCH_MS, self._batch)  # per instrument

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        if request.path != "/api/v2/public/get_instruments":
            return None
        currency = request.query.get("currency", "")
        if currency not in (*CURRENCIES, "any"):
            return _rpc_error(None, -32602, "Invalid params", 400)
        kind = request.query.get("kind", "future")
        items = [i for i in self.listings.values()
                 if kind in ("future", "any") and currency in (currency_of(i), "any")]
        return common.json_reply({"jsonrpc": "2.0", "result": [_instrument(i) for i in items],
                                  "usIn": 0, "usOut": 0, "usDiff": 0, "testnet": False})

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> DeribitSession | None:
        return DeribitSession(self, reject) if path == "/ws/api/v2" else None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._batches.add(liq.event.instrument, liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        return self._batches.due(now.exchange_ms, final) + self.price_publications(
            now.exchange_ms, lambda item: f"ticker.{item.symbol}.100ms", self.ticker)

    def _batch(self, instrument: str, batch: list[venue_sim.Liq]) -> venue_sim.Publication:
        # One frame per instrument and window: the kind channel's frame and the
        # instrument channel's carry the same rows (the ledger stays exact either way).
        rows = [self.trade(liq) for liq in batch]
        currency = currency_of(self.listings[instrument])
        channel = f"trades.future.{currency}.100ms"
        payload = {"jsonrpc": "2.0", "method": "subscription",
                   "params": {"channel": channel, "data": rows}}
        topics = (channel, f"trades.{instrument}.100ms")
        return venue_sim.Publication(topics, orjson.dumps(payload).decode(), tuple(batch))

    def trade(self, liq: venue_sim.Liq) -> dict[str, Any]:
        event = liq.event
        item = self.listings[event.instrument]
        long = event.position_side is PositionSide.LONG
        maker = liq.seq % 2 == 0
        # The liquidated party sold a long; as the maker, the taker's direction is the opposite.
        direction = ("buy" if long else "sell") if maker else ("sell" if long else "buy")
        price = venue_price(item, event.price)
        if item.inverse:
            amount = event.notional_usd
            contracts = venue_quantity(item, event.qty_base, event.notional_usd)
        else:
            amount = event.qty_base
            contracts = venue_quantity(item, event.qty_base, event.notional_usd)
        return {
            "trade_seq": liq.seq, "trade_id": f"{currency_of(item)}-{liq.seq}",
            "timestamp": liq.ts_ms, "tick_direction": 2, "price": price,
            "mark_price": price, "index_price": price, "instrument_name": item.symbol,
            "direction": direction, "amount": amount, "contracts": contracts,
            "liquidation": "M" if maker else "T",
        }  # fmt: skip

    def ticker(self, item: Listing, ts_ms: int) -> str:
        mark = venue_price(item, self.prices.get(item.coin))
        data = {"timestamp": ts_ms, "state": "open", "mark_price": mark, "index_price": mark,
                "last_price": mark, "best_bid_price": mark, "best_ask_price": mark,
                "instrument_name": item.symbol, "open_interest": 1000.0,
                "current_funding": 0.0 if item.contract_type == "perpetual" else None}
        channel = f"ticker.{item.symbol}.100ms"
        return orjson.dumps({"jsonrpc": "2.0", "method": "subscription",
                             "params": {"channel": channel, "data": data}}).decode()

    def valid_channel(self, channel: object) -> bool:
        if not isinstance(channel, str):
            return False
        parts = channel.split(".")
        if len(parts) == 4 and parts[:2] == ["trades", "future"]:
            return parts[2] in CURRENCIES and parts[3] == "100ms"
        if len(parts) == 3 and parts[0] in ("trades", "ticker"):
            return parts[1] in self.listings and parts[2] == "100ms"
        return False


def _instrument(item: Listing) -> dict[str, Any]:
    spec = item.spec
    return {
        "instrument_name": item.symbol, "kind": "future", "is_active": True,
        "instrument_type": "reversed" if item.inverse else "linear",
        "future_type": "reversed" if item.inverse else "linear",
        "base_currency": item.coin, "quote_currency": spec.quote,
        "counter_currency": spec.quote, "settlement_currency": currency_of(item),
        "contract_size": spec.contract_size, "tick_size": 10.0**-item.price_decimals,
        "min_trade_amount": spec.contract_size,
        "settlement_period": "perpetual" if item.contract_type == "perpetual" else "month",
        "expiration_timestamp": 32_503_708_800_000 if item.contract_type == "perpetual"
        else 1_774_598_400_000, "creation_timestamp": 1_534_242_287_000,
    }  # fmt: skip


def _rpc_error(
    request_id: object, code: int, message: str, status: int = 200
) -> venue_sim.RestReply:
    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message},
            "testnet": False}
    return common.json_reply(body, status)


class DeribitSession(common.SessionBase[DeribitSim]):
    def __init__(self, sim: DeribitSim, reject: bool) -> None:
        super().__init__(sim, reject)
        self.heartbeat_seconds: float | None = None
        self._next_test: float = 0.0
        self.awaiting_test = False

    @staticmethod
    def _answer(request_id: object, result: object) -> venue_sim.Frame:
        body = {"jsonrpc": "2.0", "id": request_id, "result": result, "usIn": 0, "usOut": 0,
                "usDiff": 0, "testnet": False}
        return venue_sim.Frame(orjson.dumps(body).decode())

    @staticmethod
    def _error(request_id: object, code: int, message: str, reason: str = "") -> venue_sim.Frame:
        error: dict[str, Any] = {"code": code, "message": message}
        if reason:
            error["data"] = {"reason": reason, "param": "channels"}
        body = {"jsonrpc": "2.0", "id": request_id, "error": error, "testnet": False}
        return venue_sim.Frame(orjson.dumps(body).decode())

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error(None, -32700, "Parse error")]
        if not isinstance(request, dict):
            return [self._error(None, -32600, "Invalid Request")]
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params")
        params = params if isinstance(params, dict) else {}
        if method == "public/test":
            self.awaiting_test = False
            return [self._answer(request_id, {"version": VERSION})]
        if method == "public/set_heartbeat":
            interval = params.get("interval")
            if not isinstance(interval, int | float) or interval < MIN_HEARTBEAT_SECONDS:
                return [self._error(request_id, -32602, "Invalid params")]
            self.heartbeat_seconds = float(interval)
            self._next_test = now.wall + self.heartbeat_seconds * HEARTBEAT_WALL_SCALE
            return [self._answer(request_id, "ok")]
        if method in ("public/subscribe", "public/unsubscribe"):
            return self._subscribe(method, request_id, params.get("channels"), now)
        return [self._error(request_id, -32601, "Method not found")]

    def _subscribe(self, method: str, request_id: object, channels: object,
                   now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:  # fmt: skip
        if not isinstance(channels, list) or not channels:
            return [self._error(request_id, -32602, "Invalid params", "must be a list")]
        bad = [c for c in channels if not self.sim.valid_channel(c)]
        if self.reject or bad:
            return [self._error(request_id, -32602, "Invalid params", "invalid channel")]
        if method == "public/unsubscribe":
            self.release(channels)
            return [self._answer(request_id, channels)]
        self.hold(channels)
        out: list[venue_sim.Out] = [self._answer(request_id, channels)]
        for channel in channels:
            if channel.startswith("ticker."):
                item = self.sim.listings[channel.split(".")[1]]
                out.append(venue_sim.Frame(self.sim.ticker(item, now.exchange_ms), is_data=True))
        return out

    def tick(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        if self.heartbeat_seconds is None or now.wall < self._next_test:
            return ()
        if self.awaiting_test:
            return [venue_sim.Close(1000, "heartbeat: test_request not answered")]
        self.awaiting_test = True
        self._next_test = now.wall + self.heartbeat_seconds * HEARTBEAT_WALL_SCALE
        body = {"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}}
        return [venue_sim.Frame(orjson.dumps(body).decode())]

    def render(self, pub: venue_sim.Publication) -> str | None:
        if pub.topics[0] in self.held:
            return pub.payload
        if len(pub.topics) < 2 or pub.topics[1] not in self.held:
            return None
        # Subscribed per instrument: the same rows on the instrument's own channel.
        cached = pub.cache.get("instrument")
        if cached is None:
            message = orjson.loads(pub.payload)
            message["params"]["channel"] = pub.topics[1]
            cached = pub.cache["instrument"] = orjson.dumps(message).decode()
        return cached if isinstance(cached, str) else None


def make(ctx: venue_sim.SimContext) -> DeribitSim:
    return DeribitSim(ctx)
