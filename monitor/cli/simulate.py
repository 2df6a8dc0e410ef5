"""``liqmon simulate``: the exchange simulator alone, for a daemon started separately.

Events are stamped with the wall clock by default (the night is compressed in rate, never
stamped in the future, so ``stats`` and ``top`` over a daemon fed by it see every venue), and
trade ids are unique per run (a daemon's dedupe never drops a restarted simulator's events).
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import sys
import time
from pathlib import Path

import orjson

from monitor.errors import PortInUse
from monitor.signals import exit_code, signal_handlers
from monitor.simulator.faults import Faults, parse_faults
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.scenarios.model import Scenario
from monitor.simulator.server import Simulator


async def run_simulate(args: argparse.Namespace) -> int:
    scenario = build_scenario(args.scenario)
    faults = parse_faults(args.faults) if args.faults else None
    stop = asyncio.Event()
    with signal_handlers(stop) as received:
        try:
            return exit_code(await _simulate(args, scenario, faults, stop), received)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(args.host, args.port) from None
            raise


async def _simulate(
    args: argparse.Namespace,
    scenario: Scenario,
    faults: tuple[Faults, ...] | None,
    stop: asyncio.Event,
) -> int:
    # Trade ids start at the wall clock in microseconds: unique across restarts.
    async with Simulator(scenario, speed=args.speed, host=args.host, port=args.port,
                         faults=faults, loop_scenario=args.loop,
                         wall_clock=args.clock == "wall",
                         seq_start=int(time.time() * 1e6)) as sim:
        if args.ground_truth:
            sim.write_ground_truth(Path(args.ground_truth))
        print(f"simulating {scenario.name} at {args.speed:g}x on port {sim.port}; "
              "point the daemon at it with:", file=sys.stderr)
        for key, value in sorted(sim.config_overrides().items()):
            print(f"  export {key}={value}", file=sys.stderr)
        print("then run `liqmon run`, `liqmon tail` or `liqmon top` in that shell; "
              "Ctrl-C stops the simulator", file=sys.stderr, flush=True)
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
