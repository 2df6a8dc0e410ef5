"""The metrics updated per event or per frame, as plain numbers.

Liquidations, sizes, lags, largest, whales, mark prices, frames, duplicates and drops are
numbers in dicts, turned into metric families only when /metrics is scraped
(:class:`HotCollector`): a prometheus_client child takes a lock and a few calls on every
update, which cost more than the rest of ingest. The daemon updates and scrapes them on its
one event-loop thread, so plain numbers need no lock.

The endpoint does not format these families through prometheus_client (label escaping,
sorting and number formatting for each of thousands of samples, about 20 ms for 12
venues): while it collects (``monitor.metrics.exposition``), the collector gives them as
text made from cached lines. Any other reader of the registry still gets ordinary families.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from monitor.metrics.exposition import FamilyLines, PreRendered, pre_rendering

SIZE_BUCKETS_USD = (1e3, 1e4, 5e4, 1e5, 5e5, 1e6, 5e6, 1e7, 5e7, 1e8, 5e8)
LAG_BUCKETS_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# A histogram as one list: the count of each bucket (not cumulative; the last is +Inf), then
# the sum. One observation is a bisect and two additions.
Buckets = list[float]
# [count, usd] of one (venue, coin label, side).
Tally = list[float]


def new_buckets(bounds: Sequence[float]) -> Buckets:
    return [0.0] * (len(bounds) + 2)


class HotCollector:
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
