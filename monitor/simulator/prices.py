"""Price paths for scenarios: each coin's USD price as a pure function of market time.

A path is the coin's start price, times a crash factor that follows the cascade's progress
(``1 - drop x progress(t)``), times a small wiggle: a sum of slow sines shared by the market
plus a coin's own. It needs no state, so any time can be priced out of order and a week of
calm market costs nothing to keep.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence


class PricePath:
    def __init__(
        self,
        start_prices: Mapping[str, float],
        rng: random.Random,
        *,
        wiggle: float = 0.004,
        drops: Mapping[str, float] | None = None,
        progress: Callable[[float], float] | None = None,
        pin_seconds: float | None = None,
    ) -> None:
        """``wiggle`` is the typical relative size of the noise; ``drops`` the crash depth per
        coin (0.07 = -7% once ``progress`` reaches 1). With ``pin_seconds`` the noise is zero
        at 0 and at that time, so a crash ends exactly ``drop`` below its start price."""
        self._start = dict(start_prices)
        self._drops = dict(drops or {})
        self._progress = progress
        self._pin = pin_seconds
        self._market = self._waves(rng, wiggle * 0.7)
        self._own = {coin: self._waves(rng, wiggle * 0.5) for coin in sorted(self._start)}
        # The noise at 0 (and at the pin) is subtracted from every price: computed once.
        self._anchors = {
            coin: (
                self._sum(self._market, 0.0) + self._sum(waves, 0.0),
                self._sum(self._market, pin_seconds or 0.0) + self._sum(waves, pin_seconds or 0.0),
            )
            for coin, waves in self._own.items()
        }

    @staticmethod
    def _waves(rng: random.Random, amplitude: float) -> list[tuple[float, float, float]]:
        # Periods from minutes to days; amplitudes shrink with frequency like a random walk's.
        waves = []
        for period in (240.0, 1_300.0, 7_000.0, 40_000.0, 200_000.0):
            scale = amplitude * math.sqrt(period / 40_000.0)
            waves.append((2 * math.pi / period, rng.uniform(0, 2 * math.pi), scale))
        return waves

    @staticmethod
    def _sum(waves: list[tuple[float, float, float]], t: float) -> float:
        # A plain loop, not sum() over a generator: a third of the time, and the same
        # additions in the same order from 0.0 (so the same bits: scenarios are golden).
        total = 0.0
        sin = math.sin
        for w, phase, a in waves:
            total += a * sin(w * t + phase)
        return total

    def _noise(self, coin: str, t: float, market: float) -> float:
        value = market + self._sum(self._own[coin], t)
        start, end = self._anchors[coin]
        if self._pin is None:
            return value - start
        frac = min(max(t / self._pin, 0.0), 1.0)
        return value - (start * (1 - frac) + end * frac)

    def coins(self) -> list[str]:
        return sorted(self._start)

    def price(self, coin: str, t: float) -> float:
        """USD per ``coin`` at market time ``t`` (seconds from scenario start)."""
        market = self._sum(self._market, t)
        progress = self._progress(t) if self._progress is not None else 0.0
        return (self._start[coin] * (1.0 - self._drops.get(coin, 0.0) * progress)
                * (1.0 + self._noise(coin, t, market)))

    def prices(self, coins: Sequence[str], t: float) -> list[float]:
        """The prices of several coins at one time (the market's part is computed once)."""
        market = self._sum(self._market, t)
        progress = self._progress(t) if self._progress is not None else 0.0
        return [
            self._start[coin]
            * (1.0 - self._drops.get(coin, 0.0) * progress)
            * (1.0 + self._noise(coin, t, market))
            for coin in coins
        ]
