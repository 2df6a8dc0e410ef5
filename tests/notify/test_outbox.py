"""The outbox on its own, in front of a scripted in-memory channel (the edge swapped)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence

import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts import CascadeAlert, WhaleAlert
from monitor.clock import SystemClock
from monitor.errors import NotifyError, NotifyRejected
from monitor.metrics import Metrics
from monitor.notify.outbox import Outbox, OutboxPolicy, RateLimit
from tests.support.alerts import cascade
from tests.support.daemon import wait_until
from tests.support.timing import T

Alert = CascadeAlert | WhaleAlert


class ScriptedChannel:
    """Sends into a list; ``fail`` holds the outcomes of the next attempts (an exception or
    None for success), ``parts`` messages per alert."""

    name = "scripted"

    def __init__(self, parts: int = 1) -> None:
        self.parts = parts
        self.sent: list[tuple[str, int]] = []
        self.fail: list[BaseException | None] = []
        self.attempts = 0
        self.delay = 0.0
        self.ready = asyncio.Event()

    def render(self, alert: Alert) -> Sequence[tuple[str, int]]:
        return [(alert.id, i) for i in range(self.parts)]

    async def send(self, message: tuple[str, int]) -> None:
        self.attempts += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            outcome = self.fail.pop(0)
            if outcome is not None:
                raise outcome
        self.sent.append(message)

    async def wait_ready(self, timeout: float) -> None:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                await self.ready.wait()
        except TimeoutError:
            pass


def alerts(n: int) -> list[CascadeAlert]:
    return [dataclasses.replace(cascade(), id=f"cas-{i:04d}") for i in range(n)]


def sample(registry: CollectorRegistry, name: str) -> float:
    return registry.get_sample_value(name, {"channel": "scripted"}) or 0.0


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def running(registry: CollectorRegistry) -> AsyncIterator[
        tuple[ScriptedChannel, Outbox[tuple[str, int]]]]:
    channel = ScriptedChannel()
    outbox = Outbox(channel, OutboxPolicy(capacity=100, retry_initial_seconds=0.01,
                                          retry_max_seconds=0.05),
                    Metrics(registry, [], []), SystemClock())
    task = asyncio.create_task(outbox.run())
    yield channel, outbox
    task.cancel()


async def test_delivers_in_order_and_counts(
    running: tuple[ScriptedChannel, Outbox[tuple[str, int]]], registry: CollectorRegistry
) -> None:
    channel, outbox = running
    for alert in alerts(20):
        outbox.put(alert)
    assert await outbox.drain(5 * T) == 0
    assert [m[0] for m in channel.sent] == [f"cas-{i:04d}" for i in range(20)]
    assert sample(registry, "liqmon_notify_delivered_total") == 20
    assert sample(registry, "liqmon_notify_queue_size") == 0
    assert sample(registry, "liqmon_notify_up") == 1


async def test_put_never_waits_on_a_slow_channel(
    running: tuple[ScriptedChannel, Outbox[tuple[str, int]]]
) -> None:
    channel, outbox = running
    channel.delay = 0.5
    # put() is synchronous: that it returns at all without the event loop turning proves it
    # never awaits the channel. Nothing was sent yet, and every alert is queued.
    for alert in alerts(50):
        outbox.put(alert)
    assert channel.attempts == 0 and channel.sent == []
    assert len(outbox) == 50


async def test_a_failing_channel_is_retried_in_order_and_delivered_once(
    running: tuple[ScriptedChannel, Outbox[tuple[str, int]]], registry: CollectorRegistry
) -> None:
    channel, outbox = running
    channel.fail = [NotifyError("down")] * 4
    for alert in alerts(3):
        outbox.put(alert)
    assert await outbox.drain(5 * T) == 0
    assert [m[0] for m in channel.sent] == ["cas-0000", "cas-0001", "cas-0002"]
    assert sample(registry, "liqmon_notify_failures_total") == 4
    assert sample(registry, "liqmon_notify_retries_total") == 4
    assert sample(registry, "liqmon_notify_delivered_total") == 3
    assert outbox.stats.last_error == "down"


async def test_up_gauge_follows_the_last_attempt(
    running: tuple[ScriptedChannel, Outbox[tuple[str, int]]], registry: CollectorRegistry
) -> None:
    channel, outbox = running
    channel.fail = [NotifyError("down")] * 1000
    outbox.put(alerts(1)[0])
    # The gauge is 0 before any attempt too: wait for the first failure to be counted.
    await wait_until(lambda: sample(registry, "liqmon_notify_failures_total") >= 1, 5 * T,
                     interval=0.005)
    assert sample(registry, "liqmon_notify_up") == 0
    assert sample(registry, "liqmon_notify_queue_size") == 1
    assert await outbox.drain(0.05) == 1
    channel.fail = []
    assert await outbox.drain(2 * T) == 0
    assert sample(registry, "liqmon_notify_up") == 1


async def test_a_multi_part_alert_resumes_where_it_failed(registry: CollectorRegistry) -> None:
    channel = ScriptedChannel(parts=2)
    outbox = Outbox(channel, OutboxPolicy(retry_initial_seconds=0.01),
                    Metrics(registry, [], []), SystemClock())
    task = asyncio.create_task(outbox.run())
    channel.fail = [None, NotifyError("lost"), NotifyError("lost")]
    outbox.put(alerts(1)[0])
    assert await outbox.drain(2 * T) == 0
    task.cancel()
    assert channel.sent == [("cas-0000", 0), ("cas-0000", 1)]


async def test_a_refused_message_is_dropped_not_retried(
    running: tuple[ScriptedChannel, Outbox[tuple[str, int]]], registry: CollectorRegistry
) -> None:
    channel, outbox = running
    channel.fail = [NotifyRejected("HTTP 404")]
    for alert in alerts(2):
        outbox.put(alert)
    assert await outbox.drain(2 * T) == 0
    assert [m[0] for m in channel.sent] == ["cas-0001"]
    assert sample(registry, "liqmon_notify_dropped_total") == 1
    assert channel.attempts == 2


async def test_a_bug_while_sending_drops_the_alert(
    running: tuple[ScriptedChannel, Outbox[tuple[str, int]]], registry: CollectorRegistry
) -> None:
    channel, outbox = running
    channel.fail = [KeyError("bug")]
    for alert in alerts(2):
        outbox.put(alert)
    assert await outbox.drain(2 * T) == 0
    assert [m[0] for m in channel.sent] == ["cas-0001"]
    assert sample(registry, "liqmon_notify_dropped_total") == 1


async def test_overflow_drops_the_oldest_waiting_but_not_the_head(
    registry: CollectorRegistry
) -> None:
    channel = ScriptedChannel()
    channel.fail = [NotifyError("down")] * 1000
    outbox = Outbox(channel, OutboxPolicy(capacity=3, retry_initial_seconds=0.01,
                                          retry_max_seconds=0.02),
                    Metrics(registry, [], []), SystemClock())
    task = asyncio.create_task(outbox.run())
    for alert in alerts(5):
        outbox.put(alert)
        await asyncio.sleep(0.01)
    assert sample(registry, "liqmon_notify_dropped_total") == 2
    channel.fail = []
    assert await outbox.drain(2 * T) == 0
    task.cancel()
    assert [m[0] for m in channel.sent] == ["cas-0000", "cas-0003", "cas-0004"]


async def test_an_alert_past_its_max_age_is_dropped(registry: CollectorRegistry) -> None:
    channel = ScriptedChannel()
    channel.fail = [NotifyError("down")] * 1000
    outbox = Outbox(channel, OutboxPolicy(retry_initial_seconds=0.01, retry_max_seconds=0.02,
                                          max_age_seconds=0.2),
                    Metrics(registry, [], []), SystemClock())
    task = asyncio.create_task(outbox.run())
    outbox.put(alerts(1)[0])
    assert await outbox.drain(3 * T) == 0
    task.cancel()
    assert channel.sent == []
    assert sample(registry, "liqmon_notify_dropped_total") == 1


async def test_the_channel_coming_back_cuts_the_backoff_short(
    registry: CollectorRegistry
) -> None:
    channel = ScriptedChannel()
    outbox = Outbox(channel, OutboxPolicy(retry_initial_seconds=30, retry_max_seconds=30),
                    Metrics(registry, [], []), SystemClock())
    task = asyncio.create_task(outbox.run())
    channel.fail = [NotifyError("down")]
    outbox.put(alerts(1)[0])
    # Only once the first attempt has failed: the outbox then waits out its 30 s backoff.
    await wait_until(lambda: sample(registry, "liqmon_notify_failures_total") >= 1, 5 * T,
                     interval=0.005)
    channel.ready.set()
    assert await outbox.drain(2 * T) == 0
    task.cancel()


async def test_claims_lost_to_another_daemon_are_skipped(registry: CollectorRegistry) -> None:
    channel = ScriptedChannel()

    async def claim(alert: Alert) -> bool:
        return alert.id != "cas-0001"

    outbox = Outbox(channel, OutboxPolicy(), Metrics(registry, [], []), SystemClock(), claim)
    task = asyncio.create_task(outbox.run())
    for alert in alerts(3):
        outbox.put(alert)
    assert await outbox.drain(2 * T) == 0
    task.cancel()
    assert [m[0] for m in channel.sent] == ["cas-0000", "cas-0002"]
    assert outbox.stats.skipped == 1 and sample(registry, "liqmon_notify_dropped_total") == 0


async def test_rate_limit_sends_a_burst_then_paces(registry: CollectorRegistry) -> None:
    channel = ScriptedChannel()
    outbox = Outbox(channel, OutboxPolicy(rate_per_minute=600, burst=3),
                    Metrics(registry, [], []), SystemClock())
    task = asyncio.create_task(outbox.run())
    started = time.monotonic()
    for alert in alerts(5):
        outbox.put(alert)
    # Polled, not a fixed pause: a loaded machine may not have run the outbox within one,
    # or may run it past the fourth's turn (0.1 s later).
    await wait_until(lambda: len(channel.sent) >= 3, 5 * T, interval=0.005)
    assert len(channel.sent) == 3
    assert await outbox.drain(2 * T) == 0
    task.cancel()
    # Two more at 10 per second: about 0.2 s after the burst.
    assert 0.15 < time.monotonic() - started < 1.0 * T


def test_token_bucket_arithmetic() -> None:
    bucket = RateLimit(per_minute=60, burst=2, now=0.0)
    assert bucket.delay(0.0) == 0 and bucket.delay(0.0) == 0
    assert bucket.delay(0.0) == pytest.approx(1.0)
    assert bucket.delay(0.5) == pytest.approx(0.5)
    assert bucket.delay(1.0) == 0
    assert RateLimit(0, 1, 0.0).delay(0.0) == 0


class EagerChannel(ScriptedChannel):
    """A channel that can begin a send at once: ``begin`` puts the message on ``wire`` in
    the caller's step and returns the confirmation, which the test settles (``confirm``);
    ``send`` (the worker's own attempts) is confirmed at once."""

    def __init__(self, parts: int = 1) -> None:
        super().__init__(parts)
        self.wire: list[tuple[str, int]] = []
        self.pending: list[asyncio.Future[None]] = []

    def begin(self, message: tuple[str, int]) -> asyncio.Future[None]:
        if self.fail and self.fail[0] is not None:
            raise self.fail.pop(0)  # e.g. disconnected: nothing is written
        self.wire.append(message)
        confirmation: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        confirmation.add_done_callback(
            lambda f: None if f.cancelled() or f.exception() else self.sent.append(message))
        self.pending.append(confirmation)
        return confirmation

    async def send(self, message: tuple[str, int]) -> None:
        confirmation = self.begin(message)
        confirmation.set_result(None)
        await confirmation


def eager_outbox(channel: EagerChannel, registry: CollectorRegistry,
                 **policy: float) -> Outbox[tuple[str, int]]:
    return Outbox(channel, OutboxPolicy(retry_initial_seconds=0.01, retry_max_seconds=0.02,
                                        **policy),  # type: ignore[arg-type]
                  Metrics(registry, [], []), SystemClock())


async def test_a_burst_is_written_in_the_producers_step_in_order(
    registry: CollectorRegistry,
) -> None:
    channel = EagerChannel()
    outbox = eager_outbox(channel, registry)
    task = asyncio.create_task(outbox.run())
    try:
        await asyncio.sleep(0)
        for alert in alerts(3):
            outbox.put(alert)
        # No await since the puts: nothing else ran, yet all three are on the wire.
        assert [m[0] for m in channel.wire] == ["cas-0000", "cas-0001", "cas-0002"]
        for confirmation in channel.pending:
            confirmation.set_result(None)
        assert await outbox.drain(5 * T) == 0
        assert outbox.stats.delivered_ids == ["cas-0000", "cas-0001", "cas-0002"]
        assert len(channel.wire) == 3  # none sent twice
    finally:
        task.cancel()


async def test_a_failure_in_flight_sends_everything_after_it_again_in_order(
    registry: CollectorRegistry,
) -> None:
    channel = EagerChannel(parts=2)
    outbox = eager_outbox(channel, registry)
    task = asyncio.create_task(outbox.run())
    try:
        await asyncio.sleep(0)
        for alert in alerts(3):
            outbox.put(alert)
        assert channel.wire == [("cas-0000", 0), ("cas-0001", 0), ("cas-0002", 0)]
        channel.pending[0].set_exception(NotifyError("connection lost"))
        assert await outbox.drain(5 * T) == 0
        assert channel.wire[3:] == [("cas-0000", 0), ("cas-0000", 1), ("cas-0001", 0),
                                    ("cas-0001", 1), ("cas-0002", 0), ("cas-0002", 1)]
        assert outbox.stats.delivered_ids == ["cas-0000", "cas-0001", "cas-0002"]
        assert outbox.stats.failures == 1
    finally:
        task.cancel()


async def test_nothing_overtakes_an_alert_the_worker_has_not_written(
    registry: CollectorRegistry,
) -> None:
    channel = EagerChannel()
    channel.fail = [NotifyError("not connected")]
    outbox = eager_outbox(channel, registry)
    task = asyncio.create_task(outbox.run())
    try:
        await asyncio.sleep(0)
        first, second = alerts(2)
        outbox.put(first)  # not written: the channel is down; the worker retries it
        outbox.put(second)  # must wait for it, not go first
        assert channel.wire == []
        assert await outbox.drain(5 * T) == 0
        assert [m[0] for m in channel.wire] == ["cas-0000", "cas-0001"]
    finally:
        task.cancel()


async def test_an_alert_to_claim_waits_for_the_worker(registry: CollectorRegistry) -> None:
    channel = EagerChannel()

    async def claim(alert: Alert | object) -> bool:
        return True

    outbox = Outbox(channel, OutboxPolicy(), Metrics(registry, [], []), SystemClock(), claim)
    task = asyncio.create_task(outbox.run())
    try:
        await asyncio.sleep(0)
        outbox.put(alerts(1)[0])
        assert channel.wire == []  # the claim is an answer from the store, awaited first
        assert await outbox.drain(5 * T) == 0
        assert channel.sent == [("cas-0000", 0)]
    finally:
        task.cancel()
