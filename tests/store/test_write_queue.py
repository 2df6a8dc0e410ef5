"""The Redis store's write buffer on its own: no Redis, no clock, times given."""

from __future__ import annotations

from monitor.events import Liquidation
from monitor.store.write_queue import WriteQueue
from tests.store.test_contract import make_event


def usds(items: list[tuple[Liquidation, float]] | None) -> list[float]:
    assert items is not None
    return [event.notional_usd for event, _at in items]


def test_overflow_drops_the_oldest_waiting_events_never_a_batch_being_written() -> None:
    queue = WriteQueue(capacity=5)
    assert queue.add([make_event(float(i)) for i in (1, 2, 3)], now=1.0) == (3, 0)
    assert usds(queue.take(2)) == [1.0, 2.0]  # in flight
    assert queue.add([make_event(float(i)) for i in (4, 5, 6)], now=2.0) == (3, 1)
    assert queue.pending == 5 and queue.waiting == 3
    assert usds(queue.take(10)) == [4.0, 5.0, 6.0]  # 3 went: the oldest waiting
    assert queue.oldest_buffered_at() == 1.0  # the batch in flight since 1.0


def test_events_that_alone_overflow_the_buffer_are_counted_as_not_accepted() -> None:
    queue = WriteQueue(capacity=3)
    queue.add([make_event(1.0)], now=1.0)
    assert queue.take(1) is not None
    accepted, dropped = queue.add([make_event(float(i)) for i in range(10, 15)], now=2.0)
    assert (accepted, dropped) == (2, 3)
    assert usds(queue.take(10)) == [13.0, 14.0]


def test_a_failed_batch_goes_back_to_the_front_in_order() -> None:
    queue = WriteQueue(capacity=10)
    queue.add([make_event(float(i)) for i in range(1, 7)], now=1.0)
    first, second = queue.take(2), queue.take(2)
    assert first is not None and second is not None
    queue.landed(first)
    assert queue.pending == 4
    queue.requeue()
    assert usds(queue.take(10)) == [3.0, 4.0, 5.0, 6.0]


def test_take_leaves_nothing_in_flight_beyond_the_capacity() -> None:
    queue = WriteQueue(capacity=4)
    assert queue.take(3) is None  # nothing waits
    queue.add([make_event(float(i)) for i in range(4)], now=1.0)
    assert len(usds(queue.take(3))) == 3
    assert len(usds(queue.take(3))) == 1
    assert queue.take(3) is None and queue.oldest_waiting_at() is None
