"""The one connection loop for every venue (DESIGN 4).

Venue differences come from the dialect as data (URLs, subscribe frames, ping text and
interval, lifetime, sharding); nothing here asks which venue it serves. Each
:class:`ConnectionRunner` owns one websocket: connect, subscribe and wait for every
acknowledgement, read, heartbeat, watch for silence, rotate before the venue's lifetime
limit, and reconnect with backoff. What each frame becomes (events to the ingest sink,
which never blocks; replies, refused topics, invalid and held frames) is
:class:`monitor.feed.frames.FrameHandler`'s.

The reader works in bounded slices. websockets hands over a frame that is already buffered
without suspending, and one socket read can buffer hundreds of frames during a burst, so
without a deliberate yield a reader would parse its whole backlog in one event-loop step
and hold every other task (the alert path, other venues, the scrape) for tens of ms. After
:data:`FRAMES_PER_SLICE` frames in a row it yields once; when frames arrive one at a time
the reader suspends in ``recv`` anyway and the extra yield costs one loop turn.

A quiet connection's socket is read once per ``read_pause_seconds`` rather than once per
packet; a burst of liquidations, and a reply to what the connection sent, are read at once
(:mod:`monitor.feed.pacing`).
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
from monitor.errors import FeedError, SubscriptionRejected
from monitor.feed.frames import FrameHandler
from monitor.feed.lifetimes import Lifetimes
from monitor.feed.pacing import PACED_MAX_QUEUE, PacedTransport, paced_connection
from monitor.feed.ports import EventSink, FeedObserver, FrameTap, InstrumentSource
from monitor.feed.tls import websocket_ssl
from monitor.feed.topics import LiveTopics
from monitor.logs import RateLimitedLog
from monitor.venues.dialect import ConnectionPlan, Dialect, DialectSession

log = logging.getLogger(__name__)

# Protocol pings prove the socket lives; the silence watchdog proves data flows.
PROTOCOL_PING_SECONDS = 20.0
# Frames parsed between two yields to the event loop. A 20-row liquidation frame costs about
# 0.1-0.2 ms to parse and hand on here, so a slice stays near 1-2 ms.
FRAMES_PER_SLICE = 8
# websockets' own high-water mark of received frames, for unpaced connections.
DEFAULT_MAX_QUEUE = 16


@dataclass(frozen=True, slots=True)
class FeedTiming:
    silence_limit_seconds: float
    open_timeout_seconds: float
    ack_timeout_seconds: float
    backoff_initial_seconds: float
    backoff_max_seconds: float
    healthy_after_seconds: float
    unknown_instrument_hold_seconds: float
    # After the reader took the last frame, the socket is read again this much later (0:
    # at once), unless those frames carried a liquidation (monitor/feed/pacing.py).
    read_pause_seconds: float = 0.0


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
        self._observer = observer
        self._clock = clock
        self._timing = timing
        self._on_state = on_state
        self._warn = warn or RateLimitedLog(log)
        self._backoff = Backoff(timing.backoff_initial_seconds, timing.backoff_max_seconds)
        self.subscribed = False
        self.connects = 0
        self._lifetimes = Lifetimes(timing.healthy_after_seconds, timing.backoff_initial_seconds)
        self._topics = LiveTopics(dialect, plan.name, set() if refused is None else refused)
        self._frames = FrameHandler(
            dialect, plan.name, self._topics, sink, observer, clock, self._warn,
            hold_seconds=timing.unknown_instrument_hold_seconds, instruments=instruments,
            tap=tap)
        self._live: ClientConnection | None = None  # the subscribed connection, if any

    @property
    def last_data_at(self) -> float | None:
        """Monotonic time of the last frame carrying data; None before the first."""
        return self._frames.last_data_at

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
        pause = self._timing.read_pause_seconds
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
                ssl=websocket_ssl(self.plan.url),
                # Paced: see monitor/feed/pacing.py. Unpaced: the library's defaults.
                max_queue=PACED_MAX_QUEUE if pause > 0 else DEFAULT_MAX_QUEUE,
                create_connection=paced_connection(pause) if pause > 0 else None,
            )
        self.connects += 1
        self._frames.tap_label = f"{self.plan.name}#{self.connects}"
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
        handle = self._frames.handle
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # that arrives as the inner recv completes, leaving a cancelled runner reading forever.
        try:
            async with asyncio.timeout(seconds):
                while need is None or acks < need:
                    acks += await handle(ws, session, await ws.recv())
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
            frames = self._frames
            recv, take, finish, held = ws.recv, frames.take, frames.finish, frames.held
            monotonic, wall = self._clock.monotonic, self._clock.wall
            paced = ws.transport if isinstance(ws.transport, PacedTransport) else None
            liquidation_frames = frames.liquidation_frames
            while True:
                message = await recv()
                last_frame[0] = now = monotonic()
                # The common frame (events, acks) is handled without a coroutine; one that
                # needs the connection or a wait goes on to the async path.
                taken = take(session, message, now, wall())
                if frames.liquidation_frames != liquidation_frames:
                    # A liquidation: the next read is not paced (monitor/feed/pacing.py).
                    liquidation_frames = frames.liquidation_frames
                    if paced is not None:
                        paced.read_now()
                if not isinstance(taken, int):
                    await finish(ws, taken)
                in_slice += 1
                if in_slice >= FRAMES_PER_SLICE:
                    in_slice = 0
                    await asyncio.sleep(0)
                if held.count:
                    await frames.retry_held(session)
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

    def _set_subscribed(self, value: bool) -> None:
        if self.subscribed != value:
            self.subscribed = value
            self._on_state()


def _short(exc: BaseException | None) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]
