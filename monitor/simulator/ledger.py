"""The count of liquidations the simulator actually sent, per venue and position side.

A liquidation counts once, when the first frame carrying it has been written to some
connection: after Binance's throttle (the orders it dropped never count), never for a
malformed frame, and not again for a duplicate frame, an OKX replay or a second connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from monitor.events import PositionSide
from monitor.simulator.venue_sim import Liq


@dataclass(frozen=True, slots=True)
class SideTotals:
    count: int = 0
    usd: float = 0.0


class SentCounts:
    """A snapshot: ``get(venue, side)``, totals, and ``to_json()``."""

    def __init__(self, table: dict[str, dict[PositionSide, SideTotals]] | None = None) -> None:
        self._table = table or {}

    def venues(self) -> list[str]:
        return sorted(self._table)

    def get(self, venue: str, side: PositionSide | str) -> SideTotals:
        return self._table.get(venue, {}).get(PositionSide(side), SideTotals())

    def count(self, venue: str | None = None) -> int:
        return sum(t.count for v in self._pick(venue) for t in self._table[v].values())

    def usd(self, venue: str | None = None) -> float:
        return sum(t.usd for v in self._pick(venue) for t in self._table[v].values())

    def _pick(self, venue: str | None) -> list[str]:
        if venue is None:
            return list(self._table)
        return [venue] if venue in self._table else []

    def to_json(self) -> dict[str, Any]:
        """``{"venues": {venue: {"long": {"count", "usd"}, "short": {...}}}, "total_count",
        "total_usd"}``."""
        return {
            "venues": {
                venue: {
                    side.value: {"count": totals.count, "usd": totals.usd}
                    for side, totals in sorted(sides.items())
                }
                for venue, sides in sorted(self._table.items())
            },
            "total_count": self.count(),
            "total_usd": self.usd(),
        }

    def __repr__(self) -> str:
        return f"SentCounts({self.to_json()!r})"


# Frames carry liquidations within moments of their creation (replays hold the last few), so
# only recent sequence numbers need remembering: a looping soak test must not grow forever.
KEEP_SEQS = 1_000_000


class Ledger:
    """Live counts, owned by the simulator core; venue sims read ``was_sent``."""

    def __init__(self, venues: Iterable[str] = ()) -> None:
        self._seen: set[int] = set()
        self._floor = 0  # every seq below this is settled: counted, or never sent
        self._counts: dict[str, dict[PositionSide, list[float]]] = {}
        for venue in venues:
            self._row(venue)

    def _row(self, venue: str) -> dict[PositionSide, list[float]]:
        row = self._counts.get(venue)
        if row is None:
            row = self._counts[venue] = {side: [0, 0.0] for side in PositionSide}
        return row

    def was_sent(self, seq: int) -> bool:
        return seq in self._seen or seq < self._floor

    def record(self, liquidations: Iterable[Liq]) -> None:
        for liq in liquidations:
            if liq.seq in self._seen or liq.seq < self._floor:
                continue
            self._seen.add(liq.seq)
            if len(self._seen) > 2 * KEEP_SEQS:
                self._floor = max(self._seen) - KEEP_SEQS
                self._seen = {seq for seq in self._seen if seq >= self._floor}
            event = liq.event
            if event.position_side is None:
                continue
            cell = self._row(event.venue)[event.position_side]
            cell[0] += 1
            cell[1] += event.notional_usd

    def snapshot(self) -> SentCounts:
        return SentCounts(
            {
                venue: {side: SideTotals(int(c[0]), float(c[1])) for side, c in row.items()}
                for venue, row in self._counts.items()
            }
        )
