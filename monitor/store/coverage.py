"""Feed coverage, pure: per venue and minute, was the feed subscribed the whole minute?

A minute is *covered* for a venue when every connection of the venue was subscribed from
its first to its last second; otherwise it is a *gap*: liquidations of that minute may be
missing from the totals. The feed reports its connection counts as they change
(``connections(venue, subscribed, total)``, the observer call the metrics also get);
:class:`CoverageTracker` turns those transitions into one verdict per finished minute.

Stores keep the verdicts beside the minute buckets (``record_coverage``) with one merge
rule: *covered wins*. Two collectors on one store, or a verdict written twice, can only
turn a gap into covered, never the reverse, so the stored gap is a minute no collector
covered. A minute nobody recorded is unknown, neither covered nor a gap.

Minutes are Unix-epoch minutes of the local wall clock (the buckets use the venue's
clock; the two agree to well under a minute on an NTP-synchronised host).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

# A pause of the daemon's writer longer than this on the monotonic clock (the process was
# stopped, the host slept) is not trusted as covered: nothing was read meanwhile, whatever
# the connections said before and after.
STALL_SECONDS = 30.0


class CoverageMinute(NamedTuple):
    venue: str
    minute: int
    covered: bool


@dataclass(frozen=True, slots=True)
class CoverageRow:
    """One venue's coverage over a window: how many minutes have a verdict, which are gaps."""

    venue: str
    recorded: int
    gaps: tuple[int, ...]


class _Venue:
    __slots__ = ("covered", "minute", "whole")

    def __init__(self, minute: int) -> None:
        self.covered = False  # every connection subscribed right now
        self.minute = minute  # the minute in progress
        self.whole = False  # covered since the start of that minute


class CoverageTracker:
    """Connection transitions → one :class:`CoverageMinute` per venue and finished minute.

    Pure: the caller gives the wall time of each call. A venue starts uncovered (its
    connections are not open yet), so the minute a daemon starts in is a gap.
    """

    def __init__(self, venues: Iterable[str], now: float) -> None:
        self.started_at = now
        self._venues: dict[str, _Venue] = {}
        self._finished: list[CoverageMinute] = []
        self._last_take = now
        for venue in venues:
            self.add_venue(venue, now)

    @property
    def venues(self) -> list[str]:
        return list(self._venues)

    def add_venue(self, venue: str, now: float) -> None:
        if venue not in self._venues:
            self._venues[venue] = _Venue(_minute(now))

    def remove_venue(self, venue: str, now: float) -> None:
        """A venue switched off: its minute in progress ends as a gap."""
        state = self._venues.pop(venue, None)
        if state is not None:
            self._roll(venue, state, _minute(now))
            self._finished.append(CoverageMinute(venue, state.minute, False))

    def connections(self, venue: str, subscribed: int, total: int, now: float) -> None:
        state = self._venues.get(venue)
        if state is None:
            return
        self._roll(venue, state, _minute(now))
        state.covered = total > 0 and subscribed >= total
        if not state.covered:
            state.whole = False

    def take(self, now: float, stalled: bool = False) -> list[CoverageMinute]:
        """The verdicts of the minutes finished by ``now`` since the last take.

        ``stalled``: the caller was not running since the last take (its monotonic clock
        says so), so every minute since then is a gap, whatever the connections said."""
        minute = _minute(now)
        if stalled:
            stalled_from = _minute(self._last_take)
            for venue, state in self._venues.items():
                self._roll(venue, state, stalled_from)
                # Every minute the stall touched is a gap, the one it ends in too.
                self._finished.extend(
                    CoverageMinute(venue, m, False) for m in range(state.minute, minute))
                state.minute = max(state.minute, minute)
                state.whole = False
        self._last_take = now
        for venue, state in self._venues.items():
            self._roll(venue, state, minute)
        finished, self._finished = self._finished, []
        return finished

    def _roll(self, venue: str, state: _Venue, minute: int) -> None:
        if minute <= state.minute:
            return
        append = self._finished.append
        append(CoverageMinute(venue, state.minute, state.whole))
        # The whole minutes between saw no transition: the state held all through them.
        for m in range(state.minute + 1, minute):
            append(CoverageMinute(venue, m, state.covered))
        state.minute = minute
        state.whole = state.covered


