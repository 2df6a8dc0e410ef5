"""Follows a Hyperliquid node's ``node_fills_by_block`` files: the I/O half of that source.

The node appends one line per block to ``<directory>/hourly/<YYYYMMDD>/<hour>`` and starts a
new file every hour. :class:`NodeFillsFollower` reads complete lines only (a line is
complete once its newline is written), moves to the next hour's file once the current one
is read to its end and a newer one exists, and saves its place (file and byte offset) to
``state_file`` after every batch it hands on, so a restart resumes where it stopped and no
line is handed on twice. (A crash between handing a batch on and saving can repeat that
one batch; event ids make the repeat harmless downstream.)

It also watches for silence: no new line (block) for ``silence_limit_seconds`` makes it
stale, which it reports through ``on_staleness`` and :attr:`NodeFillsFollower.stale`, the
file-source twin of the websocket supervisor's watchdog.

Where to start without saved state: at the end of the newest file, like ``tail -f``: a
first start watches from now on instead of replaying the hour that came before it. A file
that appears after the follower started is always read from its beginning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from monitor.clock import Clock

log = logging.getLogger(__name__)

READ_CHUNK_BYTES = 4 * 1024 * 1024
TAIL_SCAN_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class FollowPosition:
    """A place in the fills files: the file (relative to the directory) and a byte offset."""

    file: str
    offset: int


def _hour_key(relative: str) -> tuple[int, int] | None:
    """Order of ``hourly/<YYYYMMDD>/<hour>`` paths; None for anything else."""
    parts = relative.split("/")
    if len(parts) != 3 or parts[0] != "hourly":
        return None
    date, hour = parts[1], parts[2]
    if not (date.isascii() and date.isdigit() and hour.isascii() and hour.isdigit()):
        return None
    return int(date), int(hour)


class NodeFillsFollower:
    """Hands on every complete line of the hourly fills files, once, in order."""

    def __init__(
        self,
        directory: Path,
        state_file: Path,
        clock: Clock,
        poll_interval_seconds: float = 0.25,
        silence_limit_seconds: float = 60.0,
        *,
        on_staleness: Callable[[bool], None] | None = None,
        rollover_grace_seconds: float = 5.0,
    ) -> None:
        self.directory = Path(directory)
        self.state_file = Path(state_file)
        self._clock = clock
        self.poll_interval_seconds = poll_interval_seconds
        self.silence_limit_seconds = silence_limit_seconds
        self._on_staleness = on_staleness
        self._rollover_grace = rollover_grace_seconds
        self._file: str | None = None  # current file, relative to the directory
        self._offset = 0  # read up to here
        self._committed: FollowPosition | None = None  # saved up to here
        self._started = False
        self._grace_since: float | None = None
        self._last_line_at = clock.monotonic()
        self.stale = False
        self.lines_read = 0
        self.partial_lines_dropped = 0

    # -- public ---------------------------------------------------------------------------

    @property
    def position(self) -> FollowPosition | None:
        """Where the next read starts (None before the first file is found)."""
        return None if self._file is None else FollowPosition(self._file, self._offset)

    def seconds_since_last_line(self) -> float:
        return self._clock.monotonic() - self._last_line_at

    def poll(self) -> list[str]:
        """Read every complete line available now and save the new position."""
        lines = self.read_batch()
        self.commit()
        return lines

    async def run(self, on_line: Callable[[str, float], None]) -> None:
        """Hand each line to ``on_line(text, received_at)`` until cancelled."""
        while True:
            # Read in the loop, not a thread: a read is one bounded chunk of a local file, and
            # a cancelled thread could advance the position past lines never handed on.
            lines = self.read_batch()
            received_at = self._clock.wall()
            for line in lines:
                on_line(line, received_at)
            if lines:
                # Saved before the next await, so a cancellation cannot split delivery from it.
                self.commit()
            self.check_staleness()
            # Yield even while catching up, so a backlog never starves the other tasks.
            await asyncio.sleep(0 if lines else self.poll_interval_seconds)

    def check_staleness(self) -> bool:
        """Update and return :attr:`stale`; report a change through ``on_staleness``."""
        stale = self.seconds_since_last_line() >= self.silence_limit_seconds
        if stale != self.stale:
            self.stale = stale
            if stale:
                log.warning("node fills: no new block for %.0fs in %s",
                            self.seconds_since_last_line(), self.directory)
            else:
                log.info("node fills: blocks are arriving again")
            if self._on_staleness is not None:
                self._on_staleness(stale)
        return stale

    def read_batch(self) -> list[str]:
        """Read the next complete lines (up to about 4 MiB), following hour rollovers."""
        if not self._started:
            self._start()
        while self._file is not None:
            lines = self._read_current()
            if lines:
                self._last_line_at = self._clock.monotonic()
                self.lines_read += len(lines)
                return lines
            if not self._advance():
                break
        if self._file is None:
            self._pick_first_new_file()
        return []

    def commit(self) -> None:
        """Save the current position to the state file (atomically)."""
        position = self.position
        if position is None or position == self._committed:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps({"file": position.file, "offset": position.offset}))
        os.replace(tmp, self.state_file)
        self._committed = position

    # -- files ----------------------------------------------------------------------------

    def _files(self) -> list[str]:
        hourly = self.directory / "hourly"
        found: list[tuple[tuple[int, int], str]] = []
        try:
            days = list(hourly.iterdir())
        except OSError:
            return []
        for day in days:
            try:
                hours = list(day.iterdir()) if day.is_dir() else []
            except OSError:
                continue
            for hour in hours:
                relative = f"hourly/{day.name}/{hour.name}"
                key = _hour_key(relative)
                if key is not None and hour.is_file():
                    found.append((key, relative))
        return [relative for _key, relative in sorted(found)]

    def _start(self) -> None:
        self._started = True
        saved = self._load_state()
        files = self._files()
        if saved is not None:
            self._committed = saved
            if saved.file in files:
                size = (self.directory / saved.file).stat().st_size
                self._file = saved.file
                self._offset = saved.offset if saved.offset <= size else 0
                if saved.offset > size:
                    log.warning("node fills: %s is shorter than the saved offset; rereading it",
                                saved.file)
                return
            later = self._after(saved.file, files)
            if later is not None:
                log.warning("node fills: saved file %s is gone; resuming at %s",
                            saved.file, later)
                self._file, self._offset = later, 0
                return
        if files:
            self._file = files[-1]
            self._offset = self._end_of_last_line(files[-1])
            log.info("node fills: no saved position; following %s from its end", self._file)

    def _pick_first_new_file(self) -> None:
        """Without any file at start, the first one that appears is read from its start."""
        files = self._files()
        if files:
            self._file, self._offset = files[0], 0

    def _load_state(self) -> FollowPosition | None:
        try:
            data = json.loads(self.state_file.read_text())
            position = FollowPosition(str(data["file"]), int(data["offset"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("node fills: ignoring unreadable state file %s: %s", self.state_file, exc)
            return None
        if _hour_key(position.file) is None or position.offset < 0:
            log.warning("node fills: ignoring state file %s with position %s",
                        self.state_file, position)
            return None
        return position

    @staticmethod
    def _after(current: str, files: list[str]) -> str | None:
        key = _hour_key(current)
        if key is None:
            return None
        for relative in files:
            other = _hour_key(relative)
            if other is not None and other > key:
                return relative
        return None

    def _end_of_last_line(self, relative: str) -> int:
        """The offset just past the last newline of a file (0 if it has none)."""
        with open(self.directory / relative, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            while end > 0:
                start = max(0, end - TAIL_SCAN_BYTES)
                f.seek(start)
                cut = f.read(end - start).rfind(b"\n")
                if cut >= 0:
                    return start + cut + 1
                end = start
        return 0

    def _read_current(self) -> list[str]:
        assert self._file is not None
        path = self.directory / self._file
        try:
            with open(path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                if size < self._offset:
                    log.warning("node fills: %s shrank below the read offset; rereading it",
                                self._file)
                    self._offset = 0
                f.seek(self._offset)
                data = f.read(READ_CHUNK_BYTES)
                cut = data.rfind(b"\n")
                # A line longer than one chunk: read on until its newline (or the end).
                while cut < 0 and len(data) and self._offset + len(data) < size:
                    more = f.read(READ_CHUNK_BYTES)
                    if not more:
                        break
                    data += more
                    cut = data.rfind(b"\n")
        except FileNotFoundError:
            return []  # pruned under us; _advance moves on
        if cut < 0:
            return []
        self._offset += cut + 1
        self._grace_since = None
        return [line.decode("utf-8", errors="replace").rstrip("\r")
                for line in data[:cut].split(b"\n") if line.strip()]

    def _advance(self) -> bool:
        """Move to the next hour's file if there is one and this one is finished."""
        assert self._file is not None
        files = self._files()
        later = self._after(self._file, files)
        if later is None:
            return False
        path = self.directory / self._file
        try:
            unread = path.stat().st_size - self._offset
        except FileNotFoundError:
            unread = 0
        if unread > 0:
            # The writer may still be flushing the old hour's last line: wait a little.
            now = self._clock.monotonic()
            if self._grace_since is None:
                self._grace_since = now
            if now - self._grace_since < self._rollover_grace:
                return False
            self.partial_lines_dropped += 1
            log.warning("node fills: %s ends in %d bytes without a newline; skipped",
                        self._file, unread)
        log.info("node fills: %s finished; following %s", self._file, later)
        self._file, self._offset, self._grace_since = later, 0, None
        return True
