"""The detector over history: a recording or a simulator scenario, as fast as possible.

``run_backtest(recording=...)`` replays raw frames through the live path (see ``replay.py``);
``run_backtest(scenario=...)`` feeds a simulator scenario's events straight to the detector,
with its ground truth. Either way the :class:`BacktestReport` lists each cascade's start,
peak, end, severity path, USD, side and reasons, the whale prints, and, where there is
ground truth, the lead time from its onset and the share of the input's notional that was
liquidated before the first cascade alert. ``to_json()`` is the ``--json`` document of
``liqmon backtest``; ``render_text()`` the report a trader reads.

A recording's totals miss what a feed missed, so the report says where: ``coverage``, per
venue, the minutes without a frame of it (``store/coverage.silent_minutes``), and
``feed_gaps``, each silence past the venue's silence limit. A scenario has neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from monitor.backtest.report import BacktestReport, CascadeSummary, build_report
from monitor.config import Config
from monitor.detector.engine import Detector
from monitor.events import Completeness, Liquidation, MarkPrice, new_liquidation
from monitor.feed.recorder import read_recording
from monitor.replay import Progress, ReplayResult, replay
from monitor.store.coverage import silent_minutes
from monitor.web.report import ReportSeries

__all__ = [
    "SCENARIO_EPOCH", "BacktestReport", "CascadeSummary", "backtest_recording",
    "backtest_scenario", "build_report", "new_series", "run_backtest", "scenario_events",
]

# Scenario time 0 on the venues' clock: midnight UTC before the night of 1 February 2026.
SCENARIO_EPOCH = 1_769_904_000.0


def run_backtest(
    *,
    recording: str | Path | None = None,
    scenario: str | None = None,
    config: Config | None = None,
    seed: int = 0,
    duration_seconds: float | None = None,
    ground_truth: Mapping[str, Any] | None = None,
    simulated: bool = False,
    progress: Progress | None = None,
) -> BacktestReport:
    """Backtest one recording or one scenario (exactly one of them) with ``config``.

    ``ground_truth`` (for a recording of ``liqmon simulate``: the file it wrote) gives the
    onset; ``simulated`` reads instrument terms from the simulator's catalogue instead of
    the REST cache. Not for use inside a running event loop: see :func:`backtest_recording`.
    """
    if (recording is None) == (scenario is None):
        raise ValueError("give exactly one of recording and scenario")
    config = config if config is not None else Config()
    if scenario is not None:
        return backtest_scenario(scenario, config, seed=seed, duration_seconds=duration_seconds,
                                 progress=progress)
    assert recording is not None
    return asyncio.run(backtest_recording(recording, config, ground_truth=ground_truth,
                                          simulated=simulated, progress=progress))


async def backtest_recording(
    recording: str | Path,
    config: Config,
    *,
    ground_truth: Mapping[str, Any] | None = None,
    simulated: bool = False,
    progress: Progress | None = None,
) -> BacktestReport:
    series = new_series(config)
    minutes: dict[str, set[int]] = {}
    # Liquidations a run at a time and marks straight to the series: one call per run and
    # per mark instead of a dispatch per event.
    result = await replay(series.frames(read_recording(recording), minutes), config,
                          simulated=simulated, progress=progress,
                          on_liquidations=series.liquidations, on_mark=series.mark)
    onset = _onset(ground_truth, None)
    report = build_report(str(recording), result, ground_truth, onset)
    report.series = series
    report.coverage = silent_minutes(minutes)
    return report


def new_series(config: Config) -> ReportSeries:
    """What the HTML report draws: prices of the coins the metrics label, gaps past each
    venue's silence limit."""
    return ReportSeries(config.metrics.coins, {
        venue: vc.silence_limit_seconds for venue, vc in config.venues.items()})


def backtest_scenario(
    name: str,
    config: Config,
    *,
    seed: int = 0,
    duration_seconds: float | None = None,
    progress: Progress | None = None,
) -> BacktestReport:
    from monitor.simulator.scenarios import build_scenario

    scenario = build_scenario(name, seed=seed, duration_seconds=duration_seconds)
    detector = Detector(config.detector)
    result = ReplayResult()
    series = new_series(config)
    total = len(scenario.events) if not callable(scenario.events) else None
    evaluated = -1
    for done, event in enumerate(scenario_events(scenario.iter_events(), SCENARIO_EPOCH), 1):
        at = event.received_at
        if int(at) > evaluated:
            evaluated = int(at)
            for alert in detector.evaluate(float(evaluated)):
                result.cascades.append(alert)
                result.usd_before.append(result.total_usd)
        if result.first_at is None:
            result.first_at = at
        result.last_at = at
        series.event(event)
        if type(event) is Liquidation:
            result.whales.extend(detector.on_liquidation(event))
            result.liquidations += 1
            result.total_usd += event.notional_usd
        else:
            detector.on_mark_price(event)  # type: ignore[arg-type]
            result.marks += 1
        if progress is not None and done % 20_000 == 0:
            progress(done, total)
    c = config.detector
    end = SCENARIO_EPOCH + scenario.duration_seconds
    for at in (end, end + 2 * c.window_seconds + c.min_hold_seconds + c.cooling_seconds + 2):
        for alert in detector.evaluate(at):
            result.cascades.append(alert)
            result.usd_before.append(result.total_usd)
    if progress is not None:
        progress(total or result.liquidations + result.marks, total)
    truth = scenario.ground_truth
    report = build_report(f"scenario {name} (seed {seed})", result, truth,
                          _onset(truth, SCENARIO_EPOCH))
    report.series = series  # a scenario has no feed: no gaps
    return report


def scenario_events(events: Iterator[Any], epoch: float) -> Iterator[Liquidation | MarkPrice]:
    """Simulator ``ScenarioEvent``s as the events a dialect would have produced."""
    for n, e in enumerate(events):
        at = epoch + e.at_seconds
        ts_ms = int(at * 1000)
        if e.kind == "mark":
            yield MarkPrice(e.venue, e.instrument, e.coin, e.price, ts_ms, at)
        else:
            yield new_liquidation(e.venue, e.instrument, e.coin, e.position_side, e.price,
                                  e.qty_base, e.notional_usd, ts_ms, at, Completeness.FULL,
                                  f"{e.venue}:sim:{n}")


def _onset(truth: Mapping[str, Any] | None, epoch: float | None) -> float | None:
    if truth is None:
        return None
    mapped = truth.get("simulator", {}).get("exchange_ms", {}).get("onset_seconds")
    if mapped is not None:
        return float(mapped) / 1000.0
    onset = truth.get("onset_seconds")
    if onset is None:
        return None
    return (epoch if epoch is not None else SCENARIO_EPOCH) + float(onset)


