"""The Redis store's write buffer: a bounded FIFO of events and the batches taken from it.

Events wait oldest first, each with the monotonic time it was buffered. A batch taken for
writing still counts as ``pending`` until it is written or given up (``landed``), or goes
back to the front of the queue, in order, when its write failed (``requeue``).

Overflow drops the OLDEST waiting events, so that when Redis returns the recent windows (the
ones people look at) are complete and the gap sits at the far end of the outage. A batch
already being written is never dropped. No I/O and no clock: callers pass the time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from itertools import repeat

from monitor.events import Liquidation

Item = tuple[Liquidation, float]  # an event and the monotonic time it was buffered


class WriteQueue:
    """Events waiting to be written and the batches being written, within ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._queue: deque[Item] = deque()  # oldest first
        # Batches taken from the queue and not yet written, oldest first.
        self._in_flight: list[list[Item]] = []
        self._in_flight_count = 0

    @property
    def pending(self) -> int:
        """Events buffered or being written."""
        return len(self._queue) + self._in_flight_count

    @property
    def waiting(self) -> int:
        """Events buffered and not yet taken for writing."""
        return len(self._queue)

    def add(self, events: Sequence[Liquidation], now: float) -> tuple[int, int]:
        """Buffer events at monotonic time ``now``, dropping the oldest waiting ones beyond
        the capacity. Returns (how many of ``events`` are in the buffer now: fewer than given
        only when they alone overflow it; how many events were dropped)."""
        queue = self._queue
        queue.extend(zip(events, repeat(now)))
        excess = self.pending - self.capacity
        accepted = len(events)
        if excess <= 0:
            return accepted, 0
        # In-flight events never exceed the capacity, so the excess is all queued.
        accepted -= max(0, excess - (len(queue) - len(events)))
        for _ in range(excess):
            queue.popleft()
        return accepted, excess

    def take(self, most: int) -> list[Item] | None:
        """Move up to ``most`` of the oldest waiting events to a new in-flight batch. None
        when nothing waits (or the in-flight batches already hold the capacity)."""
        queue = self._queue
        count = min(len(queue), most, self.capacity - self._in_flight_count)
        if count <= 0:
            return None
        taken = [queue.popleft() for _ in range(count)]
        self._in_flight.append(taken)
        self._in_flight_count += count
        return taken

    def landed(self, items: list[Item]) -> None:
        """A batch is written (or rejected for good): it is no longer in flight."""
        for i, batch in enumerate(self._in_flight):
            if batch is items:
                del self._in_flight[i]
                self._in_flight_count -= len(items)
                return

    def requeue(self) -> None:
        """Put every batch still in flight back at the front of the queue, in order."""
        for batch in reversed(self._in_flight):
            self._queue.extendleft(reversed(batch))
        self._in_flight = []
        self._in_flight_count = 0

    def oldest_waiting_at(self) -> float | None:
        """When the oldest event not yet taken was buffered."""
        return self._queue[0][1] if self._queue else None

    def oldest_buffered_at(self) -> float | None:
        """When the oldest event buffered or being written was buffered."""
        if self._in_flight:
            return self._in_flight[0][0][1]
        return self.oldest_waiting_at()
