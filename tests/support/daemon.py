"""Run the daemon (App) against a running simulator, in-process, for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.app import App
from monitor.cli.demo import MarketClock
from monitor.clock import Clock
from monitor.config import load_config
from monitor.simulator.server import Simulator
from tests.support.timing import T


def daemon_env(sim: Simulator, cache_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        **sim.config_overrides(),
        "LIQMON_METRICS__PORT": "0",
        "LIQMON_FEED__INSTRUMENT_CACHE_DIR": str(cache_dir),
        "LIQMON_FEED__BACKOFF_INITIAL_SECONDS": str(0.05 * T),
        "LIQMON_FEED__BACKOFF_MAX_SECONDS": str(0.5 * T),
        "LIQMON_FEED__OPEN_TIMEOUT_SECONDS": str(5 * T),
        "LIQMON_FEED__ACK_TIMEOUT_SECONDS": str(5 * T),
        # Hyperliquid's polite subscribe spacing (0.25 s per frame) is for the real venue.
        "LIQMON_VENUES__HYPERLIQUID__OPTIONS": "{subscribe_interval_seconds = 0.01}",
    }
    env.update(extra)
    return env


@asynccontextmanager
async def running_daemon(
    sim: Simulator, cache_dir: Path, env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[App]:
    """The daemon on ``sim``'s market clock (or ``clock``), from ready until the block ends."""
    config = load_config(None, env={**daemon_env(sim, cache_dir), **(env or {})})
    app = App(config, clock=clock or MarketClock(sim, sim.start_wall or 0.0),
              registry=CollectorRegistry())
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    ready = asyncio.create_task(app.ready.wait())
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, 30 * T)


async def wait_until(
    predicate: object, timeout: float, interval: float = 0.05  # noqa: ASYNC109
) -> None:
    """Poll ``predicate()`` until true; fail with a clear message after ``timeout`` seconds."""
    assert callable(predicate)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout:.1f}s")
        await asyncio.sleep(interval)


def sample(app: App, name: str, labels: Mapping[str, str]) -> float:
    value = app.registry.get_sample_value(name, dict(labels))
    return 0.0 if value is None else value


def counted(app: App) -> dict[tuple[str, str], tuple[int, float]]:
    assert app.ingest is not None
    return {key: (int(v[0]), round(v[1], 2)) for key, v in app.ingest.counted.items()}


def sent(sim: Simulator) -> dict[tuple[str, str], tuple[int, float]]:
    table = sim.sent()
    result = {}
    for venue in table.venues():
        for side in ("long", "short"):
            totals = table.get(venue, side)
            if totals.count:
                result[(venue, side)] = (totals.count, round(totals.usd, 2))
    return result
