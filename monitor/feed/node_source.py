"""The ``hyperliquid-node`` source: a node's fills files instead of a websocket.

It shares everything downstream of the transport with the websocket venues: the same
event sink (ingest), the same metrics (frames, invalid frames, connected, reconnects with
reason ``stale``), and the same silence rule (no new block for the venue's silence limit).
"""

from __future__ import annotations

import logging
from pathlib import Path

from monitor.clock import Clock
from monitor.errors import FrameError
from monitor.feed.node_fills import NodeFillsFollower
from monitor.feed.ports import EventSink, FeedObserver
from monitor.logs import RateLimitedLog
from monitor.venues.hyperliquid_node import parse_block_line

log = logging.getLogger(__name__)

VENUE = "hyperliquid-node"


class NodeFillsFeed:
    def __init__(
        self,
        directory: Path,
        state_file: Path,
        sink: EventSink,
        observer: FeedObserver,
        clock: Clock,
        *,
        silence_limit_seconds: float,
        poll_interval_seconds: float = 0.25,
    ) -> None:
        self.venue = VENUE
        self._sink = sink
        self._observer = observer
        self._clock = clock
        self._warn = RateLimitedLog(log)
        # Monotonic time of the last block line: blocks flow whether or not they liquidate.
        self.last_data_at: float | None = None
        self.follower = NodeFillsFollower(
            directory, state_file, clock, poll_interval_seconds, silence_limit_seconds,
            on_staleness=self._staleness)

    @property
    def subscribed(self) -> int:
        return 0 if self.follower.stale else 1

    @property
    def connections(self) -> int:
        return 1

    def _staleness(self, stale: bool) -> None:
        if stale:
            self._observer.reconnect(VENUE, "stale")
        self._observer.connections(VENUE, self.subscribed, 1)

    def _line(self, text: str, received_at: float) -> None:
        self._observer.frame(VENUE, received_at)
        self._observer.data(VENUE, received_at)
        self.last_data_at = self._clock.monotonic()
        try:
            events = parse_block_line(text, received_at)
        except FrameError as exc:
            self._observer.frame_invalid(VENUE, exc.reason)
            self._warn.warning(f"{VENUE}-invalid-{exc.reason}", "%s: invalid block (%s): %.300s",
                               VENUE, exc, text)
            return
        if events:
            self._sink.put(VENUE, list(events))

    async def run(self) -> None:
        log.info("%s: following fills in %s", VENUE, self.follower.directory)
        self._observer.connections(VENUE, 1, 1)
        self._observer.completeness_of(VENUE, "full")  # a node writes every fill
        await self.follower.run(self._line)
