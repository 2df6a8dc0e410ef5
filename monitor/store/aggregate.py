"""Pure window arithmetic and row building shared by the memory and Redis stores.

A window is covered by whole-hour roll-ups where a whole hour lies inside it and by minute
buckets at its ragged edges, so a 24 h window reads at most 24 hour buckets and 118 minute
buckets instead of 1,440 minutes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from monitor.events import Liquidation
from monitor.store.base import GROUP_KEYS, TotalsRow, check_by, completeness_label

R = TypeVar("R")

Group = tuple[str, str, str]  # (venue, coin, position_side)


def window_range(window_minutes: int, now_ms: int) -> tuple[int, int]:
    """The inclusive epoch-minute range of the last ``window_minutes`` up to ``now_ms``."""
    if window_minutes < 1:
        raise ValueError(f"window of {window_minutes} minutes: must be at least 1")
    end = now_ms // 60_000
    return end - window_minutes + 1, end


def cover(start_minute: int, end_minute: int) -> tuple[list[int], list[int]]:
    """Split an inclusive minute range into (whole hours inside it, the remaining minutes)."""
    if end_minute < start_minute:
        return [], []
    first_hour = -(-start_minute // 60)  # the first hour starting at or after start
    last_hour = (end_minute + 1) // 60 - 1  # the last hour ending at or before end
    if first_hour > last_hour:
        return [], list(range(start_minute, end_minute + 1))
    minutes = list(range(start_minute, first_hour * 60))
    minutes.extend(range((last_hour + 1) * 60, end_minute + 1))
    return list(range(first_hour, last_hour + 1)), minutes


class _Acc(Generic[R]):
    __slots__ = ("count", "largest_usd", "mask", "qty", "ref", "usd")

    def __init__(
        self, usd: float, count: int, qty: float, largest_usd: float, mask: int, ref: R
    ) -> None:
        self.usd = usd
        self.count = count
        self.qty = qty
        self.largest_usd = largest_usd
        self.mask = mask
        self.ref = ref


class RowBuilder(Generic[R]):
    """Sums bucket cells into rows grouped by some of (venue, coin, position_side).

    ``R`` is how a backend refers to a cell's largest liquidation before it is needed: the
    event itself in memory, a (key, field) pair to fetch in Redis. Only each row's winner
    is resolved.
    """

    __slots__ = ("_acc", "_by", "_index", "_keys")

    def __init__(self, by: Sequence[str]) -> None:
        self._by = check_by(by)
        self._index = tuple(GROUP_KEYS.index(k) for k in self._by)
        self._acc: dict[tuple[str, ...], _Acc[R]] = {}
        self._keys: dict[Group, tuple[str, ...]] = {}  # the same groups recur in every bucket

    def add(
        self,
        group: Group,
        usd: float,
        count: int,
        qty: float,
        largest_usd: float,
        mask: int,
        ref: R,
    ) -> None:
        key = self._keys.get(group)
        if key is None:
            key = self._keys[group] = tuple(group[i] for i in self._index)
        acc = self._acc.get(key)
        if acc is None:
            self._acc[key] = _Acc(usd, count, qty, largest_usd, mask, ref)
            return
        acc.usd += usd
        acc.count += count
        acc.qty += qty
        acc.mask |= mask
        # Strictly greater: on a tie the first cell seen keeps the title.
        if largest_usd > acc.largest_usd:
            acc.largest_usd = largest_usd
            acc.ref = ref

    def refs(self) -> list[R]:
        """The largest-liquidation reference of every row, to resolve in one go."""
        return [acc.ref for acc in self._acc.values()]

    def rows(self, resolve: Callable[[R], Liquidation | None]) -> list[TotalsRow]:
        rows: list[TotalsRow] = []
        for key, acc in self._acc.items():
            values: dict[str, str | None] = dict.fromkeys(GROUP_KEYS)
            values.update(zip(self._by, key, strict=True))
            rows.append(
                TotalsRow(
                    venue=values["venue"],
                    coin=values["coin"],
                    position_side=values["position_side"],
                    usd=acc.usd,
                    count=acc.count,
                    qty_base=acc.qty,
                    largest_usd=acc.largest_usd,
                    largest=resolve(acc.ref),
                    completeness=completeness_label(acc.mask),
                )
            )
        if not rows and not self._by:
            rows.append(empty_row())
        rows.sort(key=_row_order)
        return rows


def empty_row() -> TotalsRow:
    return TotalsRow(None, None, None, 0.0, 0, 0.0, 0.0, None, completeness_label(0))


def _row_order(row: TotalsRow) -> tuple[float, str, str, str]:
    return (-row.usd, row.venue or "", row.coin or "", row.position_side or "")


def top_events(candidates: Iterable[tuple[float, Liquidation]], limit: int) -> list[Liquidation]:
    """The ``limit`` largest by USD; ties broken by event id so every backend agrees."""
    ranked = sorted(candidates, key=lambda c: (-c[0], c[1].event_id))
    result: list[Liquidation] = []
    seen: set[str] = set()
    for _, event in ranked:
        if event.event_id not in seen:
            seen.add(event.event_id)
            result.append(event)
            if len(result) == limit:
                break
    return result
