"""The cascade detector on synthetic markets with a virtual time: the acceptance cases."""

from __future__ import annotations

import dataclasses
import random

from monitor.alerts import AlertState, Severity
from monitor.detector.config import CoinThresholds, DetectorConfig
from monitor.detector.engine import Detector, DetectorState
from monitor.events import Liquidation, PositionSide
from tests.support.synth import (
    CALM,
    FEB_TOTAL_USD,
    LONG,
    MAJORS,
    T0,
    Event,
    Result,
    assert_lifecycle,
    calm,
    feb_2026,
    flush,
    global_flush,
    liq,
    market,
    merge,
    run,
)


def test_a_quiet_market_never_alerts() -> None:
    result = run(Detector(DetectorConfig()), calm(random.Random(1), T0, 86400),
                 until=T0 + 86400)
    assert result.cascades == []
    assert result.whales == []


def test_a_calm_week_never_alerts() -> None:
    events = calm(random.Random(2), T0, 7 * 86400, mark_every=60)
    detector = Detector(DetectorConfig())
    result = run(detector, events, until=T0 + 7 * 86400)
    assert result.cascades == []
    assert detector.states() == []


def test_a_single_whale_print_is_a_whale_alert_not_a_cascade() -> None:
    at = T0 + CALM
    whale = liq("hyperliquid", "ETH", LONG, 50e6, at)
    result = run(Detector(DetectorConfig()), market([(at, whale)]), until=T0 + 3600)
    assert [w.liquidation for w in result.whales] == [whale]
    assert result.whales[0].severity is Severity.CRITICAL
    assert "ETH long $50.0M" in result.whales[0].reason
    assert result.cascades == []


def test_a_whale_alone_in_an_empty_market_is_not_a_cascade() -> None:
    detector = Detector(DetectorConfig())
    whales = detector.on_liquidation(liq("bybit", "BTC", LONG, 300e6, T0))
    assert len(whales) == 1 and whales[0].severity is Severity.EXTREME
    assert detector.evaluate(T0 + 1000) == []
    # The default threshold is $10M: a $9.99M print is a big one, not a whale.
    assert detector.on_liquidation(liq("bybit", "BTC", LONG, 9_999_999.0, T0 + 1001)) == []
    assert len(detector.on_liquidation(liq("bybit", "BTC", LONG, 10e6, T0 + 1002))) == 1


def test_one_coin_on_one_venue_is_a_coin_scope_cascade_not_global() -> None:
    doge = flush(random.Random(3), T0 + CALM, 240, 100_000.0, {"bybit": 1.0}, {"DOGE": 1.0},
                 price_drop=0.06)
    result = run(Detector(DetectorConfig()), market(doge), until=T0 + 3600)
    assert {a.scope for a in result.cascades} == {"coin:DOGE"}
    assert_lifecycle(result, "coin:DOGE")
    fired = result.firing()[0]
    assert fired.position_side is LONG
    assert [v.name for v in fired.venues] == ["bybit"]
    assert fired.price_move is not None and fired.price_move < 0
    assert fired.reason.startswith("DOGE longs: $")
    assert "1 venue" in fired.reason and "mark -" in fired.reason


def test_one_venue_many_coins_is_a_venue_scope_cascade() -> None:
    alts = {"SOL": 0.3, "DOGE": 0.25, "XRP": 0.25, "ADA": 0.2}
    bybit = flush(random.Random(4), T0 + CALM, 240, 60_000.0, {"bybit": 1.0}, alts)
    result = run(Detector(DetectorConfig()), market(bybit), until=T0 + 3600)
    assert {a.scope for a in result.cascades} == {"venue:bybit"}
    assert_lifecycle(result, "venue:bybit")
    assert all(a.promoted_from is None for a in result.cascades)
    assert {c.name for c in result.firing()[0].coins} >= set(alts)


def test_a_one_sided_multi_venue_flush_with_a_falling_price_is_a_global_cascade() -> None:
    result = run(Detector(DetectorConfig()), market(global_flush()), until=T0 + 3600)
    assert result.firing() and result.firing()[0].scope == "global"
    assert_lifecycle(result, "global")
    fired = result.firing("global")[0]
    assert fired.position_side is LONG
    assert fired.long_share > 0.75
    assert {v.name for v in fired.venues} >= {"hyperliquid", "bybit"}
    assert fired.price_move is not None and fired.price_move < 0
    assert fired.baseline_multiple >= 3.0
    assert fired.reason.startswith("Global longs: $")
    # Its children do not start their own alerts while it runs.
    assert {a.scope for a in result.cascades} == {"global"}


def test_the_same_flush_with_a_rising_price_is_not_a_cascade() -> None:
    rising = global_flush(price_drop=-0.03)
    result = run(Detector(DetectorConfig()), market(rising), until=T0 + 3600)
    assert result.cascades == []


def test_without_any_mark_price_the_volume_signals_decide() -> None:
    from monitor.events import MarkPrice

    events = [e for e in market(global_flush()) if not isinstance(e[1], MarkPrice)]
    result = run(Detector(DetectorConfig()), events, until=T0 + 3600)
    fired = result.firing("global")
    assert fired and fired[0].price_move is None
    assert "mark" not in fired[0].reason


