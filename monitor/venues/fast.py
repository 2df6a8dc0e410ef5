"""Fast parse paths: typed decoders for the happy shapes of the busiest frames.

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

Each venue keeps its Structs and what its session makes of them in ``<venue>_fast.py``
(``binance_fast``, ``bybit_fast``, ``okx_fast``); this module holds what they share: the
errors a refused frame raises and :func:`fast_first`, the parse that tries the typed
decoder before the generic path.

One known difference, kept on purpose: a number literal beyond a double's range (``1e999``)
in a field no parser reads. orjson refuses such a frame whole (``malformed_json``); msgspec
skips unread fields without converting them, so the fast path reads the frame's
liquidation. Venues do not send such literals; if one did, reading the fields that matter
is the better answer.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import msgspec

import monitor.venues.dialect as dialect

# What a refused frame raises: DecodeError (ValidationError is a subclass) for bad JSON or a
# type the Struct does not take; RecursionError for too deep a nesting; UnicodeEncodeError
# for a str with lone surrogates (which orjson refuses as malformed JSON on the generic path).
DECODE_ERRORS = (msgspec.DecodeError, RecursionError, UnicodeError)
# What a fast path refuses besides: float() of a string that is no number raises ValueError.
FAST_REFUSED: tuple[type[Exception], ...] = (*DECODE_ERRORS, ValueError)


ParseFn = Callable[[Any, str, float], "list[dialect.Item]"]


def fast_first(decode: Callable[[str], Any],
               refused: tuple[type[Exception], ...] = FAST_REFUSED) -> ParseFn:
    """A session's ``parse``: a frame that opens with a key is decoded by ``decode`` and
    handed to ``parse_fast``; a refused frame, or None from ``parse_fast``, goes to
    ``parse_generic``, which gives every item, reason and notice.

    The decoder is the closure's, not an attribute of the session: CPython 3.11 does not
    specialise reading a plain class attribute through ``self``, which cost Bybit's fast
    path 1.5 % more instructions per frame.
    """

    def parse(self: FastFirst, text: str, received_at: float) -> list[dialect.Item]:
        if text[:2] == '{"':
            try:
                got = self.parse_fast(decode(text), received_at)
            except refused:
                got = None
            if got is not None:
                return got
        return self.parse_generic(text, received_at)

    return parse


class FastFirst(abc.ABC):
    """A session with a fast path: its ``parse`` is :func:`fast_first` of its decoder."""

    @abc.abstractmethod
    def parse_fast(self, frame: Any, received_at: float) -> list[dialect.Item] | None:
        """The items of a decoded frame; None sends the frame to the generic path."""

    @abc.abstractmethod
    def parse_generic(self, text: str, received_at: float) -> list[dialect.Item]:
        """Every frame, every shape, every check: what the fast path falls back to."""
