"""The window aggregate of one scope, and how a symbol-second enters and leaves it.

An :class:`Agg` is one scope's window sums (global, a coin, a venue, or a coin-on-venue pair);
an entry is one symbol-second of one side, which counts in the four aggregates of its pair's
chain. :func:`fold_all`, :func:`leave_current` and :func:`leave_previous` are the three moves
``windows.Windows`` makes with every entry as its step clock passes it; :func:`fold_one` and
:func:`fold_late` fold what arrives after its second was folded. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

GLOBAL, COIN, VENUE, PAIR = 0, 1, 2, 3
LONG, SHORT = 0, 1
# Offsets into Agg.v, plus the side: one flat list keeps the hot path to index arithmetic.
USD, RAW, CNT, SYM, CUM, PREV = 0, 2, 4, 6, 8, 10
# Offsets into an entry list.
E_USD, E_RAW, E_CNT, E_FOLDED, E_SIDE, E_PAIR = 0, 1, 2, 3, 4, 5


class Agg:
    """The window aggregate of one scope.

    ``v`` holds, per side (add LONG or SHORT to the offset): capped USD in the current window
    (what the signals use), uncapped USD (what is reported), count, symbol-seconds with at
    least one liquidation, uncapped USD ever folded (cascade totals are differences of it),
    and capped USD of the previous window (for acceleration). A coin-on-venue pair keeps
    only the uncapped USD and the symbol-seconds.
    """

    __slots__ = ("base_sym", "base_usd", "chain", "gate", "keys", "kind", "name", "parents",
                 "scope", "v", "vs")

    def __init__(self, kind: int, name: str, scope: str) -> None:
        self.kind = kind
        self.name = name
        self.scope = scope
        self.v = [0.0] * 12
        self.base_usd = [0.0, 0.0]
        self.base_sym = [0.0, 0.0]
        # A pair's chain is (global, coin, venue, pair): every aggregate one entry counts in;
        # vs holds their ``v`` lists, for the hot loops.
        self.chain: tuple[Agg, ...] = ()
        self.vs: tuple[list[float], ...] = ()
        # A pair's (coin, venue): the scopes a fold into it may have made worth evaluating.
        self.parents: tuple[Agg, ...] = ()
        # The detector's machine keys of this scope, (scope, side) by side, made once.
        self.keys = ((scope, LONG), (scope, SHORT))
        # The USD below which this scope cannot watch or fire; set and reset by the detector
        # (negative: not known yet).
        self.gate = -1.0

    def usd(self, side: int) -> float:
        return self.v[USD + side]

    def raw(self, side: int) -> float:
        return self.v[RAW + side]

    def count(self, side: int) -> int:
        return int(self.v[CNT + side])

    def sym(self, side: int) -> int:
        return int(self.v[SYM + side])

    def cum_raw(self, side: int) -> float:
        return self.v[CUM + side]

    def prev(self, side: int) -> float:
        return self.v[PREV + side]


# One symbol-second of one side: [capped USD, USD, count, folded (0/1), side, pair agg].
# The count is a float (whole numbers, exact below 2**53), like the window sums it is
# added to: a float plus a float takes the interpreter's specialised add, a float plus an
# int its generic path, and the sum is the same (the int is converted exactly). For the
# same reason the folds add and subtract ``1.0``, not ``1``, to the window's floats.
Entry = list[Any]


def fold_all(entries: Iterable[Entry], g: list[float],
             touched_add: Callable[[Agg], None]) -> None:
    """Fold each entry (a symbol-second the step clock has passed) into its chain's
    aggregates, and note its pair in ``touched_add``. ``g`` is the global aggregate's
    ``v``, the first of every entry's chain."""
    # Unrolled over (global, coin, venue) and the pair, which keeps only what its
    # breakdowns read (reported USD) and its symbol-seconds: this is the hot loop. The
    # global aggregate takes every entry, so its sums run in locals and are written back
    # once: the same additions in the same order, so the same floats. Its counts and
    # symbol-seconds are whole numbers, whose float sums are exact in any grouping
    # (below 2**53), so they are added once per side. Each side is written out with its
    # offsets as constants (``USD + side`` etc.: no index arithmetic per entry), and a
    # pair is noted once for a run of its entries (a symbol's two sides are usually
    # next to each other).
    u0, u1, r0, r1, m0, m1 = g[0], g[1], g[2], g[3], g[8], g[9]
    n0 = n1 = 0.0
    k0 = k1 = 0
    last = None
    for entry in entries:
        usd, raw, cnt, _folded, side, pair = entry
        entry[3] = 1
        _g, c, v, p = pair.vs
        if side:
            u1 += usd
            r1 += raw
            n1 += cnt
            k1 += 1
            m1 += raw
            c[1] += usd
            c[3] += raw
            c[5] += cnt
            c[7] += 1.0
            c[9] += raw
            v[1] += usd
            v[3] += raw
            v[5] += cnt
            v[7] += 1.0
            v[9] += raw
            p[3] += raw
            p[7] += 1.0
        else:
            u0 += usd
            r0 += raw
            n0 += cnt
            k0 += 1
            m0 += raw
            c[0] += usd
            c[2] += raw
            c[4] += cnt
            c[6] += 1.0
            c[8] += raw
            v[0] += usd
            v[2] += raw
            v[4] += cnt
            v[6] += 1.0
            v[8] += raw
            p[2] += raw
            p[6] += 1.0
        if pair is not last:
            touched_add(pair)
            last = pair
    g[0], g[1], g[2], g[3], g[8], g[9] = u0, u1, r0, r1, m0, m1
    g[4] += n0
    g[5] += n1
    g[6] += k0
    g[7] += k1


