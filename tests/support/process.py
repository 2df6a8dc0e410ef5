"""A server binary run by a test fixture: started until it answers, stopped or killed.

stdout is discarded and stderr kept for the failure message; the server's own log file
(``log_path``) is quoted too when it does not come up.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

from tests.support.timing import T


class ServerProcess:
    """One process; ``stop()`` asks it to exit (SIGTERM unless ``ask_to_stop`` is overridden)
    and kills it after 10 T, ``kill()`` sends SIGKILL at once. As a context manager: started,
    then killed (fixtures need no data to survive)."""

    name = "server"

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self, args: Sequence[str], ready: Callable[[], bool], waiting_for: str) -> None:
        """Start ``args`` and poll ``ready`` until true; a clear RuntimeError (with stderr and
        the log's tail) if the process exits first or 10 T pass."""
        assert self.process is None, "already running"
        self.process = subprocess.Popen(list(args), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10 * T
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                self._reap()
                raise RuntimeError(f"{self.name} exited at start: {err} {self.log()[-2000:]}")
            with contextlib.suppress(OSError):
                if ready():
                    return
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} {waiting_for}: {self.log()[-2000:]}")
            time.sleep(0.01)

    def ask_to_stop(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        if self.process is None:
            return
        self.ask_to_stop()
        try:
            self.process.wait(timeout=10 * T)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: whatever was not saved is lost."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._reap()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()

    def start(self) -> None:
        raise NotImplementedError

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    def _reap(self) -> None:
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None
