"""Paced reads: a connection's socket is read at most once per pause, not once per packet.

At 1,000 price frames a second most of a quiet daemon's CPU is not its own work but the
event loop waking for every packet: the socket read, asyncio's TLS layer, the websocket
library's framing and the reader task's wake-up, each once per arrival (docs/benchmarks.md,
"CPU at 1,000 price frames/s"). Reading less often, so that one read takes every frame
that arrived meanwhile, cuts those wake-ups; each frame then waits at most the pause.

How, with public interfaces only. The connection is made with ``max_queue=(0, 0)``:
websockets then pauses the transport's reading as soon as a frame waits in its queue and
resumes it when the reader has taken the last one (the library's documented flow control,
with both marks at zero). The connection class (``connect``'s documented
``create_connection`` hook) hands websockets a :class:`PacedTransport`, which passes every
call on to asyncio's transport except ``resume_reading``: that it defers by the pause.
So the socket is read again a pause after the reader caught up, never while frames wait,
and the library's memory bound holds (nothing is read while its queue is not empty).

A burst is not paced: once the reader has taken a liquidation it calls
:meth:`PacedTransport.read_now`, and the socket is read again at once, as without pacing. Only a
connection that carried none since its last read waits, so a cascade's frames wait at most
one pause, for the first read of the burst; the alert path then runs unpaced. Nor is a
dialogue: when the connection wrote since its last read (a subscription, a refused topic's
new request, a ping, a pong), the reply is read as soon as it comes.

Under TLS (every real venue), pausing asyncio's TLS transport only stops it handing
decrypted data on; it goes on reading the socket into its buffer until 256 KiB wait
(``asyncio.sslproto``). While paused, :class:`PacedTransport` lowers that buffer's
high-water mark to one byte (``set_read_buffer_limits``, the TLS transport's own public
method), so that the first packet after the pause stops the socket's reading too; it puts
the marks back before resuming, so that a partial TLS record can never hold the socket
paused while the application reads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from websockets.asyncio.client import ClientConnection

# (high, low) of websockets' queue of received frames: pause at the first waiting frame,
# resume when the reader has taken the last.
PACED_MAX_QUEUE = (0, 0)


class PacedTransport(asyncio.Transport):
    """asyncio's transport for websockets, with ``resume_reading`` deferred by ``pause``
    unless the frames since the last read carried a liquidation or the connection wrote."""

    def __init__(self, transport: asyncio.Transport, pause: float) -> None:
        super().__init__()
        self._transport = transport
        self._pause = pause
        self._burst = False  # since the last read: a liquidation was taken
        self._loop = asyncio.get_running_loop()
        self._resume: asyncio.TimerHandle | None = None
        self._paced = True
        self._wrote = False  # since the last read: a reply is awaited
        # Only asyncio's TLS transport has read buffer limits (a plain socket's pause stops
        # its reads at once); their values are put back when reading resumes.
        self._tls_limits = getattr(transport, "set_read_buffer_limits", None)
        get_limits = getattr(transport, "get_read_buffer_limits", None)
        self._limits: tuple[int, int] | None = get_limits() if get_limits else None

    # Reading, paced.

    def pause_reading(self) -> None:
        if not self._paced:
            return
        self._cancel()
        self._transport.pause_reading()
        if self._tls_limits is not None:
            self._tls_limits(high=1, low=0)

    def resume_reading(self) -> None:
        burst, wrote = self._burst, self._wrote
        self._burst = self._wrote = False
        if not self._paced or burst or wrote:
            self._resume_now()
        elif self._resume is None:
            self._resume = self._loop.call_later(self._pause, self._resume_now)

    def _resume_now(self) -> None:
        self._cancel()
        if self._transport.is_closing():
            return
        if self._tls_limits is not None and self._limits is not None:
            low, high = self._limits
            self._tls_limits(high=high, low=low)
        self._transport.resume_reading()

    def read_now(self) -> None:
        """The reader just took a liquidation: the next read is not paced, and if reading
        waits out a pause already (decided when the frame left websockets' queue, before it
        was parsed) it resumes now."""
        self._burst = True
        if self._resume is not None:
            self._resume_now()

    def unpace(self) -> None:
        """Read every packet as it comes from now on, whether or not frames wait: for the
        close handshake, whose closing frame nobody would read while the reader is gone and
        its frames wait in the queue (a 1 s close timeout a rotation or a stale close
        would otherwise wait out)."""
        self._paced = False
        self._resume_now()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    # Everything else, as asyncio's transport does it.

    def write(self, data: Any) -> None:
        self._wrote = True
        if self._resume is not None:  # paused: the reply is read when it comes
            self._resume_now()
        self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._wrote = True
        if self._resume is not None:
            self._resume_now()
        self._transport.writelines(list_of_data)

    def write_eof(self) -> None:
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def abort(self) -> None:
        self._cancel()
        self._transport.abort()

    def close(self) -> None:
        self._cancel()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def _cancel(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None


def paced_connection(pause: float) -> type[ClientConnection]:
    """The ``create_connection`` class of a ``connect`` (connect with
    ``max_queue=PACED_MAX_QUEUE``): its socket is read again ``pause`` seconds after the
    reader took the last frame, or at once after :meth:`PacedTransport.read_now`."""

    class PacedConnection(ClientConnection):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            if not isinstance(transport, asyncio.Transport):
                raise TypeError(f"a websocket needs a stream transport, not {transport!r}")
            super().connection_made(PacedTransport(transport, pause))

        async def close(self, code: int = 1000, reason: str = "") -> None:
            if isinstance(self.transport, PacedTransport):
                self.transport.unpace()
            await super().close(code, reason)

        def connection_lost(self, exc: Exception | None) -> None:
            if isinstance(self.transport, PacedTransport):
                self.transport._cancel()
            super().connection_lost(exc)

    return PacedConnection