def fold_one(entry: Entry) -> Agg:
    """:func:`fold_all` of one entry (a late print opening a symbol-second already
    passed); returns its pair, for the caller's touched set."""
    pair: Agg
    usd, raw, cnt, _folded, side, pair = entry
    entry[3] = 1
    g, c, v, p = pair.vs
    # Each side with constant offsets, as in ``fold_all``.
    if side:
        g[1] += usd
        g[3] += raw
        g[5] += cnt
        g[7] += 1.0
        g[9] += raw
        c[1] += usd
        c[3] += raw
        c[5] += cnt
        c[7] += 1.0
        c[9] += raw
        v[1] += usd
        v[3] += raw
        v[5] += cnt
        v[7] += 1.0
        v[9] += raw
        p[3] += raw
        p[7] += 1.0
    else:
        g[0] += usd
        g[2] += raw
        g[4] += cnt
        g[6] += 1.0
        g[8] += raw
        c[0] += usd
        c[2] += raw
        c[4] += cnt
        c[6] += 1.0
        c[8] += raw
        v[0] += usd
        v[2] += raw
        v[4] += cnt
        v[6] += 1.0
        v[8] += raw
        p[2] += raw
        p[6] += 1.0
    return pair


def fold_late(pair: Agg, side: int, capped: float, usd: float) -> Agg:
    """A late print in a second already folded goes straight into the windows of its
    pair's scopes (its entry was folded before it came); returns the pair."""
    g, c, v, p = pair.vs
    # Each side with constant offsets, as in ``fold_all``.
    if side:
        g[1] += capped
        g[3] += usd
        g[5] += 1.0
        g[9] += usd
        c[1] += capped
        c[3] += usd
        c[5] += 1.0
        c[9] += usd
        v[1] += capped
        v[3] += usd
        v[5] += 1.0
        v[9] += usd
        p[3] += usd
    else:
        g[0] += capped
        g[2] += usd
        g[4] += 1.0
        g[8] += usd
        c[0] += capped
        c[2] += usd
        c[4] += 1.0
        c[8] += usd
        v[0] += capped
        v[2] += usd
        v[4] += 1.0
        v[8] += usd
        p[2] += usd
    return pair


def leave_current(entries: Iterable[Entry], g: list[float]) -> None:
    """Take each entry out of its chain's current windows into their previous ones
    (``g``: the global aggregate's ``v``, as for :func:`fold_all`)."""
    # Unrolled over (global, coin, venue) like ``fold_all``, each side with constant
    # offsets: a second leaves the window at every step. The global sums run in locals,
    # in the same order; its counts too, since the last symbol-second of a side sets its
    # window to exact zeros (not residue).
    u0, u1, r0, r1, n0, n1, k0, k1, q0, q1 = g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], \
        g[10], g[11]
    for entry in entries:
        usd, raw, cnt, _folded, side, pair = entry
        _g, c, v, p = pair.vs
        if side:
            if k1 <= 1.0:
                u1 = r1 = n1 = k1 = 0.0
            else:
                u1 -= usd
                r1 -= raw
                n1 -= cnt
                k1 -= 1.0
            q1 += usd
            if c[7] <= 1.0:
                c[1] = c[3] = c[5] = c[7] = 0.0
            else:
                c[1] -= usd
                c[3] -= raw
                c[5] -= cnt
                c[7] -= 1.0
            c[11] += usd
            if v[7] <= 1.0:
                v[1] = v[3] = v[5] = v[7] = 0.0
            else:
                v[1] -= usd
                v[3] -= raw
                v[5] -= cnt
                v[7] -= 1.0
            v[11] += usd
            if p[7] <= 1.0:
                p[3] = p[7] = 0.0
            else:
                p[3] -= raw
                p[7] -= 1.0
        else:
            if k0 <= 1.0:
                u0 = r0 = n0 = k0 = 0.0
            else:
                u0 -= usd
                r0 -= raw
                n0 -= cnt
                k0 -= 1.0
            q0 += usd
            if c[6] <= 1.0:
                c[0] = c[2] = c[4] = c[6] = 0.0
            else:
                c[0] -= usd
                c[2] -= raw
                c[4] -= cnt
                c[6] -= 1.0
            c[10] += usd
            if v[6] <= 1.0:
                v[0] = v[2] = v[4] = v[6] = 0.0
            else:
                v[0] -= usd
                v[2] -= raw
                v[4] -= cnt
                v[6] -= 1.0
            v[10] += usd
            if p[6] <= 1.0:
                p[2] = p[6] = 0.0
            else:
                p[2] -= raw
                p[6] -= 1.0
    g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[10], g[11] = \
        u0, u1, r0, r1, n0, n1, k0, k1, q0, q1


def leave_previous(entries: Iterable[Entry], g: list[float]) -> None:
    """Take each entry out of its chain's previous windows (it is dropped); ``g`` as for
    :func:`leave_current`, its previous-window sums in locals."""
    q0, q1 = g[10], g[11]
    for entry in entries:
        usd, side, pair = entry[0], entry[4], entry[5]
        _g, c, v, _p = pair.vs
        if side:
            left = q1 - usd
            q1 = left if left > 1e-6 else 0.0
            left = c[11] - usd
            c[11] = left if left > 1e-6 else 0.0
            left = v[11] - usd
            v[11] = left if left > 1e-6 else 0.0
        else:
            left = q0 - usd
            q0 = left if left > 1e-6 else 0.0
            left = c[10] - usd
            c[10] = left if left > 1e-6 else 0.0
            left = v[10] - usd
            v[10] = left if left > 1e-6 else 0.0
    g[10], g[11] = q0, q1
