"""One websocket connection of the simulator: its outbox, its writer task and its faults.

The player never awaits a client: it appends frames to each connection's outbox, and one
writer task per connection sends them. A slow client therefore delays only itself; one
that lets ``MAX_OUTBOX`` frames pile up is disconnected, as venues drop slow consumers.
Faults are applied here, frame by frame, on the wall clock of the connection's age.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from monitor.simulator.faults import Faults
from monitor.simulator.ledger import Ledger
from monitor.simulator.venue_sim import Close, Frame, Out, Publication, SimSession

log = logging.getLogger(__name__)

MAX_OUTBOX = 200_000


class SimConnection:
    def __init__(
        self,
        ws: ServerConnection,
        venue: str,
        session: SimSession,
        faults: Faults,
        ledger: Ledger,
        rng: random.Random,
    ) -> None:
        self.ws = ws
        self.venue = venue
        self.session = session
        self.faults = faults
        self._ledger = ledger
        self._rng = rng
        self._loop = asyncio.get_running_loop()
        self.opened = self._loop.time()
        self._outbox: list[Out] = []
        self._wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.frames_sent = 0
        self.malformed_sent = 0
        self._malformed_kind = 0
        self.closed = False

    def age(self) -> float:
        return self._loop.time() - self.opened

    def push(self, items: Sequence[Out]) -> None:
        if not items or self.closed:
            return
        self._outbox.extend(items)
        self._signal()

    def offer(self, pub: Publication) -> bool:
        """Queue ``pub`` if this connection's session subscribed to it; no wake-up yet."""
        if self.closed:
            return False
        data = self.session.render(pub)
        if data is None:
            return False
        self._outbox.append(Frame(data, True, pub.liquidations))
        return True

    def flush(self) -> None:
        if self._outbox:
            self._signal()

    def _signal(self) -> None:
        if len(self._outbox) > MAX_OUTBOX:
            log.warning("%s: client is %d frames behind; dropping it", self.venue, MAX_OUTBOX)
            self.abort()
            return
        self.idle.clear()
        self._wake.set()

    def abort(self) -> None:
        """Drop the TCP connection without a closing handshake (a network failure)."""
        self.closed = True
        self._outbox.clear()
        self.idle.set()
        self.ws.transport.abort()

    async def run_writer(self) -> None:
        try:
            while not self.closed:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox and not self.closed:
                    items, self._outbox = self._outbox, []
                    for item in items:
                        if isinstance(item, Close):
                            self.closed = True
                            await self.ws.close(item.code, item.reason)
                            return
                        await self._send(item)
                if not self._outbox:
                    self.idle.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._outbox.clear()
            self.idle.set()

    async def _send(self, frame: Frame) -> None:
        faults = self.faults
        if faults.stall_after_seconds is not None and faults.stalled(self.age()):
            return  # the socket stays open; nothing goes out
        if frame.is_data and faults.silent_after_ack:
            return
        await self.ws.send(frame.data)
        self.frames_sent += 1
        if frame.liquidations:
            self._ledger.record(frame.liquidations)
        if not frame.is_data:
            return
        if faults.duplicate_ratio and self._rng.random() < faults.duplicate_ratio:
            await self.ws.send(frame.data)
        if faults.malformed_ratio and self._rng.random() < faults.malformed_ratio:
            await self.ws.send(self._malformed(frame.data))
            self.malformed_sent += 1

    def _malformed(self, data: str | bytes) -> str | bytes:
        # Alternate a frame cut in half (invalid JSON) and JSON of no known shape: neither
        # may ever be read as a liquidation.
        self._malformed_kind += 1
        if isinstance(data, bytes):
            return data[: max(len(data) // 2, 1)]
        if self._malformed_kind % 2:
            return data[: max(len(data) // 2, 1)]
        return '{"sim_malformed":true,"data":[{"x":"?"}]}'
