"""Gate futures websockets (USDT-, BTC- and USD1-settled) and contract lists, as simulated.

* Websocket paths ``/v4/ws/usdt``, ``/v4/ws/btc`` and ``/v4/ws/usd1`` (Gate's changelog,
  2026-08-19); each serves only its own contracts.
  ``{"time":..,"channel":..,"event":"subscribe","payload":[...]}`` is acked with
  ``{"time":..,"time_ms":..,"channel":..,"event":"subscribe","payload":[...],
  "result":{"status":"success"}}``; an unknown contract or channel (or the
  ``reject_subscription`` fault) gets ``"error":{"code":2,"message":...}`` and
  ``"result":{"status":"failed"}``.
* ``futures.public_liquidates`` with ``["!all"]`` or a contract list: as Gate's changelog
  of 2026-08-20 documents it, every liquidation of a settle host's one-second aggregation
  period goes out in one batch (``result`` lists them all, contracts mixed), pushed at the
  end of its second; none is dropped.
  ``size`` is a signed whole number of contracts (negative: a forced sell, so a long was
  liquidated), ``price`` a decimal string, ``time`` in ms.
* ``futures.tickers`` with a contract list: ``mark_price`` at once, then on the price
  cadence.
* ``{"time":..,"channel":"futures.ping"}`` is answered with ``futures.pong``.
* REST ``/api/v4/futures/{usdt,btc,usd1}/contracts`` with ``limit`` (at most 1000) and
  ``offset``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, fmt, venue_price, venue_quantity

VENUE = "gate"
SETTLES = ("usdt", "btc", "usd1")
LIQUIDATES = "futures.public_liquidates"
TICKERS = "futures.tickers"
THROTTLE_MS = 1000
TICKER_MS = 1000
MAX_LIMIT = 1000


class GateSim(common.VenueSimBase):
    venue = VENUE
    price_interval_ms = TICKER_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self._batches = common.WindowedBatches(THROTTLE_MS, self._push)  # per settle host

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        parts = request.path.split("/")
        if len(parts) != 6 or parts[:4] != ["", "api", "v4", "futures"] or parts[5] != "contracts":
            return None
        settle = parts[4]
        if settle not in SETTLES:
            return common.json_reply(
                {"label": "INVALID_PARAM_VALUE", "message": "invalid settle"}, 400)
        try:
            limit = min(int(request.query.get("limit", str(MAX_LIMIT))), MAX_LIMIT)
            offset = int(request.query.get("offset", "0"))
        except ValueError:
            return common.json_reply({"label": "INVALID_PARAM_VALUE", "message": "limit"}, 400)
        items = [i for i in self.listings.values() if i.spec.category == settle]
        page = items[max(offset, 0) : max(offset, 0) + max(limit, 1)]
        return common.json_reply([self.contract(item) for item in page])

    def contract(self, item: Listing) -> dict[str, Any]:
        mark = fmt(venue_price(item, self.prices.get(item.coin)), item.price_decimals)
        return {
            "name": item.symbol, "type": "inverse" if item.inverse else "direct",
            "quanto_multiplier": "0" if item.inverse else fmt(item.spec.contract_size, 8)
            .rstrip("0").rstrip("."), "mark_price": mark, "index_price": mark,
            "last_price": mark, "order_price_round": fmt(10.0**-item.price_decimals,
            item.price_decimals), "order_size_min": 1, "order_size_max": 1_000_000,
            "leverage_min": "1", "leverage_max": "100", "in_delisting": False,
            "status": "trading", "funding_rate": "0.0001", "funding_interval": 28800,
        }  # fmt: skip

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> GateSession | None:
        for settle in SETTLES:
            if path == f"/v4/ws/{settle}":
                return GateSession(self, settle, reject)
        return None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._batches.add(self.listing(liq.event.instrument).spec.category, liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        return self._batches.due(now.exchange_ms, final) + self.price_publications(
            now.exchange_ms, lambda item: f"{TICKERS}:{item.symbol}", self.ticker)

    def _push(self, settle: str, batch: list[venue_sim.Liq]) -> venue_sim.Publication:
        pushed_ms = (batch[-1].ts_ms // THROTTLE_MS + 1) * THROTTLE_MS
        rows = []
        for liq in batch:
            event = liq.event
            item = self.listing(event.instrument)
            contracts = int(venue_quantity(item, event.qty_base, event.notional_usd))
            rows.append({
                "price": fmt(venue_price(item, event.price), item.price_decimals),
                "size": -contracts if event.position_side is PositionSide.LONG else contracts,
                "time": liq.ts_ms, "contract": item.symbol})  # fmt: skip
        body = {"channel": LIQUIDATES, "event": "update", "time": pushed_ms // 1000,
                "time_ms": pushed_ms, "result": rows}
        topics = (f"{LIQUIDATES}:!all:{settle}",
                  *dict.fromkeys(f"{LIQUIDATES}:{row['contract']}" for row in rows))
        return venue_sim.Publication(topics, orjson.dumps(body).decode(), tuple(batch))

    def ticker(self, item: Listing, ts_ms: int) -> str:
        mark = fmt(venue_price(item, self.prices.get(item.coin)), item.price_decimals)
        row = {"contract": item.symbol, "last": mark, "mark_price": mark, "index_price": mark,
               "funding_rate": "0.0001", "total_size": "1000000", "volume_24h": "1000"}
        return orjson.dumps({"time": ts_ms // 1000, "time_ms": ts_ms, "channel": TICKERS,
                             "event": "update", "result": [row]}).decode()  # fmt: skip


class GateSession(common.SessionBase[GateSim]):
    def __init__(self, sim: GateSim, settle: str, reject: bool) -> None:
        super().__init__(sim, reject)
        self.settle = settle

    def _reply(self, now: venue_sim.SimNow, channel: object, event: str, payload: object,
               error: str | None) -> venue_sim.Frame:  # fmt: skip
        body: dict[str, Any] = {"time": now.exchange_ms // 1000, "time_ms": now.exchange_ms,
                                "channel": channel, "event": event, "payload": payload}
        if error is None:
            body["result"] = {"status": "success"}
        else:
            body["error"] = {"code": 2, "message": error}
            body["result"] = {"status": "failed"}
        return venue_sim.Frame(orjson.dumps(body).decode())

    def _topics(self, channel: object, payload: object) -> list[str] | str:
        """The topics of a request, or the error message for it."""
        if channel not in (LIQUIDATES, TICKERS):
            return f"unknown channel {channel}"
        if not isinstance(payload, list) or not payload:
            return "invalid payload"
        topics = []
        for contract in payload:
            if contract == "!all" and channel == LIQUIDATES:
                topics.append(f"{LIQUIDATES}:!all:{self.settle}")
                continue
            item = self.sim.listings.get(contract) if isinstance(contract, str) else None
            if item is None or item.spec.category != self.settle:
                return f"unknown contract {contract}"
            topics.append(f"{channel}:{contract}")
        return topics

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        request = common.json_request(text)
        if request is None:
            return [self._reply(now, "", "", None, "invalid request")]
        channel, event = request.get("channel"), request.get("event")
        if channel == "futures.ping":
            body = {"time": now.exchange_ms // 1000, "time_ms": now.exchange_ms,
                    "channel": "futures.pong", "event": "", "result": None}
            return [venue_sim.Frame(orjson.dumps(body).decode())]
        payload = request.get("payload")
        if event not in ("subscribe", "unsubscribe"):
            return [self._reply(now, channel, str(event), payload, "invalid event")]
        topics = self._topics(channel, payload)
        if self.reject and isinstance(topics, list):
            topics = f"unknown contract {payload[0] if isinstance(payload, list) else ''}"
        if isinstance(topics, str):
            return [self._reply(now, channel, event, payload, topics)]
        if event == "unsubscribe":
            self.release(topics)
            return [self._reply(now, channel, event, payload, None)]
        self.hold(topics)
        out: list[venue_sim.Out] = [self._reply(now, channel, event, payload, None)]
        if channel == TICKERS:
            for topic in topics:
                item = self.sim.listings[topic.removeprefix(f"{TICKERS}:")]
                out.append(venue_sim.Frame(self.sim.ticker(item, now.exchange_ms), is_data=True))
        return out


def make(ctx: venue_sim.SimContext) -> GateSim:
    return GateSim(ctx)
