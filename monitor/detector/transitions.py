"""How one scope's machine moves each second, and the alert each transition makes.

:class:`Transitions` is the half of :class:`~monitor.detector.engine.Detector` that acts on
one live machine: the cheap firing test read off the window, the entry checks (breadth, the
top child, the price move), firing, escalation, cooling and resolution. The engine half
takes the input, steps the clock and chooses which scopes are evaluated; it builds the
state these methods share, declared below.

One story per side: a flush often shows on one venue or coin minutes before it is
market-wide. When the global scope fires on a side where a coin or venue cascade is already
running, it does not start a second alert: it continues that cascade (the earliest, if
several) with its id, start and severity, in an ``escalated`` transition whose scope is
``global``, whose ``promoted_from`` is the old scope and whose reason says it "went
market-wide"; any other coin or venue cascade running on that side resolves as "merged
into" it. While a global cascade runs on a side, no coin or venue cascade starts on that
side. A coin or venue cascade in an otherwise calm market stays what it is and alerts on its
own. (``suppress_children = false`` turns all of this off: every scope alerts for itself.)
"""

from __future__ import annotations

from monitor.alerts import (
    GLOBAL_SCOPE,
    AlertState,
    CascadeAlert,
    Severity,
    cascade_id,
    coin_scope,
    venue_scope,
)
from monitor.detector.aggregates import COIN, GLOBAL, PREV, RAW, SYM, VENUE, Agg
from monitor.detector.config import DetectorConfig, ScopeThresholds
from monitor.detector.figures import (
    Breakdown,
    Figures,
    adverse,
    breadth,
    breakdown,
    cheap_figures,
    merged_reason,
    price_move,
    resolved_reason,
    scope_label,
    top_child,
    window_reason,
)
from monitor.detector.machine import (
    DetectorState,
    Machine,
    build_alert,
    scope_order,
    severity_for,
)
from monitor.detector.prices import PriceTracker
from monitor.detector.windows import Windows
from monitor.events import SIDE_NAMES, SIDES

__all__ = ["Transitions"]

_QUIET, _WATCH = DetectorState.QUIET, DetectorState.WATCH
_CASCADE, _COOLING = DetectorState.CASCADE, DetectorState.COOLING
_WARNING, _CRITICAL, _EXTREME = Severity.WARNING, Severity.CRITICAL, Severity.EXTREME


