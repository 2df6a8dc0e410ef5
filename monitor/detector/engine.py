"""The cascade detector: a pure state machine from (liquidations, mark prices, now) to alerts.

Per scope (global, each coin, each venue) and position side, a machine moves
``quiet → watch → cascade → cooling → quiet``. It fires when the side's volume in the window
is large in absolute terms and against its own baseline, accelerating, one-sided, made of
many prints, broad (global: several venues above their own baselines) and, where a mark
price is known, moving the price the way that liquidates that side. It stays a cascade
while a lower sustain level holds (hysteresis) and for at least a minimum hold; below it,
it cools, and resolves when cooling lasts. So one cascade is one ``firing``, zero or more
``escalated`` and one ``resolved``, each carrying its figures and reason.

One story per side: a flush often shows on one venue or coin minutes before it is
market-wide. When the global scope fires on a side where a coin or venue cascade is already
running, it does not start a second alert: it continues that cascade (the earliest, if
several) with its id, start and severity, in an ``escalated`` transition whose scope is
``global``, whose ``promoted_from`` is the old scope and whose reason says it "went
market-wide"; any other coin or venue cascade running on that side resolves as "merged
into" it. While a global cascade runs on a side, no coin or venue cascade starts on that
side. A coin or venue cascade in an otherwise calm market stays what it is and alerts on its
own. (``suppress_children = false`` turns all of this off: every scope alerts for itself.)

Time is the caller's: windows are keyed by the venue's timestamp, and :meth:`Detector.evaluate`
steps one whole second at a time up to the ``now`` it is given, so a replay on a virtual
clock makes the same transitions as the live run. See ``monitor/detection/`` for the parts.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.alerts import (
    GLOBAL_SCOPE,
    AlertState,
    CascadeAlert,
    Severity,
    WhaleAlert,
    cascade_id,
    coin_scope,
    venue_scope,
)
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
    ScopeStatus,
    build_alert,
    ready,
    scope_order,
    severity_for,
)
from monitor.detector.prices import PriceTracker
from monitor.detector.whales import whale_alert
from monitor.detector.windows import (
    COIN,
    GLOBAL,
    LONG,
    PREV,
    RAW,
    SHORT,
    SYM,
    VENUE,
    Agg,
    Windows,
    ewma_alpha,
)
from monitor.events import SIDE_NAMES, SIDES, Liquidation, MarkPrice, PositionSide

__all__ = ["Detector", "DetectorState", "ScopeStatus"]

_QUIET, _WATCH = DetectorState.QUIET, DetectorState.WATCH
_CASCADE, _COOLING = DetectorState.CASCADE, DetectorState.COOLING
_WARNING, _CRITICAL, _EXTREME = Severity.WARNING, Severity.CRITICAL, Severity.EXTREME


class Detector:
    def __init__(self, config: DetectorConfig) -> None:
        self._config = config
        self._windows = Windows(config.window_seconds, config.signal_cap_usd)
        self._windows.set_max_future(config.max_future_seconds)
        self._prices = PriceTracker(config.window_seconds, config.price_stale_seconds)
        self._machines: dict[tuple[str, int], Machine] = {}
        self._last_t: int | None = None
        # Each scope's sort key, made once: the live machines are ordered every step.
        self._order: dict[tuple[str, int], tuple[int, str, int]] = {}
        self._apply(config)

    def _apply(self, config: DetectorConfig) -> None:
        self._config = config
        self._alpha = ewma_alpha(config.baseline_sample_seconds,
                                 config.baseline_half_life_hours * 3600.0)
        # Caches of the config's per-coin lookups: the whale check runs on every event, and
        # every live machine reads its scope's thresholds every second.
        self._th: dict[Agg, ScopeThresholds] = {}
        self._whale_by_coin = {
            coin.upper(): config.coin_whale_usd(coin.upper()) for coin in config.coins
        }
        self._min_whale = min([config.whale_usd, *self._whale_by_coin.values()])

    def reconfigure(self, config: DetectorConfig) -> None:
        """New thresholds (SIGHUP); windows, baselines and cascades in progress are kept."""
        old = self._config
        self._apply(config)
        if (config.window_seconds, config.signal_cap_usd) != (old.window_seconds,
                                                              old.signal_cap_usd):
            self._windows.resize(config.window_seconds, config.signal_cap_usd)
        self._windows.set_max_future(config.max_future_seconds)
        for agg in self._windows.all_scopes():
            agg.gate = -1.0
        self._prices.window = config.window_seconds
        self._prices.stale_seconds = config.price_stale_seconds

    # -- input -----------------------------------------------------------------------------

    def on_liquidation(self, event: Liquidation) -> list[WhaleAlert]:
        """Count one liquidation. Returns a whale alert if it alone is above the threshold."""
        usd = event.notional_usd
        if not usd > 0.0:
            return []
        side = LONG if event.position_side is PositionSide.LONG else SHORT
        self._windows.add(event.venue, event.instrument, event.coin, side, usd,
                          event.exchange_ts_ms // 1000)
        if usd < self._min_whale:
            return []
        threshold = self._whale_by_coin.get(event.coin, self._config.whale_usd)
        if usd < threshold:
            return []
        return [whale_alert(event, threshold)]

    @property
    def whale_floor_usd(self) -> float:
        """No liquidation below this raises a whale alert (the lowest coin threshold)."""
        return self._min_whale

    def on_liquidations(self, events: Iterable[Liquidation]) -> list[WhaleAlert]:
        """:meth:`on_liquidation` of each event (one frame's rows); the whale alerts of all."""
        rows = events if isinstance(events, (list, tuple)) else list(events)
        min_whale = self._min_whale
        whales: list[WhaleAlert] = []
        if self._windows.add_liquidations(rows) < min_whale:
            return whales  # the usual frame: no row is large enough to be a whale
        for event in rows:
            usd = event.notional_usd
            # Read as in on_liquidation: a USD that is not positive counts for nothing.
            if usd >= min_whale and usd > 0.0:
                threshold = self._whale_by_coin.get(event.coin, self._config.whale_usd)
                if usd >= threshold:
                    whales.append(whale_alert(event, threshold))
        return whales

    def on_mark_price(self, price: MarkPrice) -> None:
        self._prices.update(price.coin, price.venue, price.instrument, price.price,
                            price.exchange_ts_ms // 1000)

    def on_mark_prices(self, prices: Iterable[MarkPrice]) -> None:
        """:meth:`on_mark_price` of each (one frame's marks)."""
        update = self._prices.update
        for price in prices:
            update(price.coin, price.venue, price.instrument, price.price,
                   price.exchange_ts_ms // 1000)

    # -- the clock ---------------------------------------------------------------------------

    def evaluate(self, now: float) -> list[CascadeAlert]:
        """Step every whole second up to ``now``; return the transitions, oldest first."""
        t = int(now // 1)
        last = self._last_t
        if last is not None and t <= last:
            return []
        c = self._config
        # With nothing active, the seconds of a long gap change nothing but the baselines:
        # skip to where the windows still matter (a clock jump must not mean a year of steps).
        horizon = 2 * c.window_seconds + 2
        step = t if last is None else last + 1
        alerts: list[CascadeAlert] = []
        while step <= t:
            if not self._machines and t - step > horizon:
                step = t - horizon
            self._step(step, alerts)
            step += 1
        self._last_t = t
        return alerts

    def _step(self, t: int, alerts: list[CascadeAlert]) -> None:
        windows = self._windows
        windows.advance(t)
        if t % self._config.baseline_sample_seconds == 0:
            frozen = {(m.agg.scope, m.side) for m in self._machines.values() if m.active}
            windows.sample_baselines(self._alpha, frozen)
        touched = windows.touched
        machines = self._machines
        if not touched and not machines:
            return
        # The global scope first: while it is active on a side, it reports for every coin
        # and venue on that side, and those are not evaluated (nor listed as watching).
        glob = windows.global_agg
        for side in (LONG, SHORT):
            self._visit((GLOBAL_SCOPE, side), machines.get((GLOBAL_SCOPE, side)) or glob, t,
                        alerts)
        under = (self._is_active(GLOBAL_SCOPE, LONG), self._is_active(GLOBAL_SCOPE, SHORT))
        if not self._config.suppress_children:
            under = (False, False)
        candidates: dict[tuple[str, int], Machine | Agg] = {
            key: m for key, m in machines.items() if key[0] != GLOBAL_SCOPE
        }
        for agg in {agg for pair in touched for agg in pair.chain[1:3]}:
            gate = agg.gate
            if gate < 0.0:
                gate = agg.gate = self._thresholds(agg).watch_usd
            v = agg.v
            if v[0] < gate and v[1] < gate:
                continue  # the usual case, read without a call
            for side in (LONG, SHORT):
                # The gate is the side's watch_usd, which _worth_watching needs first: a
                # busy scope's other side stops here.
                if v[side] < gate:
                    continue
                key = (agg.scope, side)
                if key not in candidates and not under[side] and self._worth_watching(agg, side):
                    candidates[key] = agg
        touched.clear()
        order = self._order
        for key in candidates:
            if key not in order:
                order[key] = scope_order(key)
        advance = self._advance_machine
        for key in sorted(candidates, key=order.__getitem__):
            item = candidates[key]
            if type(item) is Machine:
                # A live machine (most candidates): what ``_visit`` does, without the call.
                if under[key[1]] and not item.active:
                    machines.pop(key, None)
                    continue
                advance(item, t, alerts)
                if item.state is _QUIET:
                    machines.pop(key, None)
                else:
                    machines[key] = item
                continue
            if under[key[1]]:
                machines.pop(key, None)
                continue
            self._visit(key, item, t, alerts)

    def _visit(self, key: tuple[str, int], item: Machine | Agg, t: int,
               alerts: list[CascadeAlert]) -> None:
        if isinstance(item, Agg) and not self._worth_watching(item, key[1]):
            return  # nothing to watch: no machine
        machine = item if isinstance(item, Machine) else Machine(item, key[1], t)
        self._advance_machine(machine, t, alerts)
        if machine.state is DetectorState.QUIET:
            self._machines.pop(key, None)
        else:
            self._machines[key] = machine

    def _worth_watching(self, agg: Agg, side: int) -> bool:
        """Whether a quiet scope could watch or fire: both need the side's USD at watch_usd
        and the side dominant. Most busy scopes fail this, so it is read off the window."""
        th = self._thresholds(agg)
        v = agg.v
        usd = v[side]
        return usd >= th.watch_usd and usd >= self._min_share(th) * (v[0] + v[1])

    def _min_share(self, th: ScopeThresholds) -> float:
        return min(th.min_share, self._config.sustain_share)

    def _thresholds(self, agg: Agg) -> ScopeThresholds:
        th = self._th.get(agg)
        if th is None:
            c = self._config
            th = self._th[agg] = (c.coin_thresholds(agg.name) if agg.kind == COIN else
                                  c.global_scope if agg.kind == GLOBAL else c.venue_scope)
        return th

    # -- the state machine ---------------------------------------------------------------------

    def _advance_machine(self, m: Machine, t: int, alerts: list[CascadeAlert]) -> None:
        agg, side = m.agg, m.side
        th = self._th.get(agg) or self._thresholds(agg)
        c = self._config
        state = m.state
        if state is _QUIET or state is _WATCH:
            # Most live machines are watching and cannot fire: the firing test of
            # ``ready`` on the window's floats (the same expressions as ``cheap_figures``,
            # so the same values), without building the figures.
            v = agg.v
            usd = v[side]
            total = v[0] + v[1]
            share = usd / total if total > 0.0 else 0.0
            sym = int(v[SYM + side])
            if not (
                share >= th.min_share
                and sym >= th.min_symbol_seconds
                and (
                    (usd >= th.cascade_usd
                     and usd / max(agg.base_usd[side], th.baseline_floor_usd)
                     >= th.min_multiple)
                    or (sym >= th.cascade_symbol_seconds
                        and sym / max(agg.base_sym[side], th.symbol_seconds_floor)
                        >= th.min_multiple
                        and usd >= th.watch_usd)
                )
                and usd / max(v[PREV + side], th.baseline_floor_usd) >= th.min_acceleration
            ):
                m.held_since = None
                watching = usd >= th.watch_usd and share >= c.sustain_share
                new = _WATCH if watching else _QUIET
                if new is not state:
                    m.state, m.since = new, float(t)
                return
        if state is _QUIET or state is _WATCH:
            fig = cheap_figures(agg, side, th)
            if not self._entry(m, th, fig, t):
                m.held_since = None
            elif not self._held_for_global(m, t):
                self._fire(m, fig, self._breakdown(agg, side, t), t, alerts)
                return
            watching = fig.usd >= th.watch_usd and fig.share >= c.sustain_share
            self._set_state(m, DetectorState.WATCH if watching else DetectorState.QUIET, t)
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

    @staticmethod
    def _set_state(m: Machine, state: DetectorState, t: int) -> None:
        if state is not m.state:
            m.state, m.since = state, float(t)

    def _entry(self, m: Machine, th: ScopeThresholds, fig: Figures, t: int) -> bool:
        """Whether every firing condition holds (cheap checks first)."""
        c = self._config
        if not ready(fig, th):
            return False
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

    def _is_active(self, scope: str, side: int) -> bool:
        machine = self._machines.get((scope, side))
        return machine is not None and machine.active

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

    # -- state for metrics -------------------------------------------------------------------

    def states(self) -> list[ScopeStatus]:
        """Every scope and side not quiet, global first."""
        return [self._machines[key].status() for key in sorted(self._machines, key=scope_order)]

    @property
    def config(self) -> DetectorConfig:
        return self._config
