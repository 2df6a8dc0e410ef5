"""Server-sent-event fan-out: one message, many clients, none of them able to slow the loop.

Each client has a bounded queue. :meth:`Hub.publish` only appends (it never awaits); a
client whose queue is full (it stopped reading, or reads slower than the updates come) is
dropped: its stream ends, and the browser's EventSource reconnects and starts again from a
full snapshot. Writing to a socket waits at most ``write_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

log = logging.getLogger(__name__)

QUEUE_SIZE = 8
MAX_CLIENTS = 64
WRITE_TIMEOUT_SECONDS = 5.0


def sse_message(event: str, data: bytes) -> bytes:
    """One server-sent event; ``data`` is one line of JSON (orjson never writes newlines)."""
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class Client:
    __slots__ = ("_queue", "_size", "_wake", "closed", "dropped")

    def __init__(self, size: int) -> None:
        self._queue: deque[bytes] = deque()
        self._size = size
        self._wake = asyncio.Event()
        self.closed = False
        self.dropped = False

    def offer(self, message: bytes) -> bool:
        """Queue a message; False (and the client is dropped) when the queue is full."""
        if len(self._queue) >= self._size:
            self.dropped = True
            self.close()
            return False
        self._queue.append(message)
        self._wake.set()
        return True

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def stream(self, writer: asyncio.StreamWriter, write_timeout: float) -> None:
        """Write queued messages until closed, dropped, or the socket fails or stalls."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.closed:
                return
            while self._queue:
                writer.write(self._queue.popleft())
            async with asyncio.timeout(write_timeout):
                await writer.drain()


class Hub:
    def __init__(self, *, queue_size: int = QUEUE_SIZE, max_clients: int = MAX_CLIENTS,
                 write_timeout: float = WRITE_TIMEOUT_SECONDS) -> None:
        self._queue_size = queue_size
        self._max_clients = max_clients
        self.write_timeout = write_timeout
        self._clients: set[Client] = set()
        self.dropped_total = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    def subscribe(self) -> Client | None:
        """A new client, or None when ``max_clients`` are connected already."""
        if len(self._clients) >= self._max_clients:
            return None
        client = Client(self._queue_size)
        self._clients.add(client)
        return client

    def unsubscribe(self, client: Client) -> None:
        self._clients.discard(client)
        client.close()

    def publish(self, message: bytes) -> None:
        for client in list(self._clients):
            if not client.offer(message):
                self._clients.discard(client)
                self.dropped_total += 1
                log.info("web: dropped a live-view client that stopped reading")

    def close(self) -> None:
        """End every stream (shutdown: the server waits for its connections)."""
        for client in self._clients:
            client.close()
        self._clients.clear()
