"""``liqmon simulate --loop`` keeps playing the scenario until it is stopped."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from monitor.cli.simulate import _simulate
from monitor.simulator.scenarios import build_scenario
from tests.support.ports import free_port
from tests.support.timing import T


@pytest.mark.parametrize("loop", [True, False])
async def test_simulate_loop_keeps_looping_until_stopped(loop: bool) -> None:
    # calm for 60 market seconds at 600x: one pass is 0.1 s of wall time.
    scenario = build_scenario("calm", seed=1, venues=("bybit",), duration_seconds=60)
    args = argparse.Namespace(speed=600.0, host="127.0.0.1", port=free_port(), loop=loop,
                              clock="wall",
                              ground_truth=None, sent=None)
    stop = asyncio.Event()
    task = asyncio.create_task(_simulate(args, scenario, None, stop))
    # Looping: still playing after ten passes. Not looping: done after its one pass, which
    # a loaded machine may take longer than a second to play.
    await asyncio.wait({task}, timeout=(1.0 if loop else 10.0) * T)
    assert task.done() is not loop
    stop.set()
    assert await asyncio.wait_for(task, 5 * T) == 0
