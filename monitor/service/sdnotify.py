"""systemd's notify protocol (sd_notify(3)): datagrams of ``KEY=value`` lines to a socket.

systemd puts the socket's address in ``NOTIFY_SOCKET``: a filesystem path, or a name in
Linux's abstract namespace written with a leading ``@`` (sent as a leading NUL byte). With
no ``NOTIFY_SOCKET`` (not started by systemd, or ``Type=simple``) every call is a no-op, so
the daemon calls these unconditionally.

Sends never block the event loop (the socket is non-blocking; a full receive queue drops
the datagram, which the next periodic STATUS/WATCHDOG replaces) and never raise: a service
manager that went away is logged once, not fatal.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify_address(value: str | None) -> str | bytes | None:
    """The socket address for a ``NOTIFY_SOCKET`` value: ``@name`` is abstract (NUL + name)."""
    if not value:
        return None
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    # sd_notify also accepts vsock: addresses (VMs); a daemon on the host never gets one.
    log.warning("NOTIFY_SOCKET=%r is not a unix socket path or @name; not notifying", value)
    return None


def watchdog_seconds(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The watchdog interval systemd expects pings within (``WATCHDOG_USEC``), or None.

    ``WATCHDOG_PID``, when set, names the process the watchdog is for: another process
    (a child that inherited the environment) must not ping.
    """
    env = os.environ if env is None else env
    raw = env.get("WATCHDOG_USEC", "")
    if not raw:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and owner.isdigit() and int(owner) != (os.getpid() if pid is None else pid):
        return None
    try:
        usec = int(raw)
    except ValueError:
        log.warning("ignoring WATCHDOG_USEC=%r: not a whole number of microseconds", raw)
        return None
    return usec / 1_000_000 if usec > 0 else None


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants it in MONOTONIC_USEC."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class SdNotify:
    """A sender to one notify socket; disabled (every call a no-op) without an address."""

    def __init__(self, address: str | bytes | None) -> None:
        self._address = address
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SdNotify:
        env = os.environ if env is None else env
        return cls(notify_address(env.get("NOTIFY_SOCKET")))

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one datagram. True when it was handed to the socket."""
        if self._address is None:
            return False
        data = "\n".join(lines).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(data, self._address)
        except BlockingIOError:
            return False  # the manager is busy; the next periodic message replaces this one
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("cannot notify the service manager at %r: %s", self._address, exc)
            return False
        if self._failed:
            self._failed = False
            log.info("notifying the service manager again")
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog(self, status: str | None = None) -> bool:
        return self.send("WATCHDOG=1", *_status(status))

    def reloading(self) -> bool:
        return self.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}",
                         "STATUS=reloading the configuration")

    def stopping(self, status: str = "stopping: draining ingest, store and notifiers") -> bool:
        return self.send("STOPPING=1", *_status(status))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status(text: str | None) -> list[str]:
    # One line: a newline would start a new (bogus) assignment.
    return ["STATUS=" + " ".join(text.split())] if text else []
