"""Every liqmon metric, declared once on an injected CollectorRegistry (DESIGN 7).

The catalogue and its meaning are listed in docs/metrics-and-alerts.md. Windows (1m, 5m,
...) are not exported: they are PromQL's job, through the recording rules in
deploy/prometheus/.
``_created`` series are disabled: they double the series count and no rule needs them.

The metrics updated per event or per frame (liquidations, sizes, lags, largest, whales, mark
prices, frames, duplicates, drops) are plain numbers in dicts, turned into metric families
only when /metrics is scraped (:class:`_HotCollector`): a prometheus_client child takes a
lock and a few calls on every update, which cost more than the rest of ingest. The daemon
updates and scrapes them on its one event-loop thread, so plain numbers need no lock. The
rarely updated metrics stay prometheus_client objects.

The endpoint does not format the per-event families through prometheus_client (label
escaping, sorting and number formatting for each of thousands of samples, about 20 ms for
12 venues): while it collects (``monitor.metrics.exposition``), the collector gives them as text
made from cached lines. Any other reader of the registry still gets ordinary families.
"""

from __future__ import annotations

import contextlib
import platform
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from monitor import __version__
from monitor.alerts import COIN_SCOPE_PREFIX, coin_scope, venue_scope
from monitor.events import SIDE_NAMES, Liquidation, MarkPrice, PositionSide
from monitor.metrics.exposition import FamilyLines, PreRendered, pre_rendering

OTHER_COIN = "other"
SEVERITY_LEVEL = {"warning": 1, "critical": 2, "extreme": 3}
SIZE_BUCKETS_USD = (1e3, 1e4, 5e4, 1e5, 5e5, 1e6, 5e6, 1e7, 5e7, 1e8, 5e8)
LAG_BUCKETS_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LARGEST_WINDOW_MS = 60_000
WHALE_WINDOW_MS = 300_000  # as long as the whale alert rule's increase() window
# Bounds the cache from raw coins to label slots; the label sets themselves are bounded (coin
# labels outside the configured coins are "other"), so this only guards against a flood of
# venues or listings.
CHILD_CACHE_LIMIT = 10_000
# The reasons of monitor.store.records.REFUSAL_REASONS (metrics imports no store module).
STORE_REJECT_REASONS = ("value", "timestamp", "unencodable")
RECONNECT_REASONS = ("closed", "error", "stale", "rejected", "timeout", "rotation")

# A histogram as one list: the count of each bucket (not cumulative; the last is +Inf), then
# the sum. One observation is a bisect and two additions.
Buckets = list[float]
# [count, usd] of one (venue, coin label, side).
Tally = list[float]
# What one liquidation updates: (tally, size histogram, lag histogram, largest key).
_Slot = tuple[Tally, Buckets, Buckets, tuple[str, str]]


_LONG = PositionSide.LONG
# The index of a histogram's sum: -1 would do, but only a non-negative index takes the
# interpreter's fast path for a list item.
_SIZE_SUM, _LAG_SUM = len(SIZE_BUCKETS_USD) + 1, len(LAG_BUCKETS_SECONDS) + 1


def _new_buckets(bounds: Sequence[float]) -> Buckets:
    return [0.0] * (len(bounds) + 2)


