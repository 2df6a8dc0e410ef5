"""`liqmon top`: the view renders from a running daemon's Redis store and /metrics, in a
pseudo-terminal as over SSH; and its parts (metrics parsing, rendering) without one."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from monitor.cli.top import TopData, default_metrics_url, parse_metrics, redact, render
from monitor.config import load_config
from monitor.events import Completeness, Liquidation, PositionSide
from monitor.metrics import Metrics
from monitor.simulator import Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from monitor.store.base import TotalsRow
from tests.cli.commands import run_in_tmux
from tests.fixtures.redis import RedisServer
from tests.support.paths import REPO
from tests.support.service import Daemon, eventually, metric_sum
from tests.support.timing import T

VENUES = ("binance-usdm", "bybit")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")
CELLS = r"[\s│]+"
# What the live view shows once it has refreshed at least twice (the second view knows frame
# rates) with money in the last minute, from the store; and the same at 80x24.
LIVE = ("liqmon top", "Last minute", "Last hour", "Top coins, last hour",
        "Largest liquidations, last hour", "Feeds", "Cascade:", "binance-usdm", "bybit",
        "redis redis://127.0.0.1")
LIVE_RATES = re.compile(rf"binance-usdm{CELLS}up{CELLS}\d+{CELLS}\d+\.\d")
LIVE_MONEY = re.compile(rf"binance-usdm{CELLS}\$[\d,.]+[kM]?{CELLS}\$")
SMALL = ("liqmon top", "binance-usdm", "bybit", "1m long", "1h short", "Cascade:",
         "Largest, last hour")
SMALL_RATES = re.compile(r"binance-usdm\s+up\s+\d+\.\d\s+\d+s\s+\$[\d.]+[kM]?\s")


def screen_of(raw: bytes) -> str:
    return ANSI.sub("", raw.decode(errors="replace"))


def live_view_shown(screen: str) -> bool:
    return (all(expected in screen for expected in LIVE) and bool(LIVE_RATES.search(screen))
            and bool(LIVE_MONEY.search(screen)))


def small_view_shown(screen: str) -> bool:
    return all(expected in screen for expected in SMALL) and bool(SMALL_RATES.search(screen))


def text_of(renderable: object, width: int = 160) -> str:
    console = Console(width=width, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


# -- parts ------------------------------------------------------------------------------------


def test_metrics_page_to_feed_health_and_cascade_state() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["bybit", "okx"], ["BTC"], process_metrics=False)
    metrics.connections("bybit", 2, 2)
    metrics.connections("okx", 0, 1)
    for _ in range(5):
        metrics.frame("bybit", 1_700_000_000.0)
    metrics.reconnect("okx", "stale")
    metrics.reconnect("okx", "rotation")  # planned: not trouble
    metrics.cascade_state([("global", "long", "critical")])
    data = TopData(at=1_700_000_003.0, store_label="redis x", metrics_url="u")
    parse_metrics(generate_latest(registry).decode(), data)
    bybit, okx = data.feeds
    assert (bybit.venue, bybit.connected, bybit.subscribed, bybit.frames_total) == (
        "bybit", True, 2, 5.0)
    assert (okx.connected, okx.reconnects_total, okx.last_frame_at) == (False, 1.0, 0.0)
    assert data.active == [("global", "long", 2)]
    shown = text_of(render(data))
    assert "Cascade: global long critical" in shown
    assert "DOWN" in shown and "3.0s ago" in shown and "never" in shown


def test_with_the_memory_store_the_totals_since_start_come_from_metrics() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["bybit"], ["BTC"], process_metrics=False)
    for i in range(3):
        metrics.liquidation(Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.SHORT, 6e4,
                                        1.0, 60_000.0, 1_700_000_000_000 + i, 1.7e9,
                                        Completeness.FULL, f"id-{i}"))
    data = TopData(at=1.7e9, store_label="memory (inside the daemon)", metrics_url="u")
    parse_metrics(generate_latest(registry).decode(), data)
    assert data.since_start == {("bybit", "short"): (3.0, 180_000.0)}
    shown = text_of(render(data))
    assert "The memory store lives inside the daemon" in shown and "Since start" in shown
    assert re.search(r"bybit\s+│\s+\$0\s+│\s+\$180k\s+│\s+\$180k\s+│\s+3", shown), shown


def test_windows_coins_and_largest_render() -> None:
    liq = Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 60000.0, 25.0, 1.5e6,
                      1_700_000_000_000, 1_700_000_000.1, Completeness.FULL, "id-1")
    rows = [TotalsRow("bybit", None, "long", 1.5e6, 3, 0.0, 1.5e6, liq, "full"),
            TotalsRow("okx", None, "short", 2500.0, 1, 0.0, 2500.0, None, "full")]
    coins = [TotalsRow(None, "BTC", "long", 1.5e6, 3, 0.0, 1.5e6, liq, "full")]
    data = TopData(at=1_700_000_030.0, store_label="redis redis://:***@h:6379/0",
                   metrics_url="u", minute=rows, hour=rows, coins=coins, largest=[liq],
                   metrics_error="ConnectError: refused")
    shown = text_of(render(data))
    for expected in ("Last minute", "Last hour", "Top coins, last hour", "$1.50M", "$2.50k",
                     "Largest liquidations, last hour", "22:13:20", "metrics unreachable",
                     "Cascade: unknown"):
        assert expected in shown, expected
    assert redact("redis://user:secret@h:6379/0") == "redis://user:***@h:6379/0"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"
    config = load_config(None, env={"LIQMON_METRICS__HOST": "0.0.0.0"})
    assert default_metrics_url(config) == "http://127.0.0.1:10841/metrics"


# -- against a running daemon -------------------------------------------------------------------


def read_pty(fd: int, seconds: float, until: Callable[[bytes], bool] | None = None) -> bytes:
    """What ``fd`` gives until the other side closes, ``until(output)`` holds or ``seconds``
    pass."""
    out = b""
    deadline = time.monotonic() + seconds
    os.set_blocking(fd, False)
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            time.sleep(0.05)
            continue
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        out += chunk
        if until is not None and until(out):
            break
    return out


def run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run ``args`` on a 160x60 pseudo-terminal until the live view has refreshed (or
    30 s x T pass), then Ctrl-C it. Not for a fixed time: on a loaded machine the start
    alone can take most of the 4 s this once waited."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 60, 160, 0, 0))
    top = subprocess.Popen(args, cwd=REPO, env=env, stdin=slave, stdout=slave, stderr=slave,
                           close_fds=True)
    os.close(slave)
    try:
        raw = read_pty(master, 30 * T, lambda out: live_view_shown(screen_of(out)))
        top.send_signal(signal.SIGINT)
        raw += read_pty(master, 10 * T)  # until it has left the alternate screen and exited
        return top.wait(10 * T), raw
    finally:
        if top.poll() is None:
            top.kill()
            top.wait()
        os.close(master)


async def test_top_renders_a_running_daemon_in_a_pseudo_terminal(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    store_env = {"LIQMON_STORE__BACKEND": "redis", "LIQMON_STORE__URL": redis_server.url,
                 "LIQMON_STORE__KEY_PREFIX": "top"}
    # Speed 1: the venues' timestamps are wall time, so the last minute holds them.
    scenario = scripted_scenario(VENUES, duration_seconds=3600, every_seconds=0.25)
    async with Simulator(scenario, speed=1.0, venues=VENUES) as sim:
        daemon = Daemon(tmp_path, sim, store_env)
        try:
            await daemon.start()
            await daemon.wait_up()

            async def counting_everywhere() -> bool:
                scrape = await daemon.scrape()
                return all(metric_sum(scrape, "liqmon_liquidations_total", venue=v) > 0
                           for v in VENUES)

            await eventually(counting_everywhere, "counting on every venue")
            env = {**daemon.env, "TERM": "xterm-256color", "COLUMNS": "160", "LINES": "60"}
            args = [sys.executable, "-m", "monitor", "top", "--interval", "0.5"]

            # Piped (no terminal): one view, then exit 0.
            once = await asyncio.to_thread(
                subprocess.run, args, cwd=REPO, env=env, capture_output=True, text=True,
                timeout=30 * T)
            assert once.returncode == 0, once.stderr
            assert "Last minute" in once.stdout and "binance-usdm" in once.stdout

            # In a pseudo-terminal: the live view, refreshed, until Ctrl-C.
            code, raw = await asyncio.to_thread(run_in_pty, args, env)
            # At 80x24, as over a small SSH window: every venue, whole numbers, the cascade.
            small = await asyncio.to_thread(run_in_tmux, args, daemon.env, small_view_shown)
        finally:
            await daemon.stop()
    screen = screen_of(raw)
    assert code == 130, screen[-2000:]  # Ctrl-C
    assert "Traceback" not in screen, screen[-3000:]
    assert raw.count(b"\x1b[?1049h") == 1  # the alternate screen, left again at Ctrl-C
    assert b"\x1b[?1049l" in raw
    for expected in LIVE:
        assert expected in screen, (expected, screen[-3000:])
    # Refreshed at least twice: the second view knows frame rates.
    assert LIVE_RATES.search(screen), screen[-3000:]
    # Money in the last minute, from the store.
    assert LIVE_MONEY.search(screen), screen[-3000:]

    lines = small.splitlines()
    assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), small
    for expected in SMALL:
        assert expected in small, (expected, small)
    assert "…" not in small and "..." not in small, small  # no number cut short
    assert SMALL_RATES.search(small), small
