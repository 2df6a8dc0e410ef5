"""Closing the Redis store: its flusher stops at once, whenever the cancel lands.

On Python 3.11 redis-py sends each command through ``asyncio.wait_for``, which returns the
finished send instead of raising when the cancel arrives in the step in which the send
completes. A flusher cancelled there (its first PING or the CONFIG GETs that read the
persistence settings, right after start: what ``liqmon stats`` or a test's read-and-close
does) went on running: ``aclose()`` gave up after 5 s with "the store flusher did not stop
within 5s", and the daemon's TaskGroup would wait for it without end. The cancel is swept
over every loop step of the flusher's start against a real redis-server.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from monitor.store import buffered
from monitor.store.buffered import BufferedStore
from monitor.store.factory import open_store
from tests.fixtures.redis import RedisServer
from tests.store.test_contract import make_event
from tests.store.test_redis import Recorder, redis_config
from tests.support.timing import T

STEPS = range(60)  # loop steps after start: past the first PING and both CONFIG GETs


async def steps(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_aclose_stops_the_flusher_whichever_step_it_is_at(
    shared_redis_server: RedisServer, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(buffered, "_CLOSE_WAIT_SECONDS", 1.0 * T)
    late: list[int] = []
    with caplog.at_level(logging.ERROR, "monitor.store"):
        for n in STEPS:
            recorder = Recorder()
            store = await open_store(redis_config(shared_redis_server.url), recorder)
            assert isinstance(store, BufferedStore)
            flusher = store._task
            assert flusher is not None
            await steps(n)
            await store.aclose()
            if not flusher.done():
                late.append(n)
                flusher.cancel()
                await asyncio.wait((flusher,), timeout=5 * T)
    assert late == [], f"the flusher outlived aclose() when cancelled after steps {late}"
    assert "did not stop" not in caplog.text


async def test_a_cancelled_background_flusher_ends_whichever_step_it_is_at(
    shared_redis_server: RedisServer,
) -> None:
    """As the daemon runs it: ``background()`` in a task that the app cancels."""
    late: list[int] = []
    for n in STEPS:
        store = await open_store(redis_config(shared_redis_server.url), Recorder(),
                                 start=False)
        try:
            await store.add([make_event(float(n + 1))])
            (run,) = store.background().values()
            flusher = asyncio.create_task(run())
            await steps(n)
            flusher.cancel()
            await asyncio.wait((flusher,), timeout=1.0 * T)
            if not flusher.done():
                late.append(n)
                flusher.cancel()
                await asyncio.wait((flusher,), timeout=5 * T)
            assert flusher.cancelled()
        finally:
            await store.aclose()
    assert late == [], f"the flusher outlived its cancel when cancelled after steps {late}"
