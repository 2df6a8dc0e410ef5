"""Bybit's fast paths: its busiest frames decoded into the fields they read, then valued.

``allLiquidation``, ``tickers`` and retired ``liquidation`` frames of the usual shape (the
venue's facts and sources are in ``monitor/venues/bybit.py``; the rules every fast path
keeps are in ``monitor/venues/fast.py``). Anything else, or anything unusual, gives None
and goes to the session's generic path.
"""

from __future__ import annotations

import abc
import math
from hashlib import blake2b

import msgspec
from msgspec import UNSET, UnsetType

import monitor.venues.dialect as dialect
import monitor.venues.fast as fast
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide, new_liquidation

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
_ID_HEAD = VENUE + ":"

# (linear or inverse, coin, unit multiplier)
Terms = tuple[instr.ContractKind, str, float]
# (inverse, coin, unit multiplier, event-id hash state that has read "bybit␟symbol␟")
FastTerms = tuple[bool, str, float, blake2b]


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
    """

    symbol: str
    markPrice: str | None = None
    side: str | UnsetType = UNSET
    price: str | UnsetType = UNSET
    size: str | UnsetType = UNSET
    qty: str | UnsetType = UNSET
    updatedTime: int | UnsetType = UNSET
    time: int | UnsetType = UNSET


class BybitFrame(msgspec.Struct, gc=False):
    """Any topic frame: ``data`` is the row array of ``allLiquidation``, else an object."""

    topic: str
    data: list[BybitRow] | BybitData
    type: str | None = None
    ts: int | None = None





class BybitFastPaths(fast.FastFirst):
    """The fast half of a Bybit session; the session supplies ``_terms`` and the state."""

    # An unknown symbol raises FrameError in _terms: such a frame is the generic path's too.
    parse = fast.fast_first(msgspec.json.Decoder(BybitFrame).decode,
                            (*fast.FAST_REFUSED, FrameError))
    _book: instr.InstrumentBook
    _fast_terms: dict[str, FastTerms]
    _fast_version: int
    _marks: dict[str, float]

    @abc.abstractmethod
    def _terms(self, symbol: str) -> Terms:
        """Contract kind, coin and unit multiplier of a symbol (the session's cache)."""

    def parse_fast(self, frame: BybitFrame, received_at: float) -> list[dialect.Item] | None:
        # Prefixes compared as slices: str.startswith parses its arguments as a tuple, which
        # costs more than the copy. A bare "allLiquidation" topic goes the generic way,
        # which gives the same.
        topic = frame.topic
        data = frame.data
        if data.__class__ is list:
            if topic[:15] != "allLiquidation." or not data:
                return None
            items: list[dialect.Item] = []
            for row in data:
                liq = self._fast_liquidation(row.s, row.S, row.v, row.p, row.T, _FULL,
                                             received_at)
                if liq is None:
                    return None
                items.append(liq)
            return items
        if data.__class__ is not BybitData:
            return None
        obj = data
        if topic[:12] == "liquidation.":
            size = obj.size if obj.size is not UNSET else obj.qty
            ts = obj.updatedTime if obj.updatedTime is not UNSET else obj.time
            if (size is UNSET or ts is UNSET or obj.side is UNSET
                    or obj.price is UNSET):
                return None
            liq = self._fast_liquidation(obj.symbol, obj.side, size, obj.price, ts,
                                         _THROTTLED, received_at)
            return None if liq is None else [liq]
        if topic[:8] == "tickers.":
            return self._fast_ticker(frame, obj, received_at)
        return None

    def _fast_liquidation(self, symbol: str, raw_side: str, size_raw: str, price_raw: str,
                          ts: int, completeness: Completeness, received_at: float
                          ) -> Liquidation | None:
        # Compared, not looked up in POSITION_SIDE: a decoded string's hash is not cached yet.
        if raw_side == "Buy":
            side = _LONG
        elif raw_side == "Sell":
            side = _SHORT
        else:
            return None
        size = float(size_raw)
        price = float(price_raw)
        if not symbol or not (0.0 < size < _INF and 0.0 < price < _INF):
            return None
        if self._book.version != self._fast_version:
            self._fast_terms.clear()
            self._fast_version = self._book.version
        terms = self._fast_terms.get(symbol)
        if terms is None:
            terms = self._fast_terms_of(symbol)
        inverse, coin, mult, id_state = terms
        if inverse:
            notional, qty = size, size / price
        else:
            notional, qty = size * price, size
        if not notional < _INF:
            return None
        digest = id_state.copy()
        digest.update(f"{ts}\x1f{raw_side}\x1f{size_raw}\x1f{price_raw}".encode())
        return new_liquidation(
            VENUE, symbol, coin, side, price / mult, qty * mult, notional, ts, received_at,
            completeness, _ID_HEAD + digest.hexdigest())

    def _fast_terms_of(self, symbol: str) -> FastTerms:
        kind, coin, mult = self._terms(symbol)
        # The hash state has read "bybit␟symbol␟": each row copies it and feeds only its
        # own fields, which gives the digest event_id_from_fields gives for the whole text.
        terms = (kind is instr.ContractKind.INVERSE, coin, mult,
                 blake2b(f"{VENUE}\x1f{symbol}\x1f".encode(), digest_size=12))
        if len(self._fast_terms) >= SYMBOL_STATE_LIMIT:
            self._fast_terms.clear()
        self._fast_terms[symbol] = terms
        return terms

    def _fast_ticker(self, frame: BybitFrame, data: BybitData,
                     received_at: float) -> list[dialect.Item] | None:
        kind = frame.type
        symbol = data.symbol
        ts = frame.ts
        # A dash may be an option's (the generic path names those); a future's is rare.
        if kind not in ("snapshot", "delta") or not symbol or "-" in symbol or ts is None:
            return None
        raw = data.markPrice
        if raw is None or raw == "":
            return []
        price = float(raw)
        if not 0.0 < price < _INF:
            return None
        marks = self._marks
        if kind == "delta" and marks.get(symbol) == price:
            return []
        _kind, coin, mult = self._terms(symbol)
        if len(marks) >= SYMBOL_STATE_LIMIT and symbol not in marks:
            return None
        marks[symbol] = price
        return [MarkPrice(VENUE, symbol, coin, price / mult, ts, received_at)]
