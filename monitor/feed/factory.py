"""One feed per enabled venue, built from its config section: the transport is data."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from monitor.clock import Clock
from monitor.config import Config, VenueConfig
from monitor.feed.node_source import NodeFillsFeed
from monitor.feed.ports import EventSink, FeedObserver, FrameTap
from monitor.feed.supervisor import FeedTiming
from monitor.feed.venue import VenueFeed
from monitor.venues import VENUES, make_dialect


class Feed(Protocol):
    venue: str

    @property
    def subscribed(self) -> int:
        """Connections (or sources) currently subscribed and receiving."""
        ...

    @property
    def connections(self) -> int:
        """Connections (or sources) planned."""
        ...

    @property
    def last_data_at(self) -> float | None:
        """Monotonic time of the last frame carrying data; None before the first."""
        ...

    async def run(self) -> None: ...


def build_feed(
    venue: str,
    vc: VenueConfig,
    config: Config,
    sink: EventSink,
    observer: FeedObserver,
    clock: Clock,
    *,
    cache_dir: Path | None,
    tap: FrameTap | None,
) -> Feed:
    if VENUES[venue].transport == "node-fills":
        path, state = vc.node_paths(venue)
        return NodeFillsFeed(path, state, sink, observer, clock,
                             silence_limit_seconds=vc.silence_limit_seconds)
    timing = FeedTiming(
        silence_limit_seconds=vc.silence_limit_seconds,
        open_timeout_seconds=config.feed.open_timeout_seconds,
        ack_timeout_seconds=config.feed.ack_timeout_seconds,
        backoff_initial_seconds=config.feed.backoff_initial_seconds,
        backoff_max_seconds=config.feed.backoff_max_seconds,
        healthy_after_seconds=config.feed.healthy_after_seconds,
        unknown_instrument_hold_seconds=config.feed.unknown_instrument_hold_seconds,
        read_pause_seconds=config.feed.read_pause_ms / 1000)
    return VenueFeed(
        make_dialect(venue, vc.settings()), vc.ws_base_url, vc.rest_base_url, timing,
        sink, observer, clock, instruments_refresh_seconds=vc.instruments_refresh_seconds,
        cache_dir=cache_dir, tap=tap)
