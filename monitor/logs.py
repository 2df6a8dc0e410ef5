"""Logging to stderr for the journal: one line per event, text or JSON.

The level contract (what an operator can filter on):

- ERROR: an outage or a bug: Redis unreachable, a venue rejecting a subscription, a batch
  the store refused, events that could not be flushed at shutdown, a wedged pipeline.
- WARNING: degraded but working: a feed reconnecting after silence or an error, an invalid
  frame, an instrument refresh failing, a dropped event, a rejected-in-part reload, a
  cascade or whale alert.
- INFO: lifecycle: start, subscriptions, reloads, shutdown, a periodic summary line.
- DEBUG: a few diagnostic lines (a delivery failing again, a transition another daemon sent)
  and the libraries' debug output; never one line per frame or event.

Every event is one line: newlines inside a message or a traceback are written as ``\\n``,
so that the journal keeps an event as one entry. Under systemd (``JOURNAL_STREAM`` names
our stderr) each line starts with a ``<N>`` syslog priority prefix, which journald turns
into the entry's priority (``journalctl -p warning``) and strips; the text format then
leaves out its own timestamp, which the journal adds.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import orjson

# logging level -> syslog priority (sd-daemon(3) prefixes)
PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
            logging.CRITICAL: 2}


def _priority(levelno: int) -> int:
    for level in sorted(PRIORITY, reverse=True):
        if levelno >= level:
            return PRIORITY[level]
    return 7


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(data).decode()


class OneLineFormatter(logging.Formatter):
    """The text format, with a message's or traceback's newlines escaped as ``\\n``."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", "\\n")


class JournalPrefix(logging.Formatter):
    """Wraps a formatter: ``<N>`` + its line, for journald's priority."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self._inner = inner

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_priority(record.levelno)}>{self._inner.format(record)}"


def stderr_is_journal() -> bool:
    """True when systemd connected our stderr to the journal (``JOURNAL_STREAM=dev:ino``)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    if not (dev.isdigit() and ino.isdigit()):
        return False
    try:
        st = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(dev), int(ino))


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record.

    Tests (and embedding programs) swap ``sys.stderr``; a handler holding the stream it was
    made with would write to a closed one afterwards.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    handler = _StderrHandler()
    journal = stderr_is_journal()
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif journal:
        # The journal adds its own timestamps.
        formatter = OneLineFormatter("%(levelname)s %(name)s: %(message)s")
    else:
        # A terminal or a plain log file wants them.
        formatter = OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(JournalPrefix(formatter) if journal else formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # websockets logs every handshake failure with a traceback at INFO/ERROR; our own
    # supervisor reports connection trouble once, rate-limited.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


# A warning repeated faster than this is counted, not written, until the interval is over.
WARN_EVERY_SECONDS = 10.0


class RateLimitedLog:
    """Logs a warning at most once per interval per key, with the count of what it held back."""

    def __init__(
        self, logger: logging.Logger, interval_seconds: float = WARN_EVERY_SECONDS
    ) -> None:
        self._log = logger
        self._interval = interval_seconds
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            self._held[key] = self._held.get(key, 0) + 1
            return
        held = self._held.pop(key, 0)
        self._last[key] = now
        if held:
            self._log.warning(msg + " (%d similar messages suppressed)", *args, held)
        else:
            self._log.warning(msg, *args)


class _Stale(Exception):
    """The connection was silent past its limit."""