class _HotCollector:
    """The per-event metrics as plain numbers; families are built at scrape time."""

    def __init__(self) -> None:
        self.liquidations: dict[tuple[str, str, str], Tally] = {}
        self.whales: dict[tuple[str, str, str], list[float]] = {}
        self.whale_severity: dict[tuple[str, str, str], float] = {}
        self.size: dict[tuple[str, str], Buckets] = {}
        self.event_lag: dict[str, Buckets] = {}
        self.largest: dict[tuple[str, str], float] = {}
        self.mark_price: dict[tuple[str, str], float] = {}
        self.frames: dict[str, list[float]] = {}
        self.last_frame: dict[str, float] = {}
        self.ingest_dropped: dict[str, list[float]] = {}
        self.duplicates: dict[str, list[float]] = {}
        self._lines: list[FamilyLines] | None = None

    def describe(self) -> Iterator[Metric]:
        return self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        if pre_rendering():
            return iter((PreRendered(self.render()),))
        return self._families(with_samples=True)

    def render(self) -> str:
        """The text :func:`prometheus_client.generate_latest` makes of :meth:`collect`'s
        families, made from cached lines: each label set's escaped prefix is built once,
        and a line is formatted again only when its value changed (most do not between
        two scrapes)."""
        lines = self._lines
        if lines is None:
            lines = self._lines = [
                FamilyLines(family, HISTOGRAM_LE.get(family.name, ()))
                for family in self._families(with_samples=False)]
        liquidations, usd, size, largest, whales, whale_severity, mark, frames, last_frame, \
            lag, dropped, duplicates = lines
        out: list[str] = []
        liquidations.head(out)
        line = liquidations.line
        for labels, (count, _usd) in self.liquidations.items():
            out.append(line(labels, count))
        usd.head(out)
        line = usd.line
        for labels, (_count, total_usd) in self.liquidations.items():
            out.append(line(labels, total_usd))
        size.head(out)
        for pair, buckets in self.size.items():
            size.histogram(out, pair, buckets)
        largest.head(out)
        largest.values(out, self.largest)
        whales.head(out)
        whales.counts(out, self.whales)
        for family, values in ((whale_severity, self.whale_severity), (mark, self.mark_price)):
            family.head(out)
            family.values(out, values)
        for family, by_venue in ((frames, self.frames), (last_frame, self.last_frame)):
            family.head(out)
            family.venue_values(out, by_venue)
        lag.head(out)
        for venue, buckets in self.event_lag.items():
            lag.histogram(out, (venue,), buckets)
        for family, by_venue in ((dropped, self.ingest_dropped),
                                 (duplicates, self.duplicates)):
            family.head(out)
            family.venue_values(out, by_venue)
        return "".join(out)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        vcs = ["venue", "coin", "position_side"]
        liquidations = CounterMetricFamily(
            "liqmon_liquidations", "Liquidations counted, after deduplication.", labels=vcs)
        usd = CounterMetricFamily(
            "liqmon_liquidated_usd",
            "USD notional liquidated (stablecoin quotes count as USD).", labels=vcs)
        whales = CounterMetricFamily(
            "liqmon_whale_liquidations", "Single liquidations above the whale threshold.",
            labels=vcs)
        whale_severity = GaugeMetricFamily(
            "liqmon_whale_severity",
            "Highest severity the daemon gave a whale liquidation of this venue, coin and side "
            "in the last 5 minutes of venue time (1 warning, 2 critical, 3 extreme; 0 none).",
            labels=vcs)
        size = HistogramMetricFamily(
            "liqmon_liquidation_size_usd", "USD notional of single liquidations.",
            labels=["venue", "position_side"])
        largest = GaugeMetricFamily(
            "liqmon_largest_liquidation_usd",
            "Largest single liquidation in the last 60 s of venue time, in USD.",
            labels=["venue", "coin"])
        mark = GaugeMetricFamily(
            "liqmon_mark_price_usd", "Last mark price of the coin on the venue, in USD.",
            labels=["venue", "coin"])
        frames = CounterMetricFamily(
            "liqmon_frames", "Frames received from the venue.", labels=["venue"])
        last_frame = GaugeMetricFamily(
            "liqmon_feed_last_frame_timestamp_seconds", "Wall time of the last frame received.",
            labels=["venue"])
        lag = HistogramMetricFamily(
            "liqmon_event_lag_seconds", "Receipt time minus the venue's time of a liquidation.",
            labels=["venue"])
        dropped = CounterMetricFamily(
            "liqmon_ingest_dropped_events", "Events dropped because the ingest queue was full.",
            labels=["venue"])
        duplicates = CounterMetricFamily(
            "liqmon_duplicate_events", "Events seen again and not counted twice.",
            labels=["venue"])
        if with_samples:
            for labels, (count, total_usd) in self.liquidations.items():
                liquidations.add_metric(labels, count)
                usd.add_metric(labels, total_usd)
            for labels, (count,) in self.whales.items():
                whales.add_metric(labels, count)
            for labels, level in self.whale_severity.items():
                whale_severity.add_metric(labels, level)
            for pair, buckets in self.size.items():
                size.add_metric(pair, _cumulative(SIZE_LE, buckets), buckets[-1])
            for pair, value in self.largest.items():
                largest.add_metric(pair, value)
            for pair, value in self.mark_price.items():
                mark.add_metric(pair, value)
            for venue, (count,) in self.frames.items():
                frames.add_metric((venue,), count)
            for venue, value in self.last_frame.items():
                last_frame.add_metric((venue,), value)
            for venue, buckets in self.event_lag.items():
                lag.add_metric((venue,), _cumulative(LAG_LE, buckets), buckets[-1])
            for venue, (count,) in self.ingest_dropped.items():
                dropped.add_metric((venue,), count)
            for venue, (count,) in self.duplicates.items():
                duplicates.add_metric((venue,), count)
        return iter((liquidations, usd, size, largest, whales, whale_severity, mark, frames,
                     last_frame, lag, dropped, duplicates))


