"""The daemon as systemd runs it: a `python -m monitor run` subprocess, and a notify socket.

:class:`NotifyListener` binds an AF_UNIX datagram socket the way systemd does (a path, or
a name in the abstract namespace given as ``@name``) and collects every message.
:class:`Daemon` starts the real command line with environment overrides pointing it at an
in-process :class:`Simulator`, keeps its stderr in a file, and signals it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

from monitor.simulator.server import Simulator
from tests.support.daemon import daemon_env
from tests.support.paths import REPO
from tests.support.ports import free_port
from tests.support.timing import T


@dataclass(frozen=True)
class Message:
    at: float  # monotonic
    fields: dict[str, str]

    def has(self, key: str, value: str | None = None) -> bool:
        return key in self.fields and (value is None or self.fields[key] == value)


class NotifyListener:
    """A datagram socket as systemd's NOTIFY_SOCKET; ``address`` is what the daemon gets."""

    def __init__(self, path: Path | None = None, abstract: str | None = None) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract is not None:
            self.sock.bind(b"\0" + abstract.encode())
            self.address = "@" + abstract
        else:
            assert path is not None
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.setblocking(False)
        self.messages: list[Message] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self.sock.fileno(), self._read)

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
            self.messages.append(Message(time.monotonic(), fields))

    def close(self) -> None:
        if self._loop is not None:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def having(self, key: str, value: str | None = None, since: float = 0.0) -> list[Message]:
        return [m for m in self.messages if m.at >= since and m.has(key, value)]

    async def wait_for(self, key: str, value: str | None = None, *, since: float = 0.0,
                       timeout: float = 20 * T) -> Message:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while True:
            found = self.having(key, value, since)
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no {key}={value or '*'} within {timeout:.0f}s; got "
                    f"{[m.fields for m in self.messages[-5:]]}")
            await asyncio.sleep(0.02)


class Daemon:
    """``python -m monitor run`` with the given environment overrides."""

    def __init__(self, tmp_path: Path, sim: Simulator, env: Mapping[str, str],
                 config: Path | None = None, without: tuple[str, ...] = ()) -> None:
        self.metrics_port = free_port()
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("LIQMON_", "NOTIFY_SOCKET", "WATCHDOG_"))}
        self.env = {
            **base,
            **daemon_env(sim, tmp_path / "cache"),
            "LIQMON_METRICS__PORT": str(self.metrics_port),
            "LIQMON_LOGGING__SUMMARY_INTERVAL_SECONDS": "3600",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        for key in without:  # leave these to the config file (the environment wins)
            self.env.pop(key, None)
        self.config = config
        self.extra_args: list[str] = []
        self.log_path = tmp_path / f"daemon-{self.metrics_port}.log"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        args = [sys.executable, "-m", "monitor", "run"]
        if self.config is not None:
            args += ["--config", str(self.config)]
        args += self.extra_args
        log = await asyncio.to_thread(self.log_path.open, "wb")
        try:
            self.process = await asyncio.create_subprocess_exec(
                *args, cwd=REPO, env=self.env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log)
        finally:
            log.close()  # the child has its own copy

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 30 * T) -> int:  # noqa: ASYNC109
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), timeout)

    async def stop(self) -> None:
        """For teardown: SIGTERM, then SIGKILL if it does not go."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 20 * T)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_log(self, text: str, timeout: float = 20 * T) -> None:  # noqa: ASYNC109
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(f"daemon exited before logging {text!r}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"daemon did not log {text!r}:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)

    async def wait_up(self, timeout: float = 20 * T) -> None:  # noqa: ASYNC109
        """Until the metrics endpoint answers /healthz."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if (await self.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(f"daemon exited at start:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"metrics endpoint not up:\n{self.log()[-3000:]}")
            await asyncio.sleep(0.05)

    async def scrape(self) -> str:
        async with httpx.AsyncClient(timeout=5 * T) as client:
            response = await client.get(f"http://127.0.0.1:{self.metrics_port}/metrics")
            response.raise_for_status()
            return response.text

    async def get(self, path: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=5 * T) as client:
            return await client.get(f"http://127.0.0.1:{self.metrics_port}{path}")


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels``."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


async def eventually(check: Callable[[], Awaitable[object]], what: str,
                     timeout: float = 20 * T) -> None:  # noqa: ASYNC109
    """Until ``await check()`` is true."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        await asyncio.sleep(0.1)
