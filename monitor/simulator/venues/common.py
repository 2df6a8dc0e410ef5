"""What the venue simulators share, so that each venue module keeps only its protocol.

:class:`VenueSimBase` holds a venue's listings, its price board and the price stream's
publications; :class:`SessionBase` one connection's held topics, with no welcome, no timer
and release on close; :class:`WindowedBatches` liquidations batched per key in windows of
market time. A venue overrides what differs.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

import orjson

from monitor.simulator import venue_sim as vs
from monitor.simulator.catalogue import COIN_PRICES_USD, Listing, listings

_conn_ids = itertools.count(1)


def conn_id() -> str:
    """An opaque per-connection id, as venues put in acks (Bybit conn_id, OKX connId)."""
    return f"sim{next(_conn_ids):06x}"


def json_reply(document: object, status: int = 200) -> vs.RestReply:
    return vs.RestReply(status, orjson.dumps(document))


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
        self._items: dict[str, deque[vs.Liq]] = {}
        self._size = size

    def add(self, topic: str, liquidations: Iterable[vs.Liq]) -> None:
        ring = self._items.setdefault(topic, deque(maxlen=self._size))
        ring.extend(liquidations)

    def get(self, topic: str) -> list[vs.Liq]:
        return list(self._items.get(topic, ()))


def json_request(text: str) -> dict[str, Any] | None:
    """A client frame as a JSON object, or None for anything else (the venue's error)."""
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return request if isinstance(request, dict) else None


class VenueSimBase:
    """A venue sim's listings and prices; it serves no REST path unless it overrides rest."""

    venue = ""
    price_interval_ms = 1000  # the venue's own price cadence

    def __init__(self, ctx: vs.SimContext) -> None:
        self.ctx = ctx
        self.listings = {item.symbol: item for item in listings(self.venue)}
        self._delisted: dict[str, Listing] = {}
        self._rest_lag: dict[str, Listing] = {}
        self.prices = PriceBoard(ctx.mark_interval_ms, self.price_interval_ms)

    def rest(self, request: vs.RestRequest) -> vs.RestReply | None:
        return None

    def delist(self, symbol: str, rest: bool = True) -> bool:
        item = self.listings.pop(symbol, None) or self._delisted.get(symbol)
        if item is None:
            return False
        self._delisted[symbol] = item
        if rest:
            self._rest_lag.pop(symbol, None)
        else:
            self._rest_lag[symbol] = item
        return True

    def relist(self, symbol: str) -> bool:
        item = self._delisted.pop(symbol, None)
        if item is None:
            return False
        self._rest_lag.pop(symbol, None)
        self.listings[symbol] = item
        return True

    def listing(self, symbol: str) -> Listing:
        """A listing by symbol, delisted or not (a batch may outlive its instrument)."""
        found = self.listings.get(symbol) or self._delisted.get(symbol)
        if found is None:
            raise KeyError(symbol)
        return found

    def rest_listings(self) -> list[Listing]:
        """What the REST documents list: the live listings and those whose delisting the
        documents do not show yet (venues list a contract until it has settled)."""
        return [*self.listings.values(), *self._rest_lag.values()]

    def is_listed(self, symbol: str) -> bool:
        return symbol in self.listings

    def on_mark(self, coin: str, price: float, ts_ms: int) -> None:
        self.prices.set(coin, price)

    def price_publications(self, now_ms: int, topic: Callable[[Listing], str],
                           render: Callable[[Listing, int], str]) -> list[vs.Publication]:
        """When the price stream is due, one publication per listing some session holds."""
        if not self.prices.due(now_ms):
            return []
        out = []
        for item in self.listings.values():
            name = topic(item)
            if name in self.ctx.subscribed:
                out.append(vs.Publication((name,), render(item, now_ms)))
        return out


SimT = TypeVar("SimT", bound=VenueSimBase)


class SessionBase(Generic[SimT]):
    """One connection: the topics it holds, counted in the sim's context."""

    def __init__(self, sim: SimT, reject: bool) -> None:
        self.sim = sim
        self.reject = reject
        self.held: set[str] = set()

    def hold(self, topics: Sequence[str]) -> None:
        vs.subscribe_topics(self.sim.ctx, self.held, topics)

    def release(self, topics: Sequence[str] | None = None) -> None:
        vs.release_topics(self.sim.ctx, self.held, topics)

    def on_open(self, now: vs.SimNow) -> Sequence[vs.Out]:
        return ()

    def tick(self, now: vs.SimNow) -> Sequence[vs.Out]:
        return ()

    def render(self, pub: vs.Publication) -> str | bytes | None:
        return pub.payload if any(topic in self.held for topic in pub.topics) else None

    def on_close(self) -> None:
        self.release()


class WindowedBatches:
    """Liquidations batched per key in fixed windows of market time (Bybit: 500 ms per
    symbol; Deribit: 100 ms per instrument). A batch is published once its window ended."""

    def __init__(self, window_ms: int,
                 publish: Callable[[str, list[vs.Liq]], vs.Publication]) -> None:
        self._window_ms = window_ms
        self._publish = publish
        self._pending: dict[str, list[vs.Liq]] = {}  # key -> liquidations of its open window
        self._ready: list[vs.Publication] = []

    def add(self, key: str, liq: vs.Liq) -> None:
        window = self._window_ms
        batch = self._pending.get(key)
        if batch and batch[-1].ts_ms // window != liq.ts_ms // window:
            self._ready.append(self._publish(key, batch))
            batch = None
        if batch is None:
            self._pending[key] = [liq]
        else:
            batch.append(liq)

    def due(self, now_ms: int, final: bool) -> list[vs.Publication]:
        window = self._window_ms
        out, self._ready = self._ready, []
        for key, batch in list(self._pending.items()):
            if final or (batch[-1].ts_ms // window + 1) * window <= now_ms:
                out.append(self._publish(key, batch))
                del self._pending[key]
        return out