def _le(bounds: Sequence[float]) -> tuple[str, ...]:
    """The ``le`` labels prometheus_client's Histogram gives these bounds."""
    return (*(floatToGoString(b) for b in bounds), "+Inf")  # type: ignore[no-untyped-call]


SIZE_LE = _le(SIZE_BUCKETS_USD)
LAG_LE = _le(LAG_BUCKETS_SECONDS)
HISTOGRAM_LE = {"liqmon_liquidation_size_usd": SIZE_LE, "liqmon_event_lag_seconds": LAG_LE}


def _cumulative(le: Sequence[str], buckets: Buckets) -> list[tuple[str, float]]:
    out = []
    running = 0.0
    for bound, count in zip(le, buckets, strict=False):
        running += count
        out.append((bound, running))
    return out


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
        self._hot = _HotCollector()
        r.register(self._hot)
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
            hot.size.setdefault((venue, side), _new_buckets(SIZE_BUCKETS_USD))
        self.feed_connected.labels(venue)
        self.feed_subscribed.labels(venue)
        self.feed_gaps.labels(venue)
        for reason in RECONNECT_REASONS:
            self.reconnects.labels(venue, reason)
        hot.frames.setdefault(venue, [0.0])
        hot.last_frame.setdefault(venue, 0.0)
        hot.event_lag.setdefault(venue, _new_buckets(LAG_BUCKETS_SECONDS))
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

    # -- feed ---------------------------------------------------------------------------
    def frame(self, venue: str, received_at: float) -> None:
        hot = self._hot
        try:
            hot.frames[venue][0] += 1
        except KeyError:
            hot.frames[venue] = [1.0]
        hot.last_frame[venue] = received_at

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

    def ingest_drop(self, venue: str, events: int = 1) -> None:
        dropped = self._hot.ingest_dropped
        try:
            dropped[venue][0] += events
        except KeyError:
            dropped[venue] = [float(events)]

    def duplicate(self, venue: str) -> None:
        _count(self._hot.duplicates, venue)

    def too_old(self, venue: str) -> None:
        self.too_old_events.labels(venue).inc()

    # -- events -------------------------------------------------------------------------
    def _slot(self, venue: str, coin: str, position_side: PositionSide) -> _Slot:
        hot = self._hot
        label = self.coin_label(coin)
        side = position_side.value
        tally = hot.liquidations.setdefault((venue, label, side), [0.0, 0.0])
        hot.whales.setdefault((venue, label, side), [0.0])
        hot.largest.setdefault((venue, label), 0.0)
        size = hot.size.setdefault((venue, side), _new_buckets(SIZE_BUCKETS_USD))
        lag = hot.event_lag.setdefault(venue, _new_buckets(LAG_BUCKETS_SECONDS))
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
            tally[0] += 1
            tally[1] += notional
            # bisect_left: the first bound >= the value, prometheus_client's "le" rule.
            size[bisect_left(size_bounds, notional)] += 1
            size[_SIZE_SUM] += notional
            received = event.received_at
            if ts_ms != lag_ts or received != lag_received:
                # A frame's rows share a receipt time and often a venue time: the lag and
                # its bucket are worked out once for a run of them.
                lag_ts, lag_received = ts_ms, received
                lag = received - ts_ms / 1000.0
                if lag < 0.0:
                    lag = 0.0
                lag_at = bisect_left(lag_bounds, lag)
            lag_buckets[lag_at] += 1
            lag_buckets[_LAG_SUM] += lag
            if not seen_read:
                seen = largest_seen.get(largest_key)
                seen_read = True
            if seen is None or ts_ms - seen[0] > LARGEST_WINDOW_MS or notional >= seen[1]:
                seen = largest_seen[largest_key] = (ts_ms, notional)
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


def _count(counts: dict[str, list[float]], venue: str) -> None:
    try:
        counts[venue][0] += 1
    except KeyError:
        counts[venue] = [1.0]


def _counter_total(metric: Counter) -> float:
    return sum(s.value for family in metric.collect() for s in family.samples
               if s.name.endswith("_total"))


def _label_sets(metric: Gauge) -> Iterable[tuple[str, ...]]:
    # prometheus_client keeps children in a dict keyed by label values.
    return tuple(tuple(k) for k in metric._metrics)

