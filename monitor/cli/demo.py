"""``liqmon demo``: the simulator and the daemon in one process, on a compressed crash.

The daemon is the real one with the venues pointed at the simulator, its own instrument
cache (a temporary directory: the simulator's short lists must never reach the cache a real
daemon reads), and a metrics port of its own (a free one by default, so a daemon running on
the host is never in the way). The narrator tells the night on the market clock.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time

from monitor.app import App
from monitor.cli.fmt import elapsed, usd
from monitor.cli.narrator import Narrator
from monitor.cli.tape import TapeFilter, TapePrinter
from monitor.clock import SystemClock
from monitor.config import Config, load_config
from monitor.signals import exit_code, signal_handlers
from monitor.simulator.faults import Faults
from monitor.simulator.scenarios.model import Scenario
from monitor.simulator.server import Simulator

log = logging.getLogger(__name__)

# The scenario clock waits this long at most for the daemon to subscribe everywhere.
DEMO_SUBSCRIBE_WAIT_SECONDS = 30.0


class MarketClock(SystemClock):
    """Wall time that follows the simulator's market clock; monotonic time stays real.

    The demo plays a three-hour night in a minute or two: the daemon's timestamps and the
    detector's windows follow market time, while timeouts and backoff stay in real seconds.
    Once the scenario has played, market time keeps running at the same speed, so a cascade
    still open at the end cools down and resolves.
    """

    def __init__(self, sim: Simulator, start: float) -> None:
        self._sim = sim
        self._start = start
        self._last_market = -1.0
        self._last_changed = time.monotonic()

    def wall(self) -> float:
        market = self._sim.market_seconds()
        now = time.monotonic()
        if market != self._last_market:
            self._last_market, self._last_changed = market, now
        # After the scenario's end the player no longer moves market time: run it on at the
        # same speed from the last value (never before play starts, when it also stands).
        extra = (now - self._last_changed) * self._sim.speed if self._sim.finished else 0.0
        return (self._sim.start_wall or self._start) + market + extra


async def run_demo(config: Config, args: argparse.Namespace) -> int:
    """Simulator and daemon in one process; at the end, what was sent beside what counted."""
    from monitor.simulator.faults import parse_faults
    from monitor.simulator.scenarios import build_scenario

    scenario = build_scenario(args.scenario)
    faults = parse_faults(args.faults) if args.faults else None
    start = time.time()
    stop = asyncio.Event()
    quiet_demo_logs(args.log_level)
    with signal_handlers(stop) as received, tempfile.TemporaryDirectory(
            prefix="liqmon-demo-") as cache:
        return exit_code(await _demo(args, scenario, faults, start, stop, cache), received)


def demo_env(sim: Simulator, args: argparse.Namespace, cache_dir: str) -> dict[str, str]:
    """The daemon takes the same config and environment as `run`, with the venues pointed at
    the simulator: the environment wins over the file, and the demo's settings over both."""
    env = {**os.environ, **sim.config_overrides()}
    # Evaluate about once a market minute: at 120x that is twice a second.
    env.setdefault("LIQMON_DETECTOR__EVAL_INTERVAL_SECONDS",
                   str(max(0.05, min(1.0, 60.0 / args.speed))))
    # The simulator's instrument lists must never reach the cache a real daemon reads.
    env["LIQMON_FEED__INSTRUMENT_CACHE_DIR"] = cache_dir
    if args.metrics_port is None:
        env["LIQMON_METRICS__ENABLED"] = "false"
    return env


async def _demo(
    args: argparse.Namespace, scenario: Scenario, faults: tuple[Faults, ...] | None,
    start: float, stop: asyncio.Event, cache_dir: str,
) -> int:
    async with Simulator(scenario, speed=args.speed, faults=faults, start_wall=start,
                         wait_for_subscribers=DEMO_SUBSCRIBE_WAIT_SECONDS) as sim:
        daemon_config = load_config(getattr(args, "config", None),
                                    env=demo_env(sim, args, cache_dir))
        app = App(daemon_config, clock=MarketClock(sim, start),
                  metrics_port=args.metrics_port)
        narrator = Narrator(app, sim, start)
        app.on_alert.append(narrator.alert)
        app.on_liquidation.append(narrator.liquidation)
        if args.tape is not None:
            app.on_liquidation.append(TapePrinter(TapeFilter(min_usd=args.tape), origin=start))
        print(f"liqmon demo: {scenario.name}, {elapsed(scenario.duration_seconds)} of market "
              f"time at {args.speed:g}x ({scenario.duration_seconds / args.speed:.0f} s); "
              "times below are the market clock", file=sys.stderr)

        async def announce() -> None:
            # The port is known once the endpoint listens (0 in the config picks one).
            await app.ready.wait()
            if app.server is not None:
                host = daemon_config.metrics.host
                host = ("127.0.0.1" if host in ("0.0.0.0", "", "::")
                        else f"[{host}]" if ":" in host else host)
                print(f"liqmon demo: open the live page at http://{host}:{app.server.port}/",
                      file=sys.stderr, flush=True)

        async def finish() -> None:
            await app.ready.wait()
            narrator.started(app.server.port if app.server is not None else None)
            try:
                async with asyncio.timeout(args.duration):
                    await narrator.play_to_the_end()
            except TimeoutError:
                pass
            stop.set()

        ender = asyncio.create_task(finish())
        herald = asyncio.create_task(announce())
        try:
            code = await app.run(stop)
        finally:
            ender.cancel()
            herald.cancel()
        sent = sim.sent()
        table = {(venue, side): (sent.get(venue, side).count, sent.get(venue, side).usd)
                 for venue in sent.venues() for side in ("long", "short")}
        print(render_comparison(table, app), file=sys.stdout)
    return code


def quiet_demo_logs(level: str | None) -> None:
    """Connections, instrument fetches and simulated HTTP requests are noise in a demo; the
    narrator says what matters. ``--log-level`` brings them back."""
    if level is not None:
        return
    for name in ("monitor.simulator", "monitor.feed", "monitor.app", "monitor.service",
                 "monitor.store", "monitor.notify"):
        logging.getLogger(name).setLevel(logging.ERROR if name == "monitor.app"
                                         else logging.WARNING)


def render_comparison(sent: dict[tuple[str, str], tuple[int, float]], app: App) -> str:
    counted = app.ingest.counted if app.ingest is not None else {}
    keys = sorted(set(sent) | {k for k in counted})
    lines = [f"{'venue':<15} {'side':<6} {'sent':>8} {'counted':>8} {'sent USD':>10} "
             f"{'counted USD':>12}"]
    for venue, side in keys:
        s_count, s_usd = sent.get((venue, side), (0, 0.0))
        c = counted.get((venue, side), [0, 0.0])
        lines.append(f"{venue:<15} {side:<6} {s_count:>8} {int(c[0]):>8} {usd(s_usd):>10} "
                     f"{usd(c[1]):>12}")
    cascades = [a for a in app.alerts if hasattr(a, "status")]
    lines.append("")
    lines.append(f"{len(cascades)} cascade transitions, "
                 f"{len(app.alerts) - len(cascades)} whale alerts")
    return "\n".join(lines)