def _minute(wall: float) -> int:
    return int(wall // 60)


def down_minutes(
    heartbeats: Mapping[str, float], venues: Iterable[str], started_at: float,
    retention_minutes: int,
) -> list[CoverageMinute]:
    """Gaps for the time a daemon was down: for each venue it runs that has a heartbeat
    (the wall time of the last record), every minute from the heartbeat's to the one
    before ``started_at``, at most ``retention_minutes`` back (older ones would expire).

    The heartbeat's own minute is included: the daemon stopped in it. If it was recorded
    covered, covered wins and the record stands."""
    start_minute = _minute(started_at)
    floor = start_minute - retention_minutes
    out: list[CoverageMinute] = []
    for venue in venues:
        beat = heartbeats.get(venue)
        if beat is None:
            continue
        first = max(_minute(beat), floor)
        out.extend(CoverageMinute(venue, m, False) for m in range(first, start_minute))
    return out


def gap_ranges(minutes: Iterable[int]) -> list[tuple[int, int]]:
    """Minutes as inclusive runs of consecutive minutes: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for m in sorted(set(minutes)):
        if runs and m == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], m)
        else:
            runs.append((m, m))
    return runs


def silent_minutes(frame_minutes: Mapping[str, Iterable[int]]) -> list[CoverageRow]:
    """A recording's coverage, per venue: the minutes from the recording's first frame to
    its last in which the venue had no frame. Each venue's price stream flows every few
    seconds, so a minute without a frame is a minute its feed was not reading (or nothing
    was recording). ``recorded`` is the span's length."""
    seen = {venue: set(ms) for venue, ms in frame_minutes.items()}
    everyone: set[int] = set().union(*seen.values())
    if not everyone:
        return []
    span = range(min(everyone), max(everyone) + 1)
    return [CoverageRow(venue, len(span), tuple(m for m in span if m not in ms))
            for venue, ms in sorted(seen.items())]


def coverage_json(row: CoverageRow) -> dict[str, Any]:
    """One venue's coverage in a JSON document (``stats --json``, the backtest JSON)."""
    return {"venue": row.venue, "recorded_minutes": row.recorded, "gap_minutes": len(row.gaps),
            "gaps": [{"start": _iso(a), "end": _iso(b + 1), "minutes": b - a + 1}
                     for a, b in gap_ranges(row.gaps)]}


def describe_gaps(gaps: Sequence[int], most: int = 5) -> str:
    """``"3 min of gaps: 12:01-12:03 UTC, 12:07-12:08 UTC"``, or ``"no gap"``."""
    if not gaps:
        return "no gap"
    runs = gap_ranges(gaps)
    spans = ", ".join(f"{_hhmm(a)}-{_hhmm(b + 1)} UTC" for a, b in runs[:most])
    more = f", and {len(runs) - most} more" if len(runs) > most else ""
    return f"{len(set(gaps))} min of gaps: {spans}{more}"


def _iso(minute: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute * 60))


def _hhmm(minute: int) -> str:
    return time.strftime("%H:%M", time.gmtime(minute * 60))


# -- the bitmap form (Redis) --------------------------------------------------------------
# One bitmap per venue and UTC day: minute i of the day has bit 2i "recorded" and bit 2i+1
# "covered". Setting bits only ever adds, so writes commute and covered wins.
DAY_MINUTES = 1440


def day_bits(minutes: Iterable[CoverageMinute]) -> dict[tuple[str, int], list[int]]:
    """(venue, day) → the bit offsets to set to 1 for these verdicts."""
    out: dict[tuple[str, int], list[int]] = {}
    for venue, minute, covered in minutes:
        day, i = divmod(minute, DAY_MINUTES)
        bits = out.setdefault((venue, day), [])
        bits.append(2 * i)
        if covered:
            bits.append(2 * i + 1)
    return out


def read_day(data: bytes | None, day: int, start: int, end: int) -> Iterator[tuple[int, bool]]:
    """(minute, covered) of each recorded minute of one day's bitmap within [start, end]."""
    if not data:
        return
    base = day * DAY_MINUTES
    for minute in range(max(start, base), min(end, base + DAY_MINUTES - 1) + 1):
        bit = 2 * (minute - base)
        if _bit(data, bit):
            yield minute, _bit(data, bit + 1)


def _bit(data: bytes, offset: int) -> bool:
    index = offset >> 3
    # Redis numbers bits from the most significant bit of the first byte.
    return index < len(data) and bool(data[index] >> (7 - (offset & 7)) & 1)


def rows_from(found: Mapping[str, Iterable[tuple[int, bool]]]) -> list[CoverageRow]:
    """Rows from each venue's (minute, covered) verdicts, ordered by venue."""
    rows = []
    for venue in sorted(found):
        recorded = 0
        gaps = []
        for minute, covered in found[venue]:
            recorded += 1
            if not covered:
                gaps.append(minute)
        rows.append(CoverageRow(venue, recorded, tuple(sorted(gaps))))
    return rows
