"""The one connection loop for every venue (DESIGN 4).

Venue differences come from the dialect as data (URLs, subscribe frames, ping text and
interval, lifetime, sharding); nothing here asks which venue it serves. Each
:class:`ConnectionRunner` owns one websocket: connect, subscribe and wait for every
acknowledgement, read, heartbeat, watch for silence, rotate before the venue's lifetime
limit, and reconnect with backoff. The reader never awaits anything slow: events go to the
ingest sink, which never blocks.

The reader works in bounded slices. websockets hands over a frame that is already buffered
without suspending, and one socket read can buffer hundreds of frames during a burst, so
without a deliberate yield a reader would parse its whole backlog in one event-loop step
and hold every other task (the alert path, other venues, the scrape) for tens of ms. After
:data:`FRAMES_PER_SLICE` frames in a row it yields once; when frames arrive one at a time
the reader suspends in ``recv`` anyway and the extra yield costs one loop turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import websockets
from websockets.asyncio.client import ClientConnection, connect

from monitor.backoff import Backoff
from monitor.clock import Clock
from monitor.errors import FeedError, FrameError, SubscriptionRejected, UnknownInstrument
from monitor.events import Liquidation, MarkPrice
from monitor.feed.held import HeldFrame, HeldFrames
from monitor.feed.lifetimes import Lifetimes
from monitor.feed.ports import Event, EventSink, FeedObserver, FrameTap, InstrumentSource
from monitor.feed.topics import LiveTopics
from monitor.logs import RateLimitedLog
from monitor.venues.dialect import (
    Ack,
    ConnectionPlan,
    Dialect,
    DialectSession,
    Invalid,
    Rejection,
    Reply,
    Unrecognised,
)

log = logging.getLogger(__name__)

FRAME_LOG_CHARS = 300
# Protocol pings prove the socket lives; the silence watchdog proves data flows.
PROTOCOL_PING_SECONDS = 20.0
# Frames parsed between two yields to the event loop. A 20-row liquidation frame costs about
# 0.1-0.2 ms to parse and hand on here, so a slice stays near 1-2 ms.
FRAMES_PER_SLICE = 8
# A tuple, not ``Liquidation | MarkPrice``: that expression builds a union object each time
# it is evaluated, once per item of every frame.
EVENT_TYPES = (Liquidation, MarkPrice)


@dataclass(frozen=True, slots=True)
class FeedTiming:
    silence_limit_seconds: float
    open_timeout_seconds: float
    ack_timeout_seconds: float
    backoff_initial_seconds: float
    backoff_max_seconds: float
    healthy_after_seconds: float
    unknown_instrument_hold_seconds: float


class ConnectionRunner:
    """One websocket connection of one venue, kept alive forever (until cancelled)."""

    def __init__(
        self,
        dialect: Dialect,
        plan: ConnectionPlan,
        session_factory: Callable[[], DialectSession],
        sink: EventSink,
        observer: FeedObserver,
        clock: Clock,
        timing: FeedTiming,
        *,
        on_state: Callable[[], None] = lambda: None,
        instruments: InstrumentSource | None = None,
        tap: FrameTap | None = None,
        warn: RateLimitedLog | None = None,
        refused: set[str] | None = None,
    ) -> None:
        self.dialect = dialect
        self.venue = dialect.venue
        self.plan = plan
        self._new_session = session_factory
        self._sink = sink
        self._observer = observer
        self._clock = clock
        self._timing = timing
        self._on_state = on_state
        self._instruments = instruments
        self._tap = tap
        self._warn = warn or RateLimitedLog(log)
        self._backoff = Backoff(timing.backoff_initial_seconds, timing.backoff_max_seconds)
        self.subscribed = False
        self.connects = 0
        self._held = HeldFrames()
        self._lifetimes = Lifetimes(timing.healthy_after_seconds, timing.backoff_initial_seconds)
        self.last_data_at: float | None = None  # monotonic
        self._topics = LiveTopics(dialect, plan.name, set() if refused is None else refused)
        self._live: ClientConnection | None = None  # the subscribed connection, if any

    # -- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            reason, opened_at = await self._one_connection()
            self._live = None
            self._set_subscribed(False)
            self._observer.reconnect(self.venue, reason)
            if opened_at is not None and self._lifetimes.ended(
                    self._clock.monotonic() - opened_at):
                self._backoff.reset()
            delay = self._backoff.next_delay()
            log.info("%s %s: reconnecting in %.2fs (%s)", self.venue, self.plan.name, delay,
                     reason)
            await asyncio.sleep(delay)

    async def _one_connection(self) -> tuple[str, float | None]:
        """Run one connection (and its rotations) to its end; return why it ended."""
        try:
            ws, session = await self._open()
        except SubscriptionRejected as exc:
            log.error("%s %s: %s", self.venue, self.plan.name, exc)
            return "rejected", None
        except TimeoutError:
            self._warn.warning(f"{self.venue}-open", "%s %s: timed out connecting or subscribing",
                               self.venue, self.plan.name)
            return "timeout", None
        except (OSError, websockets.exceptions.WebSocketException, FeedError) as exc:
            self._warn.warning(f"{self.venue}-open", "%s %s: cannot connect: %s",
                               self.venue, self.plan.name, _short(exc))
            return "error", None
        opened_at = self._clock.monotonic()
        while True:
            try:
                reason, replacement = await self._read(ws, session, opened_at)
            finally:
                await ws.close()
            if replacement is None:
                return reason, opened_at
            self._observer.reconnect(self.venue, "rotation")
            log.info("%s %s: rotated to a fresh connection", self.venue, self.plan.name)
            ws, session = replacement
            opened_at = self._clock.monotonic()
            self._live = ws
            self._set_subscribed(True)
            await self._sync(ws)

    async def _open(self) -> tuple[ClientConnection, DialectSession]:
        async with asyncio.timeout(self._timing.open_timeout_seconds):
            ws = await connect(
                self.plan.url,
                open_timeout=None,
                ping_interval=PROTOCOL_PING_SECONDS,
                ping_timeout=PROTOCOL_PING_SECONDS,
                close_timeout=1.0,
                max_size=16 * 1024 * 1024,
                compression=None,
                proxy=None,
            )
        self.connects += 1
        session = self._new_session()
        try:
            await self._subscribe(ws, session)
        except BaseException:
            await ws.close()
            raise
        self._set_subscribed(True)
        log.info("%s %s: subscribed at %s", self.venue, self.plan.name, self.plan.url)
        if self._live is None:  # a rotation's new connection takes over when the old ends
            self._live = ws
            await self._sync(ws)
        return ws, session

    async def update(self, plan: ConnectionPlan) -> None:
        """Take a new plan of the same connection: its topics change on the live socket."""
        self.plan = plan
        if self._live is not None:
            await self._sync(self._live)

    async def _sync(self, ws: ClientConnection) -> None:
        """Send what brings the connection's topics to the plan's (a listing, a delisting,
        a change made while it was subscribing). A closed socket is the reader's to see."""
        if not self.plan.topics:
            return
        try:
            for request in self._topics.sync(self.plan.topics):
                await ws.send(request.text)
        except websockets.exceptions.ConnectionClosed:
            pass

    async def _subscribe(self, ws: ClientConnection, session: DialectSession) -> None:
        acks = 0
        if self.plan.topics:
            requests = self._topics.start(self.plan.topics)
            if not requests:
                raise SubscriptionRejected(self.venue, "every topic of this connection was "
                                           "refused; retried after the next instrument refresh")
            frames: Sequence[str] = [r.text for r in requests]
            expected = sum(r.acks for r in requests)
        else:
            frames, expected = self.plan.subscribe_frames, self.plan.expected_acks
        for i, frame in enumerate(frames):
            if i and self.plan.subscribe_interval_seconds:
                # Read while spacing the requests: acks and data keep arriving meanwhile.
                acks += await self._read_acks(
                    ws, session, self.plan.subscribe_interval_seconds, need=None)
            await ws.send(frame)
        remaining = expected - acks
        if remaining > 0:
            async with asyncio.timeout(self._timing.ack_timeout_seconds):
                await self._read_acks(ws, session, None, need=remaining)

    async def _read_acks(
        self, ws: ClientConnection, session: DialectSession, seconds: float | None,
        need: int | None,
    ) -> int:
        """Handle frames until ``need`` acks arrived, or for ``seconds`` when need is None."""
        acks = 0
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives as the inner recv completes, leaving a cancelled runner reading forever.
        try:
            async with asyncio.timeout(seconds):
                while need is None or acks < need:
                    acks += await self._handle(ws, session, await ws.recv())
        except TimeoutError:
            if need is not None:
                raise
        return acks

    async def _read(
        self, ws: ClientConnection, session: DialectSession, opened_at: float
    ) -> tuple[str, tuple[ClientConnection, DialectSession] | None]:
        """Read until the connection ends, goes stale, or has been replaced by a rotation."""
        last_frame = [self._clock.monotonic()]
        stale = [False]
        rotation: asyncio.Task[tuple[ClientConnection, DialectSession]] | None = None
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(self._watchdog(ws, last_frame, stale),
                                name=f"{self.plan.name}-watchdog")
        ]
        if self.dialect.ping_interval_seconds:
            tasks.append(asyncio.create_task(self._pinger(ws), name=f"{self.plan.name}-ping"))
        try:
            lifetime = self.dialect.max_lifetime_seconds
            rotate_at = opened_at + lifetime if lifetime else None
            in_slice = 0
            # recv awaited directly, not ``async for``: the library's iterator is an async
            # generator around the same recv, one more frame per message; a normal close
            # (ConnectionClosedOK, which ends that iterator) is a ConnectionClosed below.
            # Per frame, everything below runs once: bound once here.
            recv, take, held = ws.recv, self._take, self._held
            monotonic, wall = self._clock.monotonic, self._clock.wall
            while True:
                message = await recv()
                last_frame[0] = now = monotonic()
                # The common frame (events, acks) is handled without a coroutine; one that
                # needs the connection or a wait goes on to the async path.
                taken = take(session, message, now, wall())
                if not isinstance(taken, int):
                    await self._finish(ws, taken)
                in_slice += 1
                if in_slice >= FRAMES_PER_SLICE:
                    in_slice = 0
                    await asyncio.sleep(0)
                if held.count:
                    await self._retry_held(session)
                if rotate_at is not None and rotation is None and last_frame[0] >= rotate_at:
                    rotation = asyncio.create_task(self._open(), name=f"{self.plan.name}-rotate")
                if rotation is not None and rotation.done():
                    if rotation.exception() is None:
                        return "rotation", rotation.result()
                    log.warning("%s %s: rotation failed (%s); keeping the old connection",
                                self.venue, self.plan.name, _short(rotation.exception()))
                    rotation = None
                    rotate_at = self._clock.monotonic() + min(300.0, lifetime or 300.0)
        except websockets.exceptions.ConnectionClosed:
            return ("stale" if stale[0] else "closed"), None
        except SubscriptionRejected as exc:
            log.error("%s %s: %s", self.venue, self.plan.name, exc)
            return "rejected", None
        finally:
            for task in tasks:
                task.cancel()
            if rotation is not None and not rotation.done():
                rotation.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watchdog(
        self, ws: ClientConnection, last_frame: list[float], stale: list[bool]
    ) -> None:
        limit = self._timing.silence_limit_seconds
        while True:
            silent_for = self._clock.monotonic() - last_frame[0]
            if silent_for >= limit:
                self._warn.warning(
                    f"{self.venue}-stale",
                    "%s %s: no frame for %.1fs (limit %.1fs); reconnecting",
                    self.venue, self.plan.name, silent_for, limit)
                stale[0] = True
                # Not subscribed from this moment: liqmon_feed_connected drops now, not
                # after the close handshake and the backoff.
                self._set_subscribed(False)
                await ws.close(code=1000, reason="stale")
                return
            await asyncio.sleep(min(limit - silent_for, 1.0) + 0.01)

    async def _pinger(self, ws: ClientConnection) -> None:
        interval = self.dialect.ping_interval_seconds or 0.0
        while True:
            await asyncio.sleep(interval)
            frame = self.dialect.ping_frame(self._clock.wall())
            if frame is not None:
                await ws.send(frame)

    # -- frames ---------------------------------------------------------------------------
    async def _handle(
        self, ws: ClientConnection, session: DialectSession, message: str | bytes
    ) -> int:
        """Parse one frame and dispatch its items; return how many acks it carried."""
        taken = self._take(session, message, self._clock.monotonic(), self._clock.wall())
        return taken if isinstance(taken, int) else await self._finish(ws, taken)

    def _take(
        self, session: DialectSession, message: str | bytes, now: float, received_at: float
    ) -> int | _Pending:
        """Parse one frame and hand its events on; return its acks, or what is left to do
        that needs the connection (replies, rejections, notices) or a wait (a frame held
        for an instrument refresh). ``now`` and ``received_at`` are the monotonic and the
        wall time it was read."""
        self._observer.frame(self.venue, received_at)
        try:
            text = message if isinstance(message, str) else self.dialect.decode_binary(message)
        except FrameError as exc:
            self._invalid(exc, repr(message[:FRAME_LOG_CHARS]))
            return 0
        if self._tap is not None:
            self._tap.frame(self.venue, received_at, text, f"{self.plan.name}#{self.connects}")
        try:
            items = session.parse(text, received_at)
        except UnknownInstrument as exc:
            return _Pending(text, received_at, (), exc)
        except FrameError as exc:
            self._invalid(exc, text)
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
                return _Pending(text, received_at, items, None)
        if events:
            self.last_data_at = now
            self._observer.data(self.venue, events[-1].received_at)
            self._sink.put(self.venue, events)
        return acks

    async def _finish(self, ws: ClientConnection, pending: _Pending) -> int:
        if pending.unknown is not None:
            await self._hold(pending.text, pending.received_at, pending.unknown)
            return 0
        return await self._dispatch(ws, pending.items, pending.text)

    async def _dispatch(self, ws: ClientConnection, items: Sequence[object], text: str) -> int:
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
                self._invalid(FrameError(item.reason, item.detail), text)
            elif isinstance(item, Unrecognised):
                self._invalid(FrameError("unrecognised", item.reason), text)
        if events:
            self.last_data_at = self._clock.monotonic()
            self._observer.data(self.venue, events[-1].received_at)
            self._sink.put(self.venue, events)
        return acks

    async def _refused(self, ws: ClientConnection, rejection: Rejection) -> None:
        """One topic refused: drop it (until the next instrument refresh), keep the rest."""
        self._observer.topic_refused(self.venue)
        self._warn.warning(f"{self.venue}-refused-{rejection.topic}",
                           "%s %s: topic %s refused (%s); dropped until the next instrument "
                           "refresh", self.venue, self.plan.name, rejection.topic,
                           rejection.message)
        for request in self._topics.refuse(rejection):
            await ws.send(request.text)
        if not self._topics.held:
            # Every topic refused: that is a refusal of the connection, with backoff.
            raise SubscriptionRejected(self.venue, rejection.message)

    def _invalid(self, exc: FrameError, text: str) -> None:
        self._observer.frame_invalid(self.venue, exc.reason)
        self._warn.warning(f"{self.venue}-invalid-{exc.reason}", "%s: invalid frame (%s): %.300s",
                           self.venue, exc, text)

    async def _hold(self, text: str, received_at: float, exc: UnknownInstrument) -> None:
        """A frame that cannot be valued yet waits for an instrument refresh, briefly."""
        hold = self._timing.unknown_instrument_hold_seconds
        if self._instruments is None or hold <= 0:
            self._invalid(exc, text)
            return
        frame = HeldFrame(exc.instrument, text, received_at, self._clock.monotonic() + hold)
        if not self._held.add(frame, self._instruments.book.version):
            self._invalid(FrameError("held_overflow", f"{self._held.cap} frames already wait "
                                     "for instruments"), text)
            return
        await self._instruments.refresh_soon()

    async def _retry_held(self, session: DialectSession) -> None:
        """Each held frame once: when a refresh landed (retried if it brought the frame's
        instrument), or given up at its deadline."""
        if self._instruments is None:
            return
        book = self._instruments.book
        now = self._clock.monotonic()
        if not self._held.due(book.version, now):
            return
        refreshed = book.version != self._held.book_version
        known = {i for i in self._held.instruments() if i in book} if refreshed else None
        self._held.rebase(book.version)
        for frame, retry in self._held.release(known, now):
            text, received_at = frame.text, frame.received_at
            if not retry:
                self._invalid(UnknownInstrument(self.venue, frame.instrument), text)
                continue
            try:
                items = session.parse(text, received_at)
            except FrameError as exc:
                self._invalid(exc, text)
                continue
            events = [i for i in items if isinstance(i, EVENT_TYPES)]
            if events:
                self._sink.put(self.venue, events)

    def _set_subscribed(self, value: bool) -> None:
        if self.subscribed != value:
            self.subscribed = value
            self._on_state()


@dataclass(slots=True)
class _Pending:
    """A frame's work that needs the connection or a wait (see ``Supervisor._take``)."""

    text: str
    received_at: float
    items: Sequence[object]
    unknown: UnknownInstrument | None


def _short(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
