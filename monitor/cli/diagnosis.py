"""The startup diagnosis: when no venue could be reached, say so once, in one line, instead
of a flood of per-venue warnings.

It reads what the feeds already log (a logging filter; the feeds know nothing of it): the
first ``subscribed`` means the network works; connection and instrument warnings say what
failed per venue, classified as DNS, TCP, TLS or HTTP status. If nothing subscribed within
the grace period, one ERROR line names each venue's failure; from then on the per-venue
warnings are held back (a reminder line every few minutes) until some venue subscribes.
"""

from __future__ import annotations

import asyncio
import logging
import re

from monitor.config import Config

log = logging.getLogger("monitor.diagnosis")

REMIND_EVERY_SECONDS = 300.0
_HTTP = re.compile(r"HTTP (?:status(?: code)?:? )?([1-5]\d\d)|status code ([1-5]\d\d)"
                   r"|\b([45]\d\d) (?:Forbidden|Not Found|Unauthorized|Unavailable"
                   r"|Too Many|Bad Gateway|Service)")
_CLASSES = (
    ("DNS", ("name or service not known", "temporary failure in name resolution",
             "nodename nor servname", "no address associated", "gaierror",
             "name resolution")),
    ("TLS", ("ssl", "certificate", "tls")),
    ("TCP", ("connection refused", "refused", "unreachable", "timed out", "timeout",
             "reset by peer", "all connection attempts failed", "connecterror",
             "connecttimeout")),
)


def classify(message: str) -> str:
    """``DNS``, ``TLS``, ``TCP`` or ``HTTP 451`` from a failure's text; else ``error``."""
    match = _HTTP.search(message)
    if match:
        return "HTTP " + next(g for g in match.groups() if g)
    lower = message.lower()
    for name, needles in _CLASSES:
        if any(needle in lower for needle in needles):
            return name
    return "error"


def grace_seconds(config: Config) -> float:
    """Long enough for every venue's first attempt to have ended."""
    return config.feed.open_timeout_seconds + config.feed.ack_timeout_seconds + 5.0


class StartupDiagnosis(logging.Filter):
    def __init__(self, venues: list[str]) -> None:
        super().__init__()
        self._venues = venues
        self.failures: dict[str, str] = {}
        self.connected = False
        self.diagnosed = False

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("monitor.feed") or self.connected:
            return True
        message = record.getMessage()
        if record.levelno == logging.INFO and "subscribed" in message:
            self.connected = True
            return True
        if record.levelno != logging.WARNING:
            return True
        venue = message.split(" ", 1)[0].rstrip(":")
        if venue in self._venues:
            self.failures[venue] = f"{classify(message)} ({message.split(': ', 1)[-1][:120]})"
        return not self.diagnosed

    def report(self) -> str | None:
        """The one line, or None while some venue is connected or nothing failed yet."""
        if self.connected or not self.failures:
            return None
        kinds = {why.split(" (", 1)[0] for why in self.failures.values()}
        hint = ("Name resolution fails: is this host offline or without DNS?" if kinds == {"DNS"}
                else "Check the network, a firewall or proxy, and the venues' *_base_url")
        parts = "; ".join(f"{venue}: {why.split(' (', 1)[0]}"
                          for venue, why in sorted(self.failures.items()))
        return (f"no venue reachable ({len(self.failures)} of {len(self._venues)} failing): "
                f"{parts}. {hint}. Still retrying; this line again every "
                f"{REMIND_EVERY_SECONDS / 60:.0f} minutes until a venue answers.")


def install(config: Config) -> StartupDiagnosis:
    """Attach the filter to every handler of the root logger and schedule the report."""
    diagnosis = StartupDiagnosis(list(config.enabled_venues()))
    for handler in logging.getLogger().handlers:
        handler.addFilter(diagnosis)
    loop = asyncio.get_running_loop()

    def speak() -> None:
        line = diagnosis.report()
        if line is None:
            return
        log.error("%s", line)
        for venue, why in sorted(diagnosis.failures.items()):
            log.debug("%s: %s", venue, why)
        diagnosis.diagnosed = True
        loop.call_later(REMIND_EVERY_SECONDS, speak)

    loop.call_later(grace_seconds(config), speak)
    return diagnosis
