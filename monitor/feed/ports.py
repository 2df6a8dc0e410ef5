"""The protocols the feed defines for what it talks to: where events go, who counts frames
and connections, who receives raw frames, and who refreshes instruments."""

from __future__ import annotations

from typing import Protocol

from monitor.events import Liquidation, MarkPrice
from monitor.venues.instruments import InstrumentBook

Event = Liquidation | MarkPrice


class EventSink(Protocol):
    def put(self, venue: str, events: list[Event]) -> None:
        """Hand events on without blocking; the sink counts what it cannot take."""
        ...


class FeedObserver(Protocol):
    """What the supervisor reports (the Metrics class implements it)."""

    def frame(self, venue: str, received_at: float) -> None: ...
    def data(self, venue: str, received_at: float) -> None: ...
    def frame_invalid(self, venue: str, reason: str) -> None: ...
    def reconnect(self, venue: str, reason: str) -> None: ...
    def connections(self, venue: str, subscribed: int, total: int) -> None: ...
    def topic_refused(self, venue: str) -> None: ...
    def completeness_of(self, venue: str, completeness: str) -> None: ...


class FrameTap(Protocol):
    """Receives every raw frame as text (the recorder)."""

    def frame(self, venue: str, received_at: float, text: str, connection: str = "") -> None: ...


class InstrumentSource(Protocol):
    """The venue's instrument book and a way to ask for a refresh now."""

    book: InstrumentBook

    async def refresh_soon(self) -> None: ...
