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
from dataclasses import dataclass, field
from pathlib import Path
from time import gmtime, strftime
from typing import Any

from monitor.alerts import (
    AlertState,
    CascadeAlert,
    Severity,
    Share,
    WhaleAlert,
    format_duration,
    format_usd,
    rfc3339,
)
from monitor.config import Config
from monitor.detector.engine import Detector
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide, new_liquidation
from monitor.feed.recorder import RawFrame, read_recording
from monitor.replay import Progress, ReplayResult, replay
from monitor.store.coverage import CoverageRow, coverage_json, describe_gaps, silent_minutes
from monitor.web.report import ReportSeries

# Scenario time 0 on the venues' clock: midnight UTC before the night of 1 February 2026.
SCENARIO_EPOCH = 1_769_904_000.0


@dataclass(frozen=True, slots=True)
class CascadeSummary:
    id: str
    scope: str
    position_side: PositionSide
    start: float
    peak: float
    peak_usd: float
    end: float | None  # None: still open when the input ended
    max_severity: Severity
    severity_path: tuple[tuple[float, Severity], ...]
    usd: float
    venues: tuple[Share, ...]
    coins: tuple[Share, ...]
    reasons: tuple[str, ...]
    # A cascade that started on a coin or venue and went market-wide: the scope it started
    # on, and when it became global. ``scope`` is the scope it ended with.
    promoted_from: str | None = None
    promoted_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope,
            "position_side": self.position_side.value,
            "start": rfc3339(self.start),
            "peak": rfc3339(self.peak),
            "end": rfc3339(self.end) if self.end is not None else None,
            "max_severity": self.max_severity.value,
            "usd": round(self.usd, 2),
            "venues": [{"venue": s.name, "usd": round(s.usd, 2), "share": round(s.share, 4)}
                       for s in self.venues],
            "coins": [{"coin": s.name, "usd": round(s.usd, 2), "share": round(s.share, 4)}
                      for s in self.coins],
            "reasons": list(self.reasons),
            "start_ms": round(self.start * 1000),
            "peak_ms": round(self.peak * 1000),
            "end_ms": round(self.end * 1000) if self.end is not None else None,
            "peak_usd": round(self.peak_usd, 2),
            "severity_path": [{"at": rfc3339(at), "severity": sev.value}
                              for at, sev in self.severity_path],
            "promoted_from": self.promoted_from,
            "promoted_at": rfc3339(self.promoted_at) if self.promoted_at is not None else None,
        }


@dataclass
class BacktestReport:
    source: str
    cascades: list[CascadeSummary]
    whales: list[WhaleAlert]
    ground_truth: Mapping[str, Any] | None
    onset: float | None  # ground truth onset on the venues' clock
    first_alert_share: float | None
    lead_seconds: float | None
    total_usd: float
    liquidations: int
    first_at: float | None
    last_at: float | None
    alerts: list[CascadeAlert] = field(default_factory=list)
    # Minute volumes, prices and feed gaps, for the HTML report (and the JSON's
    # ``minutes`` and ``feed_gaps``).
    series: ReportSeries | None = None
    # Per venue, the minutes of a recording without a frame of it.
    coverage: list[CoverageRow] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        series = self.series
        return {
            "cascades": [c.to_json() for c in self.cascades],
            "whales": [_whale_json(w) for w in self.whales],
            "ground_truth": dict(self.ground_truth) if self.ground_truth is not None else None,
            "first_alert_share": self.first_alert_share,
            "lead_seconds": self.lead_seconds,
            "source": self.source,
            "total_usd": round(self.total_usd, 2),
            "liquidations": self.liquidations,
            "start": rfc3339(self.first_at) if self.first_at is not None else None,
            "end": rfc3339(self.last_at) if self.last_at is not None else None,
            "minutes": series.minutes_json() if series is not None else [],
            "feed_gaps": series.gaps_json() if series is not None else [],
            "coverage": [coverage_json(c) for c in self.coverage],
            "gap_minutes": sum(len(c.gaps) for c in self.coverage),
        }

    def transitions(self) -> dict[str, list[dict[str, Any]]]:
        """Each cascade's alert transitions, by cascade id (the HTML report's lanes)."""
        result: dict[str, list[dict[str, Any]]] = {}
        for a in self.alerts:
            result.setdefault(a.id, []).append({
                "at_ms": round(a.at * 1000), "status": a.status.value,
                "severity": a.severity.value, "reason": a.reason})
        return result

    def render_text(self) -> str:
        return _render(self)


def _whale_json(alert: WhaleAlert) -> dict[str, Any]:
    liq = alert.liquidation
    return {
        "id": alert.id,
        "at": rfc3339(alert.at),
        "venue": liq.venue,
        "instrument": liq.instrument,
        "coin": liq.coin,
        "position_side": liq.position_side.value,
        "usd": round(liq.notional_usd, 2),
        "price": liq.price,
        "severity": alert.severity.value,
        "reason": alert.reason,
    }


