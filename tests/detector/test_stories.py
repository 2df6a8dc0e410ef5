"""One story per side: a coin or venue cascade that goes market-wide stays one cascade.

A risk desk wants one alert per event: when the global condition fires on a side where a
coin or venue cascade is already running, the global cascade continues it (same id and
start) with an ``escalated`` transition that says it went market-wide.
"""

from __future__ import annotations

import random

from monitor.alerts import AlertState, Severity, alert_payload
from monitor.detector.config import DetectorConfig
from monitor.detector.engine import Detector
from tests.support.synth import (
    CALM,
    LONG,
    MAJORS,
    T0,
    Event,
    Result,
    assert_lifecycle,
    flush,
    global_flush,
    liq,
    market,
    run,
)

START = T0 + CALM
OTHERS = {"bybit": 0.4, "okx": 0.2, "binance-usdm": 0.2, "bitget": 0.2}


def hyperliquid_alone() -> list[Event]:
    return flush(random.Random(21), START, 600, 60_000.0, {"hyperliquid": 1.0},
                 {"ETH": 0.5, "XRP": 0.5})


def then_the_market() -> list[Event]:
    """Four more venues join Hyperliquid's flush 200 s after it started."""
    return flush(random.Random(22), START + 200, 400, 100_000.0, OTHERS, MAJORS)


def assert_one_story(result: Result, first_scope: str) -> None:
    alerts = result.cascades
    assert len({a.id for a in alerts}) == 1, [(a.status, a.scope, a.id) for a in alerts]
    assert (alerts[0].status, alerts[0].scope) == (AlertState.FIRING, first_scope)
    promoted = [a for a in alerts if a.promoted_from is not None]
    assert len(promoted) == 1
    went = promoted[0]
    assert (went.status, went.scope, went.promoted_from) == (
        AlertState.ESCALATED, "global", first_scope)
    assert went.reason.split(": ")[0].endswith("longs went market-wide")
    assert "Global longs: $" in went.reason
    assert all(a.scope == "global" for a in alerts[alerts.index(went):])
    assert all(a.started_at == alerts[0].started_at for a in alerts)
    assert alerts[-1].status is AlertState.RESOLVED
    assert f"(started on {first_scope})" in alerts[-1].reason
    ranks = [a.severity.rank for a in alerts[:-1]]
    assert ranks == sorted(ranks)


def test_a_venue_cascade_that_goes_market_wide_is_one_cascade() -> None:
    events = market(hyperliquid_alone(), then_the_market())
    result = run(Detector(DetectorConfig()), events, until=T0 + 4000)
    assert_one_story(result, "venue:hyperliquid")
    fired, went = result.cascades[0], result.cascades[1]
    # The early alert is the story's start: before the others had even joined.
    assert fired.at < START + 200 < went.at
    assert {v.name for v in went.venues} >= {"hyperliquid", "bybit"}
    # The global total counts from the venue cascade's first window, over every venue.
    resolved = result.cascades[-1]
    assert resolved.total_usd > 600 * 60_000.0 * 0.9 + 400 * 100_000.0 * 0.9
    payload = alert_payload(went)
    assert payload["scope"] == "global" and payload["promoted_from"] == "venue:hyperliquid"
    assert payload["started_at_ms"] == round(fired.started_at * 1000)


