"""Frames held for an instrument whose terms are not known yet (no I/O).

A frame naming an unknown instrument (a listing newer than the book) waits, indexed by that
instrument, until the next instrument refresh lands; then it is parsed once more if the
refresh brought the instrument, and given up otherwise. Nothing is re-parsed on every new
frame: at 500 such frames a second that was quadratic and stalled the event loop. At most
``cap`` frames wait; what does not fit is given up at once, and every frame given up is
counted by the caller.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_CAP = 2000


@dataclass(frozen=True, slots=True)
class HeldFrame:
    instrument: str
    text: str
    received_at: float
    deadline: float


class HeldFrames:
    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        self.cap = cap
        self._by_instrument: dict[str, list[HeldFrame]] = {}
        # Frames waiting; a plain attribute, read by the reader after every frame (a
        # ``__len__`` would be a Python call each time).
        self.count = 0
        self._book_version = -1
        self._next_deadline = math.inf

    def __len__(self) -> int:
        return self.count

    def add(self, frame: HeldFrame, book_version: int) -> bool:
        """Hold ``frame``; False when the cap is reached (the caller gives it up)."""
        if self.count >= self.cap:
            return False
        if not self.count:
            self._book_version = book_version
        self._by_instrument.setdefault(frame.instrument, []).append(frame)
        self.count += 1
        self._next_deadline = min(self._next_deadline, frame.deadline)
        return True

    def due(self, book_version: int, now: float) -> bool:
        """Whether :meth:`release` has work: a refresh landed or a deadline passed."""
        return bool(self.count) and (book_version != self._book_version
                                      or now >= self._next_deadline)

    def release(self, known: set[str] | None, now: float) -> Iterator[tuple[HeldFrame, bool]]:
        """Frames leaving now, each with whether to parse it again: after a refresh
        (``known``: the instruments it brought, of those held) every frame leaves, retried
        when its instrument came; without one, only frames past their deadline leave."""
        keep: dict[str, list[HeldFrame]] = {}
        out: list[tuple[HeldFrame, bool]] = []
        for instrument, frames in self._by_instrument.items():
            for frame in frames:
                if known is not None:
                    out.append((frame, instrument in known))
                elif now >= frame.deadline:
                    out.append((frame, False))
                else:
                    keep.setdefault(instrument, []).append(frame)
        self._by_instrument = keep
        self.count = sum(len(f) for f in keep.values())
        self._next_deadline = min((f.deadline for fs in keep.values() for f in fs),
                                  default=math.inf)
        return iter(out)

    def instruments(self) -> list[str]:
        return list(self._by_instrument)

    @property
    def book_version(self) -> int:
        """The book version the waiting frames were held under."""
        return self._book_version

    def rebase(self, book_version: int) -> None:
        self._book_version = book_version