# -- running ----------------------------------------------------------------------------------


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

    def frames() -> Iterator[RawFrame]:
        frame = series.frame
        last_minute: dict[str, int] = {}  # a venue's frames mostly share their minute
        for raw in read_recording(recording):
            venue, at = raw.venue, raw.received_at
            frame(venue, at)
            minute = int(at // 60)
            if last_minute.get(venue) != minute:
                last_minute[venue] = minute
                minutes.setdefault(venue, set()).add(minute)
            yield raw

    result = await replay(frames(), config, simulated=simulated, progress=progress,
                          on_event=series.event)
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


def build_report(source: str, result: ReplayResult, truth: Mapping[str, Any] | None,
                 onset: float | None) -> BacktestReport:
    by_id: dict[str, list[CascadeAlert]] = {}
    for alert in result.cascades:
        by_id.setdefault(alert.id, []).append(alert)
    summaries = [_summary(alerts) for alerts in by_id.values()]
    summaries.sort(key=lambda s: (s.start, s.scope))
    first = next((i for i, a in enumerate(result.cascades) if a.status is AlertState.FIRING),
                 None)
    share = lead = None
    if first is not None:
        if result.total_usd > 0:
            share = result.usd_before[first] / result.total_usd
        if onset is not None:
            lead = result.cascades[first].at - onset
    return BacktestReport(
        source=source, cascades=summaries, whales=result.whales, ground_truth=truth,
        onset=onset, first_alert_share=share, lead_seconds=lead, total_usd=result.total_usd,
        liquidations=result.liquidations, first_at=result.first_at,
        last_at=result.last_at, alerts=list(result.cascades),
    )


def _summary(alerts: list[CascadeAlert]) -> CascadeSummary:
    first, last = alerts[0], alerts[-1]
    resolved = last.status is AlertState.RESOLVED
    # The last snapshot with a full window says where the cascade was; at resolution the
    # window is nearly empty.
    shape = next((a for a in reversed(alerts) if a.status is not AlertState.RESOLVED), first)
    path: list[tuple[float, Severity]] = []
    for a in alerts:
        # A promotion to global scope is an escalation that may keep the severity.
        if a.status is not AlertState.RESOLVED and (not path or a.severity != path[-1][1]):
            path.append((a.at, a.severity))
    promotion = next((a for a in alerts if a.promoted_from is not None), None)
    return CascadeSummary(
        id=first.id, scope=last.scope, position_side=first.position_side,
        start=first.started_at, peak=last.peak_at, peak_usd=last.peak_usd,
        end=last.at if resolved else None,
        max_severity=max(a.peak_severity or a.severity for a in alerts),
        severity_path=tuple(path), usd=last.total_usd, venues=shape.venues, coins=shape.coins,
        reasons=tuple(a.reason for a in alerts),
        promoted_from=promotion.promoted_from if promotion is not None else None,
        promoted_at=promotion.at if promotion is not None else None,
    )


# -- the text report ----------------------------------------------------------------------------


def _clock(at: float) -> str:
    return strftime("%H:%M:%S", gmtime(at))


def _render(report: BacktestReport) -> str:
    lines = [f"Backtest of {report.source}"]
    if report.first_at is not None and report.last_at is not None:
        lines.append(
            f"  input: {strftime('%Y-%m-%d %H:%M:%S', gmtime(report.first_at))} to "
            f"{_clock(report.last_at)} UTC ({format_duration(report.last_at - report.first_at)}), "
            f"{report.liquidations:,} liquidations, {format_usd(report.total_usd)}")
    truth = report.ground_truth
    if truth is not None and report.onset is not None:
        lines.append(f"  ground truth: onset {_clock(report.onset)}"
                     + (f", total {format_usd(float(truth['total_usd']))}"
                        if truth.get("total_usd") else ""))
    gapped = [c for c in report.coverage if c.gaps]
    if gapped:
        lines.append("  feed gaps (minutes without a frame of the venue; totals miss what it "
                     "missed):")
        lines += [f"    {c.venue}: {describe_gaps(c.gaps)}" for c in gapped]
    lines.append("")
    if not report.cascades:
        lines.append("No cascade.")
    else:
        lines.append(f"Cascades ({len(report.cascades)}):")
    for n, c in enumerate(report.cascades, 1):
        end = f"{_clock(c.end)} ({format_duration(c.end - c.start)})" if c.end else "still open"
        lines.append(
            f"  #{n} {c.scope} {c.position_side.value}s: {_clock(c.start)} -> {end}, "
            f"max {c.max_severity.value.upper()}, {format_usd(c.usd)} liquidated")
        lines.append(f"     peak {format_usd(c.peak_usd)} in the window at {_clock(c.peak)}")
        if c.promoted_from is not None and c.promoted_at is not None:
            lines.append(f"     scope: {c.promoted_from} {_clock(c.start)} -> {c.scope} "
                         f"{_clock(c.promoted_at)} (went market-wide)")
        lines.append("     severity: " + " -> ".join(
            f"{sev.value} {_clock(at)}" for at, sev in c.severity_path))
        if c.venues:
            lines.append("     venues: " + ", ".join(f"{s.name} {s.share:.0%}" for s in c.venues))
        if c.coins:
            lines.append("     coins: " + ", ".join(f"{s.name} {s.share:.0%}" for s in c.coins))
        for reason in c.reasons:
            lines.append(f"     - {reason}")
    if report.cascades:
        lines.append("")
        first = min(report.cascades, key=lambda c: c.start)
        text = (f"First alert at {_clock(first.start)} ({first.promoted_from or first.scope} "
                f"{first.position_side.value}s)")
        if report.lead_seconds is not None:
            text += f", {format_duration(abs(report.lead_seconds))} " + (
                "after" if report.lead_seconds >= 0 else "before") + " the onset"
        if report.first_alert_share is not None:
            text += (f", with {report.first_alert_share:.1%} of the notional liquidated "
                     "before it")
        lines.append(text + ".")
    lines.append("")
    lines.append(f"Whales ({len(report.whales)}):" if report.whales else "No whale print.")
    biggest = sorted(report.whales, key=lambda w: -w.liquidation.notional_usd)[:10]
    for w in sorted(biggest, key=lambda w: w.at):
        lines.append(f"  {_clock(w.at)} {w.severity.value:8} {w.reason}")
    if len(report.whales) > len(biggest):
        lines.append(f"  ... and {len(report.whales) - len(biggest)} smaller ones")
    return "\n".join(lines) + "\n"
