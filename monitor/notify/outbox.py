"""A bounded outbox in front of every notification channel.

``put`` is synchronous and never waits: detection calls it inline. One worker task per
outbox delivers the alerts in order, head first: it claims the alert (so that redundant
daemons send each transition once), waits for the channel's rate limit, renders the
alert into the channel's messages and sends them. A failure of the channel (broker down,
HTTP 5xx, a timeout) keeps the alert at the head and retries after a capped, jittered
backoff; the channel may cut the wait short when it comes back (MQTT reconnected). A
message the receiving end refuses (:class:`NotifyRejected`), a bug while rendering, an
alert older than ``max_age_seconds`` and, on overflow, the oldest waiting alert are
dropped and counted. The alert id travels in every message, so consumers dedupe.

A multi-message alert (MQTT: the event, then the retained state) remembers how many of its
messages went out, so a retry does not send the first one twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from monitor.alerts import CascadeAlert, WhaleAlert
from monitor.backoff import Backoff
from monitor.clock import Clock
from monitor.errors import NotifyError, NotifyRejected
from monitor.metrics import Metrics
from monitor.notify.feed_notice import FeedNotice

log = logging.getLogger(__name__)

Alert = CascadeAlert | WhaleAlert | FeedNotice
M = TypeVar("M")


class Channel(Protocol[M]):
    """One way out: MQTT, a webhook. ``send`` raises NotifyError (retry) or NotifyRejected."""

    name: str

    def render(self, alert: Alert) -> Sequence[M]: ...

    async def send(self, message: M) -> None: ...

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return after ``timeout`` seconds, or earlier when the channel came back."""
        ...


class RateLimit:
    """A token bucket: ``burst`` messages back to back, then ``per_minute``."""

    def __init__(self, per_minute: float, burst: int, now: float) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self._tokens = float(burst)
        self._at = now

    def delay(self, now: float) -> float:
        """Seconds to wait before the next message may go; 0 takes a token now."""
        if self.rate <= 0:
            return 0.0
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate


@dataclass
class Item(Generic[M]):
    alert: Alert
    enqueued: float
    claimed: bool = False
    paced: bool = False
    messages: Sequence[M] | None = None
    sent: int = 0
    attempts: int = 0
    # The first message handed to the channel (written, its confirmation outstanding or
    # received). Written items are always a prefix of the queue: the wire order is the
    # queue's order.
    written: bool = False
    # The first message, written by put() (channels that can begin a send at once);
    # awaiting it waits for the channel's confirmation.
    begun: Awaitable[None] | None = None


@dataclass
class OutboxPolicy:
    capacity: int = 1000
    retry_initial_seconds: float = 0.5
    retry_max_seconds: float = 30.0
    max_age_seconds: float = 3600.0
    rate_per_minute: float = 0.0
    burst: int = 5


@dataclass
class OutboxStats:
    """What this outbox did, besides the metrics: for ``liqmon notify-test`` and tests."""

    delivered: int = 0
    failures: int = 0
    retries: int = 0
    dropped: int = 0
    skipped: int = 0  # claimed by another daemon
    last_error: str | None = None
    delivered_ids: list[str] = field(default_factory=list)


Claimer = Callable[[Alert], Awaitable[bool]]


