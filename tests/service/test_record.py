"""Long-running recording from `liqmon run` ([record] enabled): hourly gzip files in the
configured directory, old ones pruned, and what was recorded replays with `liqmon replay`."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from monitor.feed.recorder import read_recording
from monitor.simulator import Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from tests.support.daemon import running_daemon, wait_until
from tests.support.paths import REPO
from tests.support.timing import T

VENUES = ("bybit",)


async def test_the_daemon_keeps_a_rotating_gzip_archive_that_replays(tmp_path: Path) -> None:
    archive = tmp_path / "recordings"
    archive.mkdir()
    old = archive / "liqmon-20200101T00.jsonl.gz"
    old.write_bytes(b"")
    three_days_ago = time.time() - 3 * 86400
    os.utime(old, (three_days_ago, three_days_ago))
    kept = archive / "notes.txt"  # not a recording: never touched
    kept.write_text("mine")
    env = {"LIQMON_RECORD__ENABLED": "true", "LIQMON_RECORD__DIRECTORY": str(archive),
           "LIQMON_RECORD__ROTATION": "hourly", "LIQMON_RECORD__GZIP": "true",
           "LIQMON_RECORD__RETENTION_DAYS": "1"}
    scenario = scripted_scenario(VENUES, duration_seconds=600, every_seconds=0.2)
    async with Simulator(scenario, speed=5.0, venues=VENUES) as sim:
        async with running_daemon(sim, tmp_path, env) as app:
            await wait_until(lambda: app.ingest is not None and app.ingest.counted_total >= 20,
                             20 * T)
            assert app.recorder is not None
        counted = app.ingest.counted_total if app.ingest is not None else 0
    files = sorted(archive.glob("liqmon-*.jsonl.gz"))
    assert files and all(re.fullmatch(r"liqmon-\d{8}T\d{2}\.jsonl\.gz", f.name) for f in files)
    assert not old.exists() and kept.read_text() == "mine"
    frames = [frame for f in files for frame in read_recording(f)]
    assert frames and {f.venue for f in frames} == {"bybit"}
    assert app.recorder is not None and app.recorder.frames_written == len(frames)

    # The archive replays through the same dialect -> ingest path, to the same count.
    replayed = 0
    for f in files:
        result = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "monitor", "replay", "--simulated", str(f)],
            cwd=REPO, capture_output=True, text=True, timeout=60 * T,
            env={k: v for k, v in os.environ.items() if not k.startswith("LIQMON_")})
        assert result.returncode == 0, result.stderr
        match = re.search(r"(\d+) frames, (\d+) liquidations", result.stdout)
        assert match, result.stdout
        replayed += int(match.group(2))
    assert replayed == counted > 0
