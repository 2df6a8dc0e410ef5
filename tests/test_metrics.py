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
