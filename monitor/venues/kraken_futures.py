"""Kraken Futures: liquidations from the ``trade`` feed, mark prices from ``ticker``.

Facts (reference/exchanges.md §11):

* ``{ws}/ws/v1``; ``{"event":"subscribe","feed":"trade","product_ids":[...]}``, acknowledged
  by ``{"event":"subscribed",...}``; refusals come as ``{"event":"error","message":...}`` or
  ``{"event":"subscribed_failed",...}``. The first push per product is a ``trade_snapshot``
  of recent trades: skipped, it is history, not news.
* Every trade carries ``type``: ``fill``, ``liquidation``, ``termination``, ``block``. Only
  ``liquidation`` counts, and Kraken publishes every one: completeness ``full``.
* ``side`` is the TAKER's side; a liquidation order is taken to be the taker, so ``sell``
  means a long was liquidated. That the liquidated account is always the taker is
  UNCONFIRMED (tardis maps it the same way).
* ``PF_`` (multi-collateral, linear) quantities are base units: notional = qty × price.
  ``PI_``/``FI_`` (inverse) quantities are USD contracts: notional = qty (× contractSize,
  which is 1). ``FF_`` is read as linear (UNCONFIRMED). The product prefix decides, so a
  liquidation is valued without REST; the instrument list is needed only to know what to
  subscribe.
* Keepalive: Kraken asks for "a ping at least every 60 s"; its own sample client sends
  WebSocket protocol pings (``run_forever(ping_interval=30)``), as do python-kraken-sdk and
  nautilus. The supervisor sends protocol pings every 20 s, so no application ping is
  sent: an unknown ``{"event":"ping"}`` could come back as an ``error`` event, which would
  read as a refused subscription. The ticker feed keeps data flowing for the watchdog.
* ``uid`` is the trade's id and the dedupe key.
* Refusals are per product (reference/exchanges.md §4.8a): Kraken Futures' websocket docs
  list the answers to a subscribe as ``subscribed``, ``subscribed_failed``, ``unsubscribed``
  and ``unsubscribed_failed``, each echoing ``feed`` and ``product_ids``. A
  ``subscribed_failed`` naming one product is read as the refusal of that topic alone
  (topics are spelled ``feed:product``, ``trade:PF_XBTUSD``); an ``error`` event names no
  product (``Invalid product id``, ``Json Error``) and stays a refusal of the whole
  subscription. Products are unsubscribed live with ``event: unsubscribe``. That Kraken
  names the refused product in ``product_ids`` of its ``subscribed_failed`` is UNCONFIRMED
  (the docs list the event and its echoed fields; no recorded refusal was found).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide

VENUE = "kraken-futures"
INSTRUMENTS_PATH = "/derivatives/api/v3/instruments"
LINEAR_PREFIXES = ("PF_", "FF_")
INVERSE_PREFIXES = ("PI_", "FI_")
# Kraken documents no per-connection limit; 100 products (200 subscriptions with the
# ticker) keeps each socket's snapshot burst modest.
MAX_PRODUCTS_PER_CONNECTION = 100
# Until the instrument list arrives, the biggest perpetual keeps the socket useful.
FALLBACK_PRODUCTS = ("PF_XBTUSD",)
_SIDE = {"sell": PositionSide.LONG, "buy": PositionSide.SHORT}
_REFUSALS = ("error", "subscribed_failed")
FEEDS = ("trade", "ticker")


def product_terms(product: str) -> tuple[str, float, bool]:
    """Coin, unit multiplier and inverse-ness of a Kraken product id (``PF_XBTUSD``).

    Raises FrameError for a product id of no known family.
    """
    upper = product.upper()
    if upper.startswith(LINEAR_PREFIXES):
        inverse = False
    elif upper.startswith(INVERSE_PREFIXES):
        inverse = True
    else:
        raise FrameError(
            _json.BAD_VALUE, f"product_id: not a PF_/PI_/FI_/FF_ product: {product!r:.40}"
        )
    parts = upper.split("_")
    try:
        base, _quote = instr.split_concatenated_symbol(parts[1])
    except (IndexError, ValueError):
        raise FrameError(_json.BAD_VALUE, f"product_id: no pair in {product!r:.40}") from None
    coin, mult = instr.normalise_coin(base)
    return coin, mult, inverse


class KrakenFuturesSession(dialect.SessionDefaults):
    """Parse state of one Kraken Futures connection (none beyond the instrument book)."""

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        feed = msg.get("feed")
        if "event" in msg:
            return self._event(msg)
        if feed == "trade":
            return self._trade(msg, received_at)
        if feed == "ticker":
            return self._ticker(msg, received_at)
        if feed == "trade_snapshot":
            return [dialect.Info("trade_snapshot")]
        if feed in ("heartbeat", "ticker_lite"):
            return [dialect.Info(str(feed))]
        return dialect.unknown("feed", feed)

    def _event(self, msg: dict[str, Any]) -> list[dialect.Item]:
        event = msg.get("event")
        if event == "subscribed":
            return [dialect.Ack(_json.describe(msg.get("feed")))]
        if event in _REFUSALS:
            message = msg.get("message")
            text = message if isinstance(message, str) else _json.compact(msg, 500)
            products = msg.get("product_ids")
            feed = msg.get("feed")
            if (event == "subscribed_failed" and isinstance(feed, str) and isinstance(
                    products, list) and len(products) == 1 and isinstance(products[0], str)):
                return [dialect.Rejection(text, f"{feed}:{products[0]}")]
            return [dialect.Rejection(text)]
        if event == "pong":
            return [dialect.Pong()]
        if event in ("info", "unsubscribed", "alert"):
            return [dialect.Info(str(event))]
        return [dialect.Unrecognised("unknown_event")]

    def _trade(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        kind = _json.req(msg, "type")
        if kind != "liquidation":
            if isinstance(kind, str):
                return []
            raise FrameError(
                _json.BAD_VALUE, f"type: expected a string, got {_json.describe(kind)}"
            )
        return [self._liquidation(msg, received_at)] if self._is_wanted(msg) else []

    def _is_wanted(self, msg: dict[str, Any]) -> bool:
        product = msg.get("product_id")
        return self._wanted is None or (isinstance(product, str) and product in self._wanted)

    def _liquidation(self, msg: dict[str, Any], received_at: float) -> Liquidation:
        product = _json.req_str(msg, "product_id")
        _raw_side, side = _json.req_choice(msg, "side", _SIDE)
        qty = _json.positive(_json.req_float(msg, "qty"), "qty")
        price = _json.positive(_json.req_float(msg, "price"), "price")
        ts = _json.req_int(msg, "time")
        uid = _json.req_str(msg, "uid")
        coin, mult, inverse = product_terms(product)
        spec = self._book.get(product)
        if spec is not None:
            coin, mult = spec.coin, spec.base_multiplier
        if inverse:
            size = spec.contract_size if spec is not None else 1.0
            notional = qty * size
            qty_base = notional / price
        else:
            notional = qty * price
            qty_base = qty
        _json.in_range(product, notional, qty_base)
        return Liquidation(
            venue=VENUE, instrument=product, coin=coin, position_side=side,
            price=price / mult, qty_base=qty_base * mult, notional_usd=notional,
            exchange_ts_ms=ts, received_at=received_at, completeness=Completeness.FULL,
            event_id=f"{VENUE}:{uid}")

    def _ticker(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        if not self._is_wanted(msg):
            return []
        product = _json.req_str(msg, "product_id")
        price = _json.positive(_json.req_float(msg, "markPrice"), "markPrice")
        ts = _json.req_int(msg, "time")
        coin, mult, _inverse = product_terms(product)
        spec = self._book.get(product)
        if spec is not None:
            coin, mult = spec.coin, spec.base_multiplier
        return [MarkPrice(VENUE, product, coin, price / mult, ts, received_at)]


class KrakenFutures(dialect.DialectDefaults):
    """Protocol pings only (see the module docstring); no instruments needed to value a
    liquidation: the product prefix tells inverse from linear."""

    venue = VENUE
    session_type = KrakenFuturesSession
    completeness = Completeness.FULL
    instrument_document = ("instruments", INSTRUMENTS_PATH)

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        rows = dialect.read_document(f"{VENUE} instruments", body, lambda doc: _json.arr(
            _json.req(_json.obj(doc, "instruments document"), "instruments"), "instruments"))
        # Indices (in_, rr_), spot-like rows and odd listings are skipped.
        return dialect.read_specs(rows, lambda row: self._spec(_json.obj(row, "instrument"))), None

    def _spec(self, row: dict[str, Any]) -> instr.InstrumentSpec | None:
        if row.get("tradeable") is False:
            return None
        symbol = _json.req_str(row, "symbol").upper()
        coin, mult, inverse = product_terms(symbol)
        base = row.get("base")
        if isinstance(base, str) and base:
            coin, mult = instr.normalise_coin(base)
        size = _json.opt_float(row, "contractSize", 1.0) or 1.0
        kind = instr.ContractKind.INVERSE if inverse else instr.ContractKind.LINEAR
        quote = row.get("quote")
        return instr.InstrumentSpec(
            VENUE, symbol, coin, kind, size, quote if isinstance(quote, str) and quote else "USD",
            base_multiplier=mult, category=str(row.get("type") or kind.value))

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/ws/v1"
        if self.wanted is not None:
            products = sorted(self.wanted)
        else:
            products = sorted(s.instrument for s in instruments) or list(FALLBACK_PRODUCTS)
        plans = []
        for n, shard in enumerate(dialect.chunks(products, MAX_PRODUCTS_PER_CONNECTION)):
            topics = tuple(f"{feed}:{product}" for feed in FEEDS for product in shard)
            requests = self.topic_requests("subscribe", topics, "")
            plans.append(dialect.ConnectionPlan(dialect.plan_name(VENUE, n), url,
                                                tuple(r.text for r in requests),
                                                expected_acks=sum(r.acks for r in requests),
                                                topics=topics))
        return plans

    def topic_requests(
        self, op: str, topics: Sequence[str], tag: str
    ) -> list[dialect.TopicRequest]:
        """One request per feed; Kraken echoes no request id."""
        requests = []
        for feed in FEEDS:
            products = tuple(t.partition(":")[2] for t in topics if t.startswith(f"{feed}:"))
            if products:
                text = orjson.dumps({"event": op, "feed": feed, "product_ids": products})
                # One "subscribed" per request is the minimum; per-product acks finish early.
                requests.append(dialect.TopicRequest("", text.decode(),
                                                     tuple(f"{feed}:{p}" for p in products),
                                                     1 if op == "subscribe" else 0))
        return requests
