"""The daemon's drain on stop: what was taken is delivered, in order, within one deadline.

Feeds stop first (nothing new is taken); then ingest drains its queue, the notifier
delivers what its outboxes hold (its workers still run; it says offline on MQTT while its
connection lives), the last minutes of feed coverage are recorded, and the store writes
what it buffers (its flusher still runs). Each step gets a share of what is left of the
deadline (``left()``), and what could not be done is logged with its count. The app then
cancels its tasks (``cancel_all``) and closes the parts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from monitor.ingest import Ingest
from monitor.notify.notifier import Notifier
from monitor.store.base import Store
from monitor.store.coverage_writer import CoverageWriter

# The app's logger: the shutdown lines were always logged as the app's.
log = logging.getLogger("monitor.app")

RECANCEL_SECONDS = 1.0  # how long a cancelled task may take to end before it is cancelled again


async def drain_in_order(
    left: Callable[[], float],
    feed_tasks: Sequence[asyncio.Task[None]],
    ingest: Ingest,
    notifier: Notifier | None,
    coverage: CoverageWriter | None,
    store: Store | None,
) -> None:
    """Stop taking frames first; everything after drains what was taken. ``left()`` is
    the seconds left of the shutdown deadline."""
    for task in feed_tasks:
        task.cancel()
    await asyncio.gather(*feed_tasks, return_exceptions=True)
    unqueued = await ingest.drain(left() / 3)
    if unqueued:
        log.error("shutdown: %d events were still queued for ingest", unqueued)
    if notifier is not None:
        # After ingest drained, before the store closes (claims use it).
        undelivered = await notifier.drain(left() / 2)
        if undelivered:
            log.error("shutdown: %d notifications were not delivered", undelivered)
        await notifier.aclose()  # MQTT says offline while its connection lives
    if coverage is not None and not await coverage.flush(left() / 4):
        log.error("shutdown: the last minutes of feed coverage were not recorded")
    if store is not None:
        unwritten = await store.flush(left())
        if unwritten:
            log.error("shutdown: %d events could not be written to the store", unwritten)


async def cancel_all(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel the tasks and wait until every one has ended, cancelling again any task still
    running ``RECANCEL_SECONDS`` after its last cancel.

    Once is not always enough on Python 3.11: ``asyncio.wait_for`` returns the finished
    inner result when the cancel arrives in the step in which it finishes (fixed in 3.12),
    and redis-py sends every command through it. A task cancelled as it sent a Redis
    command (the live page's reads, seen under load) went on to its next sleep, and the
    daemon waited for it until systemd killed it."""
    pending = {task for task in tasks if not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_SECONDS)
        for task in sorted(pending, key=asyncio.Task.get_name):
            log.warning("shutdown: task %s still runs %.0fs after it was cancelled; "
                        "cancelling it again", task.get_name(), RECANCEL_SECONDS)
            task.cancel()
