"""The per-event metrics, kept as plain numbers and exported at scrape time, expose exactly
what prometheus_client's own Counter, Histogram and Gauge expose for the same updates.

The reference below declares the same families with prometheus_client's classes and applies
the same events the way the daemon's metrics did before they left the per-event path; the
two expositions must agree family by family (name, type, help) and sample by sample
(name, labels, value).
"""

from __future__ import annotations

import random

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.metrics import (
    LAG_BUCKETS_SECONDS,
    LARGEST_WINDOW_MS,
    OTHER_COIN,
    SIZE_BUCKETS_USD,
    Metrics,
)
from monitor.metrics.exposition import collect_for_exposition, render

VENUES = ["bybit", "okx"]
COINS = ["BTC", "ETH"]
SIDES = ("long", "short")
HOT = {"liqmon_liquidations", "liqmon_liquidated_usd", "liqmon_liquidation_size_usd",
       "liqmon_largest_liquidation_usd", "liqmon_whale_liquidations", "liqmon_mark_price_usd",
       "liqmon_frames", "liqmon_feed_last_frame_timestamp_seconds", "liqmon_event_lag_seconds",
       "liqmon_ingest_dropped_events", "liqmon_duplicate_events"}
BASE_MS = 1_769_904_000_000


class Reference:
    """The same families as prometheus_client objects, updated per event."""

    def __init__(self, registry: CollectorRegistry) -> None:
        vcs = ["venue", "coin", "position_side"]
        r = registry
        self.liquidations = Counter("liqmon_liquidations",
                                    "Liquidations counted, after deduplication.", vcs, registry=r)
        self.usd = Counter("liqmon_liquidated_usd",
                           "USD notional liquidated (stablecoin quotes count as USD).", vcs,
                           registry=r)
        self.size = Histogram("liqmon_liquidation_size_usd",
                              "USD notional of single liquidations.", ["venue", "position_side"],
                              buckets=SIZE_BUCKETS_USD, registry=r)
        self.largest = Gauge("liqmon_largest_liquidation_usd",
                             "Largest single liquidation in the last 60 s of venue time, in USD.",
                             ["venue", "coin"], registry=r)
        self.whales = Counter("liqmon_whale_liquidations",
                              "Single liquidations above the whale threshold.", vcs, registry=r)
        self.whale_severity = Gauge(
            "liqmon_whale_severity",
            "Highest severity the daemon gave a whale liquidation of this venue, coin and side "
            "in the last 5 minutes of venue time (1 warning, 2 critical, 3 extreme; 0 none).",
            vcs, registry=r)
        self.mark = Gauge("liqmon_mark_price_usd",
                          "Last mark price of the coin on the venue, in USD.", ["venue", "coin"],
                          registry=r)
        self.frames = Counter("liqmon_frames", "Frames received from the venue.", ["venue"],
                              registry=r)
        self.last_frame = Gauge("liqmon_feed_last_frame_timestamp_seconds",
                                "Wall time of the last frame received.", ["venue"], registry=r)
        self.lag = Histogram("liqmon_event_lag_seconds",
                             "Receipt time minus the venue's time of a liquidation.", ["venue"],
                             buckets=LAG_BUCKETS_SECONDS, registry=r)
        self.dropped = Counter("liqmon_ingest_dropped_events",
                               "Events dropped because the ingest queue was full.", ["venue"],
                               registry=r)
        self.duplicates = Counter("liqmon_duplicate_events",
                                  "Events seen again and not counted twice.", ["venue"],
                                  registry=r)
        self.largest_seen: dict[tuple[str, str], tuple[int, float]] = {}
        for venue in VENUES:
            for coin in [*sorted(COINS), OTHER_COIN]:
                for side in SIDES:
                    self.liquidations.labels(venue, coin, side)
                    self.usd.labels(venue, coin, side)
                    self.whales.labels(venue, coin, side)
                self.largest.labels(venue, coin)
            for side in SIDES:
                self.size.labels(venue, side)
            for metric in (self.frames, self.last_frame, self.lag, self.dropped, self.duplicates):
                metric.labels(venue)

    @staticmethod
    def label(coin: str) -> str:
        return coin if coin in COINS else OTHER_COIN

    def liquidation(self, e: Liquidation) -> None:
        coin, side = self.label(e.coin), e.position_side.value
        self.liquidations.labels(e.venue, coin, side).inc()
        self.usd.labels(e.venue, coin, side).inc(e.notional_usd)
        self.size.labels(e.venue, side).observe(e.notional_usd)
        self.lag.labels(e.venue).observe(max(e.received_at - e.exchange_ts_ms / 1000.0, 0.0))
        seen = self.largest_seen.get((e.venue, coin))
        if (seen is None or e.exchange_ts_ms - seen[0] > LARGEST_WINDOW_MS
                or e.notional_usd >= seen[1]):
            self.largest_seen[(e.venue, coin)] = (e.exchange_ts_ms, e.notional_usd)
            self.largest.labels(e.venue, coin).set(e.notional_usd)


