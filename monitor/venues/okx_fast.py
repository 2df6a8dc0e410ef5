"""OKX's fast paths: pushes of ``liquidation-orders`` (after an instrument type's first push)
and ``mark-price`` decoded into the fields they read, then valued from the book's terms.

The venue's facts and sources are in ``monitor/venues/okx.py``; the rules every fast path
keeps are in ``monitor/venues/fast.py``. Anything else, or anything unusual, goes to the
session's generic path.
"""

from __future__ import annotations

import abc
import math
from hashlib import blake2b
from typing import Annotated, Literal

import msgspec

import monitor.venues.dialect as dialect
import monitor.venues.fast as fast
import monitor.venues.instruments as instr
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.venues.okx_instruments import VENUE

LIQUIDATION_CHANNEL = "liquidation-orders"
MARK_CHANNEL = "mark-price"
_LONG = PositionSide.LONG
_SHORT = PositionSide.SHORT
_THROTTLED = Completeness.THROTTLED
_INF = math.inf
_NAN = math.nan
_ID_HEAD = VENUE + ":"
_TS_13_DIGITS = 10**12
_FAST_TERMS_LIMIT = 4096  # instIds of garbage frames must not grow it unbounded
# (inverse, contract size, coin, unit multiplier, event-id hash state)
FastTerms = tuple[bool, float, str, float, blake2b]


class OkxArg(msgspec.Struct, gc=False):
    """``arg``: the channel, and for ``liquidation-orders`` the instrument type.

    Both are Literals: msgspec hands back the one string object of each value rather than
    a fresh copy (no allocation, and a hash computed once, for the ``_pushed`` lookup). A
    channel or type the Literal does not name is refused: the generic path reads it.
    """

    channel: Literal["liquidation-orders", "mark-price"]
    instType: Literal["SWAP", "FUTURES", "MARGIN", "OPTION", "SPOT", "ANY"] | None = None


# The fields of the Structs below are in the venue's order (keyword-only, so that required
# and optional ones can mix): msgspec looks a key up from the field after the last one it
# matched, so keys in field order are found at the first compare.


class OkxDetail(msgspec.Struct, gc=False, kw_only=True):
    """One liquidated order of ``liquidation-orders``; ``ts`` is a string of milliseconds.

    The fast path takes 13 of them (2001-09-09 to 2286-11-20), checked by the decoder; any
    other length goes to the generic path, which reads up to 16 digits.
    """

    bkPx: str
    posSide: str | None = None
    side: str | None = None
    sz: str
    ts: Annotated[str, msgspec.Meta(min_length=13, max_length=13)]


class OkxRow(msgspec.Struct, gc=False, kw_only=True):
    """A ``liquidation-orders`` row (``details``) or a ``mark-price`` row (``markPx``)."""

    details: list[OkxDetail] | None = None
    instId: str
    markPx: str | None = None
    ts: str | None = None


class OkxFrame(msgspec.Struct, gc=False):
    """A push: ``arg`` and ``data``. A frame with a non-null ``event`` is a notice."""

    arg: OkxArg
    data: list[OkxRow]
    event: None = None


_decode = msgspec.json.Decoder(OkxFrame).decode
_DECODE_ERRORS = fast.DECODE_ERRORS
_to_float = fast.to_float
_to_int = fast.to_int


