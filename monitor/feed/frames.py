"""What one connection does with each frame it reads (DESIGN 4).

:class:`FrameHandler` parses a frame with the connection's dialect session and hands its
events to the ingest sink; what a frame asks of the connection (a reply, a refused topic
to drop, an invalid frame to count, a frame held until the instrument list knows its
symbol) is done here too. The socket's life (connect, subscribe, read, heartbeat, silence
watchdog, rotation, backoff) is :class:`monitor.feed.supervisor.ConnectionRunner`'s, which
calls :meth:`FrameHandler.take` for every frame and awaits :meth:`FrameHandler.finish`
only for the rare frame that needs the connection or a wait.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from monitor.clock import Clock
from monitor.errors import FrameError, SubscriptionRejected, UnknownInstrument
from monitor.events import Liquidation, MarkPrice
from monitor.feed.held import HeldFrame, HeldFrames
from monitor.feed.ports import Event, EventSink, FeedObserver, FrameTap, InstrumentSource
from monitor.feed.topics import LiveTopics
from monitor.logs import RateLimitedLog
from monitor.venues.dialect import (
    Ack,
    Dialect,
    DialectSession,
    Invalid,
    Rejection,
    Reply,
    Unrecognised,
)

log = logging.getLogger(__name__)

FRAME_LOG_CHARS = 300
# A tuple, not ``Liquidation | MarkPrice``: that expression builds a union object each time
# it is evaluated, once per item of every frame.
EVENT_TYPES = (Liquidation, MarkPrice)


class Sender(Protocol):
    """The connection, as far as frames need it: a reply or a request to send."""

    async def send(self, message: str) -> None: ...


@dataclass(slots=True)
class Pending:
    """A frame's work that needs the connection or a wait (see :meth:`FrameHandler.take`)."""

    text: str
    received_at: float
    items: Sequence[object]
    unknown: UnknownInstrument | None


