"""The cascade detector: a pure state machine from (liquidations, mark prices, now) to alerts.

Per scope (global, each coin, each venue) and position side, a machine moves
``quiet → watch → cascade → cooling → quiet``. It fires when the side's volume in the window
is large in absolute terms and against its own baseline, accelerating, one-sided, made of
many prints, broad (global: several venues above their own baselines) and, where a mark
price is known, moving the price the way that liquidates that side. It stays a cascade
while a lower sustain level holds (hysteresis) and for at least a minimum hold; below it,
it cools, and resolves when cooling lasts. So one cascade is one ``firing``, zero or more
``escalated`` and one ``resolved``, each carrying its figures and reason. How a machine moves,
and how a global cascade takes over the coin and venue ones on its side, is
``monitor/detector/transitions.py``; this module takes the input, steps the clock and picks
the scopes worth evaluating.

Time is the caller's: windows are keyed by the venue's timestamp, and :meth:`Detector.evaluate`
steps one whole second at a time up to the ``now`` it is given, so a replay on a virtual
clock makes the same transitions as the live run.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import itemgetter

from monitor.alerts import GLOBAL_SCOPE, CascadeAlert, WhaleAlert
from monitor.detector.aggregates import LONG, SHORT, Agg
from monitor.detector.config import DetectorConfig, ScopeThresholds
from monitor.detector.machine import DetectorState, Machine, ScopeStatus, scope_order
from monitor.detector.prices import PriceTracker
from monitor.detector.transitions import Transitions
from monitor.detector.whales import whale_alert
from monitor.detector.windows import Windows, ewma_alpha
from monitor.events import Liquidation, MarkPrice, PositionSide

__all__ = ["Detector", "DetectorState", "ScopeStatus"]

_QUIET = DetectorState.QUIET
_GLOBAL_KEYS = ((GLOBAL_SCOPE, LONG), (GLOBAL_SCOPE, SHORT))
_first = itemgetter(0)


def _scope_order_of_item(item: tuple[tuple[str, int], Machine]) -> tuple[int, str, int]:
    return scope_order(item[0])


class Detector(Transitions):
    def __init__(self, config: DetectorConfig) -> None:
        self._config = config
        self._windows = Windows(config.window_seconds, config.signal_cap_usd)
        self._windows.set_max_future(config.max_future_seconds)
        self._prices = PriceTracker(config.window_seconds, config.price_stale_seconds)
        self._machines: dict[tuple[str, int], Machine] = {}
        self._last_t: int | None = None
        # Each coin and venue key's place in ``scope_order`` among those seen: the live
        # machines are ordered every step, and ints sort faster than the order's tuples.
        self._rank: dict[tuple[str, int], int] = {}
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
        for key in _GLOBAL_KEYS:
            self._visit(key, machines.get(key) or glob, t, alerts)
        if self._config.suppress_children:
            m_long, m_short = machines.get(_GLOBAL_KEYS[LONG]), machines.get(_GLOBAL_KEYS[SHORT])
            under = (m_long is not None and m_long.active,
                     m_short is not None and m_short.active)
        else:
            under = (False, False)
        # The live coin and venue machines in scope order, without a sort: ``machines`` is
        # kept in that order (``_visit`` re-sorts it when it adds a key; nothing else
        # adds one, and removing keeps the order).
        live: list[tuple[tuple[str, int], Machine | Agg]] = [
            (key, m) for key, m in machines.items() if key[0] != GLOBAL_SCOPE]
        fresh: list[tuple[tuple[str, int], Machine | Agg]] = []
        sustain_share = self._config.sustain_share
        for agg in {agg for pair in touched for agg in pair.parents}:
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
                key = agg.keys[side]
                if key in machines or under[side]:
                    continue
                # ``_worth_watching`` inline (a busy scope with both sides near even fails
                # it every second): the gate is its first test, then the share, with
                # ``_min_share``'s ``min`` written out (the first unless the second is
                # smaller).
                share = (self._th.get(agg) or self._thresholds(agg)).min_share
                if sustain_share < share:
                    share = sustain_share
                if v[side] >= share * (v[0] + v[1]):
                    fresh.append((key, agg))
        touched.clear()
        if fresh:
            # Scopes that may start watching (rare): each candidate as (rank, key, machine
            # or aggregate), sorted by the rank (unique per key), the order of
            # ``scope_order``.
            for key, _agg in fresh:
                if key not in self._rank:
                    self._add_rank(key)  # a scope never ranked: renumber
            rank = self._rank
            ranked = [(rank[key], key, item) for key, item in live + fresh]
            ranked.sort(key=_first)
            live = [(key, item) for _rank, key, item in ranked]
        advance = self._advance_machine
        for key, item in live:
            if type(item) is Machine:
                # A live machine (most candidates): what ``_visit`` does, without the call;
                # it is in ``machines`` already (nothing in this loop removes another).
                if under[key[1]] and not item.active:
                    del machines[key]
                    continue
                advance(item, t, alerts)
                if item.state is _QUIET:
                    del machines[key]
                continue
            if under[key[1]]:
                machines.pop(key, None)
                continue
            self._visit(key, item, t, alerts)

    def _add_rank(self, key: tuple[str, int]) -> None:
        """Rank a new coin or venue key: every ranked key's place in ``scope_order``,
        renumbered (scopes are few and new ones rare, so sorting them all is cheap)."""
        keys = [*self._rank, key]
        keys.sort(key=scope_order)
        self._rank = {k: i for i, k in enumerate(keys)}

    def _visit(self, key: tuple[str, int], item: Machine | Agg, t: int,
               alerts: list[CascadeAlert]) -> None:
        if isinstance(item, Agg) and not self._worth_watching(item, key[1]):
            return  # nothing to watch: no machine
        machine = item if isinstance(item, Machine) else Machine(item, key[1], t)
        self._advance_machine(machine, t, alerts)
        machines = self._machines
        if machine.state is _QUIET:
            machines.pop(key, None)
        elif key not in machines:
            # A new key goes in at its place in ``scope_order`` (the step reads the live
            # machines in that order); machines are few and new ones rare.
            machines[key] = machine
            ordered = sorted(machines.items(), key=_scope_order_of_item)
            machines.clear()
            machines.update(ordered)

    def _worth_watching(self, agg: Agg, side: int) -> bool:
        """Whether a quiet scope could watch or fire: both need the side's USD at watch_usd
        and the side dominant. Most busy scopes fail this, so it is read off the window."""
        th = self._thresholds(agg)
        v = agg.v
        usd = v[side]
        return usd >= th.watch_usd and usd >= self._min_share(th) * (v[0] + v[1])

    def _min_share(self, th: ScopeThresholds) -> float:
        return min(th.min_share, self._config.sustain_share)

    # -- state for metrics -------------------------------------------------------------------

    def states(self) -> list[ScopeStatus]:
        """Every scope and side not quiet, global first."""
        return [self._machines[key].status() for key in sorted(self._machines, key=scope_order)]

    @property
    def config(self) -> DetectorConfig:
        return self._config
