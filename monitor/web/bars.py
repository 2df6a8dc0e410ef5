"""Per-minute liquidation USD of the last 24 h, by venue, coin and side, as the store has it.

The live page's bars are read from the store's minute buckets (``Store.minute_series``), so
they add up to what ``liqmon stats`` prints for the same minutes. This module only keeps
and slices them; reading is the live view's job. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.store.base import TotalsRow

DAY_MINUTES = 1440
SIDES = ("long", "short")
Cell = tuple[str, str, str]  # (venue, coin, position_side)


class MinuteBars:
    """Minute → {(venue, coin, side): usd} for at most ``span`` minutes."""

    def __init__(self, span: int = DAY_MINUTES) -> None:
        self.span = span
        self._minutes: dict[int, dict[Cell, float]] = {}
        # The same minutes summed over coins: what the default chart draws, kept so that a
        # full snapshot reads 1,440 small dicts, not every cell of the day.
        self._venues: dict[int, dict[str, tuple[float, float]]] = {}
        # USD per coin over the span, kept as minutes come and go (read every update).
        self._coin_usd: dict[str, float] = {}
        self.end: int | None = None  # the newest minute read so far

    def replace(self, minute: int, cells: dict[Cell, float]) -> None:
        """What the store holds for one minute now (a minute can still grow: late frames)."""
        self._count_coins(self._minutes.get(minute, {}), -1.0)
        self._count_coins(cells, 1.0)
        if cells:
            self._minutes[minute] = cells
            venues: dict[str, tuple[float, float]] = {}
            for (venue, _coin, side), usd in cells.items():
                long, short = venues.get(venue, (0.0, 0.0))
                venues[venue] = (long + usd, short) if side == "long" else (long, short + usd)
            self._venues[minute] = venues
        else:
            self._minutes.pop(minute, None)
            self._venues.pop(minute, None)
        if self.end is None or minute > self.end:
            self.end = minute

    def trim(self, end_minute: int) -> None:
        """Forget the minutes that fell out of the span ending at ``end_minute``."""
        first = end_minute - self.span + 1
        for minute in [m for m in self._minutes if m < first]:
            self._count_coins(self._minutes.pop(minute), -1.0)
            del self._venues[minute]

    def _count_coins(self, cells: dict[Cell, float], sign: float) -> None:
        usd = self._coin_usd
        for (_venue, coin, _side), value in cells.items():
            left = usd.get(coin, 0.0) + sign * value
            if left > 1e-6:
                usd[coin] = left
            else:
                usd.pop(coin, None)

    def by_venue(self, start: int, end: int, coin: str | None = None
                 ) -> dict[str, list[list[float]]]:
        """{venue: [longs, shorts]}, one whole-dollar value per minute of [start, end]."""
        width = end - start + 1
        result: dict[str, list[list[float]]] = {}

        def arrays(venue: str) -> list[list[float]]:
            found = result.get(venue)
            if found is None:
                found = result[venue] = [[0.0] * width, [0.0] * width]
            return found

        if coin is None:
            for minute, venues in self._venues.items():
                if start <= minute <= end:
                    for venue, (long, short) in venues.items():
                        pair = arrays(venue)
                        pair[0][minute - start] = round(long, 2)
                        pair[1][minute - start] = round(short, 2)
            return result
        for minute, cells in self._minutes.items():
            if start <= minute <= end:
                for (venue, cell_coin, side), usd in cells.items():
                    if cell_coin == coin:
                        arrays(venue)[0 if side == "long" else 1][minute - start] = round(usd, 2)
        return result

    def cells(self, start: int, end: int) -> list[tuple[int, str, str, str, float]]:
        """(minute, venue, coin, side, usd) of [start, end], for a page showing one coin."""
        return sorted(
            (minute, venue, coin, side, round(usd, 2))
            for minute, cells in self._minutes.items() if start <= minute <= end
            for (venue, coin, side), usd in cells.items())

    def coins(self) -> list[str]:
        """Every coin with liquidations in the span, the largest USD first."""
        usd = self._coin_usd
        return sorted(usd, key=lambda c: (-usd[c], c))

    def total(self, start: int, end: int) -> dict[tuple[str, str], float]:
        """USD by (venue, side) over [start, end]."""
        result: dict[tuple[str, str], float] = {}
        for minute, cells in self._minutes.items():
            if start <= minute <= end:
                for (venue, _coin, side), value in cells.items():
                    result[(venue, side)] = result.get((venue, side), 0.0) + value
        return result


def cells_of(rows: Iterable[tuple[int, TotalsRow]]) -> dict[int, dict[Cell, float]]:
    """``Store.minute_series(..., by=("venue", "coin", "position_side"))`` as cells."""
    result: dict[int, dict[Cell, float]] = {}
    for minute, row in rows:
        if row.venue is None or row.coin is None or row.position_side is None:
            continue
        result.setdefault(minute, {})[(row.venue, row.coin, row.position_side)] = row.usd
    return result
