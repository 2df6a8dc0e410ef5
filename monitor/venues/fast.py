"""Typed decoders for the happy shapes of the busiest frames (msgspec Structs).

A parser's fast path decodes a frame straight into the few fields it reads: no dict is built
for the frame, its rows, or the fields nobody reads (typed decoding skips them), and types
are checked by the decoder rather than by a helper call per field. Each Struct names only
what the generic path of its venue requires of that shape, with the JSON types it takes
when the venue is well behaved (prices as strings, timestamps as integers...).

A frame these decoders refuse (any :data:`DECODE_ERRORS`), and a decoded frame whose values
the fast path cannot vouch for (NaN, <= 0, an unknown instrument, an unknown side...), goes
to the venue's generic path, which gives today's items, reasons and notices: the fast path
never decides anything the generic path would decide differently; it only skips work for
frames the generic path would accept. Unknown fields are ignored, as the generic paths do.
Sources for each shape are the venue modules' docstrings; the decoders hold no state.

One known difference, kept on purpose: a number literal beyond a double's range (``1e999``)
in a field no parser reads. orjson refuses such a frame whole (``malformed_json``); msgspec
skips unread fields without converting them, so the fast path reads the frame's
liquidation. Venues do not send such literals; if one did, reading the fields that matter
is the better answer.
"""

from __future__ import annotations

import msgspec
from msgspec import UNSET, UnsetType

# What a refused frame raises: DecodeError (ValidationError is a subclass) for bad JSON or a
# type the Struct does not take; RecursionError for too deep a nesting; UnicodeEncodeError
# for a str with lone surrogates (which orjson refuses as malformed JSON on the generic path).
DECODE_ERRORS = (msgspec.DecodeError, RecursionError, UnicodeError)


# -- Binance USD-M / COIN-M -------------------------------------------------------------


class BinanceOrder(msgspec.Struct, gc=False):
    """``o`` of a forceOrder event: symbol, order side, filled quantity, average price."""

    s: str
    S: str
    T: int
    z: str
    ap: str


class BinanceForceOrder(msgspec.Struct, gc=False):
    """``{"e":"forceOrder",...,"o":{...}}``, as the raw stream pushes it.

    ``e`` is a plain field checked by the caller: a Struct tag would let a frame without
    ``e`` through.
    """

    e: str
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


binance_force_order = msgspec.json.Decoder(BinanceForceOrder).decode
binance_combined = msgspec.json.Decoder(BinanceCombined).decode
binance_marks = msgspec.json.Decoder(list[BinanceMark]).decode


# -- Bybit v5 ---------------------------------------------------------------------------


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


bybit_frame = msgspec.json.Decoder(BybitFrame).decode


# -- OKX v5 -----------------------------------------------------------------------------


class OkxArg(msgspec.Struct, gc=False):
    channel: str
    instType: str | None = None


class OkxDetail(msgspec.Struct, gc=False):
    """One liquidated order of ``liquidation-orders``; ``ts`` is a string of milliseconds."""

    ts: str
    sz: str
    bkPx: str
    side: str | None = None
    posSide: str | None = None


class OkxRow(msgspec.Struct, gc=False):
    """A ``liquidation-orders`` row (``details``) or a ``mark-price`` row (``markPx``)."""

    instId: str
    details: list[OkxDetail] | None = None
    markPx: str | None = None
    ts: str | None = None


class OkxFrame(msgspec.Struct, gc=False):
    """A push: ``arg`` and ``data``. A frame with a non-null ``event`` is a notice."""

    arg: OkxArg
    data: list[OkxRow]
    event: None = None


okx_frame = msgspec.json.Decoder(OkxFrame).decode
