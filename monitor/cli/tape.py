"""The liquidation tape: one line per liquidation, as traders know it from aggr.trade.

``time  venue  coin  side  USD  @ price  completeness`` fits 80 columns; the side is coloured
(longs red: the price fell through them; shorts green) when stdout is a terminal and
``NO_COLOR`` is unset. ``--json`` writes the normalised event's JSON instead (DESIGN 3.2),
one per line. Lines are written without rich: at the peak of a crash thousands arrive a
second and each one must cost the event loop microseconds, not a layout pass.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TextIO

from monitor.cli.fmt import SIDE_STYLE, clock, elapsed, price, usd
from monitor.events import Completeness, Liquidation

_ANSI = {"red": "\x1b[31m", "green": "\x1b[32m", "dim": "\x1b[2m", "bold": "\x1b[1m"}
_RESET = "\x1b[0m"


@dataclass(frozen=True, slots=True)
class TapeFilter:
    """Which liquidations the tape shows. Empty sets mean every venue or coin."""

    venues: frozenset[str] = frozenset()
    coins: frozenset[str] = frozenset()
    side: str | None = None
    min_usd: float = 0.0

    @classmethod
    def build(cls, venues: Iterable[str] = (), coins: Iterable[str] = (),
              side: str | None = None, min_usd: float = 0.0) -> TapeFilter:
        return cls(frozenset(venues), frozenset(c.upper() for c in coins), side, min_usd)

    def accepts(self, event: Liquidation) -> bool:
        return (event.notional_usd >= self.min_usd
                and (not self.venues or event.venue in self.venues)
                and (not self.coins or event.coin in self.coins)
                and (self.side is None or event.position_side.value == self.side))


def tape_line(event: Liquidation, *, color: bool = False, origin: float | None = None) -> str:
    """One liquidation as a line of at most 80 columns.

    ``origin``: show the time as a market clock since this wall time (the demo's scenario)
    instead of the UTC time of day.
    """
    seconds = event.exchange_ts_ms / 1000
    when = f"+{elapsed(seconds - origin)}" if origin is not None else clock(seconds)
    side = event.position_side.value
    amount = usd(event.notional_usd)
    side_text = f"{side.upper():<5}"
    if color:
        side_text = f"{_ANSI[SIDE_STYLE[side]]}{side_text}{_RESET}"
        if event.notional_usd >= 1e6:
            amount = f"{_ANSI['bold']}{amount:>8}{_RESET}"
    # Marks what a venue's feed cannot guarantee (a throttled feed's row stands for more);
    # every level but full is named, whatever levels venues add.
    mark = "" if event.completeness is Completeness.FULL else event.completeness.value
    line = (f"{when:<9} {event.venue[:14]:<14} {event.coin[:6]:<6} {side_text} {amount:>8} "
            f"@ {price(event.price):>11}")
    if mark:
        line += f"  {_ANSI['dim']}{mark}{_RESET}" if color else f"  {mark}"
    return line


def wants_color(stream: TextIO) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


class TapePrinter:
    """Prints the events its filter accepts; a callable for ``App.on_liquidation``."""

    def __init__(self, tape_filter: TapeFilter, *, as_json: bool = False,
                 origin: float | None = None, stream: TextIO | None = None,
                 limit: int | None = None,
                 on_done: Callable[[], None] | None = None) -> None:
        self.filter = tape_filter
        self._json = as_json
        self._origin = origin
        self._stream = stream or sys.stdout
        self._color = not as_json and wants_color(self._stream)
        self._limit = limit
        self.on_done = on_done
        self.printed = 0

    @property
    def done(self) -> bool:
        return self._limit is not None and self.printed >= self._limit

    def __call__(self, event: Liquidation) -> None:
        if self.done or not self.filter.accepts(event):
            return
        if self._json:
            self._stream.write(event.to_json().decode() + "\n")
        else:
            self._stream.write(tape_line(event, color=self._color, origin=self._origin) + "\n")
        self.printed += 1
        if self.done and self.on_done is not None:
            self.on_done()
        # A terminal shows each line as it comes; a pipe gets whole lines, flushed per event
        # so that `liqmon tail --json | jq` sees them live.
        self._stream.flush()
