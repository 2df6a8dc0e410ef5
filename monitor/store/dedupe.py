"""The one in-process dedupe: event ids over a window, bounded in count and in age.

Ingest keeps one :class:`Dedupe` over the store's window (``store.dedupe_ttl_hours``),
stamped with each event's exchange minute, so that the detector, the metrics and the store
count the same events: an id seen within the window is a duplicate; an event stamped
before the window's floor is *too old* and counted by nobody, whatever its age, because
its id may have been forgotten (a relay or a venue's catch-up replaying hours-old frames
would otherwise be counted again by the detector while the store refuses them). The
memory store keeps its idempotence with the same class, stamped with arrival time, as
Redis' TTL does.

Memory. Ids are grouped in slots of their stamp (a minute for ingest), oldest slot
first. When more than ``max_ids`` are held, the oldest slots go first and the floor rises
past them, so an evicted id can never be counted again: it is refused as too old instead.
What is held of an id is 60 bits of its string hash, not the string (which then dies with
its event): an int of 32 bytes, a set entry (16 bytes in a table kept 30-60 % full) and a
list slot, about 80 bytes, so the default bound of 1,000,000 ids is about 80 MB at most,
reached only on a day of far more than a million liquidations within the window; then the
window shrinks to what fits. Two different ids with the same 60 bits would make the second
a duplicate: with a million ids held, about one chance in two million (n²/2⁶¹), far below
the venues' own losses. The hash is Python's, salted per process, so the dedupe is an
in-process one, as it always was.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from enum import Enum
from typing import Protocol, TypeVar

# 60 of the hash's 64 bits: an int below 2**60 is a 32-byte object, one above a 48-byte one
# (pymalloc's size classes), a third of what an id held costs.
_KEY_MASK = (1 << 60) - 1


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    TOO_OLD = "too_old"


class Stamped(Protocol):
    """An event as :meth:`Dedupe.admit_events` reads it: its id and exchange time."""

    @property
    def event_id(self) -> str: ...

    @property
    def exchange_ts_ms(self) -> int: ...


E = TypeVar("E", bound=Stamped)


class Dedupe:
    """Ids by time slot; ``admit`` is O(1) amortised."""

    __slots__ = ("_floor", "_heap", "_ids", "_max", "_next_expiry", "_slot", "_slot_ms",
                 "_slots", "_window")

    def __init__(self, window_seconds: float, max_ids: int, slot_seconds: float = 60.0
                 ) -> None:
        if window_seconds <= 0 or max_ids < 1 or slot_seconds <= 0:
            raise ValueError("dedupe window, bound and slot must be positive")
        self._window = window_seconds
        self._max = max_ids
        self._slot = slot_seconds
        # A whole number of seconds (ingest's minute): admit_events finds a venue time's
        # slot as ``ts_ms // slot_ms``, one int operation, where ``int(ts_ms / 1000.0 //
        # slot)`` takes a conversion, a float floor division (an fmod) and an int(): the same
        # slot for any time below 2**43 seconds (``tests/store/test_dedupe.py``), where
        # ``ts_ms / 1000.0`` never rounds across a whole second. Ingest admits none beyond
        # 2100. Else 0: the float path.
        self._slot_ms = int(slot_seconds) * 1000 if float(slot_seconds).is_integer() else 0
        self._ids: set[int] = set()  # the hashes of the ids held
        self._slots: dict[int, list[int]] = {}  # slot → the hashes of its ids
        self._heap: list[int] = []  # the slots held, smallest first
        self._floor = -(2**63)  # slots below it were evicted: refused as too old
        # ``now`` from which the window's floor may have moved: before it, admit skips the
        # expiry arithmetic (most calls, as a slot lasts a minute or more).
        self._next_expiry = -float("inf")

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def floor_seconds(self) -> float:
        """Stamps before this are refused (evicted by the bound); -inf-like at start."""
        return self._floor * self._slot

    def admit(self, event_id: str, stamp: float, now: float) -> Verdict:
        """Remember ``event_id`` stamped ``stamp`` (seconds, same clock as ``now``)."""
        if now >= self._next_expiry:
            self._expire(now)
        key = hash(event_id) & _KEY_MASK  # the hash is cached in the string
        ids = self._ids
        if key in ids:
            return Verdict.DUPLICATE
        slot = int(stamp // self._slot)
        if slot < self._floor:
            return Verdict.TOO_OLD
        held = self._slots.get(slot)
        if held is None:
            held = self._slots[slot] = []
            heapq.heappush(self._heap, slot)
        held.append(key)
        ids.add(key)
        if len(ids) > self._max:
            self._evict_oldest()
        return Verdict.NEW

    def admit_events(self, events: Iterable[E], now: float
                     ) -> tuple[list[E], list[tuple[E, Verdict]]]:
        """:meth:`admit` of each event, stamped with its exchange time, in one call (one
        frame's rows): the new ones in order, and the refused ones with their verdict.
        The same verdicts as one ``admit`` each; a frame's rows mostly share a minute, so
        the slot's list is looked up once for a run of them."""
        if now >= self._next_expiry:
            self._expire(now)
        ids = self._ids
        add = ids.add
        slots = self._slots
        per_slot = self._slot
        slot_ms = self._slot_ms
        floor = self._floor
        # Ids that fit before the bound is passed: counted down instead of len() each time.
        room = self._max - len(ids)
        new: list[E] = []
        keep = new.append
        refused: list[tuple[E, Verdict]] = []
        last_slot: int | None = None
        last_ts: int | None = None
        slot = 0
        held: list[int] = []
        for event in events:
            key = hash(event.event_id) & _KEY_MASK
            if key in ids:
                refused.append((event, Verdict.DUPLICATE))
                continue
            ts_ms = event.exchange_ts_ms
            if ts_ms != last_ts:
                # A frame's rows often share a timestamp: the slot is worked out once.
                last_ts = ts_ms
                # Else ``/ 1000``: the float ``/ 1000.0`` gives for any time below 2**53
                # ms, by int / int's exact fast path instead of an int-to-float conversion.
                slot = ts_ms // slot_ms if slot_ms else int(ts_ms / 1000 // per_slot)
            if slot < floor:
                refused.append((event, Verdict.TOO_OLD))
                continue
            if slot != last_slot:
                found = slots.get(slot)
                if found is None:
                    found = slots[slot] = []
                    heapq.heappush(self._heap, slot)
                held, last_slot = found, slot
            held.append(key)
            add(key)
            keep(event)
            room -= 1
            if room < 0:
                self._evict_oldest()
                floor = self._floor  # an eviction raises it
                room = self._max - len(ids)
                last_slot = None  # the slot held may be the one evicted
        return new, refused

    def _expire(self, now: float) -> None:
        # The first slot wholly inside the window; whatever lies before it is forgotten.
        floor = int((now - self._window) // self._slot) + 1
        # The floor moves on once now - window reaches floor x slot; checked a little early
        # so that float rounding never lets a call skip it.
        self._next_expiry = floor * self._slot + self._window - self._slot * 1e-6
        if floor > self._floor:
            self._floor = floor
            heap = self._heap
            while heap and heap[0] < floor:
                self._drop(heapq.heappop(heap))

    def _evict_oldest(self) -> None:
        slot = heapq.heappop(self._heap)
        self._drop(slot)
        self._floor = max(self._floor, slot + 1)

    def _drop(self, slot: int) -> None:
        self._ids.difference_update(self._slots.pop(slot))


def ingest_dedupe(window_hours: float, max_ids: int) -> Dedupe:
    """Ingest's dedupe over the store's window, stamped with exchange time in minutes."""
    return Dedupe(window_hours * 3600.0, max_ids, slot_seconds=60.0)


def arrival_dedupe(window_hours: float, max_ids: int) -> Dedupe:
    """A store's own dedupe by arrival time, as a Redis TTL remembers ids."""
    window = window_hours * 3600.0
    return Dedupe(window, max_ids, slot_seconds=window / 64)
