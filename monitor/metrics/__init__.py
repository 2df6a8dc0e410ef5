"""Every liqmon metric, declared once on an injected CollectorRegistry (DESIGN 7).

The catalogue and its meaning are listed in docs/metrics-and-alerts.md. Windows (1m, 5m,
...) are not exported: they are PromQL's job, through the recording rules in
deploy/prometheus/.
``_created`` series are disabled: they double the series count and no rule needs them.

The metrics updated per event or per frame are plain numbers (``hot``: a prometheus_client
child takes a lock and a few calls on every update), rendered from cached lines at scrape
time (``exposition``); the rarely updated ones stay prometheus_client objects (``client``).
:class:`Metrics` is all of them, and its per-event methods run on the ingest path.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

from monitor.alerts import venue_scope
from monitor.events import SIDE_NAMES, Liquidation, MarkPrice, PositionSide
from monitor.metrics.client import (
    OTHER_COIN,
    SEVERITY_LEVEL,
    STORE_REJECT_REASONS,
    ClientMetrics,
)
from monitor.metrics.hot import (
    HISTOGRAM_LE,
    LAG_BUCKETS_SECONDS,
    LAG_LE,
    SIZE_BUCKETS_USD,
    SIZE_LE,
    Buckets,
    HotCollector,
    Tally,
    new_buckets,
)

__all__ = [
    "CHILD_CACHE_LIMIT", "HISTOGRAM_LE", "LAG_BUCKETS_SECONDS", "LAG_LE", "LARGEST_WINDOW_MS",
    "OTHER_COIN", "RECONNECT_REASONS", "SEVERITY_LEVEL", "SIZE_BUCKETS_USD", "SIZE_LE",
    "STORE_REJECT_REASONS", "WHALE_WINDOW_MS", "Buckets", "Metrics", "Tally",
]

LARGEST_WINDOW_MS = 60_000
WHALE_WINDOW_MS = 300_000  # as long as the whale alert rule's increase() window
# Bounds the cache from raw coins to label slots; the label sets themselves are bounded (coin
# labels outside the configured coins are "other"), so this only guards against a flood of
# venues or listings.
CHILD_CACHE_LIMIT = 10_000
RECONNECT_REASONS = ("closed", "error", "stale", "rejected", "timeout", "rotation")

# What one liquidation updates: (tally, size histogram, lag histogram, largest key).
_Slot = tuple[Tally, Buckets, Buckets, tuple[str, str]]

_LONG = PositionSide.LONG
# The index of a histogram's sum: -1 would do, but only a non-negative index takes the
# interpreter's fast path for a list item.
_SIZE_SUM, _LAG_SUM = len(SIZE_BUCKETS_USD) + 1, len(LAG_BUCKETS_SECONDS) + 1
# The bounds most liquidations fall between ($1k-$50k; a lag of 0.1-0.5 s), compared inline:
# a float comparison is a fraction of a bisect_left call (which compares through the
# generic path), and the rest still bisect.
_SIZE_0, _SIZE_1, _SIZE_2 = SIZE_BUCKETS_USD[:3]
_LAG_2, _LAG_3, _LAG_4 = LAG_BUCKETS_SECONDS[2:5]


class Metrics(ClientMetrics):
    """The daemon's metrics. Methods are cheap: they run on the ingest path."""

    def __init__(
        self,
        registry: CollectorRegistry,
        venues: Sequence[str],
        coins: Sequence[str],
        *,
        process_metrics: bool = True,
    ) -> None:
        # Registered in the order of the exposition: the process collectors, the per-event
        # families, then the prometheus_client metrics.
        if process_metrics:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        self._hot = HotCollector()
        registry.register(self._hot)
        super().__init__(registry, coins)
        # (venue, coin label) → (venue ms, USD) of the largest liquidation of the last minute.
        # (venue, coin label, side) → (venue ms, level) of the strongest recent whale.
        self._whale_seen: dict[tuple[str, str, str], tuple[int, float]] = {}
        self._largest_seen: dict[tuple[str, str], tuple[int, float]] = {}
        # (venue, raw coin, side) → the slot one liquidation updates: many raw coins share
        # the slot of "other".
        self._slots: dict[tuple[str, str, PositionSide], _Slot] = {}
        self._mark_keys: dict[tuple[str, str], tuple[str, str] | None] = {}
        self._initialise(venues)

    def _initialise(self, venues: Iterable[str]) -> None:
        """Known label sets start at zero so increase() sees the first event."""
        coins = [*sorted(self.coins), OTHER_COIN]
        for venue in venues:
            self.add_venue(venue, coins)

    def add_venue(self, venue: str, coins: Sequence[str] | None = None) -> None:
        hot = self._hot
        for coin in coins if coins is not None else [*sorted(self.coins), OTHER_COIN]:
            for side in SIDE_NAMES:
                hot.liquidations.setdefault((venue, coin, side), [0.0, 0.0])
                hot.whales.setdefault((venue, coin, side), [0.0])
            hot.largest.setdefault((venue, coin), 0.0)
        for side in SIDE_NAMES:
            hot.size.setdefault((venue, side), new_buckets(SIZE_BUCKETS_USD))
        self.feed_connected.labels(venue)
        self.feed_subscribed.labels(venue)
        self.feed_gaps.labels(venue)
        for reason in RECONNECT_REASONS:
            self.reconnects.labels(venue, reason)
        hot.frames.setdefault(venue, [0.0])
        hot.last_frame.setdefault(venue, 0.0)
        hot.event_lag.setdefault(venue, new_buckets(LAG_BUCKETS_SECONDS))
        hot.ingest_dropped.setdefault(venue, [0.0])
        hot.duplicates.setdefault(venue, [0.0])
        self.too_old_events.labels(venue)
        self.topics_refused.labels(venue)
        for side in SIDE_NAMES:
            self.cascade_active.labels(venue_scope(venue), side)
            self.cascade_severity.labels(venue_scope(venue), side)
            self.cascades.labels(venue_scope(venue), side)
        for side in SIDE_NAMES:
            self.cascade_active.labels("global", side)
            self.cascade_severity.labels("global", side)
            self.cascades.labels("global", side)

    def remove_venue_health(self, venue: str) -> None:
        """A venue switched off is not a feed that is down: drop its health series so the
        feed alerts do not fire for it. Its counters stay."""
        for gauge in (self.feed_connected, self.feed_subscribed, self.feed_gaps,
                      self.last_data):
            with contextlib.suppress(KeyError):
                gauge.remove(venue)
        self._hot.last_frame.pop(venue, None)
        self._last_data_children.pop(venue, None)

    def frames_total(self) -> float:
        """Frames read since start, every venue."""
        return sum(count for (count,) in self._hot.frames.values())

    def feed_samples(self) -> Iterator[tuple[str, Mapping[str, str], float]]:
        """(name, labels, value) of the feed-health series, for readers outside Prometheus
        (the web page): connected, subscribed connections, frames, invalid, reconnects."""
        for venue, (count,) in self._hot.frames.items():
            yield "liqmon_frames_total", {"venue": venue}, count
        for metric in (self.feed_connected, self.feed_subscribed, self.frames_invalid,
                       self.reconnects):
            for family in metric.collect():
                for sample in family.samples:
                    yield sample.name, sample.labels, sample.value

    # -- feed ---------------------------------------------------------------------------
    def frame(self, venue: str, received_at: float) -> None:
        hot = self._hot
        try:
            hot.frames[venue][0] += 1
        except KeyError:
            hot.frames[venue] = [1.0]
        hot.last_frame[venue] = received_at

    def ingest_drop(self, venue: str, events: int = 1) -> None:
        dropped = self._hot.ingest_dropped
        try:
            dropped[venue][0] += events
        except KeyError:
            dropped[venue] = [float(events)]

    def duplicate(self, venue: str) -> None:
        _count(self._hot.duplicates, venue)

    # -- events -------------------------------------------------------------------------
    def _slot(self, venue: str, coin: str, position_side: PositionSide) -> _Slot:
        hot = self._hot
        label = self.coin_label(coin)
        side = position_side.value
        tally = hot.liquidations.setdefault((venue, label, side), [0.0, 0.0])
        hot.whales.setdefault((venue, label, side), [0.0])
        hot.largest.setdefault((venue, label), 0.0)
        size = hot.size.setdefault((venue, side), new_buckets(SIZE_BUCKETS_USD))
        lag = hot.event_lag.setdefault(venue, new_buckets(LAG_BUCKETS_SECONDS))
        if len(self._slots) >= CHILD_CACHE_LIMIT:
            self._slots.clear()
        slot = self._slots[(venue, coin, position_side)] = (tally, size, lag, (venue, label))
        return slot

    def liquidation(self, event: Liquidation) -> None:
        self.liquidations((event,))

    def liquidations(self, events: Iterable[Liquidation]) -> None:
        """:meth:`liquidation` of each event, in one call (one frame's rows)."""
        slots = self._slots
        largest_seen = self._largest_seen
        largest = self._hot.largest
        size_bounds, lag_bounds = SIZE_BUCKETS_USD, LAG_BUCKETS_SECONDS
        # A frame's rows share a venue and a coin: each side's slot is looked up once for a
        # run of them (an enum member in a key hashes through a Python-level lookup), and
        # the run's largest (one key for both sides) is read once and written through.
        venue = coin = ""
        long_slot: _Slot | None = None
        short_slot: _Slot | None = None
        seen: tuple[int, float] | None = None
        seen_read = False
        lag_ts: int | None = None
        lag_received = lag = 0.0
        lag_at = 0
        seen_until, seen_usd = 0, 0.0
        for event in events:
            if event.coin != coin or event.venue != venue:
                venue, coin = event.venue, event.coin
                long_slot = short_slot = None
                seen_read = False
            side = event.position_side
            if side is _LONG:
                if long_slot is None:
                    long_slot = slots.get((venue, coin, side)) or self._slot(venue, coin, side)
                slot = long_slot
            else:
                if short_slot is None:
                    short_slot = slots.get((venue, coin, side)) or self._slot(venue, coin, side)
                slot = short_slot
            tally, size, lag_buckets, largest_key = slot
            notional = event.notional_usd
            ts_ms = event.exchange_ts_ms
            # Counts are floats: ``+= 1.0`` takes the interpreter's float path, ``+= 1`` the
            # generic one (the same value).
            tally[0] += 1.0
            tally[1] += notional
            # The first bound >= the value (bisect_left), prometheus_client's "le" rule.
            if notional <= _SIZE_1:
                size[0 if notional <= _SIZE_0 else 1] += 1.0
            elif notional <= _SIZE_2:
                size[2] += 1.0
            else:
                size[bisect_left(size_bounds, notional)] += 1.0
            size[_SIZE_SUM] += notional
            received = event.received_at
            if received != lag_received or ts_ms != lag_ts:
                # A frame's rows share a receipt time and often a venue time: the lag and
                # its bucket are worked out once for a run of them.
                lag_ts, lag_received = ts_ms, received
                # ``/ 1000``, not ``/ 1000.0``: int / int takes CPython's exact fast path,
                # where an int of two digits over a float goes through _PyLong_Frexp; the
                # same float for any venue time below 2**53 ms (admitted ones are).
                lag = received - ts_ms / 1000
                if lag < 0.0:
                    lag = 0.0
                if _LAG_2 < lag <= _LAG_4:
                    lag_at = 3 if lag <= _LAG_3 else 4
                else:
                    lag_at = bisect_left(lag_bounds, lag)
            lag_buckets[lag_at] += 1.0
            lag_buckets[_LAG_SUM] += lag
            if not seen_read:
                seen = largest_seen.get(largest_key)
                seen_read = True
                # The run's largest so far, in locals: (ts - seen ts > window) is
                # (ts > until) for ints.
                if seen is not None:
                    seen_until, seen_usd = seen[0] + LARGEST_WINDOW_MS, seen[1]
            if seen is None or ts_ms > seen_until or notional >= seen_usd:
                seen = largest_seen[largest_key] = (ts_ms, notional)
                seen_until, seen_usd = ts_ms + LARGEST_WINDOW_MS, notional
                largest[largest_key] = notional

    def expire_largest(self, now_ms: int) -> None:
        """Zero the largest-liquidation gauges whose minute has passed and the whale
        severities whose 5 minutes have (called each second)."""
        for key, (ts_ms, _usd) in list(self._largest_seen.items()):
            if now_ms - ts_ms > LARGEST_WINDOW_MS:
                del self._largest_seen[key]
                self._hot.largest[key] = 0.0
        for whale_key, (ts_ms, _level) in list(self._whale_seen.items()):
            if now_ms - ts_ms > WHALE_WINDOW_MS:
                del self._whale_seen[whale_key]
                self._hot.whale_severity[whale_key] = 0.0

    def whale(self, event: Liquidation, severity: str) -> None:
        """A whale alert was raised for ``event`` with ``severity`` (warning, critical or
        extreme): counted, and its severity kept for 5 minutes, so the Prometheus alert
        carries the severity the daemon's own alert has."""
        key = (event.venue, self.coin_label(event.coin), event.position_side.value)
        self._hot.whales.setdefault(key, [0.0])[0] += 1
        level = float(SEVERITY_LEVEL[severity])
        seen = self._whale_seen.get(key)
        if seen is not None and event.exchange_ts_ms - seen[0] <= WHALE_WINDOW_MS:
            level = max(level, seen[1])
        self._whale_seen[key] = (event.exchange_ts_ms, level)
        self._hot.whale_severity[key] = level

    def mark(self, price: MarkPrice) -> None:
        key = (price.venue, price.coin)
        try:
            label_key = self._mark_keys[key]
        except KeyError:
            coin = self.coin_label(price.coin)
            label_key = None if coin == OTHER_COIN else (price.venue, coin)
            if len(self._mark_keys) >= CHILD_CACHE_LIMIT:
                self._mark_keys.clear()
            self._mark_keys[key] = label_key
        if label_key is not None:
            self._hot.mark_price[label_key] = price.price


def _count(counts: dict[str, list[float]], venue: str) -> None:
    try:
        counts[venue][0] += 1
    except KeyError:
        counts[venue] = [1.0]