def exposition(registry: CollectorRegistry) -> dict[str, tuple[str, str, set[tuple[object, ...]]]]:
    """Family name → (type, help, {(sample name, sorted labels, value)}), parsed from text."""
    out = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        if family.name in HOT:
            samples = {(s.name, tuple(sorted(s.labels.items())), s.value) for s in family.samples}
            out[family.name] = (family.type, family.documentation, samples)
    return out


def test_the_collector_exposes_what_prometheus_client_objects_expose() -> None:
    ours_registry, ref_registry = CollectorRegistry(), CollectorRegistry()
    metrics = Metrics(ours_registry, VENUES, COINS, process_metrics=False)
    ref = Reference(ref_registry)
    rng = random.Random(5)
    for i in range(3000):
        venue = rng.choice(VENUES)
        coin = rng.choice(["BTC", "ETH", "PEPE", "WIF"])
        side = rng.choice(list(PositionSide))
        # Sizes and lags on, between and beyond the bucket bounds, negative lags included.
        usd = rng.choice([*SIZE_BUCKETS_USD, 5e9, rng.lognormvariate(9, 3)])
        ts = BASE_MS + i * 100
        lag = rng.choice([*LAG_BUCKETS_SECONDS, -1.0, 100.0, rng.uniform(0, 3)])
        event = Liquidation(venue, coin + "USDT", coin, side, 10.0, usd / 10, usd, ts,
                            ts / 1000 + lag, Completeness.FULL, f"id-{i}")
        metrics.liquidation(event)
        ref.liquidation(event)
        if i % 7 == 0:
            metrics.whale(event, "warning")
            ref.whales.labels(venue, ref.label(coin), side.value).inc()
            ref.whale_severity.labels(venue, ref.label(coin), side.value).set(1)
        if i % 5 == 0:
            metrics.frame(venue, ts / 1000)
            ref.frames.labels(venue).inc()
            ref.last_frame.labels(venue).set(ts / 1000)
            metrics.duplicate(venue)
            ref.duplicates.labels(venue).inc()
            metrics.ingest_drop(venue)
            ref.dropped.labels(venue).inc()
        metrics.mark(MarkPrice(venue, coin + "USDT", coin, float(i), ts, ts / 1000))
        if coin in COINS:
            ref.mark.labels(venue, coin).set(float(i))
    ours, theirs = exposition(ours_registry), exposition(ref_registry)
    assert set(ours) == HOT
    for name in HOT:
        assert ours[name][:2] == theirs[name][:2], name
        assert ours[name][2] == theirs[name][2], name


def test_reload_removes_and_restores_the_last_frame_gauge() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, VENUES, COINS, process_metrics=False)
    name = "liqmon_feed_last_frame_timestamp_seconds"
    metrics.frame("okx", 123.0)
    assert registry.get_sample_value(name, {"venue": "okx"}) == 123.0
    metrics.remove_venue_health("okx")
    assert registry.get_sample_value(name, {"venue": "okx"}) is None
    # The frame counter of a switched-off venue stays.
    assert registry.get_sample_value("liqmon_frames_total", {"venue": "okx"}) == 1
    metrics.add_venue("okx")
    assert registry.get_sample_value(name, {"venue": "okx"}) == 0
    assert metrics.frames_total() == 1


def test_a_family_name_cannot_be_registered_twice() -> None:
    # describe() gives the registry the collector's names, so a clash fails at start.
    registry = CollectorRegistry()
    Metrics(registry, VENUES, COINS, process_metrics=False)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("liqmon_liquidations", "again", registry=registry)


def test_the_endpoint_renderer_writes_what_generate_latest_writes() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["bybit", 'od"d\\venue\n'], ["BTC", "ETH"],
                      process_metrics=False)
    metrics.add_channel("mqtt")
    sides = (PositionSide.LONG, PositionSide.SHORT)
    for i in range(300):
        venue = "bybit" if i % 3 else 'od"d\\venue\n'
        coin = ("BTC", "ETH", "PEPE")[i % 3]
        event = Liquidation(venue, coin + "USDT", coin, sides[i % 2], 10.0, 1.0,
                            1.5 ** (i % 60), 1_769_904_000_000 + 1000 * i,
                            1_769_904_000.0 + i + (i % 7) / 3, Completeness.FULL, f"id{i}")
        metrics.liquidations([event])
        if i % 50 == 0:
            metrics.whale(event, "critical")
        metrics.frame(venue, 1_769_904_000.0 + i / 7)
        metrics.mark(MarkPrice(venue, coin + "USDT", coin, 100.0 + i / 3, 1, 1.0))
        if i % 100 == 0:
            # Lines are cached between scrapes: every scrape must still be exact.
            assert render(collect_for_exposition(registry)) == generate_latest(registry)
    metrics.mark(MarkPrice("bybit", "BTCUSDT", "BTC", -0.0, 1, 1.0))
    metrics.frame_invalid("bybit", "bounds_time")
    metrics.ingest_drop("bybit", 5)
    metrics.expire_largest(1_769_904_000_000 + 10**9)
    assert render(collect_for_exposition(registry)) == generate_latest(registry)
    metrics.mark(MarkPrice("bybit", "BTCUSDT", "BTC", 0.0, 1, 1.0))
    assert render(collect_for_exposition(registry)) == generate_latest(registry)