def test_a_two_sided_flush_is_not_a_cascade() -> None:
    both = global_flush(long_share=0.5)
    result = run(Detector(DetectorConfig()), market(both), until=T0 + 3600)
    assert result.cascades == []


def test_a_short_squeeze_is_a_short_cascade() -> None:
    squeeze = global_flush(long_share=0.03, price_drop=-0.04)
    result = run(Detector(DetectorConfig()), market(squeeze), until=T0 + 3600)
    fired = result.firing("global")
    assert fired and fired[0].position_side is PositionSide.SHORT
    assert fired[0].reason.startswith("Global shorts:")


def test_a_cascade_that_pauses_for_a_few_quiet_seconds_stays_one_cascade() -> None:
    paused = global_flush(seconds=300, pause=(120, 150))
    result = run(Detector(DetectorConfig()), market(paused), until=T0 + 3600)
    assert len(result.firing("global")) == 1
    assert_lifecycle(result, "global")


def test_a_pause_shorter_than_cooling_keeps_the_same_cascade() -> None:
    # Long enough for the window to fall below the sustain level, shorter than cooling.
    config = DetectorConfig()
    paused = global_flush(seconds=300 + 290 + 200, pause=(300, 590))
    detector = Detector(config)
    result = Result()
    states: list[DetectorState] = []
    for event in market(paused):
        run(detector, [event], result=result)
        states.extend(s.state for s in detector.states() if s.scope == "global")
    run(detector, [], until=T0 + 3600, result=result)
    assert DetectorState.COOLING in states
    assert len(result.firing("global")) == 1
    assert_lifecycle(result, "global")


def test_it_resolves_after_the_cooling_period() -> None:
    config = DetectorConfig()
    events = market(global_flush())
    end = T0 + CALM + 240
    result = run(Detector(config), events, until=T0 + 3600)
    resolved = [a for a in result.cascades if a.status is AlertState.RESOLVED]
    assert len(resolved) == 1
    assert end + config.cooling_seconds <= resolved[0].at
    assert resolved[0].at <= end + config.window_seconds + config.cooling_seconds + 2
    assert result.cascades[-1] is resolved[0]
    assert "resolved after" in resolved[0].reason
    # The flush, plus the calm market's longs from the window before the start to the end.
    assert 240 * 150_000 * 0.9 < resolved[0].total_usd < 240 * 150_000 * 1.5


def test_severity_escalates_step_by_step_and_never_down() -> None:
    ramp = merge(global_flush(seconds=120, rate=60_000.0),
                 global_flush(start=T0 + CALM + 120, seconds=120, rate=400_000.0),
                 global_flush(start=T0 + CALM + 240, seconds=200, rate=1_200_000.0))
    result = run(Detector(DetectorConfig()), market(ramp), until=T0 + 4000)
    assert_lifecycle(result, "global")
    path = [(a.status, a.severity) for a in result.of("global")]
    assert path == [
        (AlertState.FIRING, Severity.WARNING),
        (AlertState.ESCALATED, Severity.CRITICAL),
        (AlertState.ESCALATED, Severity.EXTREME),
        (AlertState.RESOLVED, Severity.EXTREME),
    ]
    resolved = result.of("global")[-1]
    assert resolved.peak_usd > 200e6 and resolved.peak_at < resolved.at


def test_a_steady_flow_from_a_busy_baseline_is_not_a_cascade() -> None:
    # Hours of one-sided flow at the same level: high, but it is the baseline now.
    steady = global_flush(start=T0, seconds=6 * 3600, rate=60_000.0)
    config = DetectorConfig()
    result = run(Detector(config), steady, until=T0 + 6 * 3600)
    fired = result.firing()
    # It may alert when it starts; after hours at one level it must not start again.
    assert all(a.at < T0 + 3600 for a in fired)
    assert len(fired) <= 1


def test_acceleration_is_required_to_fire() -> None:
    strict = DetectorConfig(global_scope=dataclasses.replace(
        DetectorConfig().global_scope, min_acceleration=50.0))
    result = run(Detector(strict), market(global_flush()), until=T0 + 3600)
    assert result.firing("global") == []


def test_a_throttled_venue_counts_toward_breadth_by_its_symbol_seconds() -> None:
    hl = flush(random.Random(5), T0 + CALM, 240, 150_000.0, {"hyperliquid": 1.0}, MAJORS)
    # Binance publishes at most one print a second per symbol: small USD, many symbol-seconds.
    binance: list[Event] = []
    for step in range(240):
        for coin in ("BTC", "ETH", "SOL"):
            at = T0 + CALM + step + 0.3
            binance.append((at, liq("binance-usdm", coin, LONG, 1_500.0, at)))
    alone = run(Detector(DetectorConfig()), market(hl), until=T0 + 3600)
    assert alone.firing("global") == []
    both = run(Detector(DetectorConfig()), market(hl, binance), until=T0 + 3600)
    fired = both.firing("global")
    assert fired and "2 venues above baseline" in fired[0].reason


