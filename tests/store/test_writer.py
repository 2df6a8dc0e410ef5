"""The Redis store's writer under poison events and a Redis that will not take writes.

Real redis-server processes: one started with ``--maxmemory`` and ``noeviction`` (Redis
then answers writes with ``OOM``, which redis-py turns into OutOfMemoryError and strips
of its prefix), one paused with ``CLIENT PAUSE ... WRITE`` (it answers PING, takes no
writes).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import redis

from monitor.errors import StoreError, StoreUnavailable
from monitor.store.buffered import BufferedStore
from monitor.store.connect import translate
from monitor.store.factory import open_store
from tests.fixtures.redis import RedisServer
from tests.store.test_contract import make_event, minutes_ago
from tests.store.test_redis import Recorder, counted, redis_config, wait_until
from tests.support.timing import T


def poison_events() -> list:  # type: ignore[type-arg]
    return [
        # A Gate timestamp of -2**63 seconds, in milliseconds: beyond int64, so orjson
        # cannot encode it. Once, this one event stopped the writer for good.
        make_event(10.0, ts_ms=-(2**63) * 1000),
        make_event(1e308),  # a sum of two is inf
        make_event(float("inf")),
        make_event(float("nan")),
        make_event(-5.0),
        make_event(10.0, coin="BTC\ud800"),  # a lone surrogate: not UTF-8
    ]


async def test_poison_events_are_counted_and_skipped_and_the_writer_goes_on(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    store = await open_store(redis_config(redis_server.url), recorder)
    try:
        good = [make_event(float(i + 1), ts_ms=minutes_ago(i % 5)) for i in range(100)]
        with caplog.at_level(logging.WARNING, "monitor.store"):
            await store.add(good[:50] + poison_events() + good[50:60])
            assert await store.flush(5 * T) == 0
        await store.add(good[60:])  # the writer still runs
        assert await store.flush(5 * T) == 0
        assert await counted(store) == (100, sum(e.notional_usd for e in good))
        assert recorder.rejected_by_reason == {"value": 4, "timestamp": 1, "unencodable": 1}
        assert recorder.up[-1] is True
        assert recorder.landed
        # Logged with the event, so it can be found in the frames.
        assert "exchange_ts_ms=-9223372036854775808000" in caplog.text
    finally:
        await store.aclose()


async def test_a_flusher_that_died_refuses_events_loudly(redis_server: RedisServer) -> None:
    recorder = Recorder()
    store = await open_store(redis_config(redis_server.url), recorder)
    assert isinstance(store, BufferedStore)

    def broken(events: object) -> object:
        raise RuntimeError("a bug in the writer")

    try:
        store.redis.prepare = broken  # type: ignore[assignment,method-assign]
        await store.add([make_event()])
        await wait_until(lambda: not store.healthy())
        assert recorder.up[-1] is False
        with pytest.raises(StoreError, match="writer stopped"):
            await store.add([make_event()])
    finally:
        await store.aclose()


async def test_store_up_is_down_by_the_time_the_dead_flusher_shows(
    redis_server: RedisServer,
) -> None:
    # The test above once saw healthy() false and store_up still 1 (under load, when its
    # poll woke in the same loop turn as the flusher's last step). A callback scheduled from
    # inside that last step runs before anything scheduled once the task is done: it sees
    # the store exactly as the first poll after the death can.
    recorder = Recorder()
    store = await open_store(redis_config(redis_server.url), recorder)
    assert isinstance(store, BufferedStore)
    seen: list[tuple[bool, list[bool]]] = []

    def look() -> None:
        seen.append((store.healthy(), recorder.up[-1:]))

    def broken(events: object) -> object:
        asyncio.get_running_loop().call_soon(look)
        raise RuntimeError("a bug in the writer")

    try:
        await wait_until(lambda: recorder.up == [True])  # the first ping answered
        store.redis.prepare = broken  # type: ignore[assignment,method-assign]
        await store.add([make_event()])
        await wait_until(lambda: bool(seen))
        assert seen == [(False, [False])]
    finally:
        await store.aclose()


def test_redis_errors_that_waiting_cures_are_outages() -> None:
    # As redis-py 5+ raises them: the OOM prefix is stripped and the class says it.
    cases = [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.ResponseError(
            "MISCONF Redis is configured to save RDB snapshots, but it's currently unable "
            "to persist to disk."),
        # Older redis-py kept the prefix on a plain ResponseError.
        redis.exceptions.ResponseError("OOM command not allowed when used memory"),
        redis.exceptions.ResponseError("READONLY You can't write against a read only replica."),
    ]
    for exc in cases:
        assert isinstance(translate(exc, "write"), StoreUnavailable), exc
    bug = translate(redis.exceptions.ResponseError("ERR wrong number of arguments"), "write")
    assert not isinstance(bug, StoreUnavailable)


async def fill(client: redis.asyncio.Redis) -> int:
    """Write filler keys until Redis refuses with OOM; return how many went in."""
    n = 0
    while True:
        pipe = client.pipeline(transaction=False)
        for i in range(n, n + 100):
            pipe.set(f"filler:{i}", b"x" * 1000)
        try:
            await pipe.execute()
        except redis.exceptions.OutOfMemoryError:
            return n + 100
        n += 100


async def test_redis_out_of_memory_buffers_alerts_and_lands_once_when_freed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis", None,
                         "--maxmemory", "3mb", "--maxmemory-policy", "noeviction")
    server.start()
    recorder = Recorder()
    client = redis.asyncio.Redis.from_url(server.url)
    store = await open_store(redis_config(server.url, write_stall_seconds=0.5 * T), recorder)
    try:
        # The fixture runs Redis without AOF or RDB.
        await wait_until(lambda: recorder.persistent == [False])
        filled = await fill(client)
        burst = [make_event(float(i + 1), ts_ms=minutes_ago(i % 7)) for i in range(2_000)]
        with caplog.at_level(logging.WARNING, "monitor.store"):
            for i in range(0, len(burst), 100):
                await store.add(burst[i : i + 100])
                await asyncio.sleep(0.01)
            await wait_until(lambda: recorder.up and recorder.up[-1] is False)
            await asyncio.sleep(1.0 * T)  # many retries while Redis stays full
            assert isinstance(store, BufferedStore)
            assert store.pending == len(burst)
            assert recorder.dropped_total == 0
            # The outage is one ERROR, not one per retried batch.
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            assert "maxmemory" in errors[0].getMessage()
            for i in range(0, filled, 500):
                await client.delete(*(f"filler:{j}" for j in range(i, i + 500)))
            assert await store.flush(10 * T) == 0
        assert recorder.up[-1] is True
        assert await counted(store) == (len(burst), sum(e.notional_usd for e in burst))
        # Once: writing the same burst again changes nothing.
        await store.add(burst)
        assert await store.flush(10 * T) == 0
        assert await counted(store) == (len(burst), sum(e.notional_usd for e in burst))
    finally:
        await store.aclose()
        await client.aclose()
        server.kill()


async def test_store_up_falls_while_writes_do_not_land_though_ping_answers(
    redis_server: RedisServer,
) -> None:
    recorder = Recorder()
    # A command timeout longer than the pause: the write waits rather than failing, and
    # only the stall says the store is not taking writes.
    config = redis_config(redis_server.url, write_stall_seconds=0.3 * T,
                          socket_timeout_seconds=5.0 * T)
    store = await open_store(config, recorder)
    client = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await store.add([make_event(1.0)])
        assert await store.flush(5 * T) == 0
        await client.execute_command("CLIENT", "PAUSE", str(int(2000 * T)), "WRITE")
        await store.add([make_event(2.0)])
        await wait_until(lambda: recorder.up[-1] is False, seconds=1.5)
        assert await client.ping()
        assert await store.flush(5 * T) == 0  # the pause ends, the write lands
        assert recorder.up[-1] is True
        assert (await counted(store))[0] == 2
    finally:
        await store.aclose()
        await client.aclose()


@pytest.mark.parametrize(("args", "expected"), [
    (("--appendonly", "yes", "--appendfsync", "everysec"), True),
    (("--save", "900 1"), True),
    (("--rename-command", "CONFIG", ""), None),  # as managed services do
    (("--rename-command", "CONFIG", "", "--appendonly", "yes"), True),
])
async def test_the_persistence_settings_are_read_at_start(
    tmp_path: Path, args: tuple[str, ...], expected: bool | None
) -> None:
    server = RedisServer(tmp_path / "redis", None, *args)
    server.start()
    recorder = Recorder()
    store = await open_store(redis_config(server.url), recorder)
    try:
        await wait_until(lambda: recorder.persistent == [expected])
    finally:
        await store.aclose()
        server.kill()
