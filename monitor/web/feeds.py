"""Feed health for the live page: per venue up or down, last frame age, gaps.

The daemon's metrics already count every frame and hold each venue's connection state;
this reads them once per update interval (:func:`feed_samples`, one ``collect()`` per
metric, not a scrape of the whole registry) and keeps what a page needs on top: when the
frame count last moved, on the monotonic clock, and the gaps, the stretches during which
a venue was down. A venue is down while not every connection is subscribed, or while no
frame has arrived for its silence limit, or while no frame carried an event (a
liquidation or a price: every venue connection carries a price stream) for that long. A
connection that answers pings and sends no data, as Binance's retired route did, looks
connected and receives frames, but is not delivering; :class:`DataWatch`, in front of
ingest, notes when each venue last handed on events.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.clock import Clock
from monitor.events import Liquidation, MarkPrice
from monitor.feed.ports import EventSink

GAPS_KEPT = 20


class DataWatch:
    """An EventSink in front of ingest that notes when each venue last delivered events."""

    def __init__(self, sink: EventSink, clock: Clock) -> None:
        self._sink = sink
        self._clock = clock
        self.data_at: dict[str, float] = {}  # venue → monotonic time of its last events

    def put(self, venue: str, events: list[Liquidation | MarkPrice]) -> None:
        self.data_at[venue] = self._clock.monotonic()
        self._sink.put(venue, events)


@dataclass
class FeedSample:
    """One venue's figures from the metrics at one moment."""

    connected: bool = False
    subscribed: int = 0
    frames: float = 0.0
    invalid: float = 0.0
    reconnects: float = 0.0  # rotations excluded: they are planned, not gaps


def feed_samples(metric_samples: Iterable[tuple[str, Mapping[str, str], float]]
                 ) -> dict[str, FeedSample]:
    """Samples (name, labels, value) of the feed metrics → one FeedSample per venue."""
    feeds: dict[str, FeedSample] = {}
    for name, labels, value in metric_samples:
        venue = labels.get("venue")
        if venue is None:
            continue
        sample = feeds.setdefault(venue, FeedSample())
        if name == "liqmon_feed_connected":
            sample.connected = value >= 1
        elif name == "liqmon_feed_subscribed_connections":
            sample.subscribed = int(value)
        elif name == "liqmon_frames_total":
            sample.frames = value
        elif name == "liqmon_frames_invalid_total":
            sample.invalid += value
        elif name == "liqmon_feed_reconnects_total" and labels.get("reason") != "rotation":
            sample.reconnects += value
    return feeds


@dataclass
class _Venue:
    frames: float = -1.0
    frame_at: float | None = None  # monotonic time the frame count last moved
    up: bool = False
    down_since: float | None = None  # wall time (the app's clock) the current gap began
    gaps: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=GAPS_KEPT))


class FeedHealth:
    def __init__(self) -> None:
        self._venues: dict[str, _Venue] = {}

    def update(self, samples: Mapping[str, FeedSample], data_at: Mapping[str, float],
               limits: Mapping[str, float], monotonic: float, wall: float
               ) -> list[dict[str, Any]]:
        """Fold in one set of samples; return the rows the page shows, one per venue."""
        rows = []
        for venue in sorted(limits):
            sample = samples.get(venue, FeedSample())
            state = self._venues.setdefault(venue, _Venue())
            if sample.frames != state.frames:
                if state.frames >= 0 or sample.frames > 0:
                    state.frame_at = monotonic
                state.frames = sample.frames
            age = None if state.frame_at is None else monotonic - state.frame_at
            data = data_at.get(venue)
            data_age = None if data is None else monotonic - data
            limit = limits[venue]
            if not sample.connected:
                up, detail = False, "not connected"
            elif age is None or age > limit:
                up, detail = False, "connected, no frames"
            elif data_age is None:
                up, detail = False, "connected, no data yet"
            elif data_age > limit:
                up, detail = False, f"connected, no data for {data_age:.0f}s"
            else:
                up, detail = True, "receiving"
            if state.up and not up:
                state.down_since = wall
            elif up and not state.up and state.down_since is not None:
                state.gaps.append((state.down_since, wall))
                state.down_since = None
            state.up = up
            rows.append({
                "venue": venue,
                "status": "up" if up else "down",
                "detail": detail,
                "subscribed": sample.subscribed,
                "last_frame_age_s": None if age is None else round(age, 1),
                "last_data_age_s": None if data_age is None else round(data_age, 1),
                "frames": int(sample.frames),
                "invalid": int(sample.invalid),
                "reconnects": int(sample.reconnects),
                "down_since_ms": None if state.down_since is None else round(
                    state.down_since * 1000),
                "gaps": [[round(a * 1000), round(b * 1000)] for a, b in state.gaps],
            })
        for venue in [v for v in self._venues if v not in limits]:
            del self._venues[venue]
        return rows
