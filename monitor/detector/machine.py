"""The per-scope state: states, the machine of one scope and side, and its alert snapshots.

The transitions themselves live in ``monitor/detector/transitions.py``; this module holds
what they act on and the pure pieces they are made of: the cheap firing test, severity,
and the :class:`~monitor.alerts.CascadeAlert` built from a machine and its figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from monitor.alerts import COIN_SCOPE_PREFIX, GLOBAL_SCOPE, AlertState, CascadeAlert, Severity
from monitor.detector.aggregates import Agg
from monitor.detector.config import ScopeThresholds
from monitor.detector.figures import Breakdown, Figures
from monitor.events import SIDES, PositionSide


class DetectorState(StrEnum):
    QUIET = "quiet"
    WATCH = "watch"
    CASCADE = "cascade"
    COOLING = "cooling"


_CASCADE, _COOLING = DetectorState.CASCADE, DetectorState.COOLING


@dataclass(frozen=True, slots=True)
class ScopeStatus:
    """One non-quiet scope and side, for metrics and ``liqmon top``."""

    scope: str
    position_side: PositionSide
    state: DetectorState
    severity: Severity | None  # None while watching
    alert_id: str | None
    since: float
    usd: float  # the side's uncapped USD in the window


class Machine:
    """The state of one scope and side; only non-quiet machines are kept."""

    __slots__ = (
        "agg", "alert_id", "cooling_since", "cum_start", "held_since", "market_cum_start",
        "peak_at", "peak_severity", "peak_usd", "promoted_from", "severity", "side", "since",
        "started_at", "state",
    )

    def __init__(self, agg: Agg, side: int, t: int) -> None:
        self.agg = agg
        self.side = side
        self.state = DetectorState.QUIET
        self.since = float(t)
        self.alert_id = ""
        self.started_at = 0.0
        self.severity = Severity.WARNING  # as last announced
        self.peak_severity = Severity.WARNING  # as reached, announced or not
        self.cooling_since = 0.0
        self.peak_usd = 0.0
        self.peak_at = 0.0
        self.cum_start = 0.0
        # The global scope's cumulative USD of the side when this cascade's first window
        # began: where a global cascade that takes this one over counts its total from.
        self.market_cum_start = 0.0
        # For a global cascade that took over a coin or venue one: that cascade's scope.
        self.promoted_from: str | None = None
        self.held_since: float | None = None  # a child ready to fire, waiting for global

    @property
    def active(self) -> bool:
        # By identity, with the members in module constants: reading them off the enum
        # class is a slow attribute lookup, and this is read several times a second.
        state = self.state
        return state is _CASCADE or state is _COOLING

    def status(self) -> ScopeStatus:
        return ScopeStatus(
            scope=self.agg.scope,
            position_side=SIDES[self.side],
            state=self.state,
            severity=self.severity if self.active else None,
            alert_id=self.alert_id if self.active else None,
            since=self.since,
            usd=self.agg.raw(self.side),
        )


def ready(fig: Figures, th: ScopeThresholds) -> bool:
    """The cheap firing conditions: volume, multiple, share, acceleration, many prints."""
    volume = (fig.usd >= th.cascade_usd and fig.multiple >= th.min_multiple) or (
        fig.symbol_seconds >= th.cascade_symbol_seconds
        and fig.symbol_multiple >= th.min_multiple
        and fig.usd >= th.watch_usd
    )
    return (
        volume
        and fig.share >= th.min_share
        and fig.acceleration >= th.min_acceleration
        and fig.symbol_seconds >= th.min_symbol_seconds
    )


def severity_for(usd: float, th: ScopeThresholds) -> Severity:
    if usd >= th.extreme_usd:
        return Severity.EXTREME
    if usd >= th.critical_usd:
        return Severity.CRITICAL
    return Severity.WARNING


def scope_order(key: tuple[str, int]) -> tuple[int, str, int]:
    """Global first, so its children can see it; then coins, then venues."""
    scope = key[0]
    rank = 0 if scope == GLOBAL_SCOPE else 1 if scope.startswith(COIN_SCOPE_PREFIX) else 2
    return (rank, scope, key[1])


def build_alert(m: Machine, status: AlertState, fig: Figures, bd: Breakdown, t: int,
                reason: str, window_seconds: int, promoted_from: str | None = None
                ) -> CascadeAlert:
    agg, side = m.agg, m.side
    return CascadeAlert(
        id=m.alert_id,
        status=status,
        scope=agg.scope,
        position_side=SIDES[side],
        severity=m.severity,
        started_at=m.started_at,
        at=float(t),
        window_seconds=window_seconds,
        usd=fig.raw_usd,
        usd_per_minute=fig.raw_usd * 60.0 / window_seconds,
        acceleration=fig.acceleration,
        long_share=fig.long_share,
        baseline_multiple=fig.multiple,
        count=fig.count,
        symbol_seconds=fig.symbol_seconds,
        venues=bd.venues,
        coins=bd.coins,
        price_move=bd.price_move,
        peak_usd=m.peak_usd,
        peak_at=m.peak_at,
        total_usd=agg.cum_raw(side) - m.cum_start,
        reason=reason,
        peak_severity=m.peak_severity,
        promoted_from=promoted_from,
    )
