"""Backtest over simulator scenarios and recordings: the issue's scenario acceptance cases."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from monitor.alerts import AlertState, Severity
from monitor.backtest import SCENARIO_EPOCH, BacktestReport, backtest_recording, run_backtest
from monitor.config import Config
from monitor.simulator.scenarios import build_scenario
from tests.test_replay import simulated_frames, write_recording

CASCADE_KEYS = {"id", "scope", "position_side", "start", "peak", "end", "max_severity", "usd",
                "venues", "coins", "reasons"}


@pytest.fixture(scope="module")
def feb() -> BacktestReport:
    return run_backtest(scenario="feb-2026")


def test_feb_2026_is_one_global_long_cascade_from_early_on(feb: BacktestReport) -> None:
    truth = feb.ground_truth
    assert truth is not None
    global_long = [c for c in feb.cascades if c.scope == "global"]
    assert len(global_long) == 1
    night = global_long[0]
    assert night.position_side.value == "long"
    assert night.max_severity >= Severity.CRITICAL
    end = SCENARIO_EPOCH + truth["duration_seconds"]
    assert night.end is not None and night.end > end
    assert night.start < night.peak < night.end
    assert night.usd > 0.8 * truth["total_usd"]
    # It fires before 10% of the night's notional is gone, after the onset.
    assert feb.first_alert_share is not None and feb.first_alert_share < 0.10
    assert feb.lead_seconds is not None and 0 < feb.lead_seconds < truth["peak_seconds"]
    alerts = [a for a in feb.alerts if a.scope == "global"]
    assert alerts[0].status is AlertState.FIRING
    assert alerts[-1].status is AlertState.RESOLVED
    # Whatever else fires, no cascade starts while the global one runs.
    assert all(c.start <= night.start for c in feb.cascades if c.scope != "global")


def test_feb_2026_whales_are_their_own_alerts(feb: BacktestReport) -> None:
    sizes = sorted((w.liquidation.notional_usd for w in feb.whales), reverse=True)
    assert sizes[0] == pytest.approx(222e6, rel=0.01)
    assert sizes[1] == pytest.approx(60e6, rel=0.01)


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


def test_exactly_one_input_is_required() -> None:
    with pytest.raises(ValueError):
        run_backtest()
    with pytest.raises(ValueError):
        run_backtest(recording="x", scenario="calm")