class FrameHandler:
    """The frames of one planned connection (and of the connections that replace it)."""

    def __init__(
        self,
        dialect: Dialect,
        name: str,
        topics: LiveTopics,
        sink: EventSink,
        observer: FeedObserver,
        clock: Clock,
        warn: RateLimitedLog,
        *,
        hold_seconds: float,
        instruments: InstrumentSource | None,
        tap: FrameTap | None,
    ) -> None:
        self.dialect = dialect
        self.venue = dialect.venue
        self.name = name
        self._topics = topics
        self._sink = sink
        self._observer = observer
        self._clock = clock
        self._warn = warn
        self._hold_seconds = hold_seconds
        self._instruments = instruments
        self._tap = tap
        # The recorder's label of the connection: "<plan>#<connection number>", set by the
        # runner at each connect.
        self.tap_label = f"{name}#0"
        self.held = HeldFrames()
        self.last_data_at: float | None = None  # monotonic
        # Frames that carried a liquidation, so far: a connection whose last read brought
        # one is read again at once, not after its read pause (monitor/feed/pacing.py).
        self.liquidation_frames = 0

    async def handle(self, ws: Sender, session: DialectSession, message: str | bytes) -> int:
        """Parse one frame and dispatch its items; return how many acks it carried."""
        taken = self.take(session, message, self._clock.monotonic(), self._clock.wall())
        return taken if isinstance(taken, int) else await self.finish(ws, taken)

    def take(
        self, session: DialectSession, message: str | bytes, now: float, received_at: float
    ) -> int | Pending:
        """Parse one frame and hand its events on; return its acks, or what is left to do
        that needs the connection (replies, rejections, notices) or a wait (a frame held
        for an instrument refresh). ``now`` and ``received_at`` are the monotonic and the
        wall time it was read."""
        self._observer.frame(self.venue, received_at)
        try:
            text = message if isinstance(message, str) else self.dialect.decode_binary(message)
        except FrameError as exc:
            self.invalid(exc, repr(message[:FRAME_LOG_CHARS]))
            return 0
        if self._tap is not None:
            self._tap.frame(self.venue, received_at, text, self.tap_label)
        try:
            items = session.parse(text, received_at)
        except UnknownInstrument as exc:
            return Pending(text, received_at, (), exc)
        except FrameError as exc:
            self.invalid(exc, text)
            return 0
        if not items:  # most price frames: a ticker delta without a mark price
            return 0
        acks = 0
        events: list[Event] = []
        for item in items:
            if isinstance(item, EVENT_TYPES):
                events.append(item)
            elif isinstance(item, Ack):
                acks += 1
            else:
                return Pending(text, received_at, items, None)
        if events:
            self.last_data_at = now
            # A frame is of one kind in practice (a venue's liquidation or price channel):
            # its first and last events say which, without a look at every row.
            if events[0].__class__ is Liquidation or events[-1].__class__ is Liquidation:
                self.liquidation_frames += 1
            self._observer.data(self.venue, events[-1].received_at)
            self._sink.put(self.venue, events)
        return acks

    async def finish(self, ws: Sender, pending: Pending) -> int:
        if pending.unknown is not None:
            await self._hold(pending.text, pending.received_at, pending.unknown)
            return 0
        return await self._dispatch(ws, pending.items, pending.text)

    async def _dispatch(self, ws: Sender, items: Sequence[object], text: str) -> int:
        acks = 0
        events: list[Event] = []
        for item in items:
            if isinstance(item, EVENT_TYPES):
                events.append(item)
            elif isinstance(item, Ack):
                acks += 1
            elif isinstance(item, Reply):
                await ws.send(item.text)
            elif isinstance(item, Rejection):
                if item.topic is None:
                    raise SubscriptionRejected(self.venue, item.message)
                acks += 1  # the refusal answers the request
                await self._refused(ws, item)
            elif isinstance(item, Invalid):
                self.invalid(FrameError(item.reason, item.detail), text)
            elif isinstance(item, Unrecognised):
                self.invalid(FrameError("unrecognised", item.reason), text)
        if events:
            self.last_data_at = self._clock.monotonic()
            if any(e.__class__ is Liquidation for e in events):
                self.liquidation_frames += 1
            self._observer.data(self.venue, events[-1].received_at)
            self._sink.put(self.venue, events)
        return acks

    async def _refused(self, ws: Sender, rejection: Rejection) -> None:
        """One topic refused: drop it (until the next instrument refresh), keep the rest."""
        self._observer.topic_refused(self.venue)
        self._warn.warning(f"{self.venue}-refused-{rejection.topic}",
                           "%s %s: topic %s refused (%s); dropped until the next instrument "
                           "refresh", self.venue, self.name, rejection.topic,
                           rejection.message)
        for request in self._topics.refuse(rejection):
            await ws.send(request.text)
        if not self._topics.held:
            # Every topic refused: that is a refusal of the connection, with backoff.
            raise SubscriptionRejected(self.venue, rejection.message)

    def invalid(self, exc: FrameError, text: str) -> None:
        self._observer.frame_invalid(self.venue, exc.reason)
        self._warn.warning(f"{self.venue}-invalid-{exc.reason}", "%s: invalid frame (%s): %.300s",
                           self.venue, exc, text)

    async def _hold(self, text: str, received_at: float, exc: UnknownInstrument) -> None:
        """A frame that cannot be valued yet waits for an instrument refresh, briefly."""
        if self._instruments is None or self._hold_seconds <= 0:
            self.invalid(exc, text)
            return
        frame = HeldFrame(exc.instrument, text, received_at,
                          self._clock.monotonic() + self._hold_seconds)
        if not self.held.add(frame, self._instruments.book.version):
            self.invalid(FrameError("held_overflow", f"{self.held.cap} frames already wait "
                                    "for instruments"), text)
            return
        await self._instruments.refresh_soon()

    async def retry_held(self, session: DialectSession) -> None:
        """Each held frame once: when a refresh landed (retried if it brought the frame's
        instrument), or given up at its deadline."""
        if self._instruments is None:
            return
        book = self._instruments.book
        now = self._clock.monotonic()
        if not self.held.due(book.version, now):
            return
        refreshed = book.version != self.held.book_version
        known = {i for i in self.held.instruments() if i in book} if refreshed else None
        self.held.rebase(book.version)
        for frame, retry in self.held.release(known, now):
            text, received_at = frame.text, frame.received_at
            if not retry:
                self.invalid(UnknownInstrument(self.venue, frame.instrument), text)
                continue
            try:
                items = session.parse(text, received_at)
            except FrameError as exc:
                self.invalid(exc, text)
                continue
            events = [i for i in items if isinstance(i, EVENT_TYPES)]
            if events:
                self._sink.put(self.venue, events)
