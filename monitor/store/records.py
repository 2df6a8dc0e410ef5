"""The compact form in which the Redis store keeps a liquidation.

A JSON array in a fixed order, numbers first: the write script reads the USD notional and
the quantity straight off its head without a JSON parser, and the array is cheaper to
build than the keyed JSON of DESIGN 3.2 (this runs once per event on the write path).
"""

from __future__ import annotations

import orjson

from monitor.events import Completeness, Liquidation, PositionSide

RECORD_FIELDS = (
    "notional_usd", "qty_base", "price", "exchange_ts_ms", "received_at",
    "venue", "instrument", "coin", "position_side", "completeness", "event_id",
)


def encode_record(e: Liquidation) -> bytes:
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
