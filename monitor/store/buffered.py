"""The daemon's Redis store: writes go through a bounded in-process buffer.

``add`` never waits for Redis. Events join a FIFO buffer of ``buffer_size`` and one
background task (``store-flusher``) writes them in queue order, ``batch_size`` at a time,
one Lua script call per batch, with up to two batches in flight so that Redis always has
the next one waiting; a partial batch waits at most ``flush_interval_seconds``. While more
than a batch waits, one call takes up to eight batches' worth: the script's cost grows with
the cells a batch touches more than with its events, so bigger batches catch up faster.

Outage: when a write fails because Redis is unreachable or refuses writes for a while
(connection refused, timeout, loading, failover, out of memory, a read-only replica, a
failing disk: see ``connect.translate``), the batch goes back to the front of the buffer
and is retried after a jittered backoff (50 ms doubling to 2 s). The first failure is an
ERROR; the retries of one outage are WARNINGs at most every 10 s. Retrying is safe even when the
failed call did reach Redis: the script counts each event id once. A write that Redis
rejects for another reason is a bug, not an outage: it is logged as an ERROR and its events
are counted as dropped rather than retried forever (a script stopped by an error keeps what
it did before, so some of those ids may already be marked seen).

Overflow: when the buffer is full, the OLDEST waiting events are dropped, so that when
Redis returns the recent windows (the ones people look at) are complete and the gap sits
at the far end of the outage. A batch already being written is never dropped. Every drop
is counted exactly through ``observer.dropped`` and ``dropped_total``, and logged as a
WARNING at most every 10 s. The buffer itself is ``write_queue.WriteQueue``; up/down,
drops and the persistence check are ``write_health.WriteHealth``.

One bad event never stops the writer: an event no store can keep (``records.refusal``,
or one the encoder refuses) is left out of its batch, counted through
``observer.rejected`` and logged with the event. ``store_up`` says whether writes land:
it falls to 0 on a failed write, and also when buffered events have waited
``write_stall_seconds`` without any write landing; a successful ping alone does not raise
it while events wait. ``observer.write_landed`` gives the time of the last landed write.

Reads go straight to Redis and raise StoreUnavailable while it is down; callers fall back
to their in-process view. ``healthy()`` is true while Redis answers or the buffer still has
room, and false once a flusher of its own has died (``add`` then raises StoreError, so the
store is never half alive). Lifecycle: inside the daemon the app runs the flusher from
``background()`` in its TaskGroup, so a flusher that dies takes the daemon down; a command
that uses the store on its own calls ``await store.start()`` (``open_store(start=True)``
does it) or ``async with``.
Then ``await store.flush(timeout)`` drains and ``await store.aclose()`` (safe twice) logs
how many events it had to abandon.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from monitor.clock import Clock, SystemClock
from monitor.errors import StoreError, StoreUnavailable
from monitor.events import Liquidation
from monitor.logs import RateLimitedLog
from monitor.store.base import Background, StoreObserver
from monitor.store.config import StoreConfig
from monitor.store.read_through import ReadThrough
from monitor.store.redis import RedisStore
from monitor.store.write_batch import Prepared
from monitor.store.write_health import WriteHealth
from monitor.store.write_queue import Item, WriteQueue

log = logging.getLogger(__name__)

_BACKOFF_INITIAL_SECONDS = 0.05
_BACKOFF_MAX_SECONDS = 2.0
_IN_FLIGHT = 2  # batches written at once
_CATCH_UP_BATCHES = 8  # the most batch_size's worth one call takes while a backlog waits
_HURRY_DELAY_SECONDS = 0.02  # between retries while flush() waits for Redis
_IDLE_PING_SECONDS = 5.0  # keeps store_up current when nothing is written
_CLOSE_WAIT_SECONDS = 5.0


class BufferedStore(ReadThrough):
    """Buffered writes and direct reads over one :class:`RedisStore`."""

    def __init__(
        self,
        redis: RedisStore,
        config: StoreConfig,
        observer: StoreObserver,
        clock: Clock | None = None,
    ) -> None:
        self.redis = redis
        self._observer = observer
        self._clock = clock or SystemClock()
        self._capacity = config.buffer_size
        self._batch_size = max(1, min(config.batch_size, config.buffer_size))
        self._interval = config.flush_interval_seconds
        self._stall = config.write_stall_seconds
        self._buffer = WriteQueue(config.buffer_size)
        self._health = WriteHealth(observer, config.buffer_size, config.write_stall_seconds,
                                   self._clock.monotonic())
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None  # only when started on its own
        self._flusher_running = False
        self._hurry = False
        self._closed = False
        self.written_total = 0  # events Redis counted as new
        self._limited = RateLimitedLog(log)

    def background(self) -> Background:
        return {"store-flusher": self._run}

    async def start(self) -> None:
        """Run the flusher in a task of its own: for commands that use the store outside the
        daemon's TaskGroup."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run_own(), name="store-flusher")
            self._task.add_done_callback(_crash_seen)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def pending(self) -> int:
        """Events buffered or being written."""
        return self._buffer.pending

    @property
    def dropped_total(self) -> int:
        """Events dropped since start: the oldest for a full buffer, or rejected batches."""
        return self._health.dropped_total

    async def add(self, events: Sequence[Liquidation]) -> int:
        """Buffer events for writing. Returns how many of them are in the buffer now:
        fewer than given only when they alone overflow it. Not a dedupe count."""
        if self._closed:
            raise StoreError("the store is closed")
        if self._task is not None and self._task.done():
            raise StoreError("the store writer stopped; nothing more can be written")
        if not events:
            return 0
        now = self._clock.monotonic()
        was_empty = not self._buffer.waiting
        accepted, dropped = self._buffer.add(events, now)
        if dropped:
            self._health.count_drops(dropped, now)
        if was_empty or self._buffer.waiting >= self._batch_size:
            self._wake.set()
        self._observer.buffered(self.pending)
        return accepted

    async def flush(self, timeout: float) -> int:  # noqa: ASYNC109 (the Store contract)
        """Write out what is buffered, for at most ``timeout`` seconds. Returns how many
        events are still unwritten."""
        deadline = self._clock.monotonic() + timeout
        self._hurry = True
        try:
            while self.pending and self._flusher_alive():
                left = deadline - self._clock.monotonic()
                if left <= 0:
                    break
                self._wake.set()
                await asyncio.sleep(min(0.01, left))
        finally:
            self._hurry = False
        return self.pending

    def _flusher_alive(self) -> bool:
        own = self._task is not None and not self._task.done()
        return own or self._flusher_running

    def healthy(self) -> bool:
        if self._task is not None and self._task.done():
            return False
        return self._health.up is not False or self.pending < self._capacity

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            # A flusher that failed was reported when it did; closing must not raise it.
            await asyncio.wait((self._task,), timeout=_CLOSE_WAIT_SECONDS)
            if not self._task.done():
                log.error("the store flusher did not stop within %.0fs", _CLOSE_WAIT_SECONDS)
        if self.pending:
            log.warning("redis store closed with %d events not written", self.pending)
        if self._health.drops_unlogged:
            self._health.log_drops()
        await self.redis.aclose()

    # The flusher.

    async def _run(self) -> None:
        delay = _BACKOFF_INITIAL_SECONDS
        self._flusher_running = True
        buffer = self._buffer
        try:
            await self._probe()
            while True:
                _raise_if_cancelled()
                self._wake.clear()
                self._check_stall()
                if self._health.up and not self._health.persistence_checked:
                    await self._health.check_persistence(self.redis)
                oldest = buffer.oldest_waiting_at()
                if oldest is None:
                    if not await self._wait(_IDLE_PING_SECONDS):
                        await self._probe()
                    continue
                oldest_age = self._clock.monotonic() - oldest
                self._observer.oldest_buffered_age(oldest_age)
                partial = buffer.waiting < self._batch_size and not self._hurry
                if partial and oldest_age < self._interval:
                    await self._wait(self._interval - oldest_age)
                    continue
                if await self._write_batches():
                    delay = _BACKOFF_INITIAL_SECONDS
                else:
                    await self._backoff(delay * (1.0 - 0.5 * random.random()))
                    delay = min(delay * 2, _BACKOFF_MAX_SECONDS)
        finally:
            self._flusher_running = False
            buffer.requeue()

    async def _write_batches(self) -> bool:
        """Write batches while full ones are waiting (or flush() hurries). False when
        Redis is unreachable (retry later); everything unwritten is back in the queue.

        Up to two batches are in flight: the next is built and sent while Redis runs the
        current one, so Redis is not left idle for a round trip and the client's share of
        the work between batches. They are sent in queue order; the totals do not depend
        on the order in which batches land anyway.
        """
        buffer = self._buffer
        flying: deque[tuple[list[Item], asyncio.Task[int], float]] = deque()
        unreachable: StoreUnavailable | None = None
        try:
            while True:
                _raise_if_cancelled()
                while len(flying) < _IN_FLIGHT and unreachable is None:
                    ready = buffer.waiting >= self._batch_size or (
                        self._hurry and buffer.waiting > 0)
                    batch = self._take() if ready or not flying else None
                    if batch is None:
                        break
                    items, prepared = batch
                    write = self.redis.write_prepared(prepared)
                    task = asyncio.create_task(write, name="store-write")
                    flying.append((items, task, self._clock.monotonic()))
                    await asyncio.sleep(0)  # let it send before building the next one
                if not flying:
                    break
                items, task, started = flying.popleft()
                while not task.done():
                    # A write can hang up to the socket timeout: the stall is judged meanwhile.
                    await asyncio.wait((task,), timeout=self._stall)
                    self._check_stall()
                try:
                    new = await task
                except StoreUnavailable as exc:
                    unreachable = exc  # the others finish (or fail) before we requeue
                    continue
                except StoreError as exc:
                    log.error("redis rejected a batch of %d events; dropped: %s",
                              len(items), exc)
                    self._health.count_drops(len(items), self._clock.monotonic(), full=False)
                else:
                    self.written_total += new
                    self._health.landed_at = now = self._clock.monotonic()
                    self._observer.write_seconds(now - started)
                    self._observer.write_landed(self._clock.wall())
                    self._set_up(True)
                buffer.landed(items)
                self._observer.buffered(self.pending)
        finally:
            for _, task, _ in flying:
                task.cancel()  # only on cancellation: never leave a write running behind
                # Its outcome no longer matters (the batch is requeued), but one that had
                # already failed would be logged as "never retrieved" when collected.
                task.add_done_callback(_outcome_seen)
        if unreachable is not None:
            buffer.requeue()
            self._set_up(False, unreachable)
            return False
        if not buffer.waiting:
            self._observer.oldest_buffered_age(0.0)
        return True

    def _take(self) -> tuple[list[Item], Prepared] | None:
        """Move the next batch from the queue to in-flight and build its script call."""
        # More than a batch waiting means the writer is behind: a script call costs mostly
        # per cell it touches, and a bigger batch shares each cell among more events.
        taken = self._buffer.take(self._batch_size * _CATCH_UP_BATCHES)
        if taken is None:
            return None
        prepared = self.redis.prepare([item[0] for item in taken])
        for event, reason in prepared.refused:
            self._observer.rejected(reason, 1)
            self._limited.warning("refused:" + reason, "not storing an event (%s): %r",
                                  reason, event)
        return taken, prepared

    async def _probe(self) -> None:
        try:
            await self.redis.ping()
        except StoreUnavailable as exc:
            self._set_up(False, exc)
        else:
            if not self.pending:  # while events wait, only a landed write says "up"
                self._health.landed_at = self._clock.monotonic()
                self._set_up(True)

    def _check_stall(self) -> None:
        self._health.check_stall(self._buffer.oldest_buffered_at(), self._clock.monotonic(),
                                 self.pending)

    async def _wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds`` or until woken. True when woken.

        Not ``asyncio.timeout``: on Python 3.11 a cancel that arrives as its deadline
        expires can be taken for the timeout and swallowed, leaving a flusher that
        ``aclose()`` waits for forever (seen in the test suite)."""
        _raise_if_cancelled()
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            done, _ = await asyncio.wait((waiter,), timeout=seconds)
        finally:
            waiter.cancel()
        return bool(done)

    async def _backoff(self, seconds: float) -> None:
        """Sleep between retries. New events do not cut it short (they would turn an
        outage into a busy loop); flush() does, down to a short pause."""
        deadline = self._clock.monotonic() + seconds
        while not self._hurry:
            left = deadline - self._clock.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            await self._wait(left)
        await asyncio.sleep(_HURRY_DELAY_SECONDS)

    def _set_up(self, up: bool, exc: BaseException | None = None) -> None:
        self._health.set_up(up, self._clock.monotonic(), self.pending, exc)

    async def _run_own(self) -> None:
        """The flusher started by :meth:`start`: its death is reported inside its last step.

        Not from a done callback: those run a loop turn after the task counts as done, and
        a caller that saw ``healthy()`` false in between read a store_up that still said 1
        (seen in the test suite under load)."""
        try:
            await self._run()
        except Exception:
            log.error("the store flusher stopped; %d events will not be written",
                      self.pending, exc_info=True)
            self._health.up = False
            self._observer.store_up(False)
            raise


def _raise_if_cancelled() -> None:
    """Honour a cancel that a Redis call swallowed.

    On Python 3.11, ``asyncio.wait_for`` returns the inner result when the cancel arrives
    in the step in which the inner awaitable finishes (fixed in 3.12); redis-py sends
    every command through it, so a flusher cancelled just as its PING or CONFIG GET was
    sent went on running, and ``aclose()`` gave up on it after 5 s (the daemon's
    TaskGroup waited for it without end). The request is still counted by
    ``Task.cancelling()``, which asyncio's own timeouts undo when they fire."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _crash_seen(task: asyncio.Task[None]) -> None:
    # Reported by _run_own already; retrieved so that asyncio does not log it once more.
    if not task.cancelled():
        task.exception()


def _outcome_seen(task: asyncio.Task[int]) -> None:
    if not task.cancelled():
        task.exception()