def test_coin_cascades_running_when_the_market_goes_are_one_story() -> None:
    doge = flush(random.Random(3), START, 700, 60_000.0, {"bybit": 1.0}, {"DOGE": 1.0},
                 price_drop=0.06)
    sol = flush(random.Random(4), START + 150, 550, 60_000.0, {"bybit": 1.0}, {"SOL": 1.0},
                price_drop=0.06)
    hl = flush(random.Random(5), START + 450, 250, 150_000.0, {"hyperliquid": 0.6, "okx": 0.4},
               {"ETH": 0.5, "BTC": 0.5})
    result = run(Detector(DetectorConfig()), market(doge, sol, hl), until=T0 + 4000)
    # DOGE fired first and SOL after it (one venue: no global breadth yet); when the market
    # went, the global cascade continued DOGE's and SOL's ended, merged into it.
    doge_id = result.firing("coin:DOGE")[0].id
    sol_alerts = result.of("coin:SOL")
    assert [a.status for a in sol_alerts] == [AlertState.FIRING, AlertState.RESOLVED]
    assert f"merged into the market-wide cascade {doge_id}" in sol_alerts[-1].reason
    story = Result(cascades=[a for a in result.cascades if a.id == doge_id])
    assert_one_story(story, "coin:DOGE")
    assert story.cascades[1].at == sol_alerts[-1].at
    assert max(a.severity for a in story.cascades) >= Severity.CRITICAL
    assert {a.id for a in result.cascades} == {doge_id, sol_alerts[0].id}


def test_severity_never_goes_down_when_it_goes_market_wide() -> None:
    # Bybit alone is critical for a venue ($25M) before the market, where critical is $60M.
    alts = {"SOL": 0.5, "DOGE": 0.5}
    bybit = flush(random.Random(4), START, 500, 150_000.0, {"bybit": 1.0}, alts)
    rest = flush(random.Random(6), START + 260, 240, 40_000.0, {"hyperliquid": 1.0}, MAJORS)
    result = run(Detector(DetectorConfig()), market(bybit, rest), until=T0 + 4000)
    assert_one_story(result, "venue:bybit")
    went = next(a for a in result.cascades if a.promoted_from is not None)
    before = [a for a in result.cascades if a.at < went.at]
    assert max(a.severity for a in before) is Severity.CRITICAL
    assert went.severity >= Severity.CRITICAL


def test_a_single_venue_in_a_calm_market_alerts_on_its_own() -> None:
    result = run(Detector(DetectorConfig()), market(hyperliquid_alone()), until=T0 + 4000)
    assert {a.scope for a in result.cascades} == {"venue:hyperliquid"}
    assert_lifecycle(result, "venue:hyperliquid")
    assert all(a.promoted_from is None for a in result.cascades)


def test_a_market_wide_flush_from_the_start_is_global_from_the_start() -> None:
    result = run(Detector(DetectorConfig()), market(global_flush()), until=T0 + 3600)
    assert result.firing()[0].scope == "global"
    assert all(a.promoted_from is None for a in result.cascades)


def test_without_suppress_children_every_scope_alerts_for_itself() -> None:
    config = DetectorConfig(suppress_children=False)
    events = market(hyperliquid_alone(), then_the_market())
    result = run(Detector(config), events, until=T0 + 4000)
    assert {"venue:hyperliquid", "global"} <= {a.scope for a in result.firing()}
    assert all(a.promoted_from is None for a in result.cascades)
    assert len({a.id for a in result.cascades}) >= 2


def test_a_new_cascade_after_the_market_one_resolved_is_a_new_story() -> None:
    later = flush(random.Random(7), START + 3000, 240, 100_000.0, {"bybit": 1.0},
                  {"DOGE": 1.0}, price_drop=0.06)
    events = market(hyperliquid_alone(), then_the_market(), later, seconds=5400)
    result = run(Detector(DetectorConfig()), events, until=T0 + 7000)
    ids = list(dict.fromkeys(a.id for a in result.cascades))
    assert len(ids) == 2
    assert result.firing("coin:DOGE") and result.firing("coin:DOGE")[0].id == ids[1]


def test_whales_default_to_ten_million_with_severity_in_multiples() -> None:
    detector = Detector(DetectorConfig())
    sizes = (9.9e6, 10e6, 49e6, 60e6, 199e6, 222e6)
    got = [detector.on_liquidation(liq("hyperliquid", "ETH", LONG, usd, T0 + i))
           for i, usd in enumerate(sizes)]
    assert got[0] == []
    assert [w[0].severity for w in got[1:]] == [
        Severity.WARNING, Severity.WARNING, Severity.CRITICAL, Severity.CRITICAL,
        Severity.EXTREME]
