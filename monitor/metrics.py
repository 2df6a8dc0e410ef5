"""Every liqmon metric, declared once on an injected CollectorRegistry (DESIGN 7).

The catalogue and its meaning are listed in docs/metrics-and-alerts.md. Windows (1m, 5m,
...) are not exported: they are PromQL's job, through the recording rules in
deploy/prometheus/.
``_created`` series are disabled: they double the series count and no rule needs them.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from monitor import __version__
from monitor.alerts import COIN_SCOPE_PREFIX, coin_scope, venue_scope
from monitor.events import SIDE_NAMES, Liquidation, MarkPrice, PositionSide

OTHER_COIN = "other"
SEVERITY_LEVEL = {"warning": 1, "critical": 2, "extreme": 3}
SIZE_BUCKETS_USD = (1e3, 1e4, 5e4, 1e5, 5e5, 1e6, 5e6, 1e7, 5e7, 1e8, 5e8)
LAG_BUCKETS_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LARGEST_WINDOW_MS = 60_000
# Bounds the caches of label children; the label sets themselves are bounded (coin labels
# outside the configured coins are "other"), so this only guards against a flood of venues.
CHILD_CACHE_LIMIT = 10_000

# (largest-gauge key (venue, coin label), liquidations, liquidated_usd, size, event_lag,
# largest): the children one liquidation updates.
_LiquidationChildren = tuple[tuple[str, str], Any, Any, Any, Any, Any]
RECONNECT_REASONS = ("closed", "error", "stale", "rejected", "timeout", "rotation")


class Metrics:
    """The daemon's metrics. Methods are cheap: they run on the ingest path."""

    def __init__(
        self,
        registry: CollectorRegistry,
        venues: Sequence[str],
        coins: Sequence[str],
        *,
        process_metrics: bool = True,
    ) -> None:
        # A process-wide switch of prometheus_client: set when metrics are made, not at import.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        self.coins = frozenset(c.upper() for c in coins)
        r = registry
        if process_metrics:
            ProcessCollector(registry=r)
            PlatformCollector(registry=r)
        self.liquidations = Counter(
            "liqmon_liquidations", "Liquidations counted, after deduplication.",
            ["venue", "coin", "position_side"], registry=r)
        self.liquidated_usd = Counter(
            "liqmon_liquidated_usd", "USD notional liquidated (stablecoin quotes count as USD).",
            ["venue", "coin", "position_side"], registry=r)
        self.size = Histogram(
            "liqmon_liquidation_size_usd", "USD notional of single liquidations.",
            ["venue", "position_side"], buckets=SIZE_BUCKETS_USD, registry=r)
        self.largest = Gauge(
            "liqmon_largest_liquidation_usd",
            "Largest single liquidation in the last 60 s of venue time, in USD.",
            ["venue", "coin"], registry=r)
        self.whales = Counter(
            "liqmon_whale_liquidations", "Single liquidations above the whale threshold.",
            ["venue", "coin", "position_side"], registry=r)
        self.mark_price = Gauge(
            "liqmon_mark_price_usd", "Last mark price of the coin on the venue, in USD.",
            ["venue", "coin"], registry=r)
        self.cascade_active = Gauge(
            "liqmon_cascade_active", "1 while the detector holds a cascade in this scope and side.",
            ["scope", "position_side"], registry=r)
        self.cascade_severity = Gauge(
            "liqmon_cascade_severity",
            "Severity of the current cascade: 0 none, 1 warning, 2 critical, 3 extreme.",
            ["scope", "position_side"], registry=r)
        self.cascades = Counter(
            "liqmon_cascades", "Cascades the detector started.",
            ["scope", "position_side"], registry=r)
        self.feed_connected = Gauge(
            "liqmon_feed_connected", "1 when every connection of the venue is subscribed.",
            ["venue"], registry=r)
        self.feed_subscribed = Gauge(
            "liqmon_feed_subscribed_connections", "Connections of the venue currently subscribed.",
            ["venue"], registry=r)
        self.frames = Counter(
            "liqmon_frames", "Frames received from the venue.", ["venue"], registry=r)
        self.completeness_info = Gauge(
            "liqmon_venue_completeness_info", "What the venue's feed shows of its liquidations "
            "(full, throttled, aggregated, backstop, inferred); always 1.",
            ["venue", "completeness"], registry=r)
        self.topics_refused = Counter(
            "liqmon_topics_refused", "Topics the venue refused (dropped until the next "
            "instrument refresh; the connection keeps its other topics).", ["venue"],
            registry=r)
        self.frames_invalid = Counter(
            "liqmon_frames_invalid", "Frames or rows that could not be read, by reason.",
            ["venue", "reason"], registry=r)
        self.last_data = Gauge(
            "liqmon_feed_last_data_timestamp_seconds",
            "Wall time of the last frame that carried data (a liquidation or a price), not an "
            "acknowledgement or pong: what the feed-silent alert watches.", ["venue"],
            registry=r)
        self.last_frame = Gauge(
            "liqmon_feed_last_frame_timestamp_seconds", "Wall time of the last frame received.",
            ["venue"], registry=r)
        self.reconnects = Counter(
            "liqmon_feed_reconnects", "Reconnections of venue connections, by reason.",
            ["venue", "reason"], registry=r)
        self.event_lag = Histogram(
            "liqmon_event_lag_seconds", "Receipt time minus the venue's time of a liquidation.",
            ["venue"], buckets=LAG_BUCKETS_SECONDS, registry=r)
        self.ingest_dropped = Counter(
            "liqmon_ingest_dropped_events", "Events dropped because the ingest queue was full.",
            ["venue"], registry=r)
        self.duplicates = Counter(
            "liqmon_duplicate_events", "Events seen again and not counted twice.",
            ["venue"], registry=r)
        self.store_up_gauge = Gauge(
            "liqmon_store_up", "1 when the store backend is reachable.", registry=r)
        self.store_buffered = Gauge(
            "liqmon_store_buffered_events", "Events waiting to be written to the store.",
            registry=r)
        self.store_oldest_age = Gauge(
            "liqmon_store_oldest_buffered_age_seconds", "Age of the oldest buffered event.",
            registry=r)
        self.store_dropped = Counter(
            "liqmon_store_dropped_events", "Events dropped because the store buffer overflowed.",
            registry=r)
        self.store_write = Histogram(
            "liqmon_store_write_seconds", "Latency of one store batch write.", registry=r)
        self.notify_delivered = Counter(
            "liqmon_notify_delivered", "Alerts delivered, by channel.", ["channel"], registry=r)
        self.notify_failures = Counter(
            "liqmon_notify_failures", "Delivery attempts that failed, by channel.",
            ["channel"], registry=r)
        self.notify_retries = Counter(
            "liqmon_notify_retries", "Deliveries retried, by channel.", ["channel"], registry=r)
        self.notify_dropped = Counter(
            "liqmon_notify_dropped", "Alerts dropped by the outbox, by channel.",
            ["channel"], registry=r)
        self.notify_queue = Gauge(
            "liqmon_notify_queue_size", "Alerts waiting in the outbox, by channel.",
            ["channel"], registry=r)
        self.notify_up = Gauge(
            "liqmon_notify_up", "1 when the channel's last delivery attempt succeeded.",
            ["channel"], registry=r)
        build = Gauge("liqmon_build_info", "Build information; always 1.",
                      ["version", "python"], registry=r)
        build.labels(__version__, platform.python_version()).set(1)
        self.store_up_gauge.set(1)
        self._largest_seen: dict[tuple[str, str], tuple[int, float]] = {}
        # labels() validates, locks and builds a key on every call: a quarter of the replay
        # path's CPU when it ran per event. The children of the per-event metrics are looked
        # up once per label set and kept here. None of these metrics ever has a child
        # removed (reload removes only feed health gauges), so a kept child stays the one
        # that is exported.
        self._liquidation_children: dict[tuple[str, str, PositionSide],
                                         _LiquidationChildren] = {}
        self._mark_children: dict[tuple[str, str], Any] = {}
        self._venue_counters: dict[tuple[Counter, str], Any] = {}
        self._initialise(venues)

    def _initialise(self, venues: Iterable[str]) -> None:
        """Known label sets start at zero so increase() sees the first event."""
        coins = [*sorted(self.coins), OTHER_COIN]
        for venue in venues:
            self.add_venue(venue, coins)

    def add_venue(self, venue: str, coins: Sequence[str] | None = None) -> None:
        for coin in coins if coins is not None else [*sorted(self.coins), OTHER_COIN]:
            for side in SIDE_NAMES:
                self.liquidations.labels(venue, coin, side)
                self.liquidated_usd.labels(venue, coin, side)
                self.whales.labels(venue, coin, side)
            self.largest.labels(venue, coin)
        for side in SIDE_NAMES:
            self.size.labels(venue, side)
        self.feed_connected.labels(venue)
        self.feed_subscribed.labels(venue)
        for reason in RECONNECT_REASONS:
            self.reconnects.labels(venue, reason)
        self.frames.labels(venue)
        self.topics_refused.labels(venue)
        self.last_frame.labels(venue)
        self.event_lag.labels(venue)
        self.ingest_dropped.labels(venue)
        self.duplicates.labels(venue)
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
        for gauge in (self.feed_connected, self.feed_subscribed, self.last_frame,
                      self.last_data):
            with contextlib.suppress(KeyError):
                gauge.remove(venue)

    def frames_total(self) -> float:
        """Frames read since start, every venue."""
        return _counter_total(self.frames)

    def connection_attempts_total(self) -> float:
        """Connection attempts that ended since start, every venue and reason."""
        return _counter_total(self.reconnects)

    def add_channel(self, channel: str) -> None:
        for metric in (self.notify_delivered, self.notify_failures, self.notify_retries,
                       self.notify_dropped, self.notify_queue, self.notify_up):
            metric.labels(channel)
        # A channel that has not sent anything yet is not failing.
        self.notify_up.labels(channel).set(1)

    def coin_label(self, coin: str) -> str:
        return coin if coin in self.coins else OTHER_COIN

    def scope_label(self, scope: str) -> str:
        """Coin scopes share the coin label's bound: unknown coins become coin:other."""
        if scope.startswith(COIN_SCOPE_PREFIX):
            return coin_scope(self.coin_label(scope[len(COIN_SCOPE_PREFIX):]))
        return scope

    def _venue_child(self, counter: Counter, venue: str) -> Any:
        child = self._venue_counters.get((counter, venue))
        if child is None:
            if len(self._venue_counters) >= CHILD_CACHE_LIMIT:
                self._venue_counters.clear()
            child = self._venue_counters[(counter, venue)] = counter.labels(venue)
        return child

    # -- feed ---------------------------------------------------------------------------
    def frame(self, venue: str, received_at: float) -> None:
        self._venue_child(self.frames, venue).inc()
        # Not cached: reload removes this gauge's child when a venue is switched off.
        self.last_frame.labels(venue).set(received_at)

    def data(self, venue: str, received_at: float) -> None:
        self.last_data.labels(venue).set(received_at)

    def frame_invalid(self, venue: str, reason: str) -> None:
        self.frames_invalid.labels(venue, reason).inc()

    def reconnect(self, venue: str, reason: str) -> None:
        self.reconnects.labels(venue, reason).inc()

    def connections(self, venue: str, subscribed: int, total: int) -> None:
        self.feed_subscribed.labels(venue).set(subscribed)
        self.feed_connected.labels(venue).set(1 if total and subscribed >= total else 0)

    def completeness_of(self, venue: str, completeness: str) -> None:
        self.completeness_info.labels(venue, completeness).set(1)

    def topic_refused(self, venue: str) -> None:
        self._venue_child(self.topics_refused, venue).inc()

    def ingest_drop(self, venue: str) -> None:
        self._venue_child(self.ingest_dropped, venue).inc()

    def duplicate(self, venue: str) -> None:
        self._venue_child(self.duplicates, venue).inc()

    # -- events -------------------------------------------------------------------------
    def _children(self, venue: str, coin: str, position_side: PositionSide,
                  ) -> _LiquidationChildren:
        label = self.coin_label(coin)
        side = position_side.value
        children = (
            (venue, label), self.liquidations.labels(venue, label, side),
            self.liquidated_usd.labels(venue, label, side), self.size.labels(venue, side),
            self.event_lag.labels(venue), self.largest.labels(venue, label))
        if len(self._liquidation_children) >= CHILD_CACHE_LIMIT:
            self._liquidation_children.clear()
        self._liquidation_children[(venue, coin, position_side)] = children
        return children

    def liquidation(self, event: Liquidation) -> None:
        # The side itself is the key: Enum.value is a Python-level property, slower than
        # the whole dict lookup.
        key = (event.venue, event.coin, event.position_side)
        children = self._liquidation_children.get(key)
        if children is None:
            children = self._children(*key)
        largest_key, count, usd, size, lag_seconds, largest = children
        notional = event.notional_usd
        ts_ms = event.exchange_ts_ms
        count.inc()
        usd.inc(notional)
        size.observe(notional)
        lag = event.received_at - ts_ms / 1000.0
        lag_seconds.observe(max(lag, 0.0))
        seen = self._largest_seen.get(largest_key)
        if seen is None or ts_ms - seen[0] > LARGEST_WINDOW_MS or notional >= seen[1]:
            self._largest_seen[largest_key] = (ts_ms, notional)
            largest.set(notional)

    def expire_largest(self, now_ms: int) -> None:
        """Zero the largest-liquidation gauges whose minute has passed (called each second)."""
        for (venue, coin), (ts_ms, _usd) in list(self._largest_seen.items()):
            if now_ms - ts_ms > LARGEST_WINDOW_MS:
                del self._largest_seen[(venue, coin)]
                self.largest.labels(venue, coin).set(0)

    def whale(self, event: Liquidation) -> None:
        self.whales.labels(event.venue, self.coin_label(event.coin),
                           event.position_side.value).inc()

    def mark(self, price: MarkPrice) -> None:
        key = (price.venue, price.coin)
        try:
            child = self._mark_children[key]
        except KeyError:
            coin = self.coin_label(price.coin)
            child = None if coin == OTHER_COIN else self.mark_price.labels(price.venue, coin)
            if len(self._mark_children) >= CHILD_CACHE_LIMIT:
                self._mark_children.clear()
            self._mark_children[key] = child
        if child is not None:
            child.set(price.price)

    # -- detector -----------------------------------------------------------------------
    def cascade_state(self, states: Iterable[tuple[str, str, str | None]]) -> None:
        """Set active/severity from (scope, position_side, severity or None) of live scopes.

        Scopes not listed go back to zero.
        """
        live = {}
        for scope, side, severity in states:
            live[(self.scope_label(scope), side)] = SEVERITY_LEVEL.get(severity or "", 0)
        for metric in (self.cascade_active, self.cascade_severity):
            for labels in list(_label_sets(metric)):
                if labels not in live:
                    metric.labels(*labels).set(0)
        for (scope, side), level in live.items():
            self.cascade_active.labels(scope, side).set(1 if level else 0)
            self.cascade_severity.labels(scope, side).set(level)

    def cascade_started(self, scope: str, position_side: str) -> None:
        self.cascades.labels(self.scope_label(scope), position_side).inc()

    # -- store (StoreObserver) ----------------------------------------------------------
    def store_up(self, up: bool) -> None:
        self.store_up_gauge.set(1 if up else 0)

    def buffered(self, events: int) -> None:
        self.store_buffered.set(events)

    def dropped(self, events: int) -> None:
        self.store_dropped.inc(events)

    def write_seconds(self, seconds: float) -> None:
        self.store_write.observe(seconds)

    def oldest_buffered_age(self, seconds: float) -> None:
        self.store_oldest_age.set(seconds)


def _counter_total(metric: Counter) -> float:
    return sum(s.value for family in metric.collect() for s in family.samples
               if s.name.endswith("_total"))


def _label_sets(metric: Gauge) -> Iterable[tuple[str, ...]]:
    # prometheus_client keeps children in a dict keyed by label values.
    return tuple(tuple(k) for k in metric._metrics)

