"""The metric catalogue and the HTTP endpoint that serves it."""

from __future__ import annotations

import httpx
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.metrics import Metrics
from monitor.service.endpoint import MetricsServer


def make() -> tuple[CollectorRegistry, Metrics]:
    registry = CollectorRegistry()
    return registry, Metrics(registry, ["bybit", "okx"], ["BTC", "ETH"], process_metrics=False)


def liq(coin: str, usd: float, ts_ms: int = 1_769_904_000_000) -> Liquidation:
    return Liquidation("bybit", coin + "USDT", coin, PositionSide.LONG, 10.0, usd / 10, usd,
                       ts_ms, ts_ms / 1000 + 0.5, Completeness.FULL, f"id-{coin}-{usd}")


def test_known_label_sets_start_at_zero_and_coins_are_bounded() -> None:
    registry, metrics = make()
    zero = {"venue": "okx", "coin": "other", "position_side": "short"}
    assert registry.get_sample_value("liqmon_liquidations_total", zero) == 0
    assert registry.get_sample_value("liqmon_cascade_active",
                                     {"scope": "global", "position_side": "long"}) == 0
    metrics.liquidation(liq("PEPE", 5000.0))
    metrics.liquidation(liq("BTC", 2000.0))
    assert registry.get_sample_value(
        "liqmon_liquidated_usd_total",
        {"venue": "bybit", "coin": "other", "position_side": "long"}) == 5000.0
    assert registry.get_sample_value(
        "liqmon_event_lag_seconds_count", {"venue": "bybit"}) == 2
    assert registry.get_sample_value(
        "liqmon_largest_liquidation_usd", {"venue": "bybit", "coin": "BTC"}) == 2000.0
    metrics.expire_largest(1_769_904_000_000 + 61_000)
    assert registry.get_sample_value(
        "liqmon_largest_liquidation_usd", {"venue": "bybit", "coin": "BTC"}) == 0
    metrics.mark(MarkPrice("okx", "ETH-USDT-SWAP", "ETH", 2400.0, 1, 1.0))
    assert registry.get_sample_value("liqmon_mark_price_usd",
                                     {"venue": "okx", "coin": "ETH"}) == 2400.0


def test_cascade_state_sets_live_scopes_and_clears_the_rest() -> None:
    registry, metrics = make()
    metrics.cascade_state([("coin:ETH", "long", "critical"), ("coin:PEPE", "long", "warning")])
    assert registry.get_sample_value("liqmon_cascade_severity",
                                     {"scope": "coin:ETH", "position_side": "long"}) == 2
    assert registry.get_sample_value("liqmon_cascade_active",
                                     {"scope": "coin:other", "position_side": "long"}) == 1
    metrics.cascade_state([])
    assert registry.get_sample_value("liqmon_cascade_active",
                                     {"scope": "coin:ETH", "position_side": "long"}) == 0


def test_no_created_series_and_names_follow_the_conventions() -> None:
    registry, _metrics = make()
    for family in registry.collect():
        assert family.name.startswith("liqmon_")
        for sample in family.samples:
            assert not sample.name.endswith("_created")
        if family.type == "counter":
            assert any(s.name.endswith("_total") for s in family.samples) or not family.samples


async def test_endpoint_serves_metrics_health_and_readiness() -> None:
    registry, _metrics = make()
    ready = [False]
    server = MetricsServer(registry, "127.0.0.1", 0, lambda: (ready[0], "detail"))
    await server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient() as client:
            response = await client.get(base + "/metrics")
            assert response.status_code == 200
            names = {f.name for f in text_string_to_metric_families(response.text)}
            assert {"liqmon_liquidations", "liqmon_build_info"} <= names
            assert (await client.get(base + "/healthz")).status_code == 200
            assert (await client.get(base + "/readyz")).status_code == 503
            ready[0] = True
            assert (await client.get(base + "/readyz")).status_code == 200
            assert "liqmon" in (await client.get(base + "/")).text
            assert (await client.get(base + "/nope")).status_code == 404
            assert (await client.post(base + "/metrics")).status_code == 405
    finally:
        await server.aclose()


