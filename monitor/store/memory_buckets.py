"""What the memory store keeps per minute and per hour: buckets of cells, and packed events.

A bucket holds one cell per (venue, coin, side) group with its sums, and the bucket's
``LARGEST_KEEP`` largest liquidations in a min-heap; ``memory.MemoryStore`` fills them.

What a bucket keeps of a liquidation (each cell's largest, the bucket's ``LARGEST_KEEP``
largest) is packed in one msgpack bytes object, about 200 bytes instead of the 400 or so of
the event with its own floats and strings (tens of thousands are held over a day); reads
unpack only what they return. Packing costs about 0.4 µs, paid only by the events that
become a largest, a small share once a minute has more than a few events per cell.
"""

from __future__ import annotations

import heapq

import msgspec

from monitor.events import Completeness, Liquidation, PositionSide
from monitor.store.aggregate import Group
from monitor.store.base import LARGEST_KEEP

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
# A dict lookup, where calling the enum costs about 0.6 µs.
_SIDES = {side.value: side for side in PositionSide}
_COMPLETENESS = {level.value: level for level in Completeness}


def pack(e: Liquidation) -> bytes:
    """A kept liquidation as one bytes object (the module docstring says why)."""
    return _encode((e.notional_usd, e.qty_base, e.price, e.exchange_ts_ms, e.received_at,
                    e.venue, e.instrument, e.coin, e.position_side, e.completeness,
                    e.event_id))


def unpack(packed: bytes) -> Liquidation:
    """The liquidation :func:`pack` made ``packed`` of."""
    usd, qty, price, ts, received, venue, instrument, coin, side, completeness, event_id = (
        _decode(packed))
    return Liquidation(venue, instrument, coin, _SIDES[side], price, qty, usd, ts, received,
                       _COMPLETENESS[completeness], event_id)


class Cell:
    """One group's sums in one bucket, and its largest liquidation (packed)."""

    __slots__ = ("count", "largest", "largest_usd", "mask", "qty", "usd")

    def __init__(self, usd: float, qty: float, mask: int, largest: bytes) -> None:
        self.usd = usd
        self.count = 1
        self.qty = qty
        self.largest_usd = usd
        self.largest = largest  # packed
        self.mask = mask


class Bucket:
    """One minute or one hour: its cells and its largest liquidations."""

    __slots__ = ("cells", "expires_at", "top")

    def __init__(self) -> None:
        self.cells: dict[Group, Cell] = {}
        # A min-heap of the LARGEST_KEEP largest: (usd, event id, packed event); ids are
        # unique, so the packed event is never compared.
        self.top: list[tuple[float, str, bytes]] = []
        self.expires_at = 0.0


def lowest_kept(top: list[tuple[float, str, bytes]]) -> float:
    """The USD below which no event enters ``top``: its smallest once full, else -1."""
    return top[0][0] if len(top) >= LARGEST_KEEP else -1.0


def keep_largest(top: list[tuple[float, str, bytes]], event: Liquidation, packed: bytes | None
          ) -> bytes | None:
    """Keep ``event`` among a bucket's LARGEST_KEEP largest if it ranks there (by USD, ties
    by id); ``packed`` is its packed form if already made, and what is returned is it, made
    here if it was needed."""
    usd = event.notional_usd
    if len(top) < LARGEST_KEEP:
        if packed is None:
            packed = pack(event)
        heapq.heappush(top, (usd, event.event_id, packed))
        return packed
    low = top[0]
    if usd > low[0] or (usd == low[0] and event.event_id > low[1]):
        if packed is None:
            packed = pack(event)
        heapq.heapreplace(top, (usd, event.event_id, packed))
    return packed
