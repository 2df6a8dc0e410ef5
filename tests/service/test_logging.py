"""Logging as the journal takes it: one line per event, JSON on request, syslog priority
prefixes under systemd, and no storm of warnings when a venue's REST API is down."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from monitor.feed.instruments import InstrumentService
from monitor.logs import configure_logging
from monitor.simulator import Simulator
from monitor.simulator.scenarios.model import scripted_scenario
from monitor.venues import make_dialect
from monitor.venues.dialect import VenueSettings
from tests.support.service import Daemon
from tests.support.timing import T


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def configured(monkeypatch: pytest.MonkeyPatch, level: str, fmt: str) -> io.StringIO:
    """configure_logging outside systemd, writing to the stderr returned (set in the test
    itself: pytest puts its own stderr back between a fixture and the test)."""
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging(level, fmt)
    return out


def log_a_few(name: str = "monitor.test") -> None:
    log = logging.getLogger(name)
    log.info("started")
    log.warning("a frame\nwith a newline")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it broke")
    log.debug("per frame: not at INFO")


@pytest.mark.usefixtures("restore_logging")
def test_text_is_one_line_per_event(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = configured(monkeypatch, "INFO", "text")
    log_a_few()
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].endswith("INFO monitor.test: started")
    assert "WARNING monitor.test: a frame\\nwith a newline" in lines[1]
    assert "ERROR monitor.test: it broke\\nTraceback" in lines[2]
    assert "ValueError: boom" in lines[2]


@pytest.mark.usefixtures("restore_logging")
def test_json_is_one_object_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    stderr = configured(monkeypatch, "DEBUG", "json")
    log_a_few()
    records = [orjson.loads(line) for line in stderr.getvalue().splitlines()]
    assert [r["level"] for r in records] == ["INFO", "WARNING", "ERROR", "DEBUG"]
    assert records[1]["message"] == "a frame\nwith a newline"
    assert "ValueError: boom" in records[2]["exception"]
    assert {"time", "level", "logger", "message"} <= set(records[0])


@pytest.mark.usefixtures("restore_logging")
def test_under_the_journal_lines_carry_their_priority(monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    with open(tmp_path / "journal", "w+") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        monkeypatch.setattr(sys, "stderr", stream)
        configure_logging("INFO", "text")
        log_a_few()
        stream.seek(0)
        lines = stream.read().splitlines()
    assert [line[:3] for line in lines] == ["<6>", "<4>", "<3>"]
    assert lines[0] == "<6>INFO monitor.test: started"  # no timestamp: the journal adds it


async def test_run_with_log_format_json_writes_only_json_lines(tmp_path: Path) -> None:
    scenario = scripted_scenario(("bybit",), duration_seconds=600, every_seconds=0.5)
    async with Simulator(scenario, speed=5.0, venues=("bybit",)) as sim:
        daemon = Daemon(tmp_path, sim, {})
        daemon.extra_args = ["--log-format", "json"]
        try:
            await daemon.start()
            await daemon.wait_up()
            await daemon.wait_log("subscribed")
            daemon.signal(signal.SIGTERM)
            assert await daemon.wait() == 0
        finally:
            await daemon.stop()
    records = [orjson.loads(line) for line in daemon.log().splitlines()]
    messages = [r["message"] for r in records]
    assert any(m.startswith("liqmon running") for m in messages)
    assert any(m.startswith("stopped: ") for m in messages)


async def test_a_rest_outage_logs_one_warning_not_one_per_attempt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    requests = 0

    async def failing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal requests
        requests += 1
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                     b"Connection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(failing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    service = InstrumentService(make_dialect("bybit", VenueSettings()),
                                f"http://127.0.0.1:{port}", refresh_seconds=3600,
                                cache_dir=None)
    caplog.set_level(logging.INFO, logger="monitor.feed.instruments")
    task = asyncio.create_task(service.run())
    try:
        # Frames of unknown instruments keep asking for a refresh meanwhile.
        for _ in range(int(2.5 * T / 0.05)):
            await service.refresh_soon()
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        server.close()
        await server.wait_closed()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "instrument refresh failed" in warnings[0].getMessage()
    # Attempts follow the backoff (and at most one early refresh per 5 s), not the frames.
    assert 1 <= requests <= 8, requests
