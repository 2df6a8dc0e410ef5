"""sd_notify as systemd sees it: a datagram socket, the real `liqmon run` as a subprocess.

READY once the metrics endpoint is up, STATUS lines, WATCHDOG pings while the pipeline
moves and none once it is wedged, RELOADING/READY around SIGHUP, STOPPING on SIGTERM.
The sender itself (abstract names, a missing manager) and the progress rule are also
checked without a daemon.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.service.sdnotify import SdNotify, notify_address, watchdog_seconds
from monitor.service.watchdog import PipelineSample, ProgressGate, check_watchdog_window
from monitor.simulator import Faults, Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from tests.support.service import Daemon, NotifyListener
from tests.support.timing import T

VENUES = ("binance-usdm", "bybit", "okx")


def venue_env(key: str, value: str) -> dict[str, str]:
    return {f"LIQMON_VENUES__{v.upper().replace('-', '_')}__{key}": value for v in VENUES}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    scenario = scripted_scenario(VENUES, duration_seconds=3600, every_seconds=1.0)
    async with Simulator(scenario, speed=5.0, venues=VENUES) as s:
        yield s


# -- the sender, without a daemon ------------------------------------------------------------


def test_addresses_paths_and_abstract_names() -> None:
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@liqmon/notify") == b"\0liqmon/notify"
    assert notify_address("") is None and notify_address(None) is None
    assert notify_address("vsock:2:1234") is None


def test_watchdog_interval_from_the_environment() -> None:
    assert watchdog_seconds({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert watchdog_seconds({}) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "junk"}) is None
    # For another process (a child that inherited the environment): not ours to ping.
    assert watchdog_seconds({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}, pid=2) is None
    assert watchdog_seconds({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "2"}, pid=2) == 1.0


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_the_sender_reaches_a_socket_and_keeps_one_line_status(tmp_path: Path,
                                                               kind: str) -> None:
    name = f"liqmon-test-{time.monotonic_ns()}"
    listener = (NotifyListener(path=tmp_path / "notify") if kind == "path"
                else NotifyListener(abstract=name))
    try:
        sd = SdNotify.from_env({"NOTIFY_SOCKET": listener.address})
        assert sd.enabled
        assert sd.ready("venues connected 1/1;\nsecond line")
        listener.sock.setblocking(True)
        listener.sock.settimeout(2)
        assert listener.sock.recv(4096) == b"READY=1\nSTATUS=venues connected 1/1; second line"
        assert sd.reloading()
        fields = dict(line.split("=", 1) for line in listener.sock.recv(4096).decode().splitlines())
        assert fields["RELOADING"] == "1"
        assert abs(int(fields["MONOTONIC_USEC"]) - time.monotonic_ns() // 1000) < 5_000_000
        sd.close()
    finally:
        listener.close()


def test_no_manager_is_a_quiet_no_op(tmp_path: Path,
                                     caplog: pytest.LogCaptureFixture) -> None:
    assert not SdNotify.from_env({}).ready()
    gone = SdNotify.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not gone.watchdog() and not gone.watchdog()
    assert len([r for r in caplog.records if "cannot notify" in r.message]) == 1


# -- the progress rule (pure) -----------------------------------------------------------------


def sample(at: float, frames: float = 0, attempts: float = 0, between: int = 0, feeds: int = 2,
           queued: int = 0, counted: int = 0) -> PipelineSample:
    return PipelineSample(at, frames, attempts, between, feeds, queued, counted)


def test_frames_within_the_window_are_progress_and_silence_is_not() -> None:
    gate = ProgressGate(window_seconds=10)
    assert gate.check(sample(0, frames=1)).reason == "starting"
    assert gate.check(sample(5, frames=5)).progress
    assert gate.check(sample(10, frames=9)).reason == "frames read"
    assert gate.check(sample(15, frames=9)).progress  # a frame at 10 s, inside (5, 15]
    verdict = gate.check(sample(20, frames=9))
    assert not verdict.progress and "every connection is subscribed" in verdict.reason
    assert gate.check(sample(25, frames=10)).progress


def test_reconnecting_is_legitimate_progress() -> None:
    gate = ProgressGate(window_seconds=10)
    for at in (0, 5, 10):
        gate.check(sample(at))
    assert gate.check(sample(15, between=1)).reason == "1 connection(s) between attempts"
    assert gate.check(sample(20, attempts=1)).reason == "connections recycled"
    assert not gate.check(sample(30, attempts=1)).progress
    assert gate.check(sample(31, feeds=0)).reason == "no venue feeds"


def test_ingest_that_does_not_drain_is_a_wedge() -> None:
    gate = ProgressGate(window_seconds=10)
    assert gate.check(sample(0, frames=1, queued=5, counted=3)).progress
    verdict = gate.check(sample(5, frames=9, queued=7, counted=3))
    assert not verdict.progress and verdict.reason.startswith("ingest stuck: 7 events")
    assert gate.check(sample(10, frames=12, queued=7, counted=4)).progress
    assert gate.check(sample(15, frames=15, queued=0, counted=4)).progress


def test_a_watchdog_shorter_than_the_silence_limit_is_warned_about() -> None:
    config = load_config(None, env={})
    assert check_watchdog_window(config, None) is None
    assert check_watchdog_window(config, 120.0) is None
    warning = check_watchdog_window(config, 30.0)
    assert warning is not None and "silence limit (60s)" in warning


# -- the daemon -------------------------------------------------------------------------------


async def test_ready_status_watchdog_reload_and_stopping(tmp_path: Path, sim: Simulator) -> None:
    listener = NotifyListener(abstract=f"liqmon-notify-{time.monotonic_ns()}")
    listener.start()
    config = tmp_path / "liqmon.toml"
    config.write_text("[detector]\nwhale_usd = 5000000.0\n")
    daemon = Daemon(tmp_path, sim, {"NOTIFY_SOCKET": listener.address,
                                    "WATCHDOG_USEC": str(int(2_000_000 * T))}, config=config)
    try:
        await daemon.start()
        ready = await listener.wait_for("READY", "1")
        # READY comes once the metrics endpoint listens: it answers at once.
        assert (await daemon.get("/healthz")).status_code == 200
        assert ready.fields["STATUS"].startswith("venues connected ")
        await listener.wait_for("WATCHDOG", "1", since=ready.at)
        status = await listener.wait_for("STATUS", since=ready.at + 1.5 * T)
        assert "liquidations/min" in status.fields["STATUS"]
        assert "store memory ok" in status.fields["STATUS"]

        config.write_text("[detector]\nwhale_usd = 2000000.0\n")
        before_reload = time.monotonic()
        daemon.signal(signal.SIGHUP)
        reloading = await listener.wait_for("RELOADING", "1", since=before_reload)
        assert int(reloading.fields["MONOTONIC_USEC"]) > 0
        await listener.wait_for("READY", "1", since=reloading.at)
        await daemon.wait_log("configuration reloaded")

        # Still pinging after the reload. Waited for, not counted after a fixed 2.5 s: a
        # loaded machine can stretch one ping interval past it.
        await listener.wait_for("WATCHDOG", "1", since=time.monotonic(), timeout=10 * T)

        before_stop = time.monotonic()
        daemon.signal(signal.SIGTERM)
        stopping = await listener.wait_for("STOPPING", "1", since=before_stop)
        assert "stopping" in stopping.fields["STATUS"]
        assert await daemon.wait() == 0
        assert not listener.having("WATCHDOG", since=stopping.at + 0.5)
    finally:
        await daemon.stop()
        listener.close()


async def test_watchdog_stops_when_every_feed_is_wedged(tmp_path: Path) -> None:
    """Every connection stays subscribed and goes quiet, with a silence limit (600 s) the
    supervisor will not reach: no frame and no reconnect within the watchdog window."""
    scenario = scripted_scenario(VENUES, duration_seconds=3600, every_seconds=1.0)
    stall_after = 2.0 * T
    faults = Faults(stall_after_seconds=stall_after)
    async with Simulator(scenario, speed=5.0, venues=VENUES, faults=faults) as sim:
        listener = NotifyListener(path=tmp_path / "notify")
        listener.start()
        daemon = Daemon(tmp_path, sim, {
            "NOTIFY_SOCKET": listener.address,
            "WATCHDOG_USEC": str(int(1_000_000 * T)),
            **venue_env("SILENCE_LIMIT_SECONDS", "600"),
        })
        try:
            await daemon.start()
            ready = await listener.wait_for("READY", "1")
            first = await listener.wait_for("WATCHDOG", "1", since=ready.at)
            await daemon.wait_log("watchdog: no frame read", timeout=stall_after + 10 * T)
            wedged_at = time.monotonic()
            await asyncio.sleep(2.0 * T)
            assert first.at < wedged_at
            assert not listener.having("WATCHDOG", since=wedged_at + 0.1), (
                "pinged systemd while wedged")
            wedged = listener.having("STATUS", since=wedged_at)
            assert wedged and "wedged: no frame read" in wedged[-1].fields["STATUS"]
            assert "WatchdogSec=1s is not above the longest silence limit" in daemon.log()
            assert (await daemon.get("/healthz")).status_code == 200  # alive, not healthy
        finally:
            await daemon.stop()
            listener.close()

