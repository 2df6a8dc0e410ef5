"""The Redis store beyond the contract: outages, restarts, redundant collectors, overflow,
the cluster's single slot, Sentinel, credentials. Real redis-server processes throughout."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from redis.crc import key_slot

from monitor.errors import ConfigError, StoreError, StoreUnavailable
from monitor.events import Liquidation
from monitor.store.base import GROUP_KEYS, WINDOWS, Store
from monitor.store.buffered import BufferedStore
from monitor.store.config import StoreConfig
from monitor.store.connect import connect
from monitor.store.factory import open_store
from monitor.store.keys import Keys
from monitor.store.records import REFUSED_UNENCODABLE
from monitor.store.redis import RedisStore
from tests.fixtures.redis import RedisCluster, RedisServer, start_sentinel
from tests.support.store_events import NOW_MS, make_event, minutes_ago, sample_events
from tests.support.timing import T


class Recorder:
    """A StoreObserver that keeps everything it is told."""

    def __init__(self) -> None:
        self.up: list[bool] = []
        self.buffered_values: list[int] = []
        self.dropped_total = 0
        self.writes: list[float] = []
        self.ages: list[float] = []
        self.rejected_by_reason: dict[str, int] = {}
        self.landed: list[float] = []
        self.persistent: list[bool | None] = []

    def store_up(self, up: bool) -> None:
        self.up.append(up)

    def buffered(self, events: int) -> None:
        self.buffered_values.append(events)

    def dropped(self, events: int) -> None:
        self.dropped_total += events

    def write_seconds(self, seconds: float) -> None:
        self.writes.append(seconds)

    def oldest_buffered_age(self, seconds: float) -> None:
        self.ages.append(seconds)

    def rejected(self, reason: str, events: int) -> None:
        self.rejected_by_reason[reason] = self.rejected_by_reason.get(reason, 0) + events

    def write_landed(self, wall_seconds: float) -> None:
        self.landed.append(wall_seconds)

    def persistence(self, enabled: bool | None) -> None:
        self.persistent.append(enabled)


def redis_config(url: str, **overrides: Any) -> StoreConfig:
    settings: dict[str, Any] = {
        "backend": "redis",
        "url": url,
        "key_prefix": "t" + uuid.uuid4().hex[:12],
        "batch_size": 20,
        "flush_interval_seconds": 0.005,
        "connect_timeout_seconds": 0.5 * T,
        "socket_timeout_seconds": 1.0 * T,
    }
    settings.update(overrides)
    return StoreConfig(**settings)


async def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds * T
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def counted(store: Store) -> tuple[int, float]:
    row = (await store.totals(WINDOWS["4h"], now_ms=NOW_MS))[0]
    return row.count, row.usd


async def test_an_outage_mid_stream_loses_and_doubles_nothing(redis_server: RedisServer) -> None:
    recorder = Recorder()
    store = await open_store(redis_config(redis_server.url), recorder)
    try:
        events = [make_event(float(i + 1), ts_ms=minutes_ago(i % 10)) for i in range(300)]
        for i in range(0, 100, 10):
            await store.add(events[i : i + 10])
            await asyncio.sleep(0.002)
        redis_server.stop()  # with batches queued and maybe one in flight
        for i in range(100, 250, 10):
            await store.add(events[i : i + 10])
            await asyncio.sleep(0.002)
        await wait_until(lambda: recorder.up[-1] is False)
        assert store.healthy()  # down, but the buffer has room
        with pytest.raises(StoreUnavailable):
            await store.totals(5, now_ms=NOW_MS)
        with pytest.raises(StoreUnavailable):
            await store.claim("x", 1.0)
        redis_server.start()  # same port, the data saved at shutdown
        for i in range(250, 300, 10):
            await store.add(events[i : i + 10])
        assert await store.flush(10 * T) == 0
        assert await counted(store) == (300, sum(e.notional_usd for e in events))
        assert recorder.dropped_total == 0
        assert recorder.up[0] is True and recorder.up[-1] is True
        assert False in recorder.up
        assert recorder.buffered_values[-1] == 0
        assert recorder.writes and all(s >= 0 for s in recorder.writes)
    finally:
        await store.aclose()


async def test_overflow_drops_the_oldest_and_counts_them_exactly(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    store = await open_store(redis_config(redis_server.url, buffer_size=50), recorder)
    try:
        first = [make_event(1.0) for _ in range(20)]
        await store.add(first)
        assert await store.flush(5 * T) == 0
        redis_server.stop()
        during = [make_event(float(100 + i)) for i in range(120)]
        assert await store.add(during) == 50  # only the newest 50 of these fit
        assert recorder.dropped_total == 70
        assert isinstance(store, BufferedStore) and store.dropped_total == 70
        assert "dropped 70 oldest events" in caplog.text
        await store.add([])
        more = [make_event(1000.0) for _ in range(5)]
        assert await store.add(more) == 5  # evicting five more of the oldest
        assert recorder.dropped_total == 75
        await wait_until(lambda: recorder.up[-1] is False)
        assert not store.healthy()  # down and full
        redis_server.start()
        assert await store.flush(10 * T) == 0
        kept = during[-45:] + more
        count, usd = await counted(store)
        assert count == 20 + 45 + 5 == 20 + 120 + 5 - recorder.dropped_total
        assert usd == pytest.approx(20.0 + sum(e.notional_usd for e in kept))
        assert store.healthy()
    finally:
        await store.aclose()


async def test_starting_while_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "late")
    recorder = Recorder()
    store = await open_store(redis_config(server.url), recorder)
    try:
        await store.add([make_event(3.0), make_event(4.0)])
        await wait_until(lambda: recorder.up == [False])
        server.start()
        assert await store.flush(10 * T) == 0
        assert await counted(store) == (2, 7.0)
        assert recorder.up == [False, True]
    finally:
        await store.aclose()
        server.kill()


async def test_a_restarted_daemon_reads_the_same_windows(redis_server: RedisServer) -> None:
    config = redis_config(redis_server.url)
    events = sample_events()
    before = await open_store(config)
    await before.add(events)
    assert await before.flush(10 * T) == 0
    await before.record_cascade({"id": "k1", "state": "cascade"})
    windows = {
        (minutes, by): await before.totals(minutes, by, now_ms=NOW_MS)
        for minutes in WINDOWS.values()
        for by in [(), ("venue",), GROUP_KEYS]
    }
    largest = await before.largest(WINDOWS["4h"], 20, now_ms=NOW_MS)
    await before.aclose()

    after = await open_store(config)
    try:
        for (minutes, by), rows in windows.items():
            assert await after.totals(minutes, by, now_ms=NOW_MS) == rows
        assert await after.largest(WINDOWS["4h"], 20, now_ms=NOW_MS) == largest
        assert await after.cascades() == [{"id": "k1", "state": "cascade"}]
        assert windows[(WINDOWS["4h"], ())][0].count == len(events)
    finally:
        await after.aclose()


async def test_two_collectors_write_each_event_exactly_once(redis_server: RedisServer) -> None:
    config = redis_config(redis_server.url)
    events = sample_events()
    collectors = [await open_store(config) for _ in range(2)]
    try:
        # Both see everything, in different chunkings, at the same time.
        await asyncio.gather(
            *(c.add(events[i : i + size]) for c, size in zip(collectors, (13, 29), strict=True)
              for i in range(0, len(events), size))
        )
        for c in collectors:
            assert await c.flush(10 * T) == 0
        count, usd = await counted(collectors[0])
        assert count == len(events)
        assert usd == pytest.approx(sum(e.notional_usd for e in events))
        written = sum(c.written_total for c in collectors if isinstance(c, BufferedStore))
        assert written == len(events)  # the scripts reported each event new exactly once
    finally:
        for c in collectors:
            await c.aclose()


async def test_the_script_is_idempotent(redis_server: RedisServer) -> None:
    # What a retry after a lost reply does: the same batch again changes nothing.
    config = redis_config(redis_server.url)
    client, sentinel = connect(config)
    store = RedisStore(client, config, sentinel=sentinel)
    try:
        events = sample_events()[:100]
        assert await store.write(events) == 100
        assert await store.write(events) == 0
        assert await store.write([*events[50:], make_event(1.0)]) == 1
        assert await store.write([]) == 0
        assert (await store.totals(240, now_ms=NOW_MS))[0].count == 101
    finally:
        await store.aclose()
        await store.aclose()


def seen_by_another_daemon(event: Liquidation) -> Liquidation:
    """The same liquidation as a second daemon parses it: same id, another receive time."""
    return msgspec.structs.replace(event, received_at=event.received_at + 0.5)


async def test_a_cell_partly_counted_before_adds_only_its_new_events(
    redis_server: RedisServer,
) -> None:
    # Two daemons, one cell: the second's batches hold events the first already counted,
    # with the largest of the cell among them or not.
    config = redis_config(redis_server.url)
    daemons = [RedisStore(connect(config)[0], config) for _ in range(2)]
    a, b = daemons
    try:
        first = [make_event(u) for u in (500.0, 20.0, 30.0)]
        assert await a.write(first) == 3
        again = [seen_by_another_daemon(e) for e in first[:2]]
        newer = [make_event(40.0), make_event(10.0)]
        assert await b.write([again[1], *newer, again[0]]) == 2
        [row] = await a.totals(5, GROUP_KEYS, now_ms=NOW_MS)
        assert (row.count, row.usd, row.largest_usd) == (5, 600.0, 500.0)
        assert row.largest == first[0]  # the first daemon's record, not a second copy
        bigger = make_event(900.0)
        assert await b.write([seen_by_another_daemon(first[2]), bigger, make_event(5.0)]) == 2
        [row] = await b.totals(5, GROUP_KEYS, now_ms=NOW_MS)
        assert (row.count, row.usd, row.largest) == (7, 1505.0, bigger)
        top = await a.largest(5, 50, now_ms=NOW_MS)
        assert [e.notional_usd for e in top] == [900.0, 500.0, 40.0, 30.0, 20.0, 10.0, 5.0]
        assert len({e.event_id for e in top}) == 7  # no event kept twice
    finally:
        for d in daemons:
            await d.aclose()


async def test_a_batch_resent_after_a_redis_restart_counts_once(tmp_path: Path) -> None:
    # A write whose reply was lost is sent again, here after Redis restarted from its AOF:
    # the id sets came back with the buckets, so nothing counts twice.
    server = RedisServer(tmp_path / "aof", None, "--appendonly", "yes",
                         "--appendfsync", "always")
    server.start()
    config = redis_config(server.url)
    store = RedisStore(connect(config)[0], config)
    try:
        events = sample_events()
        assert await store.write(events) == len(events)
        server.kill()  # no clean shutdown: only the AOF brings the data back
        server.start()
        fresh = make_event(7.0)
        deadline = time.monotonic() + 10 * T
        while True:
            try:
                new = await store.write([*events[100:], fresh])
                break
            except StoreUnavailable:  # the client notices the restart on its first call
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        assert new == 1
        count, usd = await counted(store)
        assert count == len(events) + 1
        assert usd == pytest.approx(sum(e.notional_usd for e in events) + 7.0, rel=1e-12)
    finally:
        await store.aclose()
        server.kill()


async def test_a_batch_redis_rejects_is_dropped_not_retried(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug (here: a key of the wrong type) is not an outage: retrying would stall the
    # buffer forever behind one batch.
    config = redis_config(redis_server.url)
    plain = redis.Redis(port=redis_server.port)
    plain.set(Keys(config.key_prefix).minute(NOW_MS // 60_000 - 5), "not a hash")
    plain.close()
    recorder = Recorder()
    store = await open_store(config, recorder)
    try:
        await store.add([make_event(1.0, ts_ms=minutes_ago(5)) for _ in range(3)])
        assert await store.flush(5 * T) == 0
        await store.add([make_event(2.0)])
        assert await store.flush(5 * T) == 0
        assert recorder.dropped_total == 3
        assert "rejected a batch of 3 events" in caplog.text
        assert "buffer full" not in caplog.text
        assert (await store.totals(1, now_ms=NOW_MS))[0].usd == 2.0
        assert recorder.up[-1] is True
        with pytest.raises(StoreError, match="WRONGTYPE") as info:
            await store.totals(10, now_ms=NOW_MS)
        assert not isinstance(info.value, StoreUnavailable)
    finally:
        await store.aclose()


async def test_non_finite_values_are_not_stored(redis_server: RedisServer) -> None:
    config = redis_config(redis_server.url)
    client, _ = connect(config)
    store = RedisStore(client, config)
    try:
        assert await store.write([make_event(float("nan")), make_event(2.0)]) == 1
        assert await store.write([make_event(float("inf"))]) == 0
    finally:
        await store.aclose()


async def test_event_ids_the_script_cannot_take_are_refused(
    redis_server: RedisServer,
) -> None:
    # Ids travel newline-separated in one string: an empty id, one with a newline or one
    # that is not UTF-8 would shift every id after it.
    config = redis_config(redis_server.url)
    store = RedisStore(connect(config)[0], config)
    try:
        bad = [msgspec.structs.replace(make_event(float(i + 1)), event_id=event_id)
               for i, event_id in enumerate(["", "okx:a\nb", "okx:\ud800"])]
        good = [make_event(10.0), make_event(20.0)]
        prepared = store.prepare([good[0], *bad, good[1]])
        assert [(e.event_id, reason) for e, reason in prepared.refused] == [
            (e.event_id, REFUSED_UNENCODABLE) for e in bad]
        assert await store.write_prepared(prepared) == 2
        assert await counted(store) == (2, 30.0)
    finally:
        await store.aclose()


async def test_cluster_keeps_every_key_in_one_slot(redis_cluster: RedisCluster) -> None:
    config = redis_config(redis_cluster.url, cluster=True)
    store = await open_store(config)
    try:
        await store.add(sample_events())
        await store.record_cascade({"id": "c"})
        # Long enough to outlive a slow close on a loaded machine: the claim's key is
        # looked for after it.
        assert await store.claim("alert", 600.0)
        assert await store.flush(10 * T) == 0
    finally:
        await store.aclose()
    per_node = []
    for node in redis_cluster.nodes:
        client = redis.Redis(port=node.port)
        per_node.append(list(client.scan_iter(match="{" + config.key_prefix + "}:*", count=1000)))
        client.close()
    holding = [keys for keys in per_node if keys]
    assert len(holding) == 1  # one node holds them all ...
    slots = {key_slot(k) for k in holding[0]}
    assert slots == {key_slot(config.key_prefix.encode())}  # ... in the hash tag's slot
    kinds = {k.decode().split(":")[1] for k in holding[0]}
    assert {"m", "mx", "mt", "h", "hx", "ht", "ids", "cascades", "claim"} <= kinds


async def test_sentinel_finds_the_master(redis_server: RedisServer, tmp_path: Path) -> None:
    sentinel = start_sentinel(tmp_path / "sentinel", redis_server, "liqmon-test")
    try:
        config = redis_config(
            "redis://ignored-host:1/0", sentinels=(f"127.0.0.1:{sentinel.port}",),
            service_name="liqmon-test",
        )
        store = await open_store(config)
        try:
            await store.add([make_event(5.0), make_event(6.0)])
            assert await store.flush(10 * T) == 0
            assert await counted(store) == (2, 11.0)
        finally:
            await store.aclose()
        plain = await open_store(redis_config(redis_server.url, key_prefix=config.key_prefix))
        try:
            assert await counted(plain) == (2, 11.0)  # it really was that master
        finally:
            await plain.aclose()
    finally:
        sentinel.kill()


async def test_acl_user_and_password_file(tmp_path: Path) -> None:
    server = RedisServer(
        tmp_path / "acl", None,
        "--user", "default", "off", "--user", "collector", "on", ">s3cret", "~*", "&*", "+@all",
    )
    server.start()
    try:
        url = f"redis://collector:s3cret@127.0.0.1:{server.port}/0"
        store = await open_store(redis_config(url))
        try:
            await store.add([make_event(1.5)])
            assert await store.flush(5 * T) == 0
            assert await counted(store) == (1, 1.5)
        finally:
            await store.aclose()

        secret = tmp_path / "password"
        secret.write_text("s3cret\n")
        user_only = f"redis://collector@127.0.0.1:{server.port}/0"
        store = await open_store(redis_config(user_only, password_file=str(secret)))
        try:
            await store.add([make_event(2.5)])
            assert await store.flush(5 * T) == 0
        finally:
            await store.aclose()

        recorder = Recorder()
        wrong = f"redis://collector:wrong@127.0.0.1:{server.port}/0"
        store = await open_store(redis_config(wrong), recorder)
        try:
            await wait_until(lambda: recorder.up == [False])
            with pytest.raises(StoreUnavailable, match=r"(?i)auth|password"):
                await store.totals(5, now_ms=NOW_MS)
        finally:
            await store.aclose()
    finally:
        server.kill()


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"url": "http://127.0.0.1:6379"}, "store.url"),
        ({"key_prefix": "a{b}"}, "store.key_prefix"),
        ({"password_file": "/nonexistent/liqmon-password"}, "store.password_file"),
        ({"sentinels": ("no-port",)}, "store.sentinels"),
        ({"backend": "sqlite"}, "store.backend"),
    ],
)
async def test_config_errors_name_the_key(overrides: dict[str, Any], key: str) -> None:
    settings = {"url": "redis://127.0.0.1:1/0", **overrides}
    with pytest.raises(ConfigError) as info:
        await open_store(redis_config(**settings))
    assert info.value.key == key