class Outbox(Generic[M]):
    def __init__(
        self,
        channel: Channel[M],
        policy: OutboxPolicy,
        metrics: Metrics,
        clock: Clock,
        claim: Claimer | None = None,
    ) -> None:
        """``claim``: ``None`` when no other daemon can send the same alerts (every claim
        is won, without asking anything)."""
        self.channel = channel
        self.name = channel.name
        self.policy = policy
        self._metrics = metrics
        self._clock = clock
        self._claim = claim
        self._queue: deque[Item[M]] = deque()
        self._begin: Callable[[M], Awaitable[None]] | None = getattr(channel, "begin", None)
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._backoff = Backoff(policy.retry_initial_seconds, policy.retry_max_seconds)
        self._rate = RateLimit(policy.rate_per_minute, policy.burst, clock.monotonic())
        self._failing = False
        self.stats = OutboxStats()
        metrics.add_channel(self.name)

    def __len__(self) -> int:
        return len(self._queue)

    # -- producer side: synchronous, never waits ----------------------------------------------
    def put(self, alert: Alert) -> None:
        queue = self._queue
        if len(queue) >= self.policy.capacity:
            # The head may be half sent (MQTT event out, state not yet): drop the next oldest.
            victim = queue[1] if len(queue) > 1 else queue[0]
            queue.remove(victim)
            self._drop(victim, "the outbox is full")
        behind_written = not queue or queue[-1].written
        item: Item[M] = Item(alert, self._clock.monotonic())
        queue.append(item)
        self._metrics.notify_queue.labels(self.name).set(len(queue))
        self._idle.clear()
        self._wake.set()
        if behind_written and self._claim is None and self._begin is not None:
            self._begin_now(item, self._begin)

    def _begin_now(self, item: Item[M], begin: Callable[[M], Awaitable[None]]) -> None:
        """Write ``item``'s first message in the producer's step, when everything ahead of it
        is written already and nothing needs claiming: the worker would only wake on a later
        turn of the loop to do the same, and then wait for each confirmation before the next
        alert (alerts come in bursts). The worker still owns the item: it awaits the
        confirmation, sends the rest and retries on failure. Anything that stops the write
        here is left to it."""
        if self._rate.delay(self._clock.monotonic()) > 0:
            return
        item.claimed = item.paced = True
        try:
            item.messages = self.channel.render(item.alert)
            if item.messages:
                item.begun = begin(item.messages[0])
                item.written = True
        except Exception as exc:  # NotifyError (disconnected) or a bug: the worker's to handle
            log.debug("%s: %s not sent at once: %s", self.name, item.alert.id, exc)

    # -- worker -------------------------------------------------------------------------------
    async def run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._idle.set()
                await self._wake.wait()
                self._wake.clear()
                continue
            item = queue[0]
            await self._deliver(item)
            # put() never removes the head, so it is still the item just handled.
            if queue and queue[0] is item:
                queue.popleft()
            self._metrics.notify_queue.labels(self.name).set(len(queue))

    async def _deliver(self, item: Item[M]) -> None:
        channel, policy, clock = self.channel, self.policy, self._clock
        if not item.claimed and self._claim is not None:
            if not await self._claim(item.alert):
                self.stats.skipped += 1
                log.debug("%s: %s sent by another daemon", self.name, item.alert.id)
                return
            item.claimed = True
        while True:
            if clock.monotonic() - item.enqueued > policy.max_age_seconds:
                self._drop(item, f"undelivered after {policy.max_age_seconds:.0f}s")
                return
            if not item.paced:
                wait = self._rate.delay(clock.monotonic())
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                item.paced = True
            try:
                if item.messages is None:
                    item.messages = channel.render(item.alert)
                if item.attempts:
                    self.stats.retries += 1
                    self._metrics.notify_retries.labels(self.name).inc()
                item.attempts += 1
                while item.sent < len(item.messages):
                    begun, item.begun = item.begun, None
                    if begun is None:
                        item.written = True
                        begun = channel.send(item.messages[item.sent])
                    await begun
                    item.sent += 1
            except NotifyRejected as exc:
                self._failed(exc)
                self._drop(item, f"refused: {exc}")
                return
            except NotifyError as exc:
                self._failed(exc)
                self._unwrite()
                delay = self._backoff.next_delay()
                # An endpoint's Retry-After (429) wins over our own backoff: asking again
                # sooner only earns another 429.
                asked = getattr(exc, "retry_after", None)
                if isinstance(asked, int | float):
                    delay = max(delay, min(float(asked), policy.max_age_seconds))
                await channel.wait_ready(delay)
                continue
            except Exception as exc:
                # A bug in rendering or sending: retrying would fail the same way.
                log.exception("%s: cannot send %s", self.name, item.alert.id)
                self._failed(exc)
                self._drop(item, "internal error")
                return
            self._delivered(item)
            return

    def _delivered(self, item: Item[M]) -> None:
        self.stats.delivered += 1
        self.stats.delivered_ids.append(item.alert.id)
        if len(self.stats.delivered_ids) > 1000:
            del self.stats.delivered_ids[:500]
        self._metrics.notify_delivered.labels(self.name).inc()
        self._metrics.notify_up.labels(self.name).set(1)
        self._backoff.reset()
        if self._failing:
            self._failing = False
            log.info("%s: delivering again", self.name)

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc) or type(exc).__name__
        self._metrics.notify_failures.labels(self.name).inc()
        self._metrics.notify_up.labels(self.name).set(0)
        if not self._failing:
            self._failing = True
            log.warning("%s: delivery failed, retrying with backoff: %s", self.name,
                        self.stats.last_error)
        else:
            log.debug("%s: delivery failed again: %s", self.name, self.stats.last_error)

    @staticmethod
    def _abandon(item: Item[M]) -> None:
        begun, item.begun = item.begun, None
        close = getattr(begun, "close", None)
        if close is not None:
            close()  # nothing will wait for its confirmation

    def _unwrite(self) -> None:
        """The channel failed: everything in flight is sent again, head first, in order
        (what the far end got already arrives twice; the alert id dedupes it)."""
        for item in self._queue:
            item.written = False
            self._abandon(item)

    def _drop(self, item: Item[M], why: str) -> None:
        self._abandon(item)
        self.stats.dropped += 1
        self._metrics.notify_dropped.labels(self.name).inc()
        log.error("%s: dropped %s (%s %s): %s", self.name, item.alert.id,
                  type(item.alert).__name__, getattr(item.alert, "status", "firing"), why)

    # -- shutdown -----------------------------------------------------------------------------
    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109
        """Wait until everything queued is delivered or dropped; return what is left."""
        try:
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        except TimeoutError:
            pass
        return len(self._queue)
