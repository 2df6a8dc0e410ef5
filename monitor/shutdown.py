"""The daemon's drain on stop: what was taken is delivered, in order, within one deadline.

Feeds stop first (nothing new is taken); then ingest drains its queue, the notifier
delivers what its outboxes hold (its workers still run; it says offline on MQTT while its
connection lives), the last minutes of feed coverage are recorded, and the store writes
what it buffers (its flusher still runs). Each step gets a share of what is left of the
deadline (``left()``), and what could not be done is logged with its count. The app then
cancels its tasks and closes the parts.
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
