"""The ``[detector]`` config section: windows, thresholds and timers of the cascade detector.

Three scope kinds have their own thresholds, because a figure that is a cascade for one coin
on one venue is noise for the whole market: ``[detector.global_scope]`` (every venue and
coin together), ``[detector.coin_scope]`` (one coin over every venue) and
``[detector.venue_scope]`` (one venue over every coin). ``[detector.coins.<COIN>]`` overrides
coin-scope thresholds (and the whale threshold) for one coin; a key left out there keeps the
``coin_scope`` value.

Every USD figure is per window (``window_seconds``, 5 minutes by default) and counts each
single liquidation at most ``signal_cap_usd``, so that one whale print never makes a cascade
by itself (the reported USD is uncapped).

How the thresholds combine, per scope and position side:

- watch: the side's USD in the window reaches ``watch_usd`` with ``sustain_share`` of both
  sides. Nothing is sent; ``liqmon top`` and the metrics show it.
- firing: the side's USD reaches ``cascade_usd`` and ``min_multiple`` baselines (or, for
  throttled venues, ``cascade_symbol_seconds`` and ``min_multiple`` symbol-second baselines,
  with ``watch_usd``), ``min_acceleration`` against the previous window, ``min_share`` of
  both sides, ``min_symbol_seconds`` distinct symbol-seconds, ``min_venues`` breadth, and,
  where a mark price is known, ``min_price_move`` in the direction that liquidates the side.
  A coin or venue scope also waits up to ``child_wait_seconds`` while the global scope is
  watching, and does not start while a global cascade on its side runs
  (``suppress_children``), nor while the coin (or venue) that makes up
  ``venue_max_top_coin_share`` of it reports the same liquidations.
- went market-wide (``suppress_children``): when the global scope fires on a side where a
  coin or venue cascade is already running, that cascade becomes the global one: same id and
  start, an ``escalated`` transition with scope ``global`` and ``promoted_from`` set. So a
  night that starts on one venue and spreads is one cascade, and its first alert is the
  early one.
- escalated: the window reaches ``critical_usd``, then ``extreme_usd``; severity never goes
  down within one cascade (nor when it goes market-wide).
- cooling, resolved: below ``sustain_fraction`` of ``cascade_usd`` (or of
  ``cascade_symbol_seconds``) or ``sustain_share``, after ``min_hold_seconds``, it cools;
  back above, it is the same cascade; ``cooling_seconds`` of cooling resolve it.
- whales: one liquidation of at least ``whale_usd`` (or the coin's ``whale_usd``) is a whale
  alert of its own: warning, critical from 5 times the threshold, extreme from 20 times.
- baselines: an EWMA (``baseline_half_life_hours``) of each scope's window, fed every
  ``baseline_sample_seconds`` and frozen while that scope cascades, never below
  ``baseline_floor_usd`` (``symbol_seconds_floor`` for symbol-seconds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ScopeThresholds:
    """When one scope (global, a coin, a venue) enters watch, cascade and each severity."""

    watch_usd: float = field(
        default=2_000_000.0,
        metadata={"min": 0, "help": "USD of the dominant side in the window to enter watch"},
    )
    cascade_usd: float = field(
        default=5_000_000.0,
        metadata={"min": 0, "help": "USD of the dominant side in the window to fire a cascade"},
    )
    critical_usd: float = field(
        default=25_000_000.0,
        metadata={"min": 0, "help": "window USD that escalates a cascade to critical"},
    )
    extreme_usd: float = field(
        default=100_000_000.0,
        metadata={"min": 0, "help": "window USD that escalates a cascade to extreme"},
    )
    baseline_floor_usd: float = field(
        default=1_000_000.0,
        metadata={
            "min": 1,
            "help": "the baseline (EWMA of the window) is never taken below this, so a "
            "dead-quiet market does not make a small burst look like a cascade",
        },
    )
    min_multiple: float = field(
        default=4.0,
        metadata={"min": 1, "help": "window USD must be at least this many baselines"},
    )
    min_acceleration: float = field(
        default=1.2,
        metadata={"min": 0, "help": "window USD against the previous window, to fire"},
    )
    min_share: float = field(
        default=0.8,
        metadata={"min": 0.5, "max": 1, "help": "share of the dominant position side, to fire"},
    )
    min_symbol_seconds: int = field(
        default=15,
        metadata={
            "min": 1,
            "help": "distinct (instrument, second) pairs with a liquidation in the window: "
            "a cascade is many prints, not one",
        },
    )
    cascade_symbol_seconds: int = field(
        default=300,
        metadata={
            "min": 1,
            "help": "symbol-seconds that fire a cascade even when the USD is under "
            "cascade_usd (throttled venues publish at most one print per symbol per "
            "second, so their USD under-reports); watch_usd still applies",
        },
    )
    symbol_seconds_floor: float = field(
        default=20.0,
        metadata={"min": 1, "help": "floor of the symbol-seconds baseline"},
    )
    min_venues: int = field(
        default=1,
        metadata={
            "min": 1,
            "help": "breadth: venues above their own baselines at once (global scope), or "
            "venues with at least venue_involved_share of the window (coin scope)",
        },
    )
    min_price_move: float = field(
        default=0.001,
        metadata={
            "min": 0,
            "max": 1,
            "help": "mark-price move over the window, as a fraction, in the direction that "
            "liquidates the dominant side; not required where no mark price is known",
        },
    )


def _global_defaults() -> ScopeThresholds:
    return ScopeThresholds(
        watch_usd=4_000_000.0,
        cascade_usd=10_000_000.0,
        critical_usd=60_000_000.0,
        extreme_usd=250_000_000.0,
        baseline_floor_usd=3_000_000.0,
        min_multiple=3.0,
        min_share=0.75,
        min_symbol_seconds=30,
        cascade_symbol_seconds=900,
        symbol_seconds_floor=60.0,
        min_venues=2,
        min_price_move=0.0005,
    )


@dataclass(frozen=True, slots=True)
class CoinThresholds:
    """Per-coin overrides of ``coin_scope``; a key left unset keeps the section's value."""

    watch_usd: float | None = field(default=None, metadata={"min": 0})
    cascade_usd: float | None = field(default=None, metadata={"min": 0})
    critical_usd: float | None = field(default=None, metadata={"min": 0})
    extreme_usd: float | None = field(default=None, metadata={"min": 0})
    baseline_floor_usd: float | None = field(default=None, metadata={"min": 1})
    min_multiple: float | None = field(default=None, metadata={"min": 1})
    min_share: float | None = field(default=None, metadata={"min": 0.5, "max": 1})
    min_price_move: float | None = field(default=None, metadata={"min": 0, "max": 1})
    whale_usd: float | None = field(
        default=None, metadata={"min": 0, "help": "whale threshold for this coin"}
    )

    def apply(self, base: ScopeThresholds) -> ScopeThresholds:
        changes = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "whale_usd" and getattr(self, f.name) is not None
        }
        return dataclasses.replace(base, **changes) if changes else base


