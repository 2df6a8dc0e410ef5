"""``liqmon run``, ``liqmon demo``, ``liqmon simulate`` and ``liqmon record``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from pathlib import Path

import orjson

from monitor.app import App, signal_handlers
from monitor.clock import SystemClock
from monitor.config import Config, load_config
from monitor.feed.recorder import Recorder
from monitor.simulator.faults import Faults
from monitor.simulator.scenarios.model import Scenario
from monitor.simulator.server import Simulator

log = logging.getLogger(__name__)

# After the scenario's last frame the daemon gets this long to count what is in flight.
DEMO_SETTLE_SECONDS = 3.0
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


async def run_record(config: Config, out: Path, duration: float | None) -> int:
    """The daemon with a recorder on every frame, into one file."""
    recorder = Recorder(path=out, gzip_files=out.suffix == ".gz")
    stop = asyncio.Event()
    if duration is not None:
        asyncio.get_running_loop().call_later(duration, stop.set)
    try:
        with signal_handlers(stop):
            return await App(config, tap=recorder).run(stop)
    finally:
        recorder.close()
        print(f"{recorder.frames_written} frames recorded to {out}", file=sys.stderr)


async def run_simulate(args: argparse.Namespace) -> int:
    from monitor.simulator.faults import parse_faults
    from monitor.simulator.scenarios import build_scenario

    scenario = build_scenario(args.scenario)
    faults = parse_faults(args.faults) if args.faults else None
    stop = asyncio.Event()
    with signal_handlers(stop):
        return await _simulate(args, scenario, faults, stop)


async def _simulate(
    args: argparse.Namespace,
    scenario: Scenario,
    faults: tuple[Faults, ...] | None,
    stop: asyncio.Event,
) -> int:
    async with Simulator(scenario, speed=args.speed, host=args.host, port=args.port,
                         faults=faults, loop_scenario=args.loop) as sim:
        if args.ground_truth:
            sim.write_ground_truth(Path(args.ground_truth))
        print(f"simulating {scenario.name} at {args.speed:g}x on port {sim.port}; "
              "point the daemon at it with:", file=sys.stderr)
        for key, value in sorted(sim.config_overrides().items()):
            print(f"  export {key}={value}", file=sys.stderr)
        finished = asyncio.create_task(sim.wait_finished())
        stopped = asyncio.create_task(stop.wait())
        # With --loop the scenario starts again when it ends: only a stop ends it.
        await asyncio.wait({stopped} if args.loop else {finished, stopped},
                           return_when=asyncio.FIRST_COMPLETED)
        for task in (finished, stopped):
            task.cancel()
        if args.sent:
            await asyncio.to_thread(
                Path(args.sent).write_bytes, orjson.dumps(sim.sent().to_json()))
    return 0


async def run_demo(config: Config, args: argparse.Namespace) -> int:
    """Simulator and daemon in one process; at the end, what was sent beside what counted."""
    from monitor.simulator.faults import parse_faults
    from monitor.simulator.scenarios import build_scenario

    scenario = build_scenario(args.scenario)
    faults = parse_faults(args.faults) if args.faults else None
    start = time.time()
    stop = asyncio.Event()
    with signal_handlers(stop):
        return await _demo(config, args, scenario, faults, start, stop)


async def _demo(
    config: Config, args: argparse.Namespace, scenario: Scenario, faults: tuple[Faults, ...] | None,
    start: float, stop: asyncio.Event,
) -> int:
    async with Simulator(scenario, speed=args.speed, faults=faults, start_wall=start,
                         wait_for_subscribers=DEMO_SUBSCRIBE_WAIT_SECONDS) as sim:
        # The daemon takes the same config and environment as `run`, with the venues pointed
        # at the simulator: the environment wins over the file, and the simulator over both.
        env = {**os.environ, **sim.config_overrides()}
        # Evaluate about once a market minute: at 120x that is twice a second.
        env.setdefault("LIQMON_DETECTOR__EVAL_INTERVAL_SECONDS",
                       str(max(0.05, min(1.0, 60.0 / args.speed))))
        daemon_config = load_config(getattr(args, "config", None), env=env)
        app = App(daemon_config, clock=MarketClock(sim, start))
        # Every simulated HTTP request is logged at INFO by the simulator: noise in a demo.
        logging.getLogger("monitor.simulator").setLevel(logging.WARNING)
        print(f"liqmon demo: scenario {scenario.name} at {args.speed:g}x "
              f"({scenario.duration_seconds / args.speed:.0f} s), simulator on port {sim.port}, "
              f"metrics on http://{daemon_config.metrics.host}:{daemon_config.metrics.port}"
              "/metrics", file=sys.stderr)

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
            if args.duration is not None:
                await asyncio.sleep(args.duration)
            else:
                await sim.wait_finished()
                await asyncio.sleep(DEMO_SETTLE_SECONDS)
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


def render_comparison(sent: dict[tuple[str, str], tuple[int, float]], app: App) -> str:
    counted = app.ingest.counted if app.ingest is not None else {}
    keys = sorted(set(sent) | {k for k in counted})
    lines = [f"{'venue':<15} {'side':<6} {'sent':>8} {'counted':>8} {'sent USD':>16} "
             f"{'counted USD':>16}"]
    for venue, side in keys:
        s_count, s_usd = sent.get((venue, side), (0, 0.0))
        c = counted.get((venue, side), [0, 0.0])
        lines.append(f"{venue:<15} {side:<6} {s_count:>8} {int(c[0]):>8} {s_usd:>16,.2f} "
                     f"{c[1]:>16,.2f}")
    cascades = [a for a in app.alerts if hasattr(a, "status")]
    lines.append("")
    lines.append(f"{len(cascades)} cascade transitions, "
                 f"{len(app.alerts) - len(cascades)} whale alerts")
    return "\n".join(lines)
