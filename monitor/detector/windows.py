"""Rolling windows per scope from second-resolution buckets keyed by the venue's time.

A liquidation lands in the bucket of its exchange second, keyed by (venue, instrument, side):
one bucket entry is one symbol-second. A second is folded into the window aggregates of four
scopes (global, its coin, its venue, and the coin-on-venue pair) once the step clock has
passed it; it leaves the current window ``W`` seconds later into the previous window (for
acceleration), and is dropped ``2W`` seconds later. So each entry is touched a fixed number
of times, and memory is bounded by ``2W`` seconds of entries.

A late liquidation (its second already folded) is added straight to the aggregates; one
older than the current window is counted for nothing but whales. Pure: time comes in. The
aggregates and what folding an entry does to them are ``aggregates.py``'s.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

from monitor.alerts import coin_scope, venue_scope
from monitor.detector.aggregates import (
    COIN,
    CUM,
    GLOBAL,
    LONG,
    PAIR,
    SHORT,
    SYM,
    USD,
    VENUE,
    Agg,
    Entry,
    fold_all,
    fold_late,
    fold_one,
    leave_current,
    leave_previous,
)
from monitor.events import Liquidation, PositionSide

_LONG = PositionSide.LONG
# One second's entries, by (venue, instrument, side).
Bucket = dict[tuple[str, str, int], Entry]


class Windows:
    """All scopes' windows, moved forward one whole second at a time by :meth:`advance`."""

    def __init__(self, window_seconds: int, cap_usd: float) -> None:
        self.window = window_seconds
        self.cap_usd = cap_usd
        self.global_agg = Agg(GLOBAL, "global", "global")
        self.coins: dict[str, Agg] = {}
        self.venues: dict[str, Agg] = {}
        self.pairs: dict[tuple[str, str], Agg] = {}
        self.pairs_by_coin: dict[str, dict[str, Agg]] = {}  # coin → venue → pair
        self.pairs_by_venue: dict[str, dict[str, Agg]] = {}  # venue → coin → pair
        self._seconds: dict[int, Bucket] = {}
        # None until the first step: before it, every bucket is pending.
        self.folded_upto: int | None = None
        self._cur_from = 0  # first second of the current window
        self._prev_from = 0  # first second of the previous window
        self.late_dropped = 0
        self.touched: set[Agg] = set()  # pairs folded into since the last step

    # -- the hot path -------------------------------------------------------------------------

    def add(self, venue: str, instrument: str, coin: str, side: int, usd: float, sec: int) -> None:
        folded_upto = self.folded_upto
        if folded_upto is not None:
            if sec - folded_upto > self._future:
                sec = folded_upto + 1  # a venue clock far ahead: count it as now
            elif sec < self._cur_from:
                self.late_dropped += 1  # older than the window: too late to matter
                return
        bucket = self._seconds.get(sec)
        if bucket is None:
            bucket = self._seconds[sec] = {}
        key = (venue, instrument, side)
        entry = bucket.get(key)
        capped = usd if usd < self.cap_usd else self.cap_usd
        if entry is None:
            pair = self.pairs.get((coin, venue)) or self._pair(venue, coin)
            entry = bucket[key] = [capped, usd, 1.0, 0, side, pair]
            if folded_upto is not None and sec <= folded_upto:
                # A late print opening a symbol-second already passed: into the window now.
                self.touched.add(fold_one(entry))
            return
        entry[0] += capped
        entry[1] += usd
        entry[2] += 1.0
        if entry[3]:
            # A late print in a second already folded: straight into the window.
            self.touched.add(fold_late(entry[5], side, capped, usd))

    def add_liquidations(self, events: Iterable[Liquidation]) -> float:
        """:meth:`add` of each liquidation with a positive USD value (one frame's rows);
        returns the largest such USD (0 if none), so that the caller looks for whales only
        in a frame that has one.

        The same updates in the same order; a frame's rows share a venue and an instrument
        and mostly a second, so the second's bucket and each side's entry are looked up
        once for a run of them."""
        folded_upto = self.folded_upto
        future = self._future
        cur_from = self._cur_from
        cap = self.cap_usd
        seconds = self._seconds
        touched_add = self.touched.add
        long_side = _LONG
        bucket: Bucket = {}
        # The exchange second of the run as read (before a far-ahead clock is counted as
        # now), and the second its rows go into: rows of one second, instrument and venue
        # skip the window's range checks, which ``add`` makes per row with the same result
        # (it depends on the second alone; a dropped row makes the next one check again).
        last_read: int | None = None
        last_sec: int | None = None
        sec = 0
        venue = instrument = ""
        long_entry: Entry | None = None
        short_entry: Entry | None = None
        late_pair: Agg | None = None  # the pair a late row was last folded into
        most = 0.0
        # Late rows fold into the window here, as ``fold_one`` and ``fold_late`` would:
        # the global aggregate takes every one of them, so its sums run in locals (the
        # same additions in the same order, so the same floats; nothing else reads or
        # writes them meanwhile) and are written back at the end.
        g = self.global_agg.v
        u0, u1, r0, r1, n0, n1, k0, k1, m0, m1 = g[0], g[1], g[2], g[3], g[4], g[5], g[6], \
            g[7], g[8], g[9]
        try:
            for event in events:
                usd = event.notional_usd
                if not usd > 0.0:
                    continue
                if usd > most:
                    most = usd
                read = event.exchange_ts_ms // 1000
                if read != last_read or event.instrument != instrument or event.venue != venue:
                    sec = read
                    if folded_upto is not None:
                        if sec - folded_upto > future:
                            sec = folded_upto + 1  # a venue clock far ahead: count it as now
                        elif sec < cur_from:
                            self.late_dropped += 1  # older than the window: too late to matter
                            last_read = None
                            continue
                    last_read = read
                    if sec != last_sec:
                        last_sec = sec
                        found = seconds.get(sec)
                        if found is None:
                            found = seconds[sec] = {}
                        bucket = found
                    venue, instrument = event.venue, event.instrument
                    long_entry = short_entry = None
                is_long = event.position_side is long_side
                entry = long_entry if is_long else short_entry
                capped = usd if usd < cap else cap
                if entry is None:
                    side = LONG if is_long else SHORT
                    key = (venue, instrument, side)
                    entry = bucket.get(key)
                    if entry is None:
                        coin = event.coin
                        pair = self.pairs.get((coin, venue)) or self._pair(venue, coin)
                        entry = bucket[key] = [capped, usd, 1.0, 0, side, pair]
                        if folded_upto is not None and sec <= folded_upto:
                            # A late print opening a symbol-second already passed: into
                            # the window now, as ``fold_one``.
                            entry[3] = 1
                            _g, c, v, p = pair.vs
                            if is_long:
                                u0 += capped
                                r0 += usd
                                n0 += 1.0
                                k0 += 1.0
                                m0 += usd
                                c[0] += capped
                                c[2] += usd
                                c[4] += 1.0
                                c[6] += 1.0
                                c[8] += usd
                                v[0] += capped
                                v[2] += usd
                                v[4] += 1.0
                                v[6] += 1.0
                                v[8] += usd
                                p[2] += usd
                                p[6] += 1.0
                            else:
                                u1 += capped
                                r1 += usd
                                n1 += 1.0
                                k1 += 1.0
                                m1 += usd
                                c[1] += capped
                                c[3] += usd
                                c[5] += 1.0
                                c[7] += 1.0
                                c[9] += usd
                                v[1] += capped
                                v[3] += usd
                                v[5] += 1.0
                                v[7] += 1.0
                                v[9] += usd
                                p[3] += usd
                                p[7] += 1.0
                            touched_add(pair)
                        if is_long:
                            long_entry = entry
                        else:
                            short_entry = entry
                        continue
                    if is_long:
                        long_entry = entry
                    else:
                        short_entry = entry
                entry[0] += capped
                entry[1] += usd
                entry[2] += 1.0
                if entry[3]:
                    # A late print in a second already folded: straight into the window,
                    # as ``fold_late`` (its pair noted once for a run of them: a set takes
                    # it once anyway).
                    pair = entry[5]
                    _g, c, v, p = pair.vs
                    if is_long:
                        u0 += capped
                        r0 += usd
                        n0 += 1.0
                        m0 += usd
                        c[0] += capped
                        c[2] += usd
                        c[4] += 1.0
                        c[8] += usd
                        v[0] += capped
                        v[2] += usd
                        v[4] += 1.0
                        v[8] += usd
                        p[2] += usd
                    else:
                        u1 += capped
                        r1 += usd
                        n1 += 1.0
                        m1 += usd
                        c[1] += capped
                        c[3] += usd
                        c[5] += 1.0
                        c[9] += usd
                        v[1] += capped
                        v[3] += usd
                        v[5] += 1.0
                        v[9] += usd
                        p[3] += usd
                    if pair is not late_pair:
                        touched_add(pair)
                        late_pair = pair
        finally:
            g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9] = \
                u0, u1, r0, r1, n0, n1, k0, k1, m0, m1
        return most

    _future = 60

    def set_max_future(self, seconds: int) -> None:
        self._future = seconds

    def _pair(self, venue: str, coin: str) -> Agg:
        c = self.coins.get(coin)
        if c is None:
            c = self.coins[coin] = Agg(COIN, coin, coin_scope(coin))
        v = self.venues.get(venue)
        if v is None:
            v = self.venues[venue] = Agg(VENUE, venue, venue_scope(venue))
        pair = self.pairs[(coin, venue)] = Agg(PAIR, f"{coin}@{venue}", "")
        pair.chain = (self.global_agg, c, v, pair)
        pair.vs = tuple(agg.v for agg in pair.chain)
        pair.parents = (c, v)
        self.pairs_by_coin.setdefault(coin, {})[venue] = pair
        self.pairs_by_venue.setdefault(venue, {})[coin] = pair
        return pair

    # -- the step ----------------------------------------------------------------------------

    def advance(self, t: int) -> None:
        """Current window: seconds ``[t - W, t - 1]``; previous: ``[t - 2W, t - W - 1]``.

        Invariant between calls: ``_cur_from == folded_upto + 1 - W`` and
        ``_prev_from == _cur_from - W``.
        """
        w = self.window
        if self.folded_upto is None:
            first = min(self._seconds, default=t - 1)
            self.folded_upto = min(first, t) - 1
            self._cur_from = self.folded_upto + 1 - w
            self._prev_from = self._cur_from - w
        old = self.folded_upto
        if t - 1 <= old:
            return
        seconds = self._seconds
        if t - 1 == old + 1:
            # The usual step, one second on: three lookups instead of three scans.
            fold, leave, drop = seconds.get(t - 1), seconds.get(t - 1 - w), seconds.pop(
                t - 1 - 2 * w, None)
        else:
            fold = leave = drop = None
        g = self.global_agg.v
        if fold is not None:
            fold_all(fold.values(), g, self.touched.add)
        if leave is not None:
            leave_current(leave.values(), g)
        if drop is not None:
            leave_previous(drop.values(), g)
        if t - 1 != old + 1:
            for sec in self._present(old + 1, t):
                fold_all(seconds[sec].values(), g, self.touched.add)
            for sec in self._present(self._cur_from, t - w):
                leave_current(seconds[sec].values(), g)
            for sec in self._present(self._prev_from, t - 2 * w):
                leave_previous(seconds.pop(sec).values(), g)
        self.folded_upto = t - 1
        self._cur_from = t - w
        self._prev_from = t - 2 * w

    def _present(self, lo: int, hi: int) -> Iterator[int]:
        """The seconds in ``[lo, hi)`` that have a bucket, in order."""
        if hi <= lo:
            return iter(())
        if hi - lo <= 4 * len(self._seconds) + 8:
            seconds = self._seconds
            return (s for s in range(lo, hi) if s in seconds)
        return iter(sorted(s for s in self._seconds if lo <= s < hi))

    # -- baselines and reconfiguration ----------------------------------------------------------

    def all_scopes(self) -> Iterator[Agg]:
        yield self.global_agg
        yield from self.coins.values()
        yield from self.venues.values()

    def sample_baselines(self, alpha: float, frozen: set[tuple[str, int]]) -> None:
        """Feed every scope's EWMA baseline with its current window, except active cascades."""
        for agg in self.all_scopes():
            v = agg.v
            for side in (LONG, SHORT):
                if (agg.scope, side) in frozen:
                    continue
                agg.base_usd[side] += alpha * (v[USD + side] - agg.base_usd[side])
                agg.base_sym[side] += alpha * (v[SYM + side] - agg.base_sym[side])

    def resize(self, window_seconds: int, cap_usd: float) -> None:
        """A new window length or cap: rebuild the aggregates from the seconds still held."""
        old = self.window
        self.window = window_seconds
        self.cap_usd = cap_usd
        scale = window_seconds / old
        aggs = [*self.all_scopes(), *self.pairs.values()]
        cums = [(agg.v[CUM], agg.v[CUM + 1]) for agg in aggs]
        for agg in aggs:
            agg.v[:] = [0.0] * 12  # in place: the pairs' vs tuples hold these lists
            for side in (LONG, SHORT):
                agg.base_usd[side] *= scale
                agg.base_sym[side] *= scale
        if self.folded_upto is not None:
            t = self.folded_upto + 1
            self._cur_from = t - window_seconds
            self._prev_from = t - 2 * window_seconds
            for sec in sorted(self._seconds):
                if sec < self._prev_from:
                    del self._seconds[sec]
                    continue
                if sec >= t:
                    continue
                # Entries keep the cap they were made with: single sizes are not kept.
                fold_all(self._seconds[sec].values(), self.global_agg.v, self.touched.add)
                if sec < self._cur_from:
                    leave_current(self._seconds[sec].values(), self.global_agg.v)
        for agg, (cum_long, cum_short) in zip(aggs, cums, strict=True):
            agg.v[CUM], agg.v[CUM + 1] = cum_long, cum_short
        self.touched.clear()

    def held_seconds(self) -> int:
        return len(self._seconds)


def ewma_alpha(sample_seconds: float, half_life_seconds: float) -> float:
    """The EWMA weight of one sample for a given half-life."""
    return 1.0 - math.pow(0.5, sample_seconds / half_life_seconds)

