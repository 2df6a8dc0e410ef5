"""Bybit v5 linear and inverse: the ``allLiquidation`` and ``tickers`` dialect.

Facts (reference/exchanges.md §4):

* Two endpoints, ``{ws}/v5/public/linear`` and ``{ws}/v5/public/inverse``; a symbol
  subscribed on the wrong one is refused, so the lists stay apart.
* ``allLiquidation.{symbol}`` publishes every liquidation (completeness ``full``) in 500 ms
  batches; there is no all-symbols topic, so the instrument list comes from REST
  (``/v5/market/instruments-info``, paged by ``nextPageCursor``).
* ``S`` is the POSITION side: Buy means a long was liquidated. This is the opposite of
  Binance, whose ``S`` is the order side.
* Linear ``v`` is base units (notional = v × p); inverse ``v`` is 1-USD contracts
  (notional = v, qty_base = v / p). ``p`` is the bankruptcy price.
* The args of one connection may total at most 21,000 characters: topics are sharded.
* ``{"op":"ping"}`` every 20 s; the answer is ``{"ret_msg":"pong","op":"ping",...}``.
* ``tickers.{symbol}`` carries the mark price: a snapshot, then deltas that omit
  unchanged fields, merged here per symbol.
* Refusals (reference/exchanges.md §4.8a: ccxt issue 30284's raw-socket probe and PR 30439,
  ccxt pro bybit ``handleErrorMessage``, pybit PR 373, sieblyio/bybit-api issue 477): one
  unknown or already-subscribed topic makes Bybit refuse the WHOLE subscribe request,
  ``{"success":false,"ret_msg":"error:handler not found,topic:<first bad topic>",
  "req_id":..,"op":"subscribe"}``, naming only the first bad topic; the connection stays
  open and its other requests keep flowing. The refusal is read as a :class:`Rejection`
  of that topic and request, so the supervisor resubscribes the request's other topics
  (again until Bybit accepts). Topics are unsubscribed live with ``op: unsubscribe``.
* The retired ``liquidation.{symbol}`` topic (one per symbol per second, so ``throttled``)
  is still read, because recordings hold it.

``allLiquidation``, ``tickers`` and ``liquidation`` frames of the usual shape are first
decoded by the typed decoders of ``monitor/venues/bybit_fast.py`` into the fields they
read; anything else, or anything unusual, goes to :meth:`BybitSession.parse_generic`, which
gives every item, reason and notice as it always has.

Linear or inverse is decided, in this order, by the instrument book's spec, by the
endpoint the connection serves, and only when neither is known (``liqmon parse`` without
instruments) by the symbol: see :func:`kind_of_symbol`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson

import monitor.venues._json as _json
import monitor.venues.bybit_fast as bybit_fast
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import Completeness, Liquidation, MarkPrice, event_id_from_text

VENUE = bybit_fast.VENUE
SYMBOL_STATE_LIMIT = bybit_fast.SYMBOL_STATE_LIMIT
CATEGORIES = ("linear", "inverse")
ARGS_CHAR_LIMIT = 21_000
# Below the limit, so that new listings can be added to a live connection.
SHARD_ARGS_BUDGET = 18_000
ARGS_PER_FRAME = 10
PING_FRAME = '{"op":"ping"}'
_MONTH_CODES = frozenset("FGHJKMNQUVXZ")
# "error:handler not found,topic:X" (documented) or "Invalid symbol :[X]" (older servers).
_REFUSED_TOPIC = re.compile(r"topic:\s*([^\s,\]]+)|\[([^\]\s,]+)\]")


def kind_of_symbol(symbol: str) -> instr.ContractKind | None:
    """Linear or inverse from the symbol alone, the last resort when nothing else says.

    A USDT, USDC or PERP suffix, or a dash (``BTC-26DEC25``), is linear. A USD suffix
    (``BTCUSD``), or USD followed by a futures month code and year (``BTCUSDZ25``), is
    inverse. Options (``BTC-29DEC23-40000-C``) and anything else are unknown (None).
    """
    s = symbol.upper()
    if is_option_symbol(s):
        return None
    if "-" in s or s.endswith(("USDT", "USDC", "PERP")):
        return instr.ContractKind.LINEAR
    if len(s) > 3 and s.endswith("USD"):
        return instr.ContractKind.INVERSE
    if len(s) > 6 and s[-3] in _MONTH_CODES and s[-2:].isdigit() and s[:-3].endswith("USD"):
        return instr.ContractKind.INVERSE
    return None


def is_option_symbol(symbol: str) -> bool:
    """``BTC-29DEC23-40000-C`` or ``BTC-27DEC24-100000-P-USDT``: served only on /option."""
    parts = symbol.split("-")
    return len(parts) >= 4 and parts[3] in ("C", "P")


def coin_of_bybit_symbol(symbol: str, kind: instr.ContractKind) -> tuple[str, float]:
    """Coin and unit multiplier of a symbol. Raises ValueError when the symbol has no base."""
    s = symbol.upper()
    if kind is instr.ContractKind.INVERSE:
        core = s[:-3] if not s.endswith("USD") else s  # BTCUSDZ25 → BTCUSD
        if not core.endswith("USD") or len(core) <= 3:
            raise ValueError(f"no USD quote in {symbol!r}")
        return instr.normalise_coin(core[:-3])
    head = s.split("-", 1)[0]
    if head.endswith("PERP") and len(head) > 4:
        return instr.normalise_coin(head[:-4])
    try:
        base, _quote = instr.split_concatenated_symbol(head)
    except ValueError:
        if "-" not in s:
            raise
        base = head  # BTC-26DEC25: the part before the dash is the coin
    return instr.normalise_coin(base)


def _category_of_url(url: str) -> str | None:
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail in CATEGORIES else None


class BybitSession(bybit_fast.BybitFastPaths, dialect.SessionDefaults):
    """Parse state of one Bybit connection: merged tickers and per-symbol terms."""

    parse_generic = dialect.SessionDefaults.parse

    def __init__(self, book: instr.InstrumentBook, category: str | None = None) -> None:
        super().__init__(book, None)
        self._book_version = book.version
        self._category = category
        self._terms_cache: dict[str, bybit_fast.Terms] = {}
        self._fast_terms: dict[str, bybit_fast.FastTerms] = {}
        self._fast_version = book.version
        self._marks: dict[str, float] = {}

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        topic = msg.get("topic")
        if isinstance(topic, str):
            kind = topic.partition(".")[0]
            if kind == "allLiquidation":
                return self._all_liquidation(msg, received_at)
            if kind == "tickers":
                return self._ticker(msg, received_at)
            if kind == "liquidation":
                return self._legacy_liquidation(msg, received_at)
            return dialect.unknown("topic", topic)
        if "op" in msg or "success" in msg:
            return [_reply(msg)]
        return [dialect.Unrecognised("unknown_shape")]

    # -- the generic path -----------------------------------------------------------------

    def _all_liquidation(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        data = _json.req(msg, "data")
        rows = [data] if isinstance(data, dict) else _json.arr(data, "data")
        # One topic is one symbol: an unknown one holds the whole frame for the instruments.
        return dialect.read_rows(rows, lambda row: self._row(_json.obj(row, "data[]"), received_at),
                         raise_when=dialect.LONE_ROW, unknown_holds_frame=True)

    def _row(self, row: dict[str, Any], received_at: float) -> Liquidation:
        return self._liquidation(
            row, received_at, symbol_key="s", side_key="S", size_key="v", price_key="p",
            ts=_json.req_int(row, "T"), completeness=Completeness.FULL)

    def _legacy_liquidation(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        # v5 legacy: size/updatedTime; v2 (2021): qty/time. One order per frame.
        row = _json.obj(_json.req(msg, "data"), "data")
        size_key = "size" if "size" in row else "qty"
        ts = _json.req_int(row, "updatedTime" if "updatedTime" in row else "time")
        return [self._liquidation(
            row, received_at, symbol_key="symbol", side_key="side", size_key=size_key,
            price_key="price", ts=ts, completeness=Completeness.THROTTLED)]

    def _liquidation(self, row: dict[str, Any], received_at: float, *, symbol_key: str,
                     side_key: str, size_key: str, price_key: str, ts: int,
                     completeness: Completeness) -> Liquidation:
        symbol = _json.req_str(row, symbol_key)
        raw_side, side = _json.req_choice(row, side_key, bybit_fast.POSITION_SIDE)
        size_raw = _json.req(row, size_key)
        price_raw = _json.req(row, price_key)
        size = _json.positive(_json.to_float(size_raw, size_key), size_key)
        price = _json.positive(_json.to_float(price_raw, price_key), price_key)
        kind, coin, mult = self._terms(symbol)
        if kind is instr.ContractKind.INVERSE:
            notional, qty = size, size / price
        else:
            notional, qty = size * price, size
        if not notional < math.inf:
            raise FrameError(_json.BAD_VALUE, f"{symbol}: notional out of range")
        event_id = event_id_from_text(
            VENUE, f"{VENUE}\x1f{symbol}\x1f{ts}\x1f{raw_side}\x1f{size_raw}\x1f{price_raw}")
        return Liquidation(VENUE, symbol, coin, side, price / mult, qty * mult, notional, ts,
                           received_at, completeness, event_id)

    def _ticker(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        kind = msg.get("type")
        if kind not in ("snapshot", "delta"):
            return [dialect.Unrecognised("unknown_ticker_type")]
        data = _json.obj(_json.req(msg, "data"), "data")
        symbol = _json.req_str(data, "symbol")
        if is_option_symbol(symbol):
            return [dialect.Unrecognised("option_ticker")]
        ts = _json.req_int(msg, "ts")
        raw = data.get("markPrice")
        if raw is None or raw == "":
            return []  # an unchanged mark (delta) or none yet (pre-listing snapshot)
        price = _json.positive(_json.to_float(raw, "markPrice"), "markPrice")
        if kind == "delta" and self._marks.get(symbol) == price:
            return []
        _kind, coin, mult = self._terms(symbol)
        if len(self._marks) >= SYMBOL_STATE_LIMIT and symbol not in self._marks:
            self._marks.clear()  # only garbage symbols get here: a connection has < 1000
        self._marks[symbol] = price
        return [MarkPrice(VENUE, symbol, coin, price / mult, ts, received_at)]

    def mark_price(self, symbol: str) -> float | None:
        """The merged mark price of ``symbol`` as the venue quotes it, if one was seen."""
        return self._marks.get(symbol)

    def _terms(self, symbol: str) -> bybit_fast.Terms:
        if self._book.version != self._book_version:
            self._terms_cache.clear()
            self._book_version = self._book.version
        terms = self._terms_cache.get(symbol)
        if terms is not None:
            return terms
        spec = self._book.get(symbol)
        if spec is not None:
            terms = (spec.kind, spec.coin, spec.base_multiplier)
        else:
            kind = (instr.ContractKind(self._category) if self._category is not None
                    else kind_of_symbol(symbol))
            if kind is None:
                raise UnknownInstrument(VENUE, symbol)
            try:
                coin, mult = coin_of_bybit_symbol(symbol, kind)
            except ValueError:
                raise UnknownInstrument(VENUE, symbol) from None
            terms = (kind, coin, mult)
        if len(self._terms_cache) >= SYMBOL_STATE_LIMIT:  # garbage symbols must not grow it
            self._terms_cache.clear()
        self._terms_cache[symbol] = terms
        return terms


def _reply(msg: dict[str, Any]) -> dialect.Item:
    op = msg.get("op")
    ret_msg = msg.get("ret_msg")
    if op == "pong" or ret_msg == "pong":
        return dialect.Pong()
    if msg.get("success") is False:
        text = ret_msg if isinstance(ret_msg, str) and ret_msg else _json.compact(msg)
        found = _REFUSED_TOPIC.search(text) if op == "subscribe" else None
        if found is None:
            return dialect.Rejection(text)
        req_id = msg.get("req_id")
        return dialect.Rejection(text, found.group(1) or found.group(2),
                         req_id if isinstance(req_id, str) and req_id else None)
    if op == "subscribe" and msg.get("success") is True:
        return dialect.Ack(_json.describe(msg.get("req_id", "")))
    if op == "unsubscribe":
        return dialect.Info("unsubscribed")
    return dialect.Unrecognised("unknown_op")


class Bybit(dialect.DialectDefaults):
    venue = VENUE
    completeness = Completeness.FULL
    ping_interval_seconds = 20.0
    ping_text = PING_FRAME
    # needs_instruments stays False: valuing needs only linear/inverse, which the endpoint
    # or the symbol tells. The topic list does need the instruments: plans() is empty until
    # the book has them.
    subscribe_interval_seconds = 0.1

    def instrument_requests(self, rest_base_url: str) -> list[dialect.RestRequest]:
        base = rest_base_url.rstrip("/") + "/v5/market/instruments-info"
        return [dialect.RestRequest(key=c, url=f"{base}?category={c}&limit=1000")
                for c in CATEGORIES]

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        try:
            doc = _json.obj(_json.loads(body), "instruments-info")
            if doc.get("retCode", 0) != 0:
                message = _json.describe(doc.get("retMsg"))
                raise InstrumentFetchError(f"bybit instruments-info: {message}")
            result = _json.obj(_json.req(doc, "result"), "result")
            rows = _json.arr(_json.req(result, "list"), "list")
        except FrameError as exc:
            raise InstrumentFetchError(f"bybit instruments-info: {exc}") from None
        category = result.get("category")
        if category not in CATEGORIES:
            category = parse_qs(urlsplit(request.url).query).get("category", ["linear"])[0]
        specs = []
        for row in rows:
            try:
                specs.append(_spec(_json.obj(row, "list[]"), str(category)))
            except FrameError:
                continue  # one odd listing must not hide the others
        cursor = result.get("nextPageCursor")
        if not (isinstance(cursor, str) and cursor) or not rows:
            return specs, None
        first_url = request.url.split("&cursor=", 1)[0]
        stem, _, page = request.key.partition("#")
        next_request = dialect.RestRequest(
            key=f"{stem}#{int(page or 1) + 1}",
            url=f"{first_url}&cursor={quote(cursor, safe='%')}")
        return specs, next_request

    def plans(self, ws_base_url: str, instruments: instr.InstrumentBook
              ) -> list[dialect.ConnectionPlan]:
        base = ws_base_url.rstrip("/")
        plans = []
        for category in CATEGORIES:
            shards: list[list[str]] = []
            used = ARGS_CHAR_LIMIT  # forces a first shard
            for symbol in self._symbols(category, instruments):
                topics = (f"allLiquidation.{symbol}", f"tickers.{symbol}")
                cost = len(topics[0]) + len(topics[1])
                # Both topics of a symbol share a connection, so its price is its canary.
                if used + cost > SHARD_ARGS_BUDGET:
                    shards.append([])
                    used = 0
                shards[-1].extend(topics)
                used += cost
            for n, args in enumerate(shards):
                requests = self.topic_requests("subscribe", args, f"{category}-{n}")
                plans.append(dialect.ConnectionPlan(
                    f"{VENUE}-{category}-{n}", f"{base}/v5/public/{category}",
                    tuple(r.text for r in requests), expected_acks=len(requests),
                    subscribe_interval_seconds=self.subscribe_interval_seconds,
                    topics=tuple(args)))
        return plans

    def topic_requests(
        self, op: str, topics: Sequence[str], tag: str
    ) -> list[dialect.TopicRequest]:
        """Batches of ``ARGS_PER_FRAME`` topics; Bybit echoes ``req_id`` in its answer."""
        requests = []
        for i in range(0, len(topics), ARGS_PER_FRAME):
            batch = tuple(topics[i : i + ARGS_PER_FRAME])
            req_id = f"{tag}-{i // ARGS_PER_FRAME}"
            text = orjson.dumps({"req_id": req_id, "op": op, "args": batch}).decode()
            requests.append(dialect.TopicRequest(req_id, text, batch,
                                                 1 if op == "subscribe" else 0))
        return requests

    def _symbols(self, category: str, book: instr.InstrumentBook) -> list[str]:
        if self.settings.symbols is None:
            return sorted(s.instrument for s in book.in_category(category))
        chosen = []
        for symbol in self.settings.symbols:
            spec = book.get(symbol)
            kind = spec.kind if spec is not None else kind_of_symbol(symbol)
            # An unknown symbol goes to linear, where a rejection will name it.
            if (kind or instr.ContractKind.LINEAR).value == category:
                chosen.append(symbol)
        return sorted(chosen)

    def session(
        self, instruments: instr.InstrumentBook, plan: dialect.ConnectionPlan | None = None
    ) -> BybitSession:
        """Parse state for one connection; ``plan`` tells it which endpoint it serves."""
        return BybitSession(instruments, None if plan is None else _category_of_url(plan.url))


def _spec(row: dict[str, Any], category: str) -> instr.InstrumentSpec:
    symbol = _json.req_str(row, "symbol")
    contract_type = row.get("contractType")
    if isinstance(contract_type, str) and contract_type:
        inverse = "Inverse" in contract_type
        kind = instr.ContractKind.INVERSE if inverse else instr.ContractKind.LINEAR
    else:
        kind = instr.ContractKind(category)
    coin, mult = instr.normalise_coin(_json.req_str(row, "baseCoin"))
    quote_coin = row.get("quoteCoin")
    return instr.InstrumentSpec(
        VENUE, symbol, coin, kind, 1.0, quote_coin if isinstance(quote_coin, str) else "USD",
        base_multiplier=mult, category=kind.value)
