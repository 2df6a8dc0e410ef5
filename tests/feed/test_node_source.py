"""The hyperliquid-node source through the daemon: a file transport on the shared event path."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.app import App
from monitor.clock import SystemClock
from monitor.config import load_config
from monitor.errors import ConfigError
from monitor.venues import VENUES
from tests.support.daemon import wait_until
from tests.support.node_fills import LIQUIDATED, block, fill
from tests.support.timing import T


class FillTimeClock(SystemClock):
    """Wall time running on from the recorded fills' date: ingest refuses events older than
    the dedupe window (48 h), and these fills are from June 2026."""

    def __init__(self) -> None:
        self._offset = time.time() - 1_782_636_233.0

    def wall(self) -> float:
        return time.time() - self._offset


def append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def only_node(path: Path | None, **extra: str) -> dict[str, str]:
    env = {f"LIQMON_VENUES__{v.upper().replace('-', '_')}__ENABLED": "false" for v in VENUES}
    env["LIQMON_VENUES__HYPERLIQUID_NODE__ENABLED"] = "true"
    env["LIQMON_METRICS__PORT"] = "0"
    if path is not None:
        env["LIQMON_VENUES__HYPERLIQUID_NODE__OPTIONS"] = f'{{path = "{path}"}}'
    env.update(extra)
    return env


async def test_node_fills_are_counted_and_silence_is_reported(tmp_path: Path) -> None:
    hour = tmp_path / "hourly" / "20260628"
    hour.mkdir(parents=True)
    (hour / "8").write_text(block([LIQUIDATED, fill(tid=1)]) + "\n")  # before start: skipped
    config = load_config(None, env=only_node(
        tmp_path, LIQMON_VENUES__HYPERLIQUID_NODE__SILENCE_LIMIT_SECONDS=str(1.0 * T)))
    app = App(config, registry=CollectorRegistry(), clock=FillTimeClock())
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    await app.ready.wait()
    try:
        # The follower has found the file and its end (not assumed after 0.3 s: a line
        # appended before that would be taken for history and skipped).
        follower = app.feeds["hyperliquid-node"].follower  # type: ignore[attr-defined]
        await wait_until(lambda: follower.position is not None, 5 * T)
        line = block([LIQUIDATED, fill(tid=2, px="100", sz="3")], number=2) + "\n"
        await asyncio.to_thread(append, hour / "8", line)
        await wait_until(lambda: app.ingest is not None and app.ingest.counted, 3 * T)
        assert app.ingest is not None
        assert app.ingest.counted == {("hyperliquid-node", "long"): [1, 300.0]}
        labels = {"venue": "hyperliquid-node"}
        await wait_until(lambda: app.registry.get_sample_value(
            "liqmon_feed_reconnects_total", {**labels, "reason": "stale"}) == 1, 3 * T)
        assert app.registry.get_sample_value("liqmon_feed_connected", labels) == 0
        assert app.registry.get_sample_value("liqmon_frames_total", labels) == 1
    finally:
        stop.set()
        await task


def test_node_source_without_a_path_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"options\.path"):
        load_config(None, env=only_node(None))
