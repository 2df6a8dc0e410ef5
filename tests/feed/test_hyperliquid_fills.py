"""Hyperliquid's vault userFills end to end: live, recorded, replayed and parsed agree.

The daemon records every frame (with the connection that read it) while the simulator
drops its connections, so every reconnect brings a fresh ``isSnapshot`` push repeating
fills already counted. Live counting, ``liqmon replay`` and ``liqmon parse`` must all count
each liquidation fill once: snapshots are skipped by their flag, never by the wall clock.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.config import Config
from monitor.feed.recorder import read_recording
from monitor.replay import replay
from monitor.simulator.faults import Faults
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from tests.support.daemon import counted, running_daemon, sample, sent, wait_until
from tests.support.timing import T

VENUE = "hyperliquid"


async def test_live_replay_and_parse_count_each_liquidation_fill_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    scenario = build_scenario("calm", seed=11, venues=(VENUE,), duration_seconds=30 * 60)
    faults = Faults(drop_every_seconds=0.8 * T, venues=frozenset({VENUE}))
    recordings = tmp_path / "recordings"
    env = {"LIQMON_RECORD__ENABLED": "true", "LIQMON_RECORD__DIRECTORY": str(recordings),
           "LIQMON_RECORD__GZIP": "false", "LIQMON_RECORD__ROTATION": "none"}
    async with Simulator(scenario, speed=600, venues=(VENUE,), faults=faults,
                         start_wall=time.time(), wait_for_subscribers=10 * T) as sim:
        async with running_daemon(sim, tmp_path, env) as app:
            await sim.wait_finished()
            await wait_until(lambda: counted(app) == sent(sim), 5 * T)
            assert sample(app, "liqmon_feed_reconnects_total",
                          {"venue": VENUE, "reason": "closed"}) >= 2
            live = sum(c for c, _ in counted(app).values())
    assert live > 10

    (path,) = sorted(recordings.rglob("*.jsonl"))
    frames = list(read_recording(path))
    snapshots = [f for f in frames if '"isSnapshot":true' in f.frame]
    assert len({f.connection for f in snapshots}) >= 3  # a fresh snapshot per connection
    assert any('"liquidation"' in f.frame for f in snapshots)

    replayed = await replay(path, Config(), simulated=True)
    assert (replayed.liquidations, replayed.duplicates) == (live, 0)

    text = "".join(f.frame + "\n" for f in frames)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert main(["parse", "--venue", VENUE]) == 0
    out, _err = capsysbinary.readouterr()
    parsed = [json.loads(line) for line in out.splitlines()]
    assert len(parsed) == live
    assert len({p["event_id"] for p in parsed}) == live
    assert {p["completeness"] for p in parsed} == {"backstop"}
