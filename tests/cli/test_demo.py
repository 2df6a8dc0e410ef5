"""``liqmon demo``: the simulator and the daemon in one process, as a newcomer runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO
from tests.support.timing import T

ROW = re.compile(r"^(\S+)\s+(long|short)\s+(\d+)\s+(\d+)\s+([\d,.]+)\s+([\d,.]+)$")


def test_demo_shows_the_crash_and_counts_what_the_simulator_sent(tmp_path: Path) -> None:
    env = {**os.environ, "LIQMON_METRICS__PORT": "0", "XDG_CACHE_HOME": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "demo", "--scenario", "feb-2026", "--speed", "1200"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240 * T, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [ROW.match(line.strip()) for line in done.stdout.splitlines()]
    table = {(m[1], m[2]): (m[3], m[4], m[5], m[6]) for m in rows if m}
    venues = {venue for venue, _side in table}
    assert len(venues) == 12, done.stdout  # every websocket venue of the scenario
    for key, (sent, counted, sent_usd, counted_usd) in table.items():
        assert sent == counted and sent_usd == counted_usd, (key, done.stdout)
    longs = sum(float(v[2].replace(",", "")) for (_venue, side), v in table.items()
                if side == "long")
    total = sum(float(v[2].replace(",", "")) for v in table.values())
    assert longs / total > 0.9  # the night was 94% longs
    assert "cascade" in done.stderr.lower()  # the crash arrived: the cascade was logged
