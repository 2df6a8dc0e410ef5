"""Backtest over simulator scenarios and recordings: the issue's scenario acceptance cases."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from monitor.alerts import AlertState, Severity
from monitor.backtest import SCENARIO_EPOCH, BacktestReport, backtest_recording, run_backtest
from monitor.config import Config
from monitor.simulator.scenarios import build_scenario
from tests.support.recordings import simulated_frames, write_recording

CASCADE_KEYS = {"id", "scope", "position_side", "start", "peak", "end", "max_severity", "usd",
                "venues", "coins", "reasons"}


SEEDS = (0, 1, 2, 3)


@pytest.fixture(scope="module")
def nights() -> dict[int, BacktestReport]:
    return {seed: run_backtest(scenario="feb-2026", seed=seed) for seed in SEEDS}


@pytest.fixture(scope="module")
def feb(nights: dict[int, BacktestReport]) -> BacktestReport:
    return nights[0]


@pytest.mark.parametrize("seed", SEEDS)
def test_feb_2026_is_one_global_long_cascade_from_early_on(
    nights: dict[int, BacktestReport], seed: int
) -> None:
    feb = nights[seed]
    truth = feb.ground_truth
    assert truth is not None
    # Exactly one cascade for the night, all scopes together: one id from firing to resolved.
    assert len(feb.cascades) == 1, [(c.scope, c.start) for c in feb.cascades]
    assert len({a.id for a in feb.alerts}) == 1
    night = feb.cascades[0]
    assert night.scope == "global"
    assert night.promoted_from is None or night.promoted_from.split(":")[0] in ("coin", "venue")
    assert night.position_side.value == "long"
    assert night.max_severity >= Severity.CRITICAL
    end = SCENARIO_EPOCH + truth["duration_seconds"]
    assert night.end is not None and night.end > end
    assert night.start < night.peak < night.end
    assert night.usd > 0.8 * truth["total_usd"]
    # It fires before 10% of the night's notional is gone, after the onset.
    assert feb.first_alert_share is not None and feb.first_alert_share < 0.10
    assert feb.lead_seconds is not None and 0 < feb.lead_seconds < truth["peak_seconds"]
    assert feb.alerts[0].status is AlertState.FIRING
    assert feb.alerts[0].at == night.start == SCENARIO_EPOCH + truth["onset_seconds"] + (
        feb.lead_seconds)
    assert all(a.status is AlertState.ESCALATED for a in feb.alerts[1:-1])
    assert feb.alerts[-1].status is AlertState.RESOLVED and feb.alerts[-1].scope == "global"


def test_a_night_that_starts_on_one_venue_reads_as_one_story(
    nights: dict[int, BacktestReport]
) -> None:
    # Seed 0: Hyperliquid's longs fire minutes before the market-wide condition does.
    feb = nights[0]
    night = feb.cascades[0]
    assert night.promoted_from == "venue:hyperliquid"
    assert night.promoted_at is not None and night.start < night.promoted_at
    first, promoted = feb.alerts[0], feb.alerts[1]
    assert (first.status, first.scope) == (AlertState.FIRING, "venue:hyperliquid")
    assert (promoted.status, promoted.scope) == (AlertState.ESCALATED, "global")
    assert promoted.promoted_from == "venue:hyperliquid"
    assert "went market-wide" in promoted.reason
    assert promoted.started_at == first.started_at
    text = feb.render_text()
    assert "Cascades (1):" in text
    assert "scope: venue:hyperliquid 00:" in text and "(went market-wide)" in text
    document = feb.to_json()["cascades"][0]
    assert document["scope"] == "global" and document["promoted_from"] == "venue:hyperliquid"


@pytest.mark.parametrize("seed", SEEDS)
def test_feb_2026_whales_are_the_headline_prints(
    nights: dict[int, BacktestReport], seed: int
) -> None:
    # A handful, not one per print: with the $10M default, the night's two headline prints.
    whales = sorted(nights[seed].whales, key=lambda w: -w.liquidation.notional_usd)
    assert len(whales) <= 5
    assert whales[0].liquidation.notional_usd == pytest.approx(222e6, rel=0.01)
    assert whales[0].severity is Severity.EXTREME
    assert whales[1].liquidation.notional_usd == pytest.approx(60e6, rel=0.01)
    assert whales[1].severity is Severity.CRITICAL
    assert all(w.liquidation.notional_usd >= 10e6 for w in whales)


def test_per_coin_whale_overrides_still_apply() -> None:
    from monitor.detector.config import CoinThresholds, DetectorConfig

    config = Config(detector=DetectorConfig(coins={"ETH": CoinThresholds(whale_usd=3e6)}))
    report = run_backtest(scenario="feb-2026", config=config)
    eth = [w for w in report.whales if w.liquidation.coin == "ETH"]
    others = [w for w in report.whales if w.liquidation.coin != "ETH"]
    assert len(eth) > 2 and all(w.liquidation.notional_usd >= 3e6 for w in eth)
    assert [round(w.liquidation.notional_usd / 1e6) for w in others] == [60]


def test_the_json_document_has_the_issue_schema(feb: BacktestReport) -> None:
    document = orjson.loads(orjson.dumps(feb.to_json()))
    assert {"cascades", "whales", "ground_truth", "first_alert_share", "lead_seconds"} <= set(
        document)
    for cascade in document["cascades"]:
        assert set(cascade) >= CASCADE_KEYS
        assert cascade["scope"] == "global" or cascade["scope"].split(":")[0] in ("coin", "venue")
        assert cascade["max_severity"] in ("warning", "critical", "extreme")
        assert cascade["reasons"] and all(isinstance(r, str) for r in cascade["reasons"])
    assert document["ground_truth"]["scenario"] == "feb-2026"
    assert 0 < document["first_alert_share"] < 0.1
    assert document["whales"][0].keys() >= {"id", "at", "venue", "coin", "usd", "reason"}


def test_the_text_report_reads_like_a_desk_note(feb: BacktestReport) -> None:
    text = feb.render_text()
    assert "Backtest of scenario feb-2026 (seed 0)" in text
    assert "global longs:" in text
    assert "max CRITICAL" in text or "max EXTREME" in text
    assert "First alert at" in text and "of the notional liquidated before it" in text
    assert "Whale: ETH long $222M liquidated on hyperliquid" in text
    assert "Whales (2):" in text and "smaller ones" not in text


def test_a_calm_week_has_no_cascade() -> None:
    report = run_backtest(scenario="calm", duration_seconds=7 * 86400.0)
    assert report.cascades == []
    assert report.first_alert_share is None and report.lead_seconds is None
    assert report.liquidations > 100_000
    assert "No cascade." in report.render_text()


async def test_a_recording_backtests_through_the_replay_path(tmp_path: Path) -> None:
    scenario = build_scenario("feb-2026", venues=["bybit"], duration_seconds=3600)
    path = tmp_path / "night.jsonl"
    write_recording(path, simulated_frames(scenario.iter_events()))
    report = await backtest_recording(path, Config(), ground_truth=scenario.ground_truth,
                                      simulated=True)
    assert [c.scope for c in report.cascades] == ["venue:bybit"]
    assert report.liquidations == scenario.ground_truth["total_count"]
    assert report.lead_seconds is not None and report.lead_seconds > 0
    assert report.first_alert_share is not None and report.first_alert_share < 0.1
    assert report.source == str(path)


async def test_a_recording_with_a_dead_feed_reports_its_gap_minutes(tmp_path: Path) -> None:
    scenario = build_scenario("feb-2026", venues=["bybit"], duration_seconds=1200)
    # The feed read nothing for three whole minutes, ten minutes in.
    dead_from, dead_to = SCENARIO_EPOCH + 600, SCENARIO_EPOCH + 780
    path = tmp_path / "gap.jsonl"
    write_recording(path, (f for f in simulated_frames(scenario.iter_events())
                           if not dead_from <= f.received_at < dead_to))
    report = await backtest_recording(path, Config(), simulated=True)
    assert report.liquidations < scenario.ground_truth["total_count"]
    document = orjson.loads(orjson.dumps(report.to_json()))
    [bybit] = document["coverage"]
    assert bybit["venue"] == "bybit" and bybit["gap_minutes"] == 3 == document["gap_minutes"]
    assert bybit["recorded_minutes"] >= 20
    assert bybit["gaps"] == [{"start": rfc3339_minute(dead_from),
                              "end": rfc3339_minute(dead_to), "minutes": 3}]
    # The silence past the venue's limit, to the frame.
    [silence] = document["feed_gaps"]
    assert silence["venue"] == "bybit" and 180 <= silence["seconds"] < 181
    assert "bybit: 3 min of gaps: 00:10-00:13 UTC" in report.render_text()
    # A scenario has no feed, so no gap.
    assert run_backtest(scenario="calm", duration_seconds=600).to_json()["coverage"] == []


def rfc3339_minute(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def test_exactly_one_input_is_required() -> None:
    with pytest.raises(ValueError):
        run_backtest()
    with pytest.raises(ValueError):
        run_backtest(recording="x", scenario="calm")