class Transitions:
    """The machine transitions of a :class:`~monitor.detector.engine.Detector`.

    The state they share is built by the detector (``__init__``, ``_apply``) and only
    declared here.
    """

    _config: DetectorConfig
    _windows: Windows
    _prices: PriceTracker
    _machines: dict[tuple[str, int], Machine]
    _th: dict[Agg, ScopeThresholds]

    def _thresholds(self, agg: Agg) -> ScopeThresholds:
        th = self._th.get(agg)
        if th is None:
            c = self._config
            th = self._th[agg] = (c.coin_thresholds(agg.name) if agg.kind == COIN else
                                  c.global_scope if agg.kind == GLOBAL else c.venue_scope)
        return th

    def _is_active(self, scope: str, side: int) -> bool:
        machine = self._machines.get((scope, side))
        return machine is not None and machine.active

    # -- the state machine ---------------------------------------------------------------------

    def _advance_machine(self, m: Machine, t: int, alerts: list[CascadeAlert]) -> None:
        agg, side = m.agg, m.side
        th = self._th.get(agg) or self._thresholds(agg)
        c = self._config
        state = m.state
        if state is _QUIET or state is _WATCH:
            # Most live machines are watching and cannot fire: the firing test of
            # ``ready`` on the window's floats (the same expressions as ``cheap_figures``,
            # so the same values), without building the figures, which only a cascade
            # that fires needs.
            v = agg.v
            usd = v[side]
            total = v[0] + v[1]
            share = usd / total if total > 0.0 else 0.0
            sym = int(v[SYM + side])
            # ``max(a, b)`` written out as ``b if b > a else a``: what ``max`` returns (the
            # first unless the second is larger), without a call.
            if not (
                share >= th.min_share
                and sym >= th.min_symbol_seconds
                and (
                    (usd >= th.cascade_usd
                     and usd / (f if (f := th.baseline_floor_usd) > (b := agg.base_usd[side])
                                else b) >= th.min_multiple)
                    or (sym >= th.cascade_symbol_seconds
                        and sym / (f if (f := th.symbol_seconds_floor) > (
                            b := agg.base_sym[side]) else b) >= th.min_multiple
                        and usd >= th.watch_usd)
                )
                and usd / (f if (f := th.baseline_floor_usd) > (b := v[PREV + side]) else b)
                >= th.min_acceleration
            ):
                m.held_since = None
            elif not self._entry(m, th, t):
                # ``ready`` holds (the test above is its conditions) but another does not:
                # the figures object is built only for a cascade that fires.
                m.held_since = None
            elif not self._held_for_global(m, t):
                self._fire(m, cheap_figures(agg, side, th), self._breakdown(agg, side, t), t,
                           alerts)
                return
            # ``fig.usd`` and ``fig.share`` of the figures are ``usd`` and ``share``.
            watching = usd >= th.watch_usd and share >= c.sustain_share
            new = _WATCH if watching else _QUIET
            if new is not state:
                m.state, m.since = new, float(t)
            return
        # A running cascade is stepped every second (its hold and cooling run on time); the
        # figures object is built only for an alert. Same expressions as ``cheap_figures``.
        v = agg.v
        usd = v[side]
        total = v[0] + v[1]
        sustained = (usd / total if total > 0.0 else 0.0) >= c.sustain_share and (
            usd >= c.sustain_fraction * th.cascade_usd
            or int(v[SYM + side]) >= c.sustain_fraction * th.cascade_symbol_seconds
        )
        if state is _COOLING:
            if sustained:
                m.state = state = _CASCADE
                m.since = float(t)
            elif t - m.cooling_since >= c.cooling_seconds:
                self._resolve(m, cheap_figures(agg, side, th), t, alerts)
                return
        if state is _CASCADE:
            raw = v[RAW + side]
            if raw > m.peak_usd:
                m.peak_usd, m.peak_at = raw, float(t)
            # ``severity_for`` inline: every running cascade, every second.
            severity = (_EXTREME if usd >= th.extreme_usd else
                        _CRITICAL if usd >= th.critical_usd else _WARNING)
            if severity is not m.peak_severity and severity > m.peak_severity:
                m.peak_severity = severity
            if (severity is not m.severity and severity > m.severity
                    and not self._under_global(m)):
                m.severity = severity
                fig = cheap_figures(agg, side, th)
                bd = self._breakdown(agg, side, t)
                reason = f"escalated to {severity.value}: " + window_reason(
                    agg, side, fig, bd, c.window_seconds)
                alerts.append(self._alert(m, AlertState.ESCALATED, fig, bd, t, reason))
            if not sustained and t - m.started_at >= c.min_hold_seconds:
                m.state, m.since, m.cooling_since = _COOLING, float(t), float(t)

    def _entry(self, m: Machine, th: ScopeThresholds, t: int) -> bool:
        """Whether every firing condition beyond ``ready`` holds (the caller has tested
        that one on the window's floats), cheap checks first."""
        c = self._config
        agg, side = m.agg, m.side
        if agg.kind != GLOBAL and self._is_active(GLOBAL_SCOPE, side) and c.suppress_children:
            return False
        if breadth(agg, side, self._windows, c) < th.min_venues:
            return False
        # One coin on one venue is the coin's event; a venue's flush over many coins is the
        # venue's: neither starts while the other reports the same liquidations.
        if agg.kind != GLOBAL:
            name, share = top_child(agg, side, self._windows)
            if agg.kind == VENUE and (
                share >= c.venue_max_top_coin_share or self._is_active(coin_scope(name), side)
            ):
                return False
            if (
                agg.kind == COIN
                and share >= c.venue_max_top_coin_share
                and self._is_active(venue_scope(name), side)
            ):
                return False
        # The price move alone: the full breakdown (sorted shares) only for a cascade that
        # fires.
        move = adverse(price_move(agg, side, self._windows, self._prices, c, t), side)
        return not (move is not None and move < th.min_price_move)

    def _held_for_global(self, m: Machine, t: int) -> bool:
        """Whether a coin or venue cascade that could fire waits for the global scope.

        While the global scope is watching its side, something broad is building: a child
        gives it ``child_wait_seconds``, counted from when the child could first fire, to
        take the event, so that one market-wide flush is one alert, not one per coin.
        """
        if m.agg.kind == GLOBAL or not self._config.suppress_children:
            return False
        parent = self._machines.get((GLOBAL_SCOPE, m.side))
        if parent is None or parent.state is not DetectorState.WATCH:
            return False
        if m.held_since is None:
            m.held_since = float(t)
        return t - m.held_since < self._config.child_wait_seconds

    def _under_global(self, m: Machine) -> bool:
        """A child cascade goes quiet while a global one on its side reports for it.

        Normally none is left running then (the global one took it over when it fired);
        this covers a reload that turned ``suppress_children`` on with both running."""
        return (
            m.agg.kind != GLOBAL
            and self._config.suppress_children
            and self._is_active(GLOBAL_SCOPE, m.side)
        )

    def _breakdown(self, agg: Agg, side: int, t: int) -> Breakdown:
        return breakdown(agg, side, self._windows, self._prices, self._config, t)

    def _fire(
        self, m: Machine, fig: Figures, bd: Breakdown, t: int, alerts: list[CascadeAlert]
    ) -> None:
        agg, side = m.agg, m.side
        m.state = DetectorState.CASCADE
        m.since = m.started_at = float(t)
        m.alert_id = cascade_id(agg.scope, SIDES[side], m.started_at)
        m.severity = m.peak_severity = severity_for(fig.usd, self._thresholds(agg))
        m.peak_usd, m.peak_at = fig.raw_usd, float(t)
        m.promoted_from = None
        # The window that fired it is the cascade's first part.
        m.cum_start = agg.cum_raw(side) - agg.raw(side)
        glob = self._windows.global_agg
        m.market_cum_start = glob.cum_raw(side) - glob.raw(side)
        reason = window_reason(agg, side, fig, bd, self._config.window_seconds)
        running = self._running_children(side) if agg.kind == GLOBAL else []
        if running:
            self._take_over(m, running, fig, bd, t, reason, alerts)
            return
        alerts.append(self._alert(m, AlertState.FIRING, fig, bd, t, reason))

    def _running_children(self, side: int) -> list[Machine]:
        """The coin and venue cascades active on ``side``, the earliest first."""
        if not self._config.suppress_children:
            return []
        running = [
            machine for (scope, s), machine in self._machines.items()
            if s == side and scope != GLOBAL_SCOPE and machine.active
        ]
        running.sort(key=lambda machine: (machine.started_at, scope_order(
            (machine.agg.scope, side))))
        return running

    def _take_over(self, m: Machine, running: list[Machine], fig: Figures, bd: Breakdown,
                   t: int, reason: str, alerts: list[CascadeAlert]) -> None:
        """One story per side: the global cascade that fires while coin or venue cascades
        run on its side continues the earliest of them (its id, start and severity) with an
        ``escalated`` transition saying it went market-wide; any other ends, merged into it."""
        first, *others = running
        side = m.side
        m.alert_id, m.started_at = first.alert_id, first.started_at
        m.severity = max(m.severity, first.severity)
        m.peak_severity = max(m.peak_severity, first.peak_severity)
        m.cum_start = min(m.cum_start, first.market_cum_start)
        m.promoted_from = first.agg.scope
        reason = f"{scope_label(first.agg)} {SIDE_NAMES[side]}s went market-wide: {reason}"
        alerts.append(self._alert(m, AlertState.ESCALATED, fig, bd, t, reason,
                                  promoted_from=first.agg.scope))
        del self._machines[(first.agg.scope, side)]
        for child in others:
            c_fig = cheap_figures(child.agg, side, self._thresholds(child.agg))
            c_bd = self._breakdown(child.agg, side, t)
            total = child.agg.cum_raw(side) - child.cum_start
            merged = merged_reason(child.agg, side, t - child.started_at, total,
                                   child.peak_severity, m.alert_id)
            alerts.append(self._alert(child, AlertState.RESOLVED, c_fig, c_bd, t, merged))
            del self._machines[(child.agg.scope, side)]

    def _resolve(self, m: Machine, fig: Figures, t: int, alerts: list[CascadeAlert]) -> None:
        agg, side = m.agg, m.side
        bd = self._breakdown(agg, side, t)
        total = agg.cum_raw(side) - m.cum_start
        reason = resolved_reason(agg, side, t - m.started_at, total, m.peak_usd,
                                 self._config.window_seconds, m.peak_severity, m.promoted_from)
        alerts.append(self._alert(m, AlertState.RESOLVED, fig, bd, t, reason))
        m.state, m.since = DetectorState.QUIET, float(t)

    def _alert(self, m: Machine, status: AlertState, fig: Figures, bd: Breakdown, t: int,
               reason: str, promoted_from: str | None = None) -> CascadeAlert:
        return build_alert(m, status, fig, bd, t, reason, self._config.window_seconds,
                           promoted_from)
