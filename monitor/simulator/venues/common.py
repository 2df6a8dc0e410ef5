"""Small helpers shared by the venue simulators."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable

import orjson

from monitor.simulator.catalogue import COIN_PRICES_USD
from monitor.simulator.venue_sim import Liq, RestReply

_conn_ids = itertools.count(1)


def conn_id() -> str:
    """An opaque per-connection id, as venues put in acks (Bybit conn_id, OKX connId)."""
    return f"sim{next(_conn_ids):06x}"


def json_reply(document: object, status: int = 200) -> RestReply:
    return RestReply(status, orjson.dumps(document))


class PriceBoard:
    """The latest price of each coin and when the venue's price stream is next due.

    The cadence is the venue's own (Binance 1 s) or the core's minimum, whichever is longer,
    so a price stream at 300x speed does not flood the client.
    """

    def __init__(self, min_interval_ms: int, venue_interval_ms: int) -> None:
        self.interval_ms = max(min_interval_ms, venue_interval_ms, 1)
        self._next_ms: int | None = None
        self._prices: dict[str, float] = dict(COIN_PRICES_USD)

    def set(self, coin: str, price: float) -> None:
        self._prices[coin] = price

    def get(self, coin: str) -> float:
        return self._prices[coin]

    def due(self, now_ms: int) -> bool:
        if self._next_ms is None:
            self._next_ms = now_ms
        if now_ms < self._next_ms:
            return False
        # Aligned to the interval, like a venue's once-a-second push.
        self._next_ms = (now_ms // self.interval_ms + 1) * self.interval_ms
        return True


class RecentLiquidations:
    """The last few liquidations published on a topic, for first-push replays."""

    def __init__(self, size: int = 10) -> None:
        self._items: dict[str, deque[Liq]] = {}
        self._size = size

    def add(self, topic: str, liquidations: Iterable[Liq]) -> None:
        ring = self._items.setdefault(topic, deque(maxlen=self._size))
        ring.extend(liquidations)

    def get(self, topic: str) -> list[Liq]:
        return list(self._items.get(topic, ()))