def test_store_health_the_observer_reports() -> None:
    registry, metrics = make()
    get = registry.get_sample_value
    assert get("liqmon_store_rejected_events_total", {"reason": "value"}) == 0
    assert get("liqmon_store_persistence_enabled") == -1  # not asked yet
    metrics.rejected("timestamp", 2)
    metrics.write_landed(1_769_904_000.5)
    metrics.persistence(False)
    assert get("liqmon_store_rejected_events_total", {"reason": "timestamp"}) == 2
    assert get("liqmon_store_last_write_timestamp_seconds") == 1_769_904_000.5
    assert get("liqmon_store_persistence_enabled") == 0
    metrics.persistence(None)
    assert get("liqmon_store_persistence_enabled") == -1


def test_liquidations_of_a_frame_update_what_each_liquidation_would() -> None:
    events = [
        Liquidation("bybit" if i % 3 else "okx", coin + "USDT", coin,
                    PositionSide.LONG if i % 2 else PositionSide.SHORT, 10.0, i + 0.5,
                    10.0 * i + 5.0, 1_769_904_000_000 + 7_000 * i,
                    1_769_904_000.0 + 7.0 * i + (i % 5) * 0.3 - 0.4, Completeness.FULL, f"x{i}")
        for i, coin in enumerate(["BTC", "ETH", "PEPE", "BTC", "DOGE"] * 30)
    ]
    registry_one, one = make()
    registry_batch, batched = make()
    for event in events:
        one.liquidation(event)
    for i in range(0, len(events), 20):
        batched.liquidations(events[i:i + 20])
    one.ingest_drop("okx")
    one.ingest_drop("okx")
    batched.ingest_drop("okx", 2)
    assert generate_latest(registry_batch) == generate_latest(registry_one)


def test_runs_of_one_venue_and_coin_update_what_each_liquidation_would() -> None:
    # A frame's rows share a venue, a coin and often the times: the slots, the largest and
    # the lag are read once for such a run; runs change mid-frame, both sides alternate,
    # and "PEPE" and "WIF" share the "other" label.
    events = []
    for frame in range(40):
        venue = ("bybit", "okx", "binance-usdm")[frame % 3]
        coin = ("BTC", "PEPE", "WIF", "ETH")[frame % 4]
        ts_ms = 1_769_904_000_000 + 5_000 * frame
        for row in range(20):
            if row == 15:
                coin = "WIF" if coin != "WIF" else "BTC"
            events.append(Liquidation(
                venue, coin + "USDT", coin,
                PositionSide.LONG if (row + frame) % 2 else PositionSide.SHORT,
                10.0, 1.0 + row, 900.0 * (row + 1) * (frame % 7 + 1),
                ts_ms + (row * 10 if frame % 2 else 0), ts_ms / 1000.0 + 0.25 * (frame % 3),
                Completeness.FULL, f"y{frame}-{row}"))
    registry_one, one = make()
    registry_batch, batched = make()
    for event in events:
        one.liquidation(event)
    for i in range(0, len(events), 20):
        batched.liquidations(events[i:i + 20])
    assert generate_latest(registry_batch) == generate_latest(registry_one)
    assert batched._largest_seen == one._largest_seen


def test_size_and_lag_buckets_are_the_first_bound_at_or_above_the_value() -> None:
    """The common buckets are found by inline comparisons, the rest by bisect: each value
    at, just below and just above every bound lands where bisect_left puts it."""
    import math
    from bisect import bisect_left

    from monitor.metrics.hot import LAG_BUCKETS_SECONDS, SIZE_BUCKETS_USD

    sizes = [v for bound in SIZE_BUCKETS_USD
             for v in (math.nextafter(bound, 0.0), bound, math.nextafter(bound, math.inf))]
    lags = [v for bound in LAG_BUCKETS_SECONDS
            for v in (math.nextafter(bound, 0.0), bound, math.nextafter(bound, math.inf))]
    sizes += [0.5, 3e9]
    lags += [0.0, -1.0, 0.001, 100.0]
    # A venue time of 0: the lag is the receipt time, exactly.
    events = [Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 10.0, 1.0,
                          sizes[i % len(sizes)], 0, lags[i % len(lags)], Completeness.FULL,
                          f"z{i}")
              for i in range(len(sizes) * len(lags))]
    _, metrics = make()
    metrics.liquidations(events)
    size = metrics._hot.size[("bybit", "long")]
    lag = metrics._hot.event_lag["bybit"]
    want_size = [0.0] * (len(SIZE_BUCKETS_USD) + 1)
    want_lag = [0.0] * (len(LAG_BUCKETS_SECONDS) + 1)
    for event in events:
        want_size[bisect_left(SIZE_BUCKETS_USD, event.notional_usd)] += 1
        value = max(event.received_at - event.exchange_ts_ms / 1000.0, 0.0)
        want_lag[bisect_left(LAG_BUCKETS_SECONDS, value)] += 1
    assert size[:-1] == want_size
    assert lag[:-1] == want_lag


