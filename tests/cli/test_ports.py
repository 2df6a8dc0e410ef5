"""Ports: a port in use is one line naming it and the flag, exit 3 (which the systemd unit
does not restart on); side commands listen on nothing unless asked."""

from __future__ import annotations

import configparser
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.commands import ROOT, cli_env, liqmon
from tests.support.timing import T

NO_VENUES = {f"LIQMON_VENUES__{v}__ENABLED": "false" for v in (
    "BINANCE_USDM", "BINANCE_COINM", "BYBIT", "OKX", "HYPERLIQUID", "BITMEX", "DERIBIT",
    "BITGET", "GATE", "KRAKEN_FUTURES", "DYDX", "HTX")}


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", [["run"], ["demo", "--duration", "5"]])
def test_a_port_in_use_is_one_line_and_exit_3(
    command: list[str], busy_port: int, tmp_path: Path
) -> None:
    env = cli_env(tmp_path, **NO_VENUES)
    done = liqmon([*command, "--metrics-port", str(busy_port)], env)
    assert done.returncode == 3, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("liqmon:")]
    assert errors == [f"liqmon: port {busy_port} on 127.0.0.1 is already in use (another "
                      "liqmon?); choose another with --metrics-port (or [metrics] port)"]
    assert "Traceback" not in done.stderr


def test_the_simulator_names_its_own_flag(busy_port: int, tmp_path: Path) -> None:
    done = liqmon(["simulate", "--port", str(busy_port)], cli_env(tmp_path))
    assert done.returncode == 3, done.stderr
    assert f"port {busy_port} on 127.0.0.1 is already in use" in done.stderr
    assert "choose another with --port" in done.stderr


def test_record_listens_on_nothing_by_default(busy_port: int, tmp_path: Path) -> None:
    # The daemon's port (taken here, as on a host where it runs) is no concern of record's.
    env = cli_env(tmp_path, LIQMON_METRICS__PORT=str(busy_port), **NO_VENUES)
    out = tmp_path / "rec.jsonl"
    done = liqmon(["record", "--out", str(out), "--duration", "0.5"], env)
    assert done.returncode == 0, done.stderr
    assert "0 frames recorded" in done.stderr
    assert "metrics endpoint" not in done.stderr


def test_bad_metrics_port_is_a_usage_error(tmp_path: Path) -> None:
    done = liqmon(["record", "--out", "x.jsonl", "--metrics-port", "70000"], cli_env(tmp_path))
    assert done.returncode == 2
    assert "expected 0-65535 (0: a free port) or none" in done.stderr


def test_the_unit_does_not_restart_on_a_port_in_use() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "deploy/systemd/liqmon.service")
    assert set(unit["Service"]["RestartPreventExitStatus"].split()) == {"2", "3"}


def test_run_serves_metrics_on_the_port_given(tmp_path: Path) -> None:
    # The daemon runs until stopped: Ctrl-C (SIGINT) stops it with 130.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = cli_env(tmp_path, **NO_VENUES)
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--metrics-port",
                             str(port)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20 * T
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/healthz").text == "ok\n"
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20 * T) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
