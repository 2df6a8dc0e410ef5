"""Mark-price moves per coin and venue over the detector window.

Each (coin, venue) follows one reference instrument (the first seen, replaced by another
when it goes stale), because mixing instruments would turn their basis into fake moves.
Prices are kept per venue because a venue's own mark is what liquidates its positions (a
venue-only wick is real for that venue). A scope's move weighs its venues' moves by their
liquidated USD; a venue without a price of that coin borrows the freshest other venue's.

Samples are kept at ``resolution`` seconds and only back to the start of the window, so
memory is bounded by window / resolution per (coin, venue).
"""

from __future__ import annotations

from collections import deque


class _Series:
    __slots__ = ("instrument", "last_sec", "samples")

    def __init__(self, instrument: str) -> None:
        self.instrument = instrument
        self.last_sec = 0
        self.samples: deque[list[float]] = deque()  # [second, price], oldest first


class PriceTracker:
    def __init__(self, window_seconds: int, stale_seconds: float) -> None:
        self.window = window_seconds
        self.stale_seconds = stale_seconds
        self._series: dict[tuple[str, str], _Series] = {}
        self._venues: dict[str, list[str]] = {}  # coin → venues with a series

    @property
    def window(self) -> int:
        return self._window

    @window.setter
    def window(self, seconds: int) -> None:
        self._window = seconds
        # Read by every update: kept, not derived each time.
        self._resolution = max(1, seconds // 60)

    @property
    def resolution(self) -> int:
        return self._resolution

    def update(self, coin: str, venue: str, instrument: str, price: float, sec: int) -> None:
        if not price > 0.0:
            return
        key = (coin, venue)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(instrument)
            self._venues.setdefault(coin, []).append(venue)
        elif series.instrument != instrument:
            if sec - series.last_sec <= self.stale_seconds:
                return
            series.instrument = instrument
            series.samples.clear()
        samples = series.samples
        if samples:
            last = samples[-1]
            if sec < last[0]:
                return  # older than what we hold: the window is already past it
            if sec < last[0] + self._resolution:
                # A slot keeps its first price: a later one would be a price from after
                # the step that reads it, and the result would depend on feed timing.
                series.last_sec = sec
                return
        samples.append([float(sec), price])
        series.last_sec = sec
        # Marks may run ahead of the step clock: keep what a step up to a minute behind needs.
        _prune(samples, sec - self._window - _AHEAD_SECONDS)

    def move(self, coin: str, venue: str, t: int) -> float | None:
        """The fractional change of ``coin`` on ``venue`` over the window before second ``t``.

        A venue with no fresh price of the coin borrows the freshest other venue's.
        """
        series = self._series.get((coin, venue))
        if series is not None:
            moved = self._move(series, t)
            if moved is not None:
                return moved
        return self.coin_move(coin, t)

    def coin_move(self, coin: str, t: int) -> float | None:
        """The move of the venue with the freshest price of ``coin``."""
        best: tuple[float, float] | None = None  # (age, move)
        for venue in self._venues.get(coin, ()):
            series = self._series[(coin, venue)]
            moved = self._move(series, t)
            if moved is not None:
                age = t - series.samples[self._index(series, t - 1)][0]
                if best is None or age < best[0]:
                    best = (age, moved)
        return None if best is None else best[1]

    def _move(self, series: _Series, t: int) -> float | None:
        # Like the liquidation windows, the step at t sees whole seconds before t only, so
        # the result does not depend on how far the marks fed so far run ahead of the step:
        # a replay at any cadence sees the same moves.
        end = t - 1
        samples = series.samples
        if not samples:
            return None
        # ``_prune`` and ``_index`` inline: a coin or venue that could fire reads its moves
        # every second.
        start = end - self._window
        while len(samples) > 1 and samples[1][0] <= start:
            samples.popleft()
        i = len(samples) - 1
        last = samples[i]
        while i > 0 and last[0] > end:
            i -= 1
            last = samples[i]
        at = last[0]
        if at > end or end - at > self.stale_seconds:
            return None
        return last[1] / samples[0][1] - 1.0

    @staticmethod
    def _index(series: _Series, end: int) -> int:
        """The newest sample at or before ``end`` (0 if none is)."""
        samples = series.samples
        i = len(samples) - 1
        while i > 0 and samples[i][0] > end:
            i -= 1
        return i

    def held_samples(self) -> int:
        return sum(len(s.samples) for s in self._series.values())


_AHEAD_SECONDS = 60


def _prune(samples: deque[list[float]], start: float) -> None:
    # Keep exactly one sample at or before the window start: the price "then".
    while len(samples) > 1 and samples[1][0] <= start:
        samples.popleft()
