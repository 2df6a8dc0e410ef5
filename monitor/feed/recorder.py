"""Raw frames to JSON Lines (DESIGN 3.3), optionally gzip, and the reader replay uses.

One line per frame: ``{"venue": "...", "received_at": 1769904000.123, "frame": "<text>"}``.
Files ending in ``.gz`` are read and written transparently.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, cast

import msgspec
import orjson

log = logging.getLogger(__name__)


class RawFrame(msgspec.Struct, frozen=True, gc=False):
    """One recorded frame. A msgspec Struct so that a recording's line decodes straight
    into it: replay reads a frame in about half the time of a dict and a dataclass."""

    venue: str
    received_at: float
    frame: str
    # Which connection read it (``bybit-linear-0#3``: plan and connection number), so that
    # replay keeps one parse session per connection as live does; "" when unknown.
    connection: str = msgspec.field(default="", name="conn")


_decode_line = msgspec.json.Decoder(RawFrame).decode


def open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8"))
    return open(path, mode, encoding="utf-8")


def read_recording(path: str | Path) -> Iterator[RawFrame]:
    """The frames of one recording, in file order. A bad line raises ValueError naming it."""
    path = Path(path)
    number = 0
    with open_text(path, "r") as f:
        try:
            for number, line in enumerate(f, 1):  # number is read after the loop too
                try:
                    # A line as the recorder writes it; anything else (blank, other types,
                    # bad JSON) takes the lenient path below, with its errors.
                    got: RawFrame | None = _decode_line(line)
                except msgspec.DecodeError:
                    got = None
                if got is not None:
                    yield got
                    continue
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                    yield RawFrame(str(data["venue"]), float(data["received_at"]),
                                   str(data["frame"]), str(data.get("conn", "")))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path}:{number}: not a recorded frame ({exc})") from exc
        except EOFError:
            # A gzip file cut short (the daemon was killed before closing it): everything up
            # to the cut is good, the half-written tail is not.
            log.warning("%s: ends after line %d without its gzip trailer (the writer was "
                        "killed?); the frames before are replayed", path, number)


def encode_frame(venue: str, received_at: float, text: str, connection: str = "") -> bytes:
    line: dict[str, object] = {"venue": venue, "received_at": received_at, "frame": text}
    if connection:
        line["conn"] = connection
    return orjson.dumps(line) + b"\n"


class Recorder:
    """Writes every frame it is given; rotates files by the hour or day; prunes old files.

    ``path`` given: one file, no rotation (``liqmon record --out FILE``). ``directory``
    given: ``liqmon-YYYYmmddTHH.jsonl[.gz]`` files under it (the daemon's ``[record]``).
    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        directory: Path | None = None,
        rotation: str = "hourly",
        gzip_files: bool = True,
        retention_days: float = 0.0,
    ) -> None:
        if (path is None) == (directory is None):
            raise ValueError("give exactly one of path and directory")
        self._path = path
        self._directory = directory
        self._rotation = rotation
        self._gzip = gzip_files
        self._retention_days = retention_days
        self._file: IO[bytes] | None = None
        self._current: Path | None = None
        self.frames_written = 0

    def _target(self, received_at: float) -> Path:
        if self._path is not None:
            return self._path
        assert self._directory is not None
        fmt = {"hourly": "%Y%m%dT%H", "daily": "%Y%m%d", "none": "all"}[self._rotation]
        stamp = time.strftime(fmt, time.gmtime(received_at)) if fmt != "all" else "all"
        return self._directory / f"liqmon-{stamp}.jsonl{'.gz' if self._gzip else ''}"

    def frame(self, venue: str, received_at: float, text: str, connection: str = "") -> None:
        target = self._target(received_at)
        if target != self._current:
            self._open(target)
        assert self._file is not None
        self._file.write(encode_frame(venue, received_at, text, connection))
        self.frames_written += 1

    def _open(self, target: Path) -> None:
        self.close()
        target.parent.mkdir(parents=True, exist_ok=True)
        # The file stays open across calls until rotation or close(): no context manager.
        self._file = (
            cast(IO[bytes], gzip.open(target, "ab"))  # noqa: SIM115
            if target.suffix == ".gz"
            else open(target, "ab")  # noqa: SIM115
        )
        self._current = target
        log.info("recording raw frames to %s", target)
        self._prune()

    def _prune(self) -> None:
        if self._directory is None or self._retention_days <= 0:
            return
        cutoff = time.time() - self._retention_days * 86400
        for old in self._directory.glob("liqmon-*.jsonl*"):
            try:
                if old != self._current and old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError as exc:
                log.warning("cannot prune recording %s: %s", old, exc)

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
            self._current = None