class OkxFastPaths(abc.ABC):
    """The fast half of an OKX session; the session supplies the book and the state."""

    instruments: instr.InstrumentBook
    watched: frozenset[str] | None
    _pushed: set[str]
    _fast_terms: dict[str, FastTerms]
    _fast_version: int

    @abc.abstractmethod
    def parse_generic(self, text: str, received_at: float) -> list[dialect.Item]:
        """Every frame, every shape, every check: what the fast path falls back to."""

    def parse(self, text: str, received_at: float) -> list[dialect.Item]:
        # The decode, the dispatch and the liquidations are in this one method rather than
        # a method each: one Python call less per frame (5 % of a frame's instructions). A
        # frame the decoder refuses ("pong" too) goes to the generic path, and so does one
        # the checks below cannot vouch for: never from inside an ``except`` (a FrameError of
        # the generic path would carry the decoder's error as its context).
        try:
            frame = _decode(text)
        except _DECODE_ERRORS:
            frame = None
        if frame is None:
            return self.parse_generic(text, received_at)
        arg = frame.arg
        if arg.channel != LIQUIDATION_CHANNEL:
            got = self._fast_marks(frame.data, received_at)
            return self.parse_generic(text, received_at) if got is None else got
        # The first push of an instrument type is the generic path's (its replays).
        if arg.instType not in self._pushed:
            return self.parse_generic(text, received_at)
        watched = self.watched
        if self.instruments.version != self._fast_version:
            self._fast_terms.clear()
            self._fast_version = self.instruments.version
        cache = self._fast_terms
        items: list[dialect.Item] = []
        for row in frame.data:
            inst_id = row.instId
            details = row.details
            if details is None or not inst_id:
                return self.parse_generic(text, received_at)
            if watched is not None and inst_id not in watched:
                continue
            terms = cache.get(inst_id)
            if terms is None:
                terms = self._fast_terms_of(inst_id)
                if terms is None:
                    return self.parse_generic(text, received_at)
            inverse, size, coin, mult, id_state = terms
            for d in details:
                pos_side = d.posSide
                side = d.side
                if pos_side == "long":
                    position_side = _LONG
                elif pos_side == "short":
                    position_side = _SHORT
                elif pos_side in (None, "", "net") and side in ("sell", "buy"):
                    # Net mode: the forced order's side; a forced sell closed a long.
                    position_side = _LONG if side == "sell" else _SHORT
                else:
                    return self.parse_generic(text, received_at)
                ts_raw = d.ts
                sz_raw = d.sz
                px_raw = d.bkPx
                try:
                    contracts = _to_float(sz_raw)
                    bk_px = _to_float(px_raw)
                    # 13 characters read as a JSON integer >= 10**12 are 13 digits: no sign,
                    # no space, no leading zero (to_int refuses those), as the generic path
                    # takes them; no str method call needed.
                    ts = _to_int(ts_raw)
                except ValueError:  # not a number (or leading zeros): fails the checks below
                    contracts = bk_px = _NAN
                    ts = -1
                # to_float gives no infinity (it refuses what overflows): > 0 is in range.
                if not (contracts > 0.0 and bk_px > 0.0 and ts >= _TS_13_DIGITS):
                    return self.parse_generic(text, received_at)
                if inverse:
                    notional = contracts * size
                    qty_quoted = notional / bk_px
                else:
                    qty_quoted = contracts * size
                    notional = qty_quoted * bk_px
                qty_base = qty_quoted * mult
                if not (notional < _INF and qty_base < _INF):
                    return self.parse_generic(text, received_at)
                digest = id_state.copy()
                digest.update(f"{ts_raw}\x1f{side}\x1f{sz_raw}\x1f{px_raw}".encode())
                items.append(Liquidation(
                    VENUE, inst_id, coin, position_side, bk_px / mult, qty_base, notional,
                    ts, received_at, _THROTTLED, _ID_HEAD + digest.hexdigest()))
        return items

    def _fast_terms_of(self, inst_id: str) -> FastTerms | None:
        """What the fast path needs of an instrument; None for what only the generic path
        values or refuses (unknown, or linear in a quote that is not USD-like)."""
        spec = self.instruments.get(inst_id)
        if spec is None or not (spec.kind is instr.ContractKind.INVERSE or (
                spec.kind is instr.ContractKind.LINEAR and spec.quote in instr.USD_LIKE)):
            return None
        # The hash state has read "okx␟instId␟": each order copies it and feeds only its
        # own fields, which gives the digest event_id_from_fields gives for the whole text.
        terms = (spec.kind is instr.ContractKind.INVERSE, spec.contract_size, spec.coin,
                 spec.base_multiplier, blake2b(f"{VENUE}\x1f{inst_id}\x1f".encode(),
                                               digest_size=12))
        if len(self._fast_terms) >= _FAST_TERMS_LIMIT:
            self._fast_terms.clear()
        self._fast_terms[inst_id] = terms
        return terms

    def _fast_marks(self, rows: list[OkxRow], received_at: float) -> list[dialect.Item] | None:
        get = self.instruments.get
        items: list[dialect.Item] = []
        for row in rows:
            inst_id = row.instId
            ts_raw = row.ts
            raw = row.markPx
            if raw is None or ts_raw is None or not inst_id:
                return None
            if not (len(ts_raw) <= 16 and ts_raw.encode().isdigit()):
                return None
            try:
                price = _to_float(raw)
                ts = _to_int(ts_raw)
            except ValueError:  # not a number, or leading zeros
                return None
            spec = get(inst_id)
            if spec is None or not 0.0 < price < _INF:
                return None
            items.append(MarkPrice(VENUE, inst_id, spec.coin, price / spec.base_multiplier,
                                   ts, received_at))
        return items or None
