"""SIGTERM: stop taking frames, drain ingest and the store buffer within the deadline, exit 0,
and say with a count what could not be written. The daemon is `liqmon run` as a subprocess
writing to a real redis-server; the totals are read back from Redis afterwards."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from pathlib import Path

import pytest

from monitor.simulator import Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from monitor.store.config import StoreConfig
from monitor.store.factory import open_store
from tests.fixtures.redis import RedisServer
from tests.support.daemon import running_daemon, sent, wait_until
from tests.support.ports import free_port
from tests.support.service import Daemon, eventually, metric_sum
from tests.support.timing import T

VENUES = ("binance-usdm", "bybit", "okx")


def burst() -> Simulator:
    # 300 liquidations per venue in 30 market seconds, played in 3 s.
    scenario = scripted_scenario(VENUES, duration_seconds=30, every_seconds=0.1)
    return Simulator(scenario, speed=10.0, venues=VENUES, wait_for_subscribers=20 * T)


def redis_env(url: str, prefix: str) -> dict[str, str]:
    return {"LIQMON_STORE__BACKEND": "redis", "LIQMON_STORE__URL": url,
            "LIQMON_STORE__KEY_PREFIX": prefix}


async def stored(url: str, prefix: str) -> dict[tuple[str, str], tuple[int, float]]:
    store = await open_store(StoreConfig(backend="redis", url=url, key_prefix=prefix))
    try:
        # The scenario's venue clock runs ahead of the wall clock: read up to an hour ahead.
        rows = await store.totals(1440, by=("venue", "position_side"),
                                  now_ms=int((time.time() + 3600) * 1000))
    finally:
        await store.aclose()
    return {(r.venue or "", r.position_side or ""): (r.count, round(r.usd, 2)) for r in rows}


def counted_at_stop(log: str) -> int:
    return int(re.findall(r"stopped: (\d+) liquidations counted since start", log)[-1])


async def counted(daemon: Daemon) -> float:
    return metric_sum(await daemon.scrape(), "liqmon_liquidations_total")


async def test_sigterm_with_a_backlog_in_the_store_buffer_loses_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """Redis freezes mid-burst, so the events wait in the daemon's buffer; SIGTERM arrives
    with all of them buffered and Redis comes back during the drain: the stored totals are
    exactly what the simulator sent."""
    async with burst() as sim:
        daemon = Daemon(tmp_path, sim, redis_env(redis_server.url, "term-backlog"))
        assert redis_server.process is not None
        frozen = False
        try:
            await daemon.start()
            await daemon.wait_up()

            async def started() -> bool:
                return await counted(daemon) > 0

            await eventually(started, "counting")
            redis_server.process.send_signal(signal.SIGSTOP)
            frozen = True
            await asyncio.wait_for(sim.wait_finished(), 30 * T)
            expected = sent(sim)
            total_sent = sum(count for count, _usd in expected.values())

            async def all_ingested() -> bool:
                return await counted(daemon) == total_sent

            await eventually(all_ingested, "every sent liquidation ingested")
            scrape = await daemon.scrape()
            assert metric_sum(scrape, "liqmon_store_buffered_events") > 0
            daemon.signal(signal.SIGTERM)
            await asyncio.sleep(1.0 * T)
            redis_server.process.send_signal(signal.SIGCONT)
            frozen = False
            assert await daemon.wait() == 0
        finally:
            if frozen:
                redis_server.process.send_signal(signal.SIGCONT)
            await daemon.stop()
    log = daemon.log()
    assert "could not be written" not in log and "still queued" not in log, log
    assert counted_at_stop(log) == total_sent
    result = await stored(redis_server.url, "term-backlog")
    assert {k: v[0] for k, v in result.items()} == {k: v[0] for k, v in expected.items()}
    for key, (_count, usd) in expected.items():
        assert result[key][1] == pytest.approx(usd, rel=1e-9)


async def test_sigterm_during_a_burst_writes_everything_it_took(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """SIGTERM while the simulator is still sending: the daemon stops reading, and every
    liquidation it had read is in Redis when it exits."""
    async with burst() as sim:
        daemon = Daemon(tmp_path, sim, redis_env(redis_server.url, "term-burst"))
        try:
            await daemon.start()
            await daemon.wait_up()

            async def a_third_in() -> bool:
                return await counted(daemon) >= 300

            await eventually(a_third_in, "a third of the burst counted")
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
            total_sent = sum(count for count, _usd in sent(sim).values())
        finally:
            await daemon.stop()
    log = daemon.log()
    assert "could not be written" not in log and "still queued" not in log, log
    taken = counted_at_stop(log)
    assert 300 <= taken <= total_sent
    result = await stored(redis_server.url, "term-burst")
    assert sum(count for count, _usd in result.values()) == taken


async def test_what_cannot_be_written_by_the_deadline_is_logged_with_its_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No Redis at all: everything waits in the buffer; shutdown gives up at the deadline
    (shortened here, in-process, from the service's 10 s), returns 0, and names how many
    events were not written."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    caplog.set_level(logging.INFO, logger="monitor.app")
    async with burst() as sim:
        async with running_daemon(sim, tmp_path, redis_env(url, "term-lost")) as app:
            app.shutdown_deadline_seconds = 1.0
            await wait_until(lambda: app.ingest is not None and app.ingest.counted_total >= 100,
                             20 * T)
            started = time.monotonic()
        assert time.monotonic() - started < 5 * T
    log = "\n".join(r.getMessage() for r in caplog.records)
    lost = re.search(r"shutdown: (\d+) events could not be written to the store", log)
    assert lost is not None, log
    assert int(lost.group(1)) == counted_at_stop(log) > 0
