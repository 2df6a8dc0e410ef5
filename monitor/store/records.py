"""The compact form in which the Redis store keeps a liquidation, and what a store refuses.

A JSON array in a fixed order, numbers first: the write script reads the USD notional and
the quantity straight off its head without a JSON parser, and the array is cheaper to
build than the keyed JSON of DESIGN 3.2 (this runs once per event on the write path).

:func:`refusal` is the store's own last line of defence, shared by both backends and by
ingest so that the detector, the metrics and the store refuse the same events. Frames are
bounded to realistic values at the edge (the venue readers); this only keeps a store's
arithmetic and encoding sound: a value that is not finite, a USD value that is not positive
(a quantity or price of 0 sums harmlessly), a value so large that a
sum of them could overflow to ``inf`` (one ``inf`` cell poisons every window that reads it
for the whole retention), and a timestamp outside what a 64-bit integer holds (orjson and
Redis' Lua refuse those, and one such event once stopped the writer for good).
"""

from __future__ import annotations

import orjson

from monitor.events import Completeness, Liquidation, PositionSide

RECORD_FIELDS = (
    "notional_usd", "qty_base", "price", "exchange_ts_ms", "received_at",
    "venue", "instrument", "coin", "position_side", "completeness", "event_id",
)

# A billion of these still sum to a finite float (about 1e27, far below 1.8e308).
STORABLE_MAX = 1e18
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Reasons, as the label of liqmon_store_rejected_events_total.
REFUSED_VALUE = "value"
REFUSED_TIMESTAMP = "timestamp"
REFUSED_UNENCODABLE = "unencodable"
REFUSAL_REASONS = (REFUSED_VALUE, REFUSED_TIMESTAMP, REFUSED_UNENCODABLE)


def refusal(e: Liquidation) -> str | None:
    """Why no store can keep this event, or None when it can."""
    # Written as "not (0 < v < max)" so that NaN, which fails every comparison, is refused.
    if not (0.0 < e.notional_usd < STORABLE_MAX and 0.0 <= e.qty_base < STORABLE_MAX
            and 0.0 <= e.price < STORABLE_MAX):
        return REFUSED_VALUE
    if not (INT64_MIN <= e.exchange_ts_ms <= INT64_MAX
            and -STORABLE_MAX < e.received_at < STORABLE_MAX):
        return REFUSED_TIMESTAMP
    return None


def encode_record(e: Liquidation) -> bytes:
    """Raises ``orjson.JSONEncodeError`` (a TypeError) for what JSON cannot hold."""
    return orjson.dumps((
        e.notional_usd, e.qty_base, e.price, e.exchange_ts_ms, e.received_at,
        e.venue, e.instrument, e.coin, e.position_side, e.completeness, e.event_id,
    ))


def decode_record(data: bytes) -> Liquidation:
    usd, qty, price, ts, received, venue, instrument, coin, side, completeness, event_id = (
        orjson.loads(data)
    )
    return Liquidation(
        venue=venue,
        instrument=instrument,
        coin=coin,
        position_side=PositionSide(side),
        price=float(price),
        qty_base=float(qty),
        notional_usd=float(usd),
        exchange_ts_ms=int(ts),
        received_at=float(received),
        completeness=Completeness(completeness),
        event_id=event_id,
    )
