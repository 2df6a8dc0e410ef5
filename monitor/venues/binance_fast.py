"""Binance's fast paths: forceOrder events and the mark-price array decoded into the fields
they read, then valued for a symbol already in the session's cache.

The venue's facts and sources are in ``monitor/venues/binance.py``; the rules every fast
path keeps are in ``monitor/venues/fast.py``. Anything else, or anything unusual, goes
to the session's generic path, which also fills the cache.
"""

from __future__ import annotations

import abc
import math
from hashlib import blake2b
from typing import Literal

import msgspec

import monitor.venues.dialect as dialect
import monitor.venues.fast as fast
import monitor.venues.instruments as instr
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide

# ``o.S`` is the side of the forced ORDER: SELL means a long position was liquidated.
SIDE = {"SELL": PositionSide.LONG, "BUY": PositionSide.SHORT}
_THROTTLED = Completeness.THROTTLED
_LONG = PositionSide.LONG
_SHORT = PositionSide.SHORT
_INF = math.inf
_NAN = math.nan
_DECODE_ERRORS = fast.DECODE_ERRORS
_to_float = fast.to_float

# (coin, unit multiplier, USD per contract or 0.0 when unknown, event-id hash state, wanted).
# The hash state has already read "venue␟symbol␟": each frame copies it and feeds only its
# own fields, which gives the digest event_id_from_fields gives for the whole text.
SymbolInfo = tuple[str, float, float, blake2b, bool]


class BinanceOrder(msgspec.Struct, gc=False):
    """``o`` of a forceOrder event: symbol, order side, average price, filled quantity, time.

    The fields are in the venue's order: msgspec looks a key up from the field after the
    last one it matched, so keys in field order are found at the first compare.
    """

    s: str
    S: Literal["SELL", "BUY"]
    ap: str
    z: str
    T: int


class BinanceForceOrder(msgspec.Struct, gc=False):
    """``{"e":"forceOrder",...,"o":{...}}``, as the raw stream pushes it.

    ``e`` is a plain field checked by the caller: a Struct tag would let a frame without
    ``e`` through.
    """

    e: Literal["forceOrder"]
    o: BinanceOrder


class BinanceCombined(msgspec.Struct, gc=False):
    """``{"stream":"...","data":{"e":"forceOrder",...}}``, the combined-stream wrapping.

    ``stream`` must be there (the generic path reads a wrapper by ``stream`` and ``data``);
    its value is not read. An ``e`` beside them would make the generic path read the
    wrapper itself as the event: such a frame is refused.
    """

    stream: object
    data: BinanceForceOrder
    e: None = None


class BinanceMark(msgspec.Struct, gc=False):
    """One row of the ``!markPrice@arr`` array (``e`` is read on the first row only)."""

    s: str
    p: str
    E: int
    e: str = ""


decode_force_order = msgspec.json.Decoder(BinanceForceOrder).decode
decode_combined = msgspec.json.Decoder(BinanceCombined).decode
decode_marks = msgspec.json.Decoder(list[BinanceMark]).decode


class BinanceFastPaths(abc.ABC):
    """The fast half of a Binance session; the session supplies the cache and the rest."""

    _venue: str
    _id_head: str
    _book: instr.InstrumentBook
    _book_version: int
    _inverse: bool
    _cache: dict[str, SymbolInfo]

    @abc.abstractmethod
    def _reset(self) -> None:
        """Forget the per-symbol cache (the instrument book changed)."""

    @abc.abstractmethod
    def parse_generic(self, text: str, received_at: float) -> list[dialect.Item]:
        """Every frame, every shape, every check: what the fast path falls back to."""

    def parse(self, text: str, received_at: float) -> list[dialect.Item]:
        # A forceOrder frame is valued here rather than in a method of its own: one call
        # less per frame. A frame the decoder refuses, or one the checks below cannot vouch
        # for, goes to the generic path: never from inside an ``except`` (a FrameError of
        # the generic path would carry the decoder's error as its context).
        o = marks = None
        try:
            # Other streams of a combined connection (bookTicker, ticker...) would only be
            # refused by the decoder, which costs more than the generic path saves: a
            # frame goes to a forceOrder decoder only if it names forceOrder. Searched in
            # the whole text and the shape told by one character, rather than prefixes
            # compared: a slice and its compare cost ~1,000 instructions, as do
            # str.startswith and str.find with bounds (they parse their arguments as a
            # tuple); the search ~100 where it is found near the start, ~450 through a
            # bookTicker frame. A decoder refuses any other shape (the generic path's).
            if "forceOrder" in text:  # {"stream":... is the combined-stream wrapping
                o = (decode_combined(text).data.o if text[2] == "s"
                     else decode_force_order(text).o)
            elif text and text[0] == "[":
                marks = decode_marks(text)
        except _DECODE_ERRORS:
            pass
        if o is None:
            got = None if marks is None else self._fast_marks(marks, received_at)
            return self.parse_generic(text, received_at) if got is None else got
        if self._book.version != self._book_version:
            self._reset()
        symbol = o.s
        info = self._cache.get(symbol)
        if info is None:  # the generic path looks the symbol up and caches it
            return self.parse_generic(text, received_at)
        z_raw = o.z
        ap_raw = o.ap
        try:
            z = _to_float(z_raw)
            ap = _to_float(ap_raw)
        except ValueError:  # not a number: NaN fails the checks below
            z = ap = _NAN
        coin, mult, size, id_state, wanted = info
        if self._inverse:
            notional = z * size
            qty = notional / ap if ap > 0.0 else 0.0
        else:
            notional = z * ap
            qty = z
        # NaN fails every comparison, so this also refuses it.
        if not (ap > 0.0 and 0.0 < qty < _INF and 0.0 < notional < _INF):
            return self.parse_generic(text, received_at)
        if not wanted:
            return []
        # The side is a Literal: the decoder refused any other.
        raw_side = o.S
        ts = o.T
        digest = id_state.copy()
        digest.update(f"{ts}\x1f{raw_side}\x1f{z_raw}\x1f{ap_raw}".encode())
        return [Liquidation(
            self._venue, symbol, coin, _LONG if raw_side == "SELL" else _SHORT, ap / mult,
            qty * mult, notional, ts, received_at, _THROTTLED,
            self._id_head + digest.hexdigest())]

    def _fast_marks(self, rows: list[BinanceMark], received_at: float
                    ) -> list[dialect.Item] | None:
        if not rows or rows[0].e != "markPriceUpdate":
            return None
        if self._book.version != self._book_version:
            self._reset()
        cache = self._cache
        venue = self._venue
        items: list[dialect.Item] = []
        for row in rows:
            info = cache.get(row.s)
            try:
                price = _to_float(row.p)
            except ValueError:  # not a number
                return None
            if info is None or not 0.0 < price < _INF:
                return None
            if info[4]:  # wanted
                items.append(MarkPrice(venue, row.s, info[0], price / info[1], row.E,
                                       received_at))
        return items
