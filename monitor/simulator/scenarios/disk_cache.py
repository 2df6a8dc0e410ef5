"""Built scenarios kept on disk, so that each new process does not build the same events again.

``feb-2026`` is ~67,000 events made by Python arithmetic one at a time (~0.8 s of CPU, more
than half of a ``liqmon backtest --scenario feb-2026``). A scenario is a pure function of
its arguments and of the code that builds it, so the first build is written to
``<cache root>/scenarios/`` (``$CACHE_DIRECTORY``, ``$XDG_CACHE_HOME/liqmon`` or
``~/.cache/liqmon``: see :mod:`monitor.config.paths`) and later processes read it back, the
same events bit for bit, in about a tenth of the time.

The file's name holds a digest of the arguments, the Python version, this format's number
and the source of every module the build runs (the scenarios package, the price path, the
catalogue, the event types): a changed generator never serves an old file. A file that is
unreadable, truncated or of another layout is built again and replaced; a directory that
cannot be written leaves the build uncached (logged at DEBUG). Files are written whole
under a temporary name and renamed, so that two processes building at once both leave a
complete file. At most :data:`KEEP_FILES` are kept, the oldest removed first.

``LIQMON_SCENARIO_CACHE_DIR`` names another directory; ``off`` (or empty) turns it off.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

import monitor.events
import monitor.simulator.catalogue
import monitor.simulator.prices
from monitor.config.paths import cache_root
from monitor.events import PositionSide
from monitor.simulator.scenarios.model import Scenario, new_event

log = logging.getLogger(__name__)

ENV = "LIQMON_SCENARIO_CACHE_DIR"
FORMAT = 1
KEEP_FILES = 8
SUFFIX = ".msgpack"

# One event as stored: its strings as indexes into the file's string table (four names a
# row would otherwise be four new string objects per event once read), the side as an
# index into _SIDES.
_Row = tuple[float, int, int, int, int, int, float, float, float]
_SIDES: tuple[PositionSide | None, ...] = (None, PositionSide.LONG, PositionSide.SHORT)
_SIDE_INDEX = {side: i for i, side in enumerate(_SIDES)}


class _Stored(msgspec.Struct, array_like=True):
    format: int
    key: str
    name: str
    duration_seconds: float
    strings: list[str]
    events: list[_Row]
    ground_truth: dict[str, Any]


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(_Stored).decode


def cache_dir() -> Path | None:
    """Where scenarios are kept; None when the cache is turned off."""
    value = os.environ.get(ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "off") else Path(value)
    return cache_root() / "scenarios"


def cache_key(name: str, seed: int, venues: tuple[str, ...], duration_seconds: float | None
              ) -> str:
    """The file name's stem: the scenario's name and a digest of all that decides it."""
    digest = hashlib.sha256(_source_digest())
    digest.update(repr((FORMAT, name, seed, venues, duration_seconds,
                        tuple(sys.version_info[:2]))).encode())
    return f"{name}-{digest.hexdigest()[:32]}"


@functools.cache
def _source_digest() -> bytes:
    package = Path(__file__).parent
    sources = sorted(package.glob("*.py")) + [
        Path(module.__file__ or "") for module in (
            monitor.simulator.prices, monitor.simulator.catalogue, monitor.events)]
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.digest()


def load_or_build(name: str, seed: int, venues: tuple[str, ...],
                  duration_seconds: float | None, build: Callable[[], Scenario]) -> Scenario:
    """The scenario from the disk cache, else ``build()`` (written to the cache when its
    events are a sequence; a lazy scenario has nothing built to keep)."""
    directory = cache_dir()
    if directory is None:
        return build()
    key = cache_key(name, seed, venues, duration_seconds)
    path = directory / (key + SUFFIX)
    scenario = _read(path, key)
    if scenario is not None:
        return scenario
    scenario = build()
    if not callable(scenario.events):
        _write(directory, path, key, scenario)
    return scenario


def _read(path: Path, key: str) -> Scenario | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        stored = _decode(data)
        if stored.format != FORMAT or stored.key != key:
            raise ValueError(f"format {stored.format}, key {stored.key}")
        strings = stored.strings
        sides = _SIDES
        events = tuple([
            new_event(at, strings[kind], strings[venue], strings[coin], strings[instrument],
                      sides[side], price, qty, notional)
            for at, kind, venue, coin, instrument, side, price, qty, notional in stored.events])
    except (msgspec.DecodeError, ValueError, IndexError) as exc:
        log.warning("scenario cache %s is unreadable (%s); building it again", path, exc)
        return None
    return Scenario(stored.name, stored.duration_seconds, events, stored.ground_truth)


def encode(key: str, scenario: Scenario) -> bytes:
    """The file's bytes for a built scenario (its events must be a sequence)."""
    assert not callable(scenario.events)
    index: dict[str, int] = {}
    rows: list[_Row] = []
    for e in scenario.events:
        rows.append((e.at_seconds, index.setdefault(e.kind, len(index)),
                     index.setdefault(e.venue, len(index)), index.setdefault(e.coin, len(index)),
                     index.setdefault(e.instrument, len(index)), _SIDE_INDEX[e.position_side],
                     e.price, e.qty_base, e.notional_usd))
    return _encode(_Stored(FORMAT, key, scenario.name, scenario.duration_seconds, list(index),
                           rows, scenario.ground_truth))


def _write(directory: Path, path: Path, key: str, scenario: Scenario) -> None:
    data = encode(key, scenario)
    tmp: str | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".part")
        with os.fdopen(fd, "wb") as file:
            file.write(data)
        os.replace(tmp, path)
        tmp = None
        _prune(directory)
    except OSError as exc:
        log.debug("scenario cache %s not written: %s", directory, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(directory: Path) -> None:
    files = sorted(directory.glob("*" + SUFFIX), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_FILES:]:
        old.unlink(missing_ok=True)
