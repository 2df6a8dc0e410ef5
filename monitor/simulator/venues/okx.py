"""OKX v5 public websocket and instruments, as the simulator serves them.

* Websocket path ``/ws/v5/public``. ``{"op":"subscribe","args":[...]}`` is acked once per arg
  (``{"event":"subscribe","arg":{...},"connId":"..."}``); an unknown channel, instType or
  instId (a delisted one too) gets ``{"event":"error","code":"60018","msg":"Wrong URL or
  channel:...",...}`` for that argument alone; the request's other arguments are acked and
  flow (OKX refuses one argument at a time, reference/exchanges.md §4.8a).
* ``liquidation-orders`` per ``instType`` (SWAP, FUTURES): every push lists instruments in
  ``data``, each with a ``details`` array (several liquidations may share one). ``sz`` is in
  contracts of ``ctVal``; ``posSide`` is ``long``/``short`` (hedge mode) or ``net``, in which
  case ``side`` sell means a long was liquidated. The FIRST push after subscribing replays
  recent orders that were already sent on some connection (``data`` is empty when there are
  none), so skipping it and deduplicating it give the same counts.
* ``mark-price`` per ``instId``: the current mark right after the subscription, then on the
  price cadence.
* Text ``ping`` is answered with text ``pong``.
* REST ``/api/v5/public/instruments?instType=SWAP|FUTURES`` with ``ctVal``, ``ctMult``,
  ``ctValCcy``, ``ctType``, ``settleCcy``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, fmt, venue_price, venue_quantity

INST_TYPES = ("SWAP", "FUTURES", "MARGIN", "OPTION")
MARK_MS = 200


def _family(item: Listing) -> str:
    return "-".join(item.symbol.split("-")[:2])


class OkxSim(common.VenueSimBase):
    venue = "okx"
    price_interval_ms = MARK_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self.recent = common.RecentLiquidations()
        # instType -> liquidations not yet pushed
        self._pending: dict[str, list[venue_sim.Liq]] = {}

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        if request.path != "/api/v5/public/instruments":
            return None
        inst_type = request.query.get("instType", "")
        if not inst_type:
            return _rest_error(400, "50014", "Parameter instType can not be empty.")
        if inst_type not in (*INST_TYPES, "SPOT"):
            return _rest_error(400, "51000", "Parameter instType error")
        items = [i for i in self.rest_listings() if i.spec.category == inst_type]
        family = request.query.get("instFamily") or request.query.get("uly")
        if family:
            items = [i for i in items if _family(i) == family]
        if request.query.get("instId"):
            items = [i for i in items if i.symbol == request.query["instId"]]
        return common.json_reply({"code": "0", "msg": "", "data": [_instrument(i) for i in items]})

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> OkxSession | None:
        return OkxSession(self, reject) if path == "/ws/v5/public" else None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        item = self.listing(liq.event.instrument)
        self._pending.setdefault(item.spec.category, []).append(liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        out = []
        for inst_type, batch in self._pending.items():
            topic = f"liquidation-orders:{inst_type}"
            out.append(venue_sim.Publication(
                (topic,), self.liquidation_push(inst_type, batch), tuple(batch)))
            self.recent.add(topic, batch)
        self._pending = {}
        return out + self.price_publications(
            now.exchange_ms, lambda item: f"mark-price:{item.symbol}", self.mark_push)

    def liquidation_push(self, inst_type: str, batch: Sequence[venue_sim.Liq]) -> str:
        by_instrument: dict[str, list[dict[str, str]]] = {}
        for liq in batch:
            event = liq.event
            item = self.listing(event.instrument)
            long = event.position_side is PositionSide.LONG
            contracts = venue_quantity(item, event.qty_base, event.notional_usd)
            # Some accounts are in net mode: posSide "net", and the order side tells.
            pos_side = "net" if liq.seq % 3 == 0 else ("long" if long else "short")
            by_instrument.setdefault(item.symbol, []).append({
                "bkLoss": "0", "bkPx": fmt(venue_price(item, event.price), item.price_decimals),
                "ccy": "", "posSide": pos_side, "side": "sell" if long else "buy",
                "sz": fmt(contracts, item.qty_decimals), "ts": str(liq.ts_ms),
            })  # fmt: skip
        data = [
            {"details": details, "instFamily": _family(self.listing(inst)), "instId": inst,
             "instType": inst_type, "uly": _family(self.listing(inst))}
            for inst, details in by_instrument.items()
        ]  # fmt: skip
        arg = {"channel": "liquidation-orders", "instType": inst_type}
        return orjson.dumps({"arg": arg, "data": data}).decode()

    def mark_push(self, item: Listing, ts_ms: int) -> str:
        mark = fmt(venue_price(item, self.prices.get(item.coin)), item.price_decimals)
        data = [{"instId": item.symbol, "instType": item.spec.category, "markPx": mark,
                 "ts": str(ts_ms)}]  # fmt: skip
        arg = {"channel": "mark-price", "instId": item.symbol}
        return orjson.dumps({"arg": arg, "data": data}).decode()


def _instrument(item: Listing) -> dict[str, Any]:
    spec = item.spec
    inverse = item.inverse
    parts = spec.instrument.split("-")
    return {
        "alias": "" if item.contract_type == "perpetual" else "quarter", "baseCcy": "",
        "category": "1", "ctMult": "1", "ctType": "inverse" if inverse else "linear",
        "ctVal": fmt(spec.contract_size, 8).rstrip("0").rstrip("."),
        "ctValCcy": "USD" if inverse else spec.coin,
        "expTime": "" if item.contract_type == "perpetual" else "1774598400000",
        "instFamily": "-".join(parts[:2]), "instId": spec.instrument,
        "instType": spec.category, "lever": "100", "listTime": "1573557408000",
        "lotSz": fmt(10.0**-item.qty_decimals, item.qty_decimals),
        "maxLmtSz": "100000000", "maxMktSz": "12000", "minSz":
        fmt(10.0**-item.qty_decimals, item.qty_decimals), "optType": "", "quoteCcy": "",
        "settleCcy": spec.coin if inverse else spec.quote, "state": "live", "stk": "",
        "tickSz": fmt(10.0**-item.price_decimals, item.price_decimals),
        "uly": "-".join(parts[:2]),
    }  # fmt: skip


def _rest_error(status: int, code: str, message: str) -> venue_sim.RestReply:
    return common.json_reply({"code": code, "msg": message, "data": []}, status)


class OkxSession(common.SessionBase[OkxSim]):
    def __init__(self, sim: OkxSim, reject: bool) -> None:
        super().__init__(sim, reject)
        self.conn_id = common.conn_id()

    def _event(self, body: dict[str, Any], request_id: object) -> venue_sim.Frame:
        if request_id is not None:
            body = {"id": request_id, **body}
        return venue_sim.Frame(orjson.dumps({**body, "connId": self.conn_id}).decode())

    def _error(self, code: str, message: str, request_id: object) -> venue_sim.Frame:
        return self._event({"event": "error", "code": code, "msg": message}, request_id)

    def _topic(self, arg: object) -> str | None:
        if not isinstance(arg, dict):
            return None
        channel = arg.get("channel")
        if channel == "liquidation-orders" and arg.get("instType") in INST_TYPES:
            return f"liquidation-orders:{arg['instType']}"
        if channel == "mark-price" and arg.get("instId") in self.sim.listings:
            return f"mark-price:{arg['instId']}"
        return None

    def _held_topic(self, arg: object) -> str | None:
        if not isinstance(arg, dict):
            return None
        topic = f"{arg.get('channel')}:{arg.get('instId') or arg.get('instType')}"
        return topic if topic in self.held else None

    @staticmethod
    def _wrong(arg: object) -> str:
        if not isinstance(arg, dict):
            return "Wrong URL or channel:, doesn't exist."
        detail = ",".join(f"{k}:{v}" for k, v in arg.items() if k != "channel")
        return f"Wrong URL or channel:{arg.get('channel')},{detail} doesn't exist."

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        if text == "ping":
            return [venue_sim.Frame("pong")]
        request = common.json_request(text)
        if request is None:
            return [self._error("60012", f"Invalid request: {text[:100]}", None)]
        request_id = request.get("id")
        op = request.get("op")
        args = request.get("args")
        if op not in ("subscribe", "unsubscribe") or not isinstance(args, list) or not args:
            return [self._error("60012", f"Invalid request: {text[:100]}", request_id)]
        # Unsubscribing what the connection holds always works, delisted or not.
        topics = [None if self.reject else self._topic(arg) for arg in args]
        if op == "unsubscribe":
            topics = [t or self._held_topic(arg) for t, arg in zip(topics, args, strict=True)]
        # OKX answers each argument on its own: a bad one gets its 60018, the rest go on.
        out: list[venue_sim.Out] = [self._error("60018", self._wrong(arg), request_id)
                          for arg, topic in zip(args, topics, strict=True) if topic is None]
        good = [(arg, topic) for arg, topic in zip(args, topics, strict=True) if topic]
        valid = [topic for _arg, topic in good]
        if op == "unsubscribe":
            self.release(valid)
            return out + [self._event({"event": "unsubscribe", "arg": a}, request_id)
                          for a, _t in good]
        out += [self._event({"event": "subscribe", "arg": a}, request_id) for a, _t in good]
        self.hold(valid)
        for topic in valid:
            kind, _, key = topic.partition(":")
            if kind == "liquidation-orders":
                out.append(self._replay(topic, key))
            else:
                push = self.sim.mark_push(self.sim.listing(key), now.exchange_ms)
                out.append(venue_sim.Frame(push, is_data=True))
        return out

    def _replay(self, topic: str, inst_type: str) -> venue_sim.Frame:
        # Only orders some connection already received: a client that skips this push and
        # one that deduplicates it end with the same counts.
        replayed = [liq for liq in self.sim.recent.get(topic) if self.sim.ctx.was_sent(liq.seq)]
        return venue_sim.Frame(self.sim.liquidation_push(inst_type, replayed), True,
                               tuple(replayed))


def make(ctx: venue_sim.SimContext) -> OkxSim:
    return OkxSim(ctx)
