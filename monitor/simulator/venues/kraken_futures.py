"""Kraken Futures (v1 websocket) and its instruments, as the simulator serves them.

* Websocket path ``/ws/v1``; the server greets with ``{"event":"info","version":1}``.
  ``{"event":"subscribe","feed":"trade"|"ticker","product_ids":[...]}`` is acked with
  ``{"event":"subscribed","feed":..,"product_ids":[...]}``. Each unknown (or delisted)
  product gets its own ``{"event":"subscribed_failed","feed":..,"product_ids":[p]}`` (the
  answers Kraken Futures documents for a subscribe) and the others are subscribed; the
  ``reject_subscription`` fault, or no products at all, gets
  ``{"event":"error","message":"Invalid product id"}``.
* Each ``trade`` subscription first gets a ``trade_snapshot`` of the product's recent trades
  (liquidations already sent elsewhere, so skipping it and deduplicating it agree), then one
  ``trade`` message per trade. Liquidations have ``type`` ``liquidation`` and the taker's
  ``side`` (``sell`` closes a long); ``qty`` is base units on ``PF_`` and 1-USD contracts on
  ``PI_``/``FI_``; ``uid`` is unique.
* ``ticker`` sends the current ``markPrice`` at once, then on the price cadence.
* Keepalive is WebSocket protocol pings (the core's server answers them), as with Kraken's
  own client; an application message the venue does not know gets
  ``{"event":"error","message":"Json Error"}``.
* REST ``/derivatives/api/v3/instruments`` with ``symbol``, ``type``, ``contractSize``,
  ``tradeable`` and, on the newer rows, ``base``/``quote``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, venue_price, venue_quantity

VENUE = "kraken-futures"
TICKER_MS = 1000
FEEDS = ("trade", "ticker")
_UID_NAMESPACE = uuid.UUID("6f1c2b8e-0d4a-4c5e-9a7b-3e2f1d0c9b8a")


class KrakenFuturesSim(common.VenueSimBase):
    venue = VENUE
    price_interval_ms = TICKER_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self.recent = common.RecentLiquidations()
        self._pending: list[venue_sim.Liq] = []

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        if request.path != "/derivatives/api/v3/instruments":
            return None
        return common.json_reply({"result": "success", "serverTime": "2026-02-01T00:00:00.000Z",
                                  "instruments": [_instrument(i) for i in self.rest_listings()]})

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> KrakenFuturesSession | None:
        return KrakenFuturesSession(self, reject) if path == "/ws/v1" else None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._pending.append(liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        out = []
        for liq in self._pending:
            symbol = liq.event.instrument
            topic = f"trade:{symbol}"
            text = orjson.dumps(self.trade(liq)).decode()
            out.append(venue_sim.Publication((topic,), text, (liq,)))
            self.recent.add(topic, (liq,))
        self._pending = []
        return out + self.price_publications(
            now.exchange_ms, lambda item: f"ticker:{item.symbol}", self.ticker)

    def trade(self, liq: venue_sim.Liq) -> dict[str, Any]:
        event = liq.event
        item = self.listing(event.instrument)
        return {
            "feed": "trade", "product_id": item.symbol,
            "uid": str(uuid.uuid5(_UID_NAMESPACE, f"{liq.seq}")),
            "side": "sell" if event.position_side is PositionSide.LONG else "buy",
            "type": "liquidation", "seq": liq.seq, "time": liq.ts_ms,
            "qty": venue_quantity(item, event.qty_base, event.notional_usd),
            "price": venue_price(item, event.price),
        }  # fmt: skip

    def ticker(self, item: Listing, ts_ms: int) -> str:
        mark = venue_price(item, self.prices.get(item.coin))
        spread = 10.0**-item.price_decimals
        return orjson.dumps({
            "time": ts_ms, "product_id": item.symbol, "feed": "ticker", "markPrice": mark,
            "bid": round(mark - spread, item.price_decimals), "ask": round(mark + spread,
            item.price_decimals), "last": mark, "index": mark, "volume": 1000.0,
            "funding_rate": 0.0 if item.contract_type == "perpetual" else None,
            "tag": item.contract_type, "pair": f"{_base(item)}:USD", "suspended": False,
        }).decode()  # fmt: skip


def _base(item: Listing) -> str:
    return "XBT" if item.coin == "BTC" else item.coin


def _instrument(item: Listing) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": item.symbol, "type": item.spec.category, "tradeable": True,
        "contractSize": item.spec.contract_size, "tickSize": 10.0**-item.price_decimals,
        "contractValueTradePrecision": item.qty_decimals, "underlying": f"rr_{_base(item)}usd",
        "impactMidSize": 1, "maxPositionSize": 1_000_000, "openingDate": "2022-01-01T00:00:00Z",
        "marginLevels": [{"contracts": 0, "initialMargin": 0.02, "maintenanceMargin": 0.01}],
        "fundingRateCoefficient": 8, "maxRelativeFundingRate": 0.001, "isin": "", "tags": [],
    }  # fmt: skip
    if not item.inverse:  # only the newer multi-collateral rows name base and quote
        row.update(base=_base(item), quote="USD", pair=f"{_base(item)}:USD")
    if item.contract_type != "perpetual":
        row["lastTradingTime"] = "2026-03-27T16:00:00.000Z"
    return row


class KrakenFuturesSession(common.SessionBase[KrakenFuturesSim]):
    @staticmethod
    def _json(body: dict[str, Any], is_data: bool = False) -> venue_sim.Frame:
        return venue_sim.Frame(orjson.dumps(body).decode(), is_data)

    def on_open(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        return [self._json({"event": "info", "version": 1})]

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        request = common.json_request(text)
        if request is None:
            return [self._json({"event": "error", "message": "Json Error"})]
        event, feed, products = (request.get("event"), request.get("feed"),
                                 request.get("product_ids"))
        if event not in ("subscribe", "unsubscribe") or feed not in FEEDS:
            return [self._json({"event": "error", "message": "Json Error"})]
        if self.reject or not isinstance(products, list) or not products:
            return [self._json({"event": "error", "message": "Invalid product id"})]
        # Unsubscribing what the connection holds always works, delisted or not.
        known = [p for p in products if p in self.sim.listings
                 or (event == "unsubscribe" and f"{feed}:{p}" in self.held)]
        failed = "subscribed_failed" if event == "subscribe" else "unsubscribed_failed"
        out: list[venue_sim.Out] = [self._json({"event": failed, "feed": feed, "product_ids": [p]})
                                    for p in products if p not in known]
        products = known
        if not products:
            return out
        topics = [f"{feed}:{product}" for product in products]
        if event == "unsubscribe":
            self.release(topics)
            return [*out, self._json({"event": "unsubscribed", "feed": feed,
                                      "product_ids": products})]
        self.hold(topics)
        out.append(self._json({"event": "subscribed", "feed": feed, "product_ids": products}))
        for product in products:
            if feed == "trade":
                out.append(self._snapshot(product))
            else:
                push = self.sim.ticker(self.sim.listing(product), now.exchange_ms)
                out.append(venue_sim.Frame(push, is_data=True))
        return out

    def _snapshot(self, product: str) -> venue_sim.Frame:
        # History: only trades some connection already received, newest first as Kraken does.
        replayed = [liq for liq in self.sim.recent.get(f"trade:{product}")
                    if self.sim.ctx.was_sent(liq.seq)][::-1]
        body = {"feed": "trade_snapshot", "product_id": product,
                "trades": [self.sim.trade(liq) for liq in replayed]}
        return venue_sim.Frame(orjson.dumps(body).decode(), True, tuple(replayed))


def make(ctx: venue_sim.SimContext) -> KrakenFuturesSim:
    return KrakenFuturesSim(ctx)
