"""Bybit's fast paths: its busiest frames decoded into the fields they read, then valued.

``allLiquidation``, ``tickers`` and retired ``liquidation`` frames of the usual shape (the
venue's facts and sources are in ``monitor/venues/bybit.py``; the rules every fast path
keeps are in ``monitor/venues/fast.py``). Anything else, or anything unusual, goes to
the session's generic path.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from hashlib import blake2b

import msgspec
from msgspec import UNSET, UnsetType

import monitor.venues.dialect as dialect
import monitor.venues.fast as fast
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide

VENUE = "bybit"
# Per-symbol state a session keeps: garbage symbols must not grow it unbounded.
SYMBOL_STATE_LIMIT = 4096
# ``S`` is the POSITION side: Buy means a long was liquidated.
POSITION_SIDE = {"Buy": PositionSide.LONG, "Sell": PositionSide.SHORT}
_FULL = Completeness.FULL
_THROTTLED = Completeness.THROTTLED
_LONG = PositionSide.LONG
_SHORT = PositionSide.SHORT
_INF = math.inf
_NAN = math.nan
_ID_HEAD = VENUE + ":"

# (linear or inverse, coin, unit multiplier)
Terms = tuple[instr.ContractKind, str, float]
# What a topic is, for the fast path: one of these, and its symbol's terms.
_ALL, _TICKER, _RETIRED = 0, 1, 2
_TOPIC_KINDS = {"allLiquidation": _ALL, "tickers": _TICKER, "liquidation": _RETIRED}
# (topic kind, symbol, inverse, coin, unit multiplier, event-id hash state that has read
# "bybit␟symbol␟")
FastTerms = tuple[int, str, bool, str, float, blake2b]


class BybitRow(msgspec.Struct, gc=False):
    """One ``allLiquidation`` row: time, symbol, position side, size, bankruptcy price."""

    T: int
    s: str
    S: str
    v: str
    p: str


class BybitData(msgspec.Struct, gc=False):
    """The object ``data`` of a ``tickers`` frame or of a retired ``liquidation`` frame.

    The legacy fields are UNSET when absent: the generic path picks ``size`` over ``qty``
    and ``updatedTime`` over ``time`` by presence, so a null one must not pass for absent.
    They are named as :class:`BybitRow`'s (``s``, ``S``, ``v``, ``p``, ``T``), so that the
    rows' loop reads a legacy frame's order as one more row.
    """

    s: str = msgspec.field(name="symbol")
    markPrice: str | None = None
    S: str | UnsetType = msgspec.field(default=UNSET, name="side")
    p: str | UnsetType = msgspec.field(default=UNSET, name="price")
    v: str | UnsetType = msgspec.field(default=UNSET, name="size")
    qty: str | UnsetType = UNSET
    T: int | UnsetType = msgspec.field(default=UNSET, name="updatedTime")
    time: int | UnsetType = UNSET


class BybitFrame(msgspec.Struct, gc=False):
    """Any topic frame: ``data`` is the row array of ``allLiquidation``, else an object."""

    topic: str
    data: list[BybitRow] | BybitData
    type: str | None = None
    ts: int | None = None





_decode = msgspec.json.Decoder(BybitFrame).decode
_DECODE_ERRORS = fast.DECODE_ERRORS
_to_float = fast.to_float


class BybitFastPaths(abc.ABC):
    """The fast half of a Bybit session; the session supplies ``_terms`` and the state."""

    _book: instr.InstrumentBook
    _fast_terms: dict[str, FastTerms]
    _fast_version: int
    _marks: dict[str, float]

    @abc.abstractmethod
    def _terms(self, symbol: str) -> Terms:
        """Contract kind, coin and unit multiplier of a symbol (the session's cache)."""

    @abc.abstractmethod
    def parse_generic(self, text: str, received_at: float) -> list[dialect.Item]:
        """Every frame, every shape, every check: what the fast path falls back to."""

    def parse(self, text: str, received_at: float) -> list[dialect.Item]:
        # The decode, the dispatch and the rows are valued in this one method rather than a
        # method each: one Python call less per frame and one less per row (7 % of a
        # one-row frame's instructions). A frame the decoder refuses goes to the generic
        # path, and so does one the checks below cannot vouch for: never from inside an
        # ``except`` (a FrameError of the generic path would carry the decoder's error as
        # its context).
        try:
            frame = _decode(text)
        except _DECODE_ERRORS:
            frame = None
        if frame is None:
            return self.parse_generic(text, received_at)
        # The topic is looked up whole, in a cache of the topics read so far, rather than
        # its prefix compared: a slice and its compare cost ~800 instructions, the lookup
        # ~350, and it also gives the symbol's terms, which each row then only compares
        # its symbol to (no lookup a row). A row or ticker of another symbol than its
        # topic's, and a topic the cache refuses, go the generic way.
        if self._book.version != self._fast_version:
            self._fast_terms.clear()
            self._fast_version = self._book.version
        topic = frame.topic
        terms = self._fast_terms.get(topic)
        if terms is None:
            terms = self._fast_terms_of(topic)
            if terms is None:
                return self.parse_generic(text, received_at)
        kind, symbol, inverse, coin, mult, id_state = terms
        data = frame.data
        rows: Sequence[BybitRow]
        if kind == _ALL:
            if data.__class__ is not list or not data:
                return self.parse_generic(text, received_at)
            completeness = _FULL
            rows = data
        elif data.__class__ is not BybitData or data.s != symbol:
            return self.parse_generic(text, received_at)
        elif kind == _TICKER:
            # The ticker inline rather than a method of its own: one Python call less a
            # frame. The topic's terms said it is no option's (no dash: the generic path
            # names options; a future's dash is rare).
            ticker_type = frame.type
            ts = frame.ts
            if ticker_type not in ("snapshot", "delta") or ts is None:
                return self.parse_generic(text, received_at)
            raw = data.markPrice
            if raw is None or raw == "":
                return []
            try:
                price = _to_float(raw)
            except ValueError:  # not a number: refused below
                price = _NAN
            # to_float gives no infinity (it refuses what overflows): > 0 is in range.
            if not price > 0.0:
                return self.parse_generic(text, received_at)
            marks = self._marks
            seen = marks.get(symbol)
            if seen == price and ticker_type == "delta":
                return []
            if seen is None and len(marks) >= SYMBOL_STATE_LIMIT:
                return self.parse_generic(text, received_at)
            marks[symbol] = price
            return [MarkPrice(VENUE, symbol, coin, price / mult, ts, received_at)]
        else:  # a retired topic's order
            # v5's size and updatedTime, else the 2021 shape's qty and time. A missing side
            # fails the rows' side compare below.
            if data.v is UNSET or data.T is UNSET:
                if data.v is UNSET:
                    data.v = data.qty
                if data.T is UNSET:
                    data.T = data.time
                if data.v is UNSET or data.T is UNSET:
                    return self.parse_generic(text, received_at)
            if data.p is UNSET:
                return self.parse_generic(text, received_at)
            completeness = _THROTTLED
            # Every field a row has is set (checked above): the order reads as a row. Not
            # typing.cast, a Python call (2 % of the frame), for what mypy cannot narrow.
            rows = (data,)  # type: ignore[assignment]
        items: list[dialect.Item] = []
        for row in rows:
            raw_side = row.S
            # Compared, not looked up in POSITION_SIDE: a decoded string's hash is not cached.
            # The side's text in the id comes with its separators: two pieces fewer for the
            # f-string to join (~200 instructions).
            if raw_side == "Buy":
                side = _LONG
                side_text = "\x1fBuy\x1f"
            elif raw_side == "Sell":
                side = _SHORT
                side_text = "\x1fSell\x1f"
            else:
                return self.parse_generic(text, received_at)
            size_raw = row.v
            price_raw = row.p
            try:
                size = _to_float(size_raw)
                price = _to_float(price_raw)
            except ValueError:  # not a number: NaN fails the checks below
                size = price = _NAN
            # to_float gives no infinity (it refuses what overflows): > 0 is in range.
            if not (size > 0.0 and price > 0.0) or row.s != symbol:
                return self.parse_generic(text, received_at)
            if inverse:
                notional = size
                qty = size / price
            else:
                notional = size * price
                qty = size
            if not notional < _INF:
                return self.parse_generic(text, received_at)
            ts = row.T
            digest = id_state.copy()
            digest.update(f"{ts}{side_text}{size_raw}\x1f{price_raw}".encode())
            items.append(Liquidation(
                VENUE, symbol, coin, side, price / mult, qty * mult, notional, ts, received_at,
                completeness, _ID_HEAD + digest.hexdigest()))
        return items

    def _fast_terms_of(self, topic: str) -> FastTerms | None:
        """What the fast path needs of a topic; None for a topic it does not read, or
        whose symbol ``_terms`` refuses."""
        name, dot, symbol = topic.partition(".")
        kind = _TOPIC_KINDS.get(name)
        if kind is None or not dot or not symbol or (kind == _TICKER and "-" in symbol):
            return None
        try:
            contract_kind, coin, mult = self._terms(symbol)
        except FrameError:
            return None
        # The hash state has read "bybit␟symbol␟": each row copies it and feeds only its
        # own fields, which gives the digest event_id_from_fields gives for the whole text.
        terms = (kind, symbol, contract_kind is instr.ContractKind.INVERSE, coin, mult,
                 blake2b(f"{VENUE}\x1f{symbol}\x1f".encode(), digest_size=12))
        if len(self._fast_terms) >= SYMBOL_STATE_LIMIT:
            self._fast_terms.clear()
        self._fast_terms[topic] = terms
        return terms