@dataclass(frozen=True, slots=True)
class DetectorConfig:
    enabled: bool = field(default=True, metadata={"help": "run the cascade detector"})
    eval_interval_seconds: float = field(
        default=1.0,
        metadata={"min": 0.05, "max": 60, "help": "how often the daemon evaluates the windows"},
    )
    window_seconds: int = field(
        default=300,
        metadata={
            "min": 10,
            "max": 3600,
            "help": "the rolling window of every signal; acceleration compares it with the "
            "window before it",
        },
    )
    baseline_half_life_hours: float = field(
        default=3.0,
        metadata={
            "min": 0.05,
            "max": 168,
            "help": "half-life of the baseline: the EWMA of the window's USD over recent hours",
        },
    )
    baseline_sample_seconds: int = field(
        default=60, metadata={"min": 1, "max": 3600, "help": "how often the baseline is fed"}
    )
    signal_cap_usd: float = field(
        default=2_000_000.0,
        metadata={
            "min": 1,
            "help": "one liquidation counts at most this much toward the signals, so a whale "
            "alone never makes a cascade (reported USD is uncapped)",
        },
    )
    whale_usd: float = field(
        default=10_000_000.0,
        metadata={
            "min": 0,
            "help": "a single liquidation at least this large is a whale alert (warning; "
            "critical from 5x, extreme from 20x); above the largest ordinary prints of a "
            "crash night (a few $M), so a night gives a handful, not one per print",
        },
    )
    sustain_fraction: float = field(
        default=0.5,
        metadata={
            "min": 0.01,
            "max": 1,
            "help": "hysteresis: a cascade goes on while its window holds this fraction of "
            "cascade_usd (or of cascade_symbol_seconds)",
        },
    )
    sustain_share: float = field(
        default=0.6,
        metadata={"min": 0.5, "max": 1, "help": "and while its side keeps this share"},
    )
    min_hold_seconds: int = field(
        default=120,
        metadata={"min": 0, "help": "a cascade stays active at least this long after firing"},
    )
    cooling_seconds: int = field(
        default=600,
        metadata={
            "min": 1,
            "help": "a cascade below its sustain level for this long resolves; if it picks "
            "up before that, it is the same cascade",
        },
    )
    breadth_multiple: float = field(
        default=3.0,
        metadata={
            "min": 1,
            "help": "a venue counts toward global breadth when its window (USD or "
            "symbol-seconds) is this many of its own baselines",
        },
    )
    breadth_floor_usd: float = field(
        default=1_000_000.0,
        metadata={"min": 0, "help": "and its window USD is at least this (or its "
                  "symbol-seconds pass venue_scope.symbol_seconds_floor times the multiple)"},
    )
    venue_involved_share: float = field(
        default=0.05,
        metadata={"min": 0, "max": 1, "help": "a venue with this share of a window is listed"},
    )
    venue_max_top_coin_share: float = field(
        default=0.8,
        metadata={
            "min": 0,
            "max": 1,
            "help": "a venue-scope cascade needs its top coin under this share; above it, "
            "the event is that coin's (coin scope)",
        },
    )
    suppress_children: bool = field(
        default=True,
        metadata={
            "help": "one story per side: while a global cascade is active on a side, no new "
            "coin or venue cascade starts on that side (the global alert lists them), and "
            "one already running when the global one fires becomes it (same id and start; "
            "an escalated transition says it went market-wide)",
        },
    )
    child_wait_seconds: int = field(
        default=60,
        metadata={
            "min": 0,
            "help": "a coin or venue cascade ready to fire while the global scope is "
            "watching waits up to this long for the global one to fire instead",
        },
    )
    price_stale_seconds: float = field(
        default=30.0,
        metadata={
            "min": 1,
            "help": "a coin's reference mark price this old is replaced by another venue's",
        },
    )
    max_future_seconds: int = field(
        default=60,
        metadata={"min": 1, "help": "events stamped further ahead than this count as now"},
    )
    top_n: int = field(
        default=5, metadata={"min": 1, "max": 50, "help": "venues and coins listed in alerts"}
    )
    global_scope: ScopeThresholds = field(default_factory=_global_defaults)
    coin_scope: ScopeThresholds = field(default_factory=ScopeThresholds)
    venue_scope: ScopeThresholds = field(default_factory=ScopeThresholds)
    coins: Mapping[str, CoinThresholds] = field(
        default_factory=dict,
        metadata={"help": "per-coin overrides: [detector.coins.BTC] cascade_usd = 20e6"},
    )

    def coin_override(self, coin: str) -> CoinThresholds | None:
        """The ``[detector.coins.<coin>]`` table of an (upper-case) coin; the table's name
        may be written in any case."""
        found = self.coins.get(coin)
        if found is None:
            found = next((v for k, v in self.coins.items() if k.upper() == coin), None)
        return found

    def coin_thresholds(self, coin: str) -> ScopeThresholds:
        override = self.coin_override(coin)
        return override.apply(self.coin_scope) if override is not None else self.coin_scope

    def coin_whale_usd(self, coin: str) -> float:
        override = self.coin_override(coin)
        if override is not None and override.whale_usd is not None:
            return override.whale_usd
        return self.whale_usd
