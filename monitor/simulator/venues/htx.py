"""HTX (Huobi) derivatives notification hosts and contract documents, as the simulator serves them.

* Websocket paths ``/linear-swap-notification`` (USDT-margined), ``/swap-notification``
  (coin-margined swaps) and ``/notification`` (coin-margined delivery futures). EVERY server
  frame is gzip-compressed binary; the client's frames are plain text.
* ``{"op":"sub","cid":..,"topic":"public.<code>.liquidation_orders"}`` with ``<code>`` ``*``
  or a contract code (on ``/notification``, a symbol such as ``BTC``) is answered by
  ``{"op":"sub","cid":..,"topic":..,"ts":..,"err-code":0}``; an unknown topic (or the
  ``reject_subscription`` fault) by a non-zero ``err-code`` and an ``err-msg``.
* ``{"op":"notify","topic":"public.<code>.liquidation_orders","ts":..,"data":[...]}`` per
  contract: ``direction`` is the order side (``sell`` closes a long), ``volume`` contracts;
  USDT-margined rows add ``amount`` (base units) and ``trade_turnover`` (USDT).
* The server pings every 5 s (``{"op":"ping","ts":"<ms>"}``) and closes the connection when
  ``MAX_UNANSWERED`` pings in a row get no ``{"op":"pong"}`` with the same ts: a client that
  answers late, or with another ts, is dropped like on the real venue.
* No id is published, so two liquidations with the same contract, millisecond, side,
  volume and price would be one to a client: the simulator moves such a twin by 1 ms.
* REST ``/linear-swap-api/v1/swap_contract_info``, ``/swap-api/v1/swap_contract_info`` and
  ``/api/v1/contract_contract_info``: ``{"status":"ok","data":[...],"ts":..}``.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, venue_price, venue_quantity

VENUE = "htx"
PING_INTERVAL_SECONDS = 5.0
MAX_UNANSWERED = 3
# websocket path -> category; REST path -> category
HOSTS = {"/linear-swap-notification": "usdt", "/swap-notification": "coin-swap",
         "/notification": "coin-futures"}
CONTRACT_INFO = {"/linear-swap-api/v1/swap_contract_info": "usdt",
                 "/swap-api/v1/swap_contract_info": "coin-swap",
                 "/api/v1/contract_contract_info": "coin-futures"}
_TWIN_MEMORY = 100_000


def gz(body: dict[str, Any]) -> bytes:
    return gzip.compress(orjson.dumps(body), compresslevel=5, mtime=0)


def topic_key(item: Listing) -> str:
    """What names a contract in its topic: the symbol for delivery futures, else the code."""
    return item.coin if item.spec.category == "coin-futures" else item.symbol


class HtxSim(common.VenueSimBase):
    venue = VENUE

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self._pending: dict[str, list[venue_sim.Liq]] = {}
        self._used: dict[tuple[object, ...], None] = {}  # identities already published
        self.ping_interval_seconds = PING_INTERVAL_SECONDS
        self.max_unanswered = MAX_UNANSWERED

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        category = CONTRACT_INFO.get(request.path)
        if category is None:
            return None
        rows = [_contract(i) for i in self.listings.values() if i.spec.category == category]
        return common.json_reply({"status": "ok", "data": rows, "ts": 1769904000000})

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> HtxSession | None:
        category = HOSTS.get(path)
        return None if category is None else HtxSession(self, category, reject)

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._pending.setdefault(liq.event.instrument, []).append(liq)

    def on_mark(self, coin: str, price: float, ts_ms: int) -> None:
        return None  # the notification hosts carry no prices

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        out = []
        for code, batch in self._pending.items():
            item = self.listings[code]
            category = item.spec.category
            rows = [self.row(liq) for liq in batch]
            body = {"op": "notify", "topic": f"public.{topic_key(item)}.liquidation_orders",
                    "ts": now.exchange_ms, "data": rows}
            topics = (f"{category}:*", f"{category}:{topic_key(item)}")
            out.append(venue_sim.Publication(topics, orjson.dumps(body).decode(), tuple(batch)))
        self._pending = {}
        return out

    def row(self, liq: venue_sim.Liq) -> dict[str, Any]:
        event = liq.event
        item = self.listings[event.instrument]
        volume = venue_quantity(item, event.qty_base, event.notional_usd)
        price = venue_price(item, event.price)
        side = "sell" if event.position_side is PositionSide.LONG else "buy"
        created = liq.ts_ms
        while (item.symbol, created, side, volume, price) in self._used:
            created += 1
        self._used[(item.symbol, created, side, volume, price)] = None
        if len(self._used) > _TWIN_MEMORY:
            del self._used[next(iter(self._used))]
        row: dict[str, Any] = {
            "symbol": item.coin, "contract_code": item.symbol, "direction": side,
            "offset": "close", "volume": volume, "price": price, "created_at": created,
        }  # fmt: skip
        if item.spec.category == "usdt":
            row.update(amount=event.qty_base, trade_turnover=event.notional_usd,
                       contract_type="swap", pair=item.symbol, business_type="swap",
                       trade_partition="USDT")  # fmt: skip
        return row


def _contract(item: Listing) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": item.coin, "contract_code": item.symbol,
        "contract_size": item.spec.contract_size,
        "price_tick": 10.0**-item.price_decimals, "contract_status": 1,
        "create_date": "20200325", "settlement_date": "1769932800000",
    }  # fmt: skip
    if item.spec.category == "usdt":
        row.update(support_margin_mode="all", business_type="swap", pair=item.symbol,
                   contract_type="swap", trade_partition="USDT", delivery_time="")
    elif item.spec.category == "coin-futures":
        row.update(contract_type="quarter", delivery_date="20260327")
    return row


class HtxSession(common.SessionBase[HtxSim]):
    def __init__(self, sim: HtxSim, category: str, reject: bool) -> None:
        super().__init__(sim, reject)
        self.category = category
        self._last_ping: float | None = None
        self._unanswered: list[object] = []  # ts values of pings without a pong yet

    def _keys(self) -> set[str]:
        return {topic_key(i) for i in self.sim.listings.values()
                if i.spec.category == self.category}

    def on_open(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        self._last_ping = now.wall
        return ()

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        request = common.json_request(text)
        if request is None:
            return [venue_sim.Frame(gz({"op": "error", "ts": now.exchange_ms, "err-code": 4000,
                                        "err-msg": "invalid request"}))]
        op = request.get("op")
        if op == "pong":
            if request.get("ts") in self._unanswered:
                self._unanswered.clear()
            return ()
        if op not in ("sub", "unsub"):
            return [venue_sim.Frame(gz({"op": "error", "ts": now.exchange_ms, "err-code": 4000,
                                        "err-msg": f"invalid op {op!r:.20}"}))]
        cid, topic = request.get("cid"), request.get("topic")
        head = {"op": op, "cid": cid, "topic": topic, "ts": now.exchange_ms}
        key = _topic_key(topic)
        if self.reject or key is None or (key != "*" and key not in self._keys()):
            return [venue_sim.Frame(
                gz({**head, "err-code": 4002, "err-msg": f"invalid topic {topic}"}))]
        if op == "unsub":
            self.release([f"{self.category}:{key}"])
        else:
            self.hold([f"{self.category}:{key}"])
        return [venue_sim.Frame(gz({**head, "err-code": 0}))]

    def tick(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        if self._last_ping is None:
            self._last_ping = now.wall
        if now.wall - self._last_ping < self.sim.ping_interval_seconds:
            return ()
        self._last_ping = now.wall
        if len(self._unanswered) >= self.sim.max_unanswered:
            return [venue_sim.Close(1000, "ping timeout")]
        ts = str(now.exchange_ms)
        self._unanswered.append(ts)
        return [venue_sim.Frame(gz({"op": "ping", "ts": ts}))]

    def render(self, pub: venue_sim.Publication) -> bytes | None:
        if not any(topic in self.held for topic in pub.topics):
            return None
        data = pub.cache.get("gzip")
        if not isinstance(data, bytes):
            data = pub.cache["gzip"] = gzip.compress(pub.payload.encode(), compresslevel=5,
                                                     mtime=0)
        return data


def _topic_key(topic: object) -> str | None:
    if not isinstance(topic, str):
        return None
    parts = topic.split(".")
    if len(parts) != 3 or parts[0] != "public" or parts[2] != "liquidation_orders":
        return None
    return parts[1] or None


def make(ctx: venue_sim.SimContext) -> HtxSim:
    return HtxSim(ctx)
