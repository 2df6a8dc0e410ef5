"""SIGHUP: a valid new config changes the venue set and thresholds without losing counts;
an invalid one is rejected with a clear log line and the old one stays in force."""

from __future__ import annotations

import dataclasses
import re
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.service.reload import plan_reload
from monitor.simulator import Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from monitor.store.config import StoreConfig
from monitor.store.factory import open_store
from tests.fixtures.redis import RedisServer
from tests.support.service import Daemon, NotifyListener, eventually, metric_sum

VENUES = ("binance-usdm", "bybit", "okx")


def venues_toml(enabled: dict[str, bool], whale_usd: float) -> str:
    lines = [f"[detector]\nwhale_usd = {whale_usd}\n"]
    for venue, on in enabled.items():
        lines.append(f"[venues.{venue}]\nenabled = {'true' if on else 'false'}\n")
    return "\n".join(lines)


def enabled_keys() -> tuple[str, ...]:
    return tuple(f"LIQMON_VENUES__{v.upper().replace('-', '_')}__ENABLED" for v in VENUES)


# -- the plan (pure) ------------------------------------------------------------------------


def test_the_plan_names_what_changes_and_what_waits_for_a_restart() -> None:
    old = load_config(None, env={"LIQMON_VENUES__OKX__ENABLED": "false"})
    new = load_config(None, env={
        "LIQMON_VENUES__BYBIT__ENABLED": "false",
        "LIQMON_VENUES__BINANCE_USDM__SILENCE_LIMIT_SECONDS": "30",
        "LIQMON_DETECTOR__WHALE_USD": "123456",
        "LIQMON_STORE__BACKEND": "redis",
        "LIQMON_FEED__QUEUE_SIZE": "5",
    })
    plan = plan_reload(old, new)
    assert (plan.added, plan.removed) == (("okx",), ("bybit",))
    assert plan.restarted == ("binance-usdm",)
    assert plan.detector_changed
    assert plan.needs_restart == ("[store]", "feed.queue_size")
    # What needs a restart keeps its running value; the rest is the new config.
    assert plan.config.store == old.store
    assert plan.config.feed.queue_size == old.feed.queue_size
    assert plan.config.detector.whale_usd == 123456
    same = plan_reload(old, old)
    assert (same.added, same.removed, same.restarted, same.detector_changed) == ((), (), (),
                                                                                  False)


def test_a_feed_timing_change_restarts_every_feed() -> None:
    old = load_config(None, env={})
    new = dataclasses.replace(old, feed=dataclasses.replace(old.feed, backoff_max_seconds=5.0))
    assert set(plan_reload(old, new).restarted) == set(old.enabled_venues())


# -- the daemon -------------------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    scenario = scripted_scenario(VENUES, duration_seconds=3600, every_seconds=1.0)
    async with Simulator(scenario, speed=5.0, venues=VENUES) as s:
        yield s


async def test_sighup_changes_venues_and_thresholds_keeping_counts_and_rejects_a_bad_file(
    tmp_path: Path, sim: Simulator, redis_server: RedisServer
) -> None:
    config = tmp_path / "liqmon.toml"
    config.write_text(venues_toml({"binance-usdm": True, "bybit": True, "okx": False}, 5e6))
    listener = NotifyListener(abstract=f"liqmon-reload-{time.monotonic_ns()}")
    listener.start()
    store_config = StoreConfig(backend="redis", url=redis_server.url, key_prefix="reload")
    daemon = Daemon(tmp_path, sim, {
        "NOTIFY_SOCKET": listener.address,
        "LIQMON_STORE__BACKEND": "redis",
        "LIQMON_STORE__URL": redis_server.url,
        "LIQMON_STORE__KEY_PREFIX": "reload",
    }, config=config, without=enabled_keys())
    try:
        await daemon.start()
        await listener.wait_for("READY", "1")

        async def count(venue: str) -> float:
            return metric_sum(await daemon.scrape(), "liqmon_liquidations_total", venue=venue)

        def grows(venue: str, than: float = 0.0) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return await count(venue) > than
            return check

        await eventually(grows("binance-usdm"), "counting binance-usdm")
        await eventually(grows("bybit"), "counting bybit")
        assert await count("okx") == 0
        binance_before, bybit_before = await count("binance-usdm"), await count("bybit")

        # A valid change: bybit off, okx on, a new whale threshold.
        config.write_text(venues_toml({"binance-usdm": True, "bybit": False, "okx": True}, 2e6))
        daemon.signal(signal.SIGHUP)
        await daemon.wait_log("configuration reloaded: venues added okx, removed bybit, "
                              "restarted none; detector thresholds updated")
        await eventually(grows("okx"), "counting okx after the reload")
        scrape = await daemon.scrape()
        assert 'liqmon_feed_connected{venue="bybit"}' not in scrape  # not a feed that is down
        assert metric_sum(scrape, "liqmon_liquidations_total", venue="bybit") >= bybit_before
        bybit_after = metric_sum(scrape, "liqmon_liquidations_total", venue="bybit")
        await eventually(grows("binance-usdm", binance_before), "binance-usdm still counting")

        # An invalid file: rejected, named, and the running config stays.
        config.write_text(venues_toml({"binance-usdm": True, "okx": True}, 2e6)
                          .replace("whale_usd = 2000000.0", 'whale_usd = "lots"'))
        before_bad = time.monotonic()
        daemon.signal(signal.SIGHUP)
        await daemon.wait_log("reload rejected, keeping the running configuration")
        assert re.search(r"config key 'detector\.whale_usd': got 'lots', expected a number",
                         daemon.log())
        rejected = await listener.wait_for("READY", "1", since=before_bad)
        assert "last reload rejected" in rejected.fields["STATUS"]
        okx_then = await count("okx")
        await eventually(grows("okx", okx_then), "okx still counting")
        assert (await daemon.get("/readyz")).status_code == 200
        assert metric_sum(await daemon.scrape(), "liqmon_liquidations_total",
                          venue="bybit") == bybit_after

        daemon.signal(signal.SIGTERM)
        assert await daemon.wait() == 0
        counted = int(re.findall(r"stopped: (\d+) liquidations counted", daemon.log())[-1])
        assert "could not be written" not in daemon.log()
    finally:
        await daemon.stop()
        listener.close()
    # Everything counted before and after both reloads is in the store, bybit's included.
    store = await open_store(store_config)
    try:
        rows = await store.totals(1440, by=("venue",), now_ms=int((time.time() + 3600) * 1000))
    finally:
        await store.aclose()
    stored = {r.venue: r.count for r in rows}
    assert sum(stored.values()) == counted
    assert set(stored) == {"binance-usdm", "bybit", "okx"}

