"""Fast parse paths: typed decoders for the happy shapes of the busiest frames.

A parser's fast path decodes a frame straight into the few fields it reads: no dict is built
for the frame, its rows, or the fields nobody reads (typed decoding skips them), and types
are checked by the decoder rather than by a helper call per field. Each Struct names only
what the generic path of its venue requires of that shape, with the JSON types it takes
when the venue is well behaved (prices as strings, timestamps as integers...). A field
of a few known values (a side, a channel) is a ``Literal`` where that pays: the decoder
checks it in C and hands back the one string object of each value instead of a new copy.

A frame these decoders refuse (any :data:`DECODE_ERRORS`), and a decoded frame whose values
the fast path cannot vouch for (NaN, <= 0, an unknown instrument, an unknown side...), goes
to the venue's generic path, which gives today's items, reasons and notices: the fast path
never decides anything the generic path would decide differently; it only skips work for
frames the generic path would accept. Unknown fields are ignored, as the generic paths do.
Sources for each shape are the venue modules' docstrings; the decoders hold no state.

Each venue keeps its Structs and its session's ``parse`` in ``<venue>_fast.py``
(``binance_fast``, ``bybit_fast``, ``okx_fast``); this module holds what they share: the
rules above and the errors a refused frame raises. Each ``parse`` decodes, dispatches and
values the usual frame in one method, without a call per frame or per row that it can do
without (a Python call with its arguments costs several hundred instructions, a few
percent of a frame), nor a prefix compared as a slice where a lookup or a search does
(the slice, its substring and the compare cost ~1,000 instructions, as do
``str.startswith`` and ``str.find`` with bounds: Bybit looks its whole topic up in a
cache that also holds the symbol's terms, Binance searches the text for ``forceOrder``).
It calls the generic path outside any ``except`` block, so that a FrameError raised there
does not carry the decoder's error as its context.

One known difference, kept on purpose: a number literal beyond a double's range (``1e999``)
in a field no parser reads. orjson refuses such a frame whole (``malformed_json``); msgspec
skips unread fields without converting them, so the fast path reads the frame's
liquidation. Venues do not send such literals; if one did, reading the fields that matter
is the better answer.
"""

from __future__ import annotations

import msgspec

# What a refused frame raises: DecodeError (ValidationError is a subclass) for bad JSON or a
# type the Struct does not take; RecursionError for too deep a nesting; UnicodeEncodeError
# for a str with lone surrogates (which orjson refuses as malformed JSON on the generic path).
# float() of a string that is no number raises ValueError: each fast path catches that
# around its float() calls alone.
DECODE_ERRORS = (msgspec.DecodeError, RecursionError, UnicodeError)

# The numbers of a row, parsed in C from the venue's decimal strings: the same double as
# float() for every string both read (both round correctly; a million random decimal
# strings and the usual hard cases compare equal bit for bit), in 420 instructions where
# float() takes 700, and an int from a string of digits in 530 where int() takes 1,340.
# They read JSON numbers only: "+1", ".5", "01.5", "1_0", "nan", "inf", "1e999" and
# leading zeros raise DecodeError (a ValueError), which sends the frame to the generic
# path, as does any value a fast path cannot vouch for. Surrounding whitespace and a
# minus sign are read, as float() reads them; the fast paths refuse what is <= 0, and
# check a timestamp's text before trusting to_int (its digits, or for OKX's liquidations
# 13 characters and a value >= 10**12).
to_float = msgspec.json.Decoder(float).decode
to_int = msgspec.json.Decoder(int).decode
