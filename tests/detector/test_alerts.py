"""Alert renderings, the [detector] config section, and the detector's parts on their own."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime

import orjson
import pytest

from monitor.alerts import (
    SCHEMA,
    AlertState,
    CascadeAlert,
    Severity,
    Share,
    WhaleAlert,
    alert_log_line,
    alert_payload,
    cascade_id,
    format_duration,
    format_usd,
    rfc3339,
)
from monitor.config import build_config
from monitor.detector.aggregates import LONG, SHORT
from monitor.detector.config import DetectorConfig, ScopeThresholds
from monitor.detector.engine import Detector
from monitor.detector.prices import PriceTracker
from monitor.detector.windows import Windows
from monitor.errors import ConfigError
from monitor.events import PositionSide
from tests.support.synth import T0, calm, liq, run


def cascade(status: AlertState = AlertState.FIRING) -> CascadeAlert:
    return CascadeAlert(
        id=cascade_id("coin:ETH", PositionSide.LONG, T0),
        status=status,
        scope="coin:ETH",
        position_side=PositionSide.LONG,
        severity=Severity.CRITICAL,
        started_at=T0,
        at=T0 + 60.5,
        window_seconds=300,
        usd=212e6,
        usd_per_minute=42.4e6,
        acceleration=3.1,
        long_share=0.96,
        baseline_multiple=8.4,
        count=5000,
        symbol_seconds=900,
        venues=(Share("hyperliquid", 150e6, 0.71), Share("bybit", 62e6, 0.29)),
        coins=(Share("ETH", 212e6, 1.0),),
        price_move=-0.061,
        peak_usd=212e6,
        peak_at=T0 + 60,
        total_usd=300e6,
        reason="ETH longs: $212M in 5m, 8.4x baseline, 96% long, 2 venues, mark -6.1%",
    )


def test_cascade_payload_is_the_shared_schema() -> None:
    payload = alert_payload(cascade())
    assert payload["schema"] == SCHEMA == "liqmon.alert/v1"
    assert payload["kind"] == "cascade"
    assert payload["alertname"] == "LiqmonLiquidationCascade"
    assert (payload["status"], payload["severity"]) == ("firing", "critical")
    assert (payload["scope"], payload["position_side"]) == ("coin:ETH", "long")
    assert payload["time"] == "2026-02-01T00:01:00.500Z"
    assert payload["time_ms"] == int((T0 + 60.5) * 1000)
    assert payload["started_at"] == "2026-02-01T00:00:00.000Z"
    assert payload["started_at_ms"] == int(T0 * 1000)
    assert payload["venues"][0] == {"venue": "hyperliquid", "usd": 150e6, "share": 0.71}
    assert payload["coins"] == [{"coin": "ETH", "usd": 212e6, "share": 1.0}]
    assert payload["price_move"] == -0.061
    assert payload["reason"].startswith("ETH longs: $212M in 5m")
    assert orjson.loads(orjson.dumps(payload)) == payload  # plain JSON types only


def test_whale_payload_carries_the_liquidation() -> None:
    event = liq("hyperliquid", "ETH", PositionSide.LONG, 222e6, T0 + 5, price=2300.0)
    whale = Detector(DetectorConfig()).on_liquidation(event)[0]
    payload = alert_payload(whale)
    assert (payload["kind"], payload["status"], payload["severity"]) == (
        "whale", "firing", "extreme")
    assert payload["alertname"] == "LiqmonWhaleLiquidation"
    assert payload["scope"] == "coin:ETH" and payload["position_side"] == "long"
    assert payload["liquidation"] == event.to_json_dict()
    assert payload["time_ms"] == event.exchange_ts_ms
    assert "$222M" in payload["reason"] and "hyperliquid" in payload["reason"]
    assert whale.id == Detector(DetectorConfig()).on_liquidation(event)[0].id
    assert isinstance(whale, WhaleAlert)


def test_log_lines_name_kind_status_scope_side_and_id() -> None:
    line = alert_log_line(cascade(AlertState.ESCALATED))
    assert line.startswith("cascade escalated critical coin:ETH long id=cas-")
    assert line.endswith("mark -6.1%")


def test_ids_are_stable_and_distinct() -> None:
    a = cascade_id("global", PositionSide.LONG, T0)
    assert a == cascade_id("global", PositionSide.LONG, T0)
    assert len({a, cascade_id("global", PositionSide.SHORT, T0),
                cascade_id("coin:BTC", PositionSide.LONG, T0),
                cascade_id("global", PositionSide.LONG, T0 + 1)}) == 4


def test_severity_is_ordered() -> None:
    assert Severity.WARNING < Severity.CRITICAL < Severity.EXTREME
    assert max([Severity.CRITICAL, Severity.EXTREME, Severity.WARNING]) is Severity.EXTREME
    assert sorted(Severity, reverse=True)[0] is Severity.EXTREME


@pytest.mark.parametrize(("usd", "text"), [
    (950, "$950"), (12_345, "$12.3k"), (4.56e6, "$4.6M"), (212e6, "$212M"), (2.566e9, "$2.57B"),
])
def test_usd_is_short(usd: float, text: str) -> None:
    assert format_usd(usd) == text


def test_durations_are_short() -> None:
    assert [format_duration(s) for s in (45, 300, 390, 3600, 9180)] == [
        "45s", "5m", "6m30s", "1h", "2h33m"]


def test_rfc3339_is_utc_with_z() -> None:
    text = rfc3339(T0 + 0.25)
    assert text == "2026-02-01T00:00:00.250Z"
    assert datetime.fromisoformat(text).timestamp() == T0 + 0.25


# -- config -------------------------------------------------------------------------------------


def test_detector_section_loads_with_nested_tables_and_coin_overrides() -> None:
    config = build_config({"detector": {
        "window_seconds": 120,
        "global_scope": {"cascade_usd": 20e6},
        "coins": {"BTC": {"cascade_usd": 30e6, "critical_usd": 60e6, "whale_usd": 5e6}},
    }}).detector
    assert config.window_seconds == 120
    assert config.global_scope.cascade_usd == 20e6
    assert config.global_scope.min_venues == 2  # the global defaults are kept
    btc = config.coin_thresholds("BTC")
    assert btc.cascade_usd == 30e6 and btc.watch_usd == config.coin_scope.watch_usd
    assert config.coin_whale_usd("BTC") == 5e6 and config.coin_whale_usd("ETH") == 10e6


@pytest.mark.parametrize("raw", [
    {"window_seconds": 5},
    {"global_scope": {"min_share": 0.2}},
    {"coins": {"BTC": {"min_share": 2.0}}},
    {"cooling_seconds": "long"},
    {"no_such_key": 1},
])
def test_detector_section_rejects_bad_values(raw: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        build_config({"detector": raw})


def test_every_detector_field_is_documented_with_a_default() -> None:
    import dataclasses

    for cls in (DetectorConfig, ScopeThresholds):
        for f in dataclasses.fields(cls):
            assert f.default is not dataclasses.MISSING or f.default_factory is not (
                dataclasses.MISSING), f.name
            if cls is DetectorConfig and f.name not in ("global_scope", "coin_scope",
                                                        "venue_scope"):
                assert f.metadata.get("help"), f.name
    defaults = DetectorConfig()
    for th in (defaults.global_scope, defaults.coin_scope, defaults.venue_scope):
        assert th.watch_usd < th.cascade_usd < th.critical_usd < th.extreme_usd


# -- windows and prices ---------------------------------------------------------------------------


def test_windows_move_whole_seconds_and_keep_the_previous_window() -> None:
    w = Windows(window_seconds=10, cap_usd=1e6)
    sec = int(T0)
    w.add("bybit", "BTCUSDT", "BTC", LONG, 100.0, sec)
    w.add("bybit", "BTCUSDT", "BTC", LONG, 50.0, sec)  # same symbol-second
    w.add("okx", "BTC-USDT-SWAP", "BTC", SHORT, 5e6, sec)  # capped in signals
    w.advance(sec)
    g = w.global_agg

    def both(f: Callable[[int], float]) -> list[float]:
        return [f(LONG), f(SHORT)]

    assert both(g.usd) == [0.0, 0.0]  # the second is not over yet
    w.advance(sec + 1)
    assert both(g.usd) == [150.0, 1e6] and both(g.raw) == [150.0, 5e6]
    assert both(g.count) == [2, 1] and both(g.sym) == [1, 1]
    assert both(w.coins["BTC"].usd) == [150.0, 1e6] and both(w.venues["okx"].raw) == [0.0, 5e6]
    w.advance(sec + 11)
    assert both(g.usd) == [0.0, 0.0] and both(g.prev) == [150.0, 1e6]
    assert both(g.count) == [0, 0] and both(g.cum_raw) == [150.0, 5e6]
    w.advance(sec + 21)
    assert both(g.prev) == [0.0, 0.0]
    assert w.held_seconds() == 0


def test_late_events_count_until_the_window_has_passed_them() -> None:
    w = Windows(window_seconds=10, cap_usd=1e6)
    sec = int(T0)
    w.advance(sec + 5)
    w.add("bybit", "BTCUSDT", "BTC", LONG, 100.0, sec + 2)  # late, still in the window
    assert w.global_agg.usd(LONG) == 100.0
    w.add("bybit", "BTCUSDT", "BTC", LONG, 100.0, sec - 20)  # older than the window
    assert w.global_agg.usd(LONG) == 100.0 and w.late_dropped == 1
    w.add("bybit", "BTCUSDT", "BTC", LONG, 100.0, sec + 100_000)  # clock far ahead: now
    w.advance(sec + 6)
    assert w.global_agg.usd(LONG) == 200.0
    w.add("bybit", "BTCUSDT", "BTC", LONG, 50.0, sec + 2)  # late, into an existing entry
    assert w.global_agg.usd(LONG) == 250.0 and w.global_agg.sym(LONG) == 2


def test_memory_stays_bounded_over_a_long_run() -> None:
    detector = Detector(DetectorConfig())
    run(detector, calm(random.Random(9), T0, 3 * 3600, per_minute=30.0, mark_every=1),
        until=T0 + 3 * 3600)
    windows = detector._windows
    assert windows.held_seconds() <= 2 * 300 + 2
    assert detector._prices.held_samples() <= 10 * (300 // 5 + 2 + 60 // 5)


def test_price_moves_use_whole_seconds_before_the_step_only() -> None:
    prices = PriceTracker(window_seconds=60, stale_seconds=30)
    sec = int(T0)
    for i in range(0, 121):
        prices.update("ETH", "bybit", "ETHUSDT", 100.0 - i * 0.1, sec + i)
    # The step at second 101 sees seconds up to 100, against second 40: 90.0 / 96.0.
    assert prices.move("ETH", "bybit", sec + 101) == pytest.approx(90.0 / 96.0 - 1)
    # Other venues borrow the freshest price; nothing known is None.
    assert prices.move("ETH", "okx", sec + 101) == prices.move("ETH", "bybit", sec + 101)
    assert prices.move("BTC", "okx", sec + 101) is None
    assert prices.move("ETH", "bybit", sec + 400) is None  # stale


def test_a_second_instrument_does_not_mix_into_a_fresh_reference() -> None:
    prices = PriceTracker(window_seconds=60, stale_seconds=30)
    sec = int(T0)
    for i in range(60):
        prices.update("BTC", "binance-coinm", "BTCUSD_PERP", 100.0, sec + i)
        prices.update("BTC", "binance-coinm", "BTCUSD_260327", 103.0, sec + i)  # basis
    assert prices.move("BTC", "binance-coinm", sec + 60) == 0.0
