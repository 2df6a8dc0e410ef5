"""Coverage in the running daemon: the feed's connection counts reach the tracker, and the
heartbeat of every venue lands in Redis, the last one at shutdown."""

from __future__ import annotations

from pathlib import Path

from monitor.simulator import Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from monitor.store.config import StoreConfig
from monitor.store.coverage import CoverageMinute
from monitor.store.factory import open_store
from tests.fixtures.redis import RedisServer
from tests.support.daemon import running_daemon, sample, wait_until
from tests.support.timing import T

VENUES = ("bybit", "okx")


async def test_the_daemon_tracks_subscriptions_and_leaves_a_heartbeat(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    env = {"LIQMON_STORE__BACKEND": "redis", "LIQMON_STORE__URL": redis_server.url,
           "LIQMON_STORE__KEY_PREFIX": "daemoncov"}
    sim = Simulator(scripted_scenario(VENUES, duration_seconds=600, every_seconds=0.1),
                    speed=5.0, venues=VENUES)
    async with sim:
        async with running_daemon(sim, tmp_path, env) as app:
            await wait_until(lambda: all(
                sample(app, "liqmon_feed_connected", {"venue": v}) == 1 for v in VENUES),
                20 * T)
            assert app.coverage is not None
            tracker = app.coverage.tracker
            assert sorted(tracker.venues) == sorted(VENUES)
            # Every connection is subscribed now: the next whole minute is covered. (The
            # tracker is pure: asking it about the future changes nothing it records.)
            now = app.clock.wall()
            found: list[CoverageMinute] = []
            at = now
            while at < now + 130:
                at += 20
                found += tracker.take(at)
            next_minute = int(now // 60) + 1
            assert {(m.venue, m.covered) for m in found if m.minute == next_minute} == {
                (v, True) for v in VENUES}
            assert sample(app, "liqmon_feed_gaps_last_hour", {"venue": "okx"}) >= 0
        stopped = app.clock.wall()
    store = await open_store(StoreConfig(backend="redis", url=redis_server.url,
                                         key_prefix="daemoncov"))
    try:
        beats = await store.heartbeats()
    finally:
        await store.aclose()
    assert sorted(beats) == sorted(VENUES)
    assert all(stopped - 10 * T <= beat <= stopped for beat in beats.values()), (beats, stopped)
