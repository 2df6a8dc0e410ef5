"""The normalised value types every part of liqmon exchanges (DESIGN 3.2)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any, cast

import orjson


class PositionSide(StrEnum):
    """The side of the position that was force-closed. Never the order side."""

    LONG = "long"
    SHORT = "short"


# The sides in their one order (the detector indexes its per-side arrays with it), and
# their names: a dict lookup costs a seventh of Enum.value on the per-event path.
SIDES: tuple[PositionSide, PositionSide] = (PositionSide.LONG, PositionSide.SHORT)
SIDE_NAMES: tuple[str, str] = (PositionSide.LONG.value, PositionSide.SHORT.value)
SIDE_NAME: dict[PositionSide, str] = {side: side.value for side in SIDES}


class Completeness(StrEnum):
    """What a venue's feed guarantees about the liquidations it publishes."""

    FULL = "full"  # every liquidation is published
    THROTTLED = "throttled"  # at most one per symbol per interval: totals are lower bounds
    AGGREGATED = "aggregated"  # the venue merges several into one record
    INFERRED = "inferred"  # derived from indirect evidence (Hyperliquid backstop trades)
    # Only the liquidations a liquidator vault took over (Hyperliquid userFills); market
    # liquidations on the book are not seen.
    BACKSTOP = "backstop"


LIQUIDATION_KEYS = (
    "venue",
    "instrument",
    "coin",
    "position_side",
    "price",
    "qty_base",
    "notional_usd",
    "exchange_ts_ms",
    "received_at",
    "completeness",
    "event_id",
)


_object_setattr = object.__setattr__


@dataclass(frozen=True, slots=True, init=False)
class Liquidation:
    venue: str
    instrument: str
    coin: str
    position_side: PositionSide
    price: float
    qty_base: float
    notional_usd: float
    exchange_ts_ms: int
    received_at: float
    completeness: Completeness
    event_id: str

    def __init__(self, venue: str, instrument: str, coin: str, position_side: PositionSide,
                 price: float, qty_base: float, notional_usd: float, exchange_ts_ms: int,
                 received_at: float, completeness: Completeness, event_id: str) -> None:
        # The __init__ a frozen dataclass generates stores every field through
        # object.__setattr__ (about 1.8 µs for eleven fields, as much as parsing the frame).
        # Instead the new object briefly takes the class _LiquidationUnfrozen (the same
        # slots, no frozen __setattr__), so that the stores are plain slot writes, and then
        # takes this class back: the same frozen value, built in about a third of the time.
        if self.__class__ is not Liquidation:  # a subclass may have another layout
            for name, value in zip(LIQUIDATION_KEYS, (
                    venue, instrument, coin, position_side, price, qty_base, notional_usd,
                    exchange_ts_ms, received_at, completeness, event_id), strict=True):
                _object_setattr(self, name, value)
            return
        _object_setattr(self, "__class__", _LiquidationUnfrozen)
        self.venue = venue  # type: ignore[misc]
        self.instrument = instrument  # type: ignore[misc]
        self.coin = coin  # type: ignore[misc]
        self.position_side = position_side  # type: ignore[misc]
        self.price = price  # type: ignore[misc]
        self.qty_base = qty_base  # type: ignore[misc]
        self.notional_usd = notional_usd  # type: ignore[misc]
        self.exchange_ts_ms = exchange_ts_ms  # type: ignore[misc]
        self.received_at = received_at  # type: ignore[misc]
        self.completeness = completeness  # type: ignore[misc]
        self.event_id = event_id  # type: ignore[misc]
        self.__class__ = Liquidation  # a plain store: the class is _LiquidationUnfrozen here

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "instrument": self.instrument,
            "coin": self.coin,
            "position_side": self.position_side.value,
            "price": self.price,
            "qty_base": self.qty_base,
            "notional_usd": self.notional_usd,
            "exchange_ts_ms": self.exchange_ts_ms,
            "received_at": self.received_at,
            "completeness": self.completeness.value,
            "event_id": self.event_id,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_json_dict())

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Liquidation:
        """The inverse of :meth:`to_json_dict` (``liqmon tail`` reads the MQTT stream)."""
        return cls(
            venue=str(data["venue"]),
            instrument=str(data["instrument"]),
            coin=str(data["coin"]),
            position_side=PositionSide(data["position_side"]),
            price=float(data["price"]),
            qty_base=float(data["qty_base"]),
            notional_usd=float(data["notional_usd"]),
            exchange_ts_ms=int(data["exchange_ts_ms"]),
            received_at=float(data["received_at"]),
            completeness=Completeness(data["completeness"]),
            event_id=str(data["event_id"]),
        )

    @property
    def minute(self) -> int:
        """The venue-time minute (epoch minutes) this liquidation belongs to."""
        return self.exchange_ts_ms // 60_000


class _LiquidationUnfrozen:
    """Liquidation's slot layout without its frozen ``__setattr__``: a Liquidation only
    under construction has this class (``__class__`` assignment needs the same slots).

    Called directly it is :data:`new_liquidation`, the positional constructor of hot paths:
    it skips the call of ``Liquidation.__init__`` and one class switch.
    """

    __slots__ = LIQUIDATION_KEYS

    def __init__(self, venue: str, instrument: str, coin: str, position_side: PositionSide,
                 price: float, qty_base: float, notional_usd: float, exchange_ts_ms: int,
                 received_at: float, completeness: Completeness, event_id: str) -> None:
        self.venue = venue
        self.instrument = instrument
        self.coin = coin
        self.position_side = position_side
        self.price = price
        self.qty_base = qty_base
        self.notional_usd = notional_usd
        self.exchange_ts_ms = exchange_ts_ms
        self.received_at = received_at
        self.completeness = completeness
        self.event_id = event_id
        self.__class__ = Liquidation  # type: ignore[assignment]


if tuple(f.name for f in fields(Liquidation)) != LIQUIDATION_KEYS:
    raise RuntimeError("LIQUIDATION_KEYS must name Liquidation's fields, in order")

# Liquidation(...) with positional arguments only, for parsers that build one per frame.
new_liquidation = cast(Callable[
    [str, str, str, PositionSide, float, float, float, int, float, Completeness, str],
    Liquidation], _LiquidationUnfrozen)


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """A mark (or, where a venue has none, index or mid) price of one instrument."""

    venue: str
    instrument: str
    coin: str
    price: float
    exchange_ts_ms: int
    received_at: float


def event_id_from_fields(venue: str, *fields: object) -> str:
    """A stable dedupe key for venues that publish no id: a hash of the identifying fields.

    The same liquidation seen twice (a reconnect replay, an overlapping rotation, a second
    collector) hashes to the same id; the venue id keeps venues apart.
    """
    text = "\x1f".join([venue, *(str(f) for f in fields)])
    return venue + ":" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
