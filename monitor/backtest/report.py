"""What a backtest reports: each cascade's summary, the whales, the lead time and share
of the ground truth, coverage; as the ``--json`` document (``to_json``) and as the text a
trader reads (``render_text``). :func:`build_report` makes it from a replay's result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
from monitor.events import PositionSide
from monitor.replay import ReplayResult
from monitor.store.coverage import CoverageRow, coverage_json, describe_gaps
from monitor.web.report import ReportSeries


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