def test_the_largest_of_a_run_follows_the_minute_window_row_by_row() -> None:
    """A run's largest is kept in locals: a row replaces it when it is at least as large
    or when the kept one is more than a minute older, as for rows one call each."""
    events = []
    ts_ms = 1_769_904_000_000
    for i in range(60):
        # Steps of 0 to 60 s, sizes up and down: some rows come after the window; rows 40
        # to 42 are a large one, then smaller ones exactly 60 s and 60.001 s after it.
        ts_ms += ((i * 7_919) % 60_001, 60_000, 1)[max(0, min(i - 40, 2))]
        usd = 50_000.0 if i == 40 else 1_000.0 * ((i * 13) % 17 + 1)
        events.append(Liquidation("bybit", "BTCUSDT", "BTC",
                                  PositionSide.LONG if i % 3 else PositionSide.SHORT, 10.0,
                                  1.0, usd, ts_ms, ts_ms / 1000.0 + 0.2, Completeness.FULL,
                                  f"w{i}"))
    _, metrics = make()
    seen: dict[tuple[str, str], tuple[int, float]] = {}
    # Rows 40 and 41 in one call (a run), 42 alone (its first read), and calls of 7.
    for start, end in ((0, 7), (7, 14), (14, 21), (21, 28), (28, 35), (35, 42), (42, 43),
                       (43, 50), (50, 60)):
        metrics.liquidations(events[start:end])
        for event in events[start:end]:
            kept = seen.get(("bybit", "BTC"))
            if kept is None or event.exchange_ts_ms - kept[0] > 60_000 \
                    or event.notional_usd >= kept[1]:
                seen[("bybit", "BTC")] = (event.exchange_ts_ms, event.notional_usd)
        assert metrics._largest_seen == seen
    assert metrics._hot.largest[("bybit", "BTC")] == seen[("bybit", "BTC")][1]


def test_the_lag_is_the_receipt_time_minus_the_venue_time_in_seconds_bit_for_bit() -> None:
    """The lag divides the venue's ms by the int 1000 (int / int takes CPython's exact fast
    path; an int over a float converts it the slow way): the same float as
    ``ts_ms / 1000.0`` for every time inside the bounds, so the same sums and buckets."""
    import random
    from bisect import bisect_left

    from monitor.metrics.hot import LAG_BUCKETS_SECONDS
    from monitor.venues.bounds import EARLIEST_MS, LATEST_MS

    rng = random.Random(14)
    stamps = [EARLIEST_MS, LATEST_MS, 1_769_904_000_001, 2**41 + 1]
    stamps += [rng.randrange(EARLIEST_MS, LATEST_MS + 1) for _ in range(2000)]
    events = [Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 10.0, 1.0, 100.0,
                          ts, ts / 1000.0 + rng.choice((0.0, 0.001, 0.3, 7.0)),
                          Completeness.FULL, f"lag{i}")
              for i, ts in enumerate(stamps)]
    _, metrics = make()
    metrics.liquidations(events)
    lag = metrics._hot.event_lag["bybit"]
    want = [0.0] * (len(LAG_BUCKETS_SECONDS) + 1)
    total = 0.0
    for event in events:
        assert event.exchange_ts_ms / 1000 == event.exchange_ts_ms / 1000.0
        value = max(event.received_at - event.exchange_ts_ms / 1000.0, 0.0)
        want[bisect_left(LAG_BUCKETS_SECONDS, value)] += 1
        total += value
    assert lag[:-1] == want
    assert lag[-1] == total
