"""Run the real ``liqmon`` command line in subprocesses, as a user runs it."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from tests.support.timing import T

ROOT = Path(__file__).resolve().parents[2]
EXPORT = re.compile(r"^\s*export (LIQMON_\S+?)=(\S*)$")


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh user: no LIQMON_ settings, caches under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIQMON_")}
    env.update(PYTHONPATH=str(ROOT), XDG_CACHE_HOME=str(tmp_path / "cache"), NO_COLOR="1")
    env.update(extra)
    return env


def liqmon(args: list[str], env: Mapping[str, str], timeout: float = 60.0,
           stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *args], cwd=ROOT, env=dict(env),
                          capture_output=True, text=True, timeout=timeout * T, input=stdin,
                          check=False)


@contextlib.contextmanager
def simulator(env: Mapping[str, str], *args: str) -> Iterator[tuple[subprocess.Popen[str],
                                                                    dict[str, str]]]:
    """``liqmon simulate --port 0 ARGS`` running; yields it and the settings it printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "simulate", "--port", "0", *args], cwd=ROOT,
        env=dict(env), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    settings: dict[str, str] = {}
    try:
        for line in proc.stderr:
            match = EXPORT.match(line)
            if match:
                settings[match[1]] = match[2]
            elif settings:  # the line after the block of exports
                break
        assert settings, "the simulator printed no settings"
        # Keep reading what it logs, so that its stderr pipe never fills.
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        yield proc, settings
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10 * T)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_in_tmux(args: list[str], env: Mapping[str, str], until: Callable[[str], bool],
                width: int = 80, height: int = 24) -> str:
    """Run ``args`` in a tmux window of ``width`` x ``height`` until its screen satisfies
    ``until`` (or 30 s x T pass); that screen. Polled, not a fixed pause: on a loaded machine
    the command's start alone can take seconds."""
    socket_name = f"liqmon-test-{os.getpid()}-{threading.get_ident()}"
    tmux = ["tmux", "-L", socket_name]
    env = {**env, "TERM": "xterm-256color"}
    command = " ".join(shlex.quote(a) for a in args)
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", str(width),
                    "-y", str(height), f"cd {shlex.quote(str(ROOT))} && {command}; sleep 60"],
                   env=env, check=True, timeout=10 * T)
    try:
        deadline = time.monotonic() + 30 * T
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "t"], env=env,
                                    check=True, capture_output=True, text=True,
                                    timeout=10 * T).stdout
            if until(screen) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        subprocess.run([*tmux, "kill-server"], env=env, check=False, timeout=10 * T)
    return screen