def test_per_coin_overrides_change_thresholds_and_whales() -> None:
    doge = flush(random.Random(3), T0 + CALM, 240, 100_000.0, {"bybit": 1.0}, {"DOGE": 1.0},
                 price_drop=0.06)
    config = DetectorConfig(coins={"doge": CoinThresholds(cascade_usd=100e6, whale_usd=1e5)})
    result = run(Detector(config), market(doge), until=T0 + 3600)
    assert result.firing("coin:DOGE") == []
    assert result.whales and all(w.liquidation.coin == "DOGE" for w in result.whales)


def test_global_cascade_suppresses_new_child_cascades_on_that_side() -> None:
    doge = flush(random.Random(3), T0 + CALM + 200, 240, 100_000.0, {"gate": 1.0},
                 {"DOGE": 1.0}, price_drop=0.06)
    result = run(Detector(DetectorConfig()), market(global_flush(seconds=600), doge),
                 until=T0 + 3600)
    assert {a.scope for a in result.cascades} == {"global"}
    unsuppressed = DetectorConfig(suppress_children=False)
    result = run(Detector(unsuppressed), market(global_flush(seconds=600), doge),
                 until=T0 + 3600)
    assert "coin:DOGE" in {a.scope for a in result.cascades}


def test_states_report_the_active_cascade_for_metrics() -> None:
    detector = Detector(DetectorConfig())
    result = run(detector, [e for e in market(global_flush()) if e[0] < T0 + CALM + 200],
                 until=T0 + CALM + 200)
    fired = result.firing("global")[0]
    states = {(s.scope, s.position_side): s for s in detector.states()}
    state = states[("global", LONG)]
    assert state.state is DetectorState.CASCADE
    assert state.alert_id == fired.id and state.severity is fired.severity
    assert state.usd > 0
    run(detector, [], until=T0 + 3600)
    assert detector.states() == []


def test_replay_cadence_does_not_change_the_alerts() -> None:
    events = market(global_flush(), seconds=2400)
    per_event = run(Detector(DetectorConfig()), events, until=T0 + 3600)
    coarse = Detector(DetectorConfig())
    result = Result()
    next_eval = T0
    for at, ev in events:
        if at >= next_eval:
            result.cascades.extend(coarse.evaluate(next_eval))
            next_eval += 7.0
        if isinstance(ev, Liquidation):
            result.whales.extend(coarse.on_liquidation(ev))
        else:
            coarse.on_mark_price(ev)
    result.cascades.extend(coarse.evaluate(T0 + 3600))
    assert per_event.cascades and per_event.cascades == result.cascades


def test_ids_are_deterministic_and_distinct_per_cascade() -> None:
    two = market(global_flush(), global_flush(start=T0 + CALM + 2400), seconds=5400)
    first = run(Detector(DetectorConfig()), two, until=T0 + 6000)
    again = run(Detector(DetectorConfig()), two, until=T0 + 6000)
    assert [a.id for a in first.cascades] == [a.id for a in again.cascades]
    assert len(first.firing("global")) == 2
    assert len({a.id for a in first.firing("global")}) == 2


def test_reconfigure_keeps_the_cascade_in_progress() -> None:
    detector = Detector(DetectorConfig())
    events = market(global_flush(seconds=400))
    cut = T0 + CALM + 200
    result = run(detector, [e for e in events if e[0] < cut])
    assert len(result.firing("global")) == 1
    detector.reconfigure(DetectorConfig(cooling_seconds=60, window_seconds=120))
    run(detector, [e for e in events if e[0] >= cut], until=T0 + 3600, result=result)
    assert len(result.firing("global")) == 1
    assert_lifecycle(result, "global")
    assert result.of("global")[-1].window_seconds == 120


def test_feb_2026_night_is_one_global_long_cascade() -> None:
    events, truth = feb_2026(seed=0)
    result = run(Detector(DetectorConfig()), events, until=truth["end"] + 7200)
    global_long = [a for a in result.of("global") if a.position_side is LONG]
    assert_lifecycle(result, "global")
    assert len([a for a in global_long if a.status is AlertState.FIRING]) == 1
    first = global_long[0]
    before = sum(e.notional_usd for at, e in events
                 if isinstance(e, Liquidation) and truth["onset"] <= at < first.at)
    assert before < 0.10 * FEB_TOTAL_USD
    assert max(a.severity for a in global_long) >= Severity.CRITICAL
    assert global_long[-1].status is AlertState.RESOLVED
    assert global_long[-1].at > truth["end"]
    assert global_long[-1].total_usd > 0.9 * FEB_TOTAL_USD
    sizes = {round(w.liquidation.notional_usd) for w in result.whales}
    assert sizes == {222_000_000, 60_000_000}
    # One story for the night: every transition, whatever its scope, is the same cascade.
    assert len({a.id for a in result.cascades}) == 1
    assert len(result.firing()) == 1
