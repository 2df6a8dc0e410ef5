"""Bitget's v3 (UTA) public websocket, as the simulator serves it.

* Websocket path ``/v3/ws/public``. ``{"op":"subscribe","args":[{"instType":..,"topic":..}]}``
  is acked once per arg with ``{"event":"subscribe","arg":{...},"connId":...}``; an unknown
  product type, topic or symbol (or the ``reject_subscription`` fault) gets
  ``{"event":"error","arg":{...},"code":30001,"msg":"... doesn't exist"}``.
* ``liquidation`` per product type (``usdt-futures``, ``coin-futures``, ``usdc-futures``),
  without a symbol: once a second, the previous second's liquidations AGGREGATED as Bitget
  does: per pair only the largest long and the largest short (by value) are pushed; the
  others are dropped and never count as sent. ``side`` is the POSITION side (``buy`` = a
  long was liquidated) and ``amount`` the quote (USD) value.
* ``ticker`` per symbol: ``markPrice`` at once, then on the price cadence.
* The text ``ping`` is answered with ``pong``. A connection that sends no ``ping`` for
  ``PING_TIMEOUT_SECONDS`` of wall time is closed, and every connection is closed after
  ``LIFETIME_SECONDS`` (Bitget's 24 h); both on the wall clock, like the venue.
* Bitget needs no instrument documents here: no REST path is served.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, fmt, venue_price

VENUE = "bitget"
WINDOW_MS = 1000
TICKER_MS = 1000
INST_TYPES = ("usdt-futures", "coin-futures", "usdc-futures")
PING_TIMEOUT_SECONDS = 120.0
LIFETIME_SECONDS = 24 * 3600.0
AMOUNT_DECIMALS = 8


class BitgetSim(common.VenueSimBase):
    venue = VENUE
    price_interval_ms = TICKER_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        # (window, symbol, side) -> the largest liquidation so far of that window
        self._largest: dict[tuple[int, str, PositionSide], venue_sim.Liq] = {}

    def open(self, path: str, query: str, *, reject: bool) -> BitgetSession | None:
        return BitgetSession(self, reject) if path == "/v3/ws/public" else None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        event = liq.event
        assert event.position_side is not None
        key = (liq.ts_ms // WINDOW_MS, event.instrument, event.position_side)
        kept = self._largest.get(key)
        if kept is None or event.notional_usd > kept.event.notional_usd:
            self._largest[key] = liq

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        due = [key for key in self._largest
               if final or (key[0] + 1) * WINDOW_MS <= now.exchange_ms]
        by_push: dict[tuple[int, str], list[venue_sim.Liq]] = {}
        for key in sorted(due, key=lambda k: (k[0], k[1], k[2].value)):
            liq = self._largest.pop(key)
            inst_type = self.listings[key[1]].spec.category
            by_push.setdefault((key[0], inst_type), []).append(liq)
        out = [self._push(window, inst_type, batch)
               for (window, inst_type), batch in by_push.items()]
        return out + self.price_publications(
            now.exchange_ms, lambda item: f"ticker:{item.symbol}", self.ticker)

    def _push(
        self, window: int, inst_type: str, batch: list[venue_sim.Liq]
    ) -> venue_sim.Publication:
        rows = []
        for liq in batch:
            event = liq.event
            item = self.listings[event.instrument]
            rows.append({
                "symbol": item.symbol,
                "side": "buy" if event.position_side is PositionSide.LONG else "sell",
                "price": fmt(venue_price(item, event.price), item.price_decimals),
                "amount": fmt(event.notional_usd, AMOUNT_DECIMALS),
                "ts": str(liq.ts_ms),
            })  # fmt: skip
        body = {"data": rows, "arg": {"instType": inst_type, "topic": "liquidation"},
                "action": "update", "ts": (window + 1) * WINDOW_MS}
        topic = f"liquidation:{inst_type}"
        return venue_sim.Publication((topic,), orjson.dumps(body).decode(), tuple(batch))

    def ticker(self, item: Listing, ts_ms: int) -> str:
        mark = fmt(venue_price(item, self.prices.get(item.coin)), item.price_decimals)
        data = {"lastPrice": mark, "markPrice": mark, "indexPrice": mark, "fundingRate": "0.0001",
                "openInterest": "1000", "bid1Price": mark, "ask1Price": mark}  # fmt: skip
        arg = {"instType": item.spec.category, "topic": "ticker", "symbol": item.symbol}
        return orjson.dumps({"action": "snapshot", "arg": arg, "data": [data],
                             "ts": ts_ms}).decode()  # fmt: skip


class BitgetSession(common.SessionBase[BitgetSim]):
    def __init__(self, sim: BitgetSim, reject: bool) -> None:
        super().__init__(sim, reject)
        self.conn_id = common.conn_id()
        self.opened_wall: float | None = None
        self.last_ping_wall: float | None = None

    def _topic(self, arg: object) -> str | None:
        if not isinstance(arg, dict) or arg.get("instType") not in INST_TYPES:
            return None
        topic, symbol = arg.get("topic"), arg.get("symbol")
        if topic == "liquidation" and symbol is None:
            return f"liquidation:{arg['instType']}"
        item = self.sim.listings.get(symbol) if isinstance(symbol, str) else None
        if topic == "ticker" and item is not None and item.spec.category == arg["instType"]:
            return f"ticker:{symbol}"
        return None

    def _event(self, body: dict[str, Any]) -> venue_sim.Frame:
        return venue_sim.Frame(orjson.dumps({**body, "connId": self.conn_id}).decode())

    def on_open(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        self.opened_wall = self.last_ping_wall = now.wall
        return ()

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        if text == "ping":
            self.last_ping_wall = now.wall
            return [venue_sim.Frame("pong")]
        request = common.json_request(text)
        op = request.get("op") if request is not None else None
        args = request.get("args") if request is not None else None
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            return [self._event({"event": "error", "code": 30002, "msg": "illegal request"})]
        topics = [self._topic(arg) for arg in args]
        out: list[venue_sim.Out] = []
        for arg, topic in zip(args, topics, strict=True):
            if self.reject or topic is None:
                described = ",".join(f"{k}:{v}" for k, v in arg.items()) if isinstance(
                    arg, dict) else str(arg)
                out.append(self._event({"event": "error", "arg": arg, "code": 30001,
                                        "msg": f"{described} doesn't exist"}))
                continue
            if op == "unsubscribe":
                self.release([topic])
                out.append(self._event({"event": "unsubscribe", "arg": arg}))
                continue
            self.hold([topic])
            out.append(self._event({"event": "subscribe", "arg": arg}))
            if topic.startswith("ticker:"):
                item = self.sim.listings[topic.removeprefix("ticker:")]
                out.append(venue_sim.Frame(self.sim.ticker(item, now.exchange_ms), is_data=True))
        return out

    def tick(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        if self.opened_wall is None or self.last_ping_wall is None:
            self.opened_wall = self.last_ping_wall = now.wall
        if now.wall - self.opened_wall >= LIFETIME_SECONDS:
            return [venue_sim.Close(1000, "connection lifetime of 24 h reached")]
        if now.wall - self.last_ping_wall >= PING_TIMEOUT_SECONDS:
            return [venue_sim.Close(1000, "no ping received")]
        return ()


def make(ctx: venue_sim.SimContext) -> BitgetSim:
    return BitgetSim(ctx)
