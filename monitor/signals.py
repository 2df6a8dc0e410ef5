"""Stop and reload signals, and the exit codes a stop ends with.

``signal_handlers`` is the one place liqmon installs signal handlers: the daemon
(``app.run_service``) and the commands that run beside it or on their own (``liqmon
demo``, ``simulate``, ``record``/``tail``'s own feeds) all come through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator

# 130 = 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
EXIT_OK, EXIT_FAILURE, EXIT_INTERRUPTED = 0, 1, 130


@contextlib.contextmanager
def signal_handlers(
    stop: asyncio.Event, reload: Callable[[], None] | None = None
) -> Iterator[list[int]]:
    """The one place liqmon handles signals: SIGTERM and SIGINT set ``stop``; SIGHUP calls
    ``reload`` when given. Removed again on exit. Yields the stop signals received, so the
    caller can exit 130 after Ctrl-C and 0 after a service stop."""
    loop = asyncio.get_running_loop()
    signals = [signal.SIGTERM, signal.SIGINT]
    received: list[int] = []

    def on_signal(sig: int) -> None:
        received.append(sig)
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, reload)
        signals.append(signal.SIGHUP)
    try:
        yield received
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def exit_code(code: int, received: list[int]) -> int:
    """A clean stop by Ctrl-C exits 130; by SIGTERM (systemd's stop) 0."""
    return EXIT_INTERRUPTED if code == EXIT_OK and signal.SIGINT in received else code
