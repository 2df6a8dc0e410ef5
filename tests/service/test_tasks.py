"""Every long-lived task runs in the app's TaskGroup: one that dies takes the daemon down.

The daemon runs as `liqmon run` in a subprocess with one fault injected before it starts
(an outbox worker that raises, or one that returns), so the exit code and the log are the
ones systemd would see.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from monitor.venues import VENUES
from tests.support.timing import T

INJECT = {
    "raises": """
        async def run(self):
            raise RuntimeError("outbox worker exploded")
    """,
    "returns": """
        async def run(self):
            return None
    """,
    # Stops the daemon, then loses the first cancel as a task does when it arrives in the
    # step in which redis-py's wait_for finishes a send (Python 3.11).
    "loses-a-cancel": """
        async def run(self):
            import asyncio, os, signal
            os.kill(os.getpid(), signal.SIGTERM)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                pass
            await asyncio.sleep(3600)
    """,
}


def run_daemon_with(fault: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(f"""
        import sys
        from monitor.notify import outbox
        {textwrap.indent(textwrap.dedent(INJECT[fault]), "        ").strip()}
        outbox.Outbox.run = run
        from monitor.cli import main
        sys.exit(main(["run"]))
    """)
    env = {**os.environ,
           **{f"LIQMON_VENUES__{v.upper().replace('-', '_')}__ENABLED": "false" for v in VENUES},
           "LIQMON_METRICS__PORT": "0",
           "LIQMON_FEED__INSTRUMENT_CACHE_DIR": str(tmp_path / "cache"),
           "LIQMON_NOTIFY__WEBHOOKS__OPS__URL": "http://127.0.0.1:9/hook"}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=30 * T, stdin=subprocess.DEVNULL)


def test_a_worker_that_raises_stops_the_daemon_loudly(tmp_path: Path) -> None:
    done = run_daemon_with("raises", tmp_path)
    assert done.returncode == 1, done.stderr
    assert "task notify-outbox-ops failed; stopping the daemon" in done.stderr
    assert "Traceback" in done.stderr and "outbox worker exploded" in done.stderr
    assert "liqmon is stopping because a task failed" in done.stderr


def test_a_worker_that_returns_stops_the_daemon_loudly(tmp_path: Path) -> None:
    done = run_daemon_with("returns", tmp_path)
    assert done.returncode == 1, done.stderr
    assert "task notify-outbox-ops ended while the daemon was running" in done.stderr


def test_a_task_that_loses_its_cancel_is_cancelled_again_and_the_daemon_exits(
    tmp_path: Path,
) -> None:
    done = run_daemon_with("loses-a-cancel", tmp_path)
    assert done.returncode == 0, done.stderr
    assert ("shutdown: task notify-outbox-ops still runs 1s after it was cancelled; "
            "cancelling it again") in done.stderr
    assert "stopped: 0 liquidations counted since start" in done.stderr
