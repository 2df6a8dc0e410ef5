"""The rarely updated metrics: prometheus_client objects on the injected registry.

Feed health, cascades, the store's observer, the notifier's channels and the build
information; :class:`monitor.metrics.Metrics` adds the per-event ones (``hot``) to them.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from monitor import __version__
from monitor.alerts import COIN_SCOPE_PREFIX, coin_scope

OTHER_COIN = "other"
SEVERITY_LEVEL = {"warning": 1, "critical": 2, "extreme": 3}
# The reasons of monitor.store.records.REFUSAL_REASONS (metrics imports no store module).
STORE_REJECT_REASONS = ("value", "timestamp", "unencodable")


class ClientMetrics:
    """The prometheus_client metrics and their updates (none of them per event)."""

    def __init__(self, registry: CollectorRegistry, coins: Iterable[str]) -> None:
        # A process-wide switch of prometheus_client: set when metrics are made, not at import.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry
        self.coins = frozenset(c.upper() for c in coins)
        r = registry
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
        self.feed_gaps = Gauge(
            "liqmon_feed_gaps_last_hour",
            "Minutes of the last 60 in which the venue's feed had a gap: some connection not "
            "subscribed for part of the minute, or liqmon not running.", ["venue"], registry=r)
        # Others told of each change of a venue's connection counts (the coverage writer).
        self.connection_listeners: list[Callable[[str, int, int], None]] = []
        self.frames_invalid = Counter(
            "liqmon_frames_invalid", "Frames or rows that could not be read, by reason.",
            ["venue", "reason"], registry=r)
        self.completeness_info = Gauge(
            "liqmon_venue_completeness_info", "What the venue's feed shows of its liquidations "
            "(full, throttled, aggregated, backstop, inferred); always 1.",
            ["venue", "completeness"], registry=r)
        self.topics_refused = Counter(
            "liqmon_topics_refused", "Topics the venue refused (dropped until the next "
            "instrument refresh; the connection keeps its other topics).", ["venue"],
            registry=r)
        self.last_data = Gauge(
            "liqmon_feed_last_data_timestamp_seconds",
            "Wall time of the last frame that carried data (a liquidation or a price), not an "
            "acknowledgement or pong: what the feed-silent alert watches.", ["venue"],
            registry=r)
        self._last_data_children: dict[str, Any] = {}
        self.reconnects = Counter(
            "liqmon_feed_reconnects", "Reconnections of venue connections, by reason.",
            ["venue", "reason"], registry=r)
        self.too_old_events = Counter(
            "liqmon_too_old_events",
            "Events stamped before the dedupe window (a replay of any age counts once): "
            "counted by nobody.", ["venue"], registry=r)
        self.store_up_gauge = Gauge(
            "liqmon_store_up",
            "1 when writes land in the store: 0 after a failed write, or when buffered events "
            "have waited too long without a write landing.", registry=r)
        self.store_last_write = Gauge(
            "liqmon_store_last_write_timestamp_seconds",
            "Wall time of the last write that landed in the store.", registry=r)
        self.store_rejected = Counter(
            "liqmon_store_rejected_events",
            "Events no store can keep (non-finite or absurd values, unencodable), skipped.",
            ["reason"], registry=r)
        self.store_persistent = Gauge(
            "liqmon_store_persistence_enabled",
            "1 when the store keeps its data across a restart (Redis AOF or RDB on), 0 when "
            "not, -1 when it cannot be told (the memory backend, CONFIG refused).", registry=r)
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
        for reason in STORE_REJECT_REASONS:
            self.store_rejected.labels(reason)
        self.store_persistent.set(-1)  # until a Redis store has been asked

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

    def data(self, venue: str, received_at: float) -> None:
        # Once per data frame: the child is looked up once per venue, not per frame.
        child = self._last_data_children.get(venue)
        if child is None:
            child = self._last_data_children[venue] = self.last_data.labels(venue)
        child.set(received_at)

    def frame_invalid(self, venue: str, reason: str) -> None:
        self.frames_invalid.labels(venue, reason).inc()

    def reconnect(self, venue: str, reason: str) -> None:
        self.reconnects.labels(venue, reason).inc()

    def connections(self, venue: str, subscribed: int, total: int) -> None:
        self.feed_subscribed.labels(venue).set(subscribed)
        self.feed_connected.labels(venue).set(1 if total and subscribed >= total else 0)
        for listener in self.connection_listeners:
            listener(venue, subscribed, total)

    def feed_gap_minutes(self, venue: str, minutes: int) -> None:
        self.feed_gaps.labels(venue).set(minutes)

    def completeness_of(self, venue: str, completeness: str) -> None:
        self.completeness_info.labels(venue, completeness).set(1)

    def topic_refused(self, venue: str) -> None:
        self.topics_refused.labels(venue).inc()

    def too_old(self, venue: str) -> None:
        self.too_old_events.labels(venue).inc()

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

    def rejected(self, reason: str, events: int) -> None:
        self.store_rejected.labels(reason).inc(events)

    def write_landed(self, wall_seconds: float) -> None:
        self.store_last_write.set(wall_seconds)

    def persistence(self, enabled: bool | None) -> None:
        self.store_persistent.set(-1 if enabled is None else 1 if enabled else 0)


def _counter_total(metric: Counter) -> float:
    return sum(s.value for family in metric.collect() for s in family.samples
               if s.name.endswith("_total"))


def _label_sets(metric: Gauge) -> Iterable[tuple[str, ...]]:
    # prometheus_client keeps children in a dict keyed by label values.
    return tuple(tuple(k) for k in metric._metrics)
