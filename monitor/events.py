"""The normalised value types every part of liqmon exchanges (DESIGN 3.2)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson


class PositionSide(StrEnum):
    """The side of the position that was force-closed. Never the order side."""

    LONG = "long"
    SHORT = "short"


class Completeness(StrEnum):
    """What a venue's feed guarantees about the liquidations it publishes."""

    FULL = "full"  # every liquidation is published
    THROTTLED = "throttled"  # at most one per symbol per interval: totals are lower bounds
    AGGREGATED = "aggregated"  # the venue merges several into one record
    INFERRED = "inferred"  # derived from indirect evidence (Hyperliquid backstop trades)


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


@dataclass(frozen=True, slots=True)
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
