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
# A carriage return as an int: ``int in bytes`` is a memchr, where ``bytes in bytes`` first
# tries the operand as an int and pays for the TypeError.
_CR = ord("\r")


def open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return cast(IO[str], gzip.open(path, mode + "t", encoding="utf-8"))
    return open(path, mode, encoding="utf-8")


def open_binary(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def read_recording(path: str | Path) -> Iterator[RawFrame]:
    """The frames of one recording, in file order. A bad line raises ValueError naming it.

    Lines are read as bytes (no decoding of the text before its JSON decode, which checks
    the UTF-8 of every string) and decoded as the text file they are: a line with a
    carriage return, or one that is not a recorded frame as the recorder writes it, takes
    the text path (``_text_lines``: a lone ``\r`` ends a line, as in a file opened as
    text; invalid UTF-8 raises UnicodeDecodeError, a ValueError)."""
    path = Path(path)
    number = 0
    with open_binary(path) as f:
        try:
            for line in f:
                if _CR not in line:
                    number += 1
                    try:
                        # A line as the recorder writes it; anything else (blank, other
                        # types, bad JSON) takes the lenient path below, with its errors.
                        yield _decode_line(line)
                        continue
                    except msgspec.DecodeError:
                        texts = [line.decode("utf-8")]
                else:
                    texts = _text_lines(line.decode("utf-8"))
                    number += 1
                for n, text in enumerate(texts):
                    frame = _lenient(text, path, number + n)
                    if frame is not None:
                        yield frame
                number += len(texts) - 1
        except EOFError:
            # A gzip file cut short (the daemon was killed before closing it): everything up
            # to the cut is good, the half-written tail is not.
            log.warning("%s: ends after line %d without its gzip trailer (the writer was "
                        "killed?); the frames before are replayed", path, number)


def _text_lines(text: str) -> list[str]:
    """The lines of a text file that ``text`` (one line up to a ``\n``) is, as a file
    opened as text reads them: ``\r\n`` and a lone ``\r`` end a line too, each as a
    ``\n``."""
    parts = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _lenient(line: str, path: Path, number: int) -> RawFrame | None:
    """Line ``number`` read as a file opened as text gives it: a frame, None if blank."""
    try:
        return _decode_line(line)
    except msgspec.DecodeError:
        pass
    if not line.strip():
        return None
    try:
        data = orjson.loads(line)
        return RawFrame(str(data["venue"]), float(data["received_at"]), str(data["frame"]),
                        str(data.get("conn", "")))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}:{number}: not a recorded frame ({exc})") from exc


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
