"""Prototype, for measurement only: the connection supervisor's websocket client on picows.

Not part of the product. It answers one question of issue 14: would replacing the
websockets client (pure-Python framing) with picows (framing in Cython, a callback per
frame) cut the daemon's price-mode CPU enough to be worth the swap? It runs from a venv of
its own that has picows (and uvloop), never from the project's::

    python3.11 -m venv .venv-bench-transport
    .venv-bench-transport/bin/pip install . picows uvloop
    .venv-bench-transport/bin/python benchmarks/e2e.py --mode prices --daemon-transport picows
    .venv-bench-transport/bin/python benchmarks/transport.py      # the reader-picows rows

:class:`PicowsConnection` offers what ``ConnectionRunner`` uses of websockets'
``ClientConnection`` (``recv``, ``send``, ``close``, ``ConnectionClosed`` at the end) and
:func:`install` puts :func:`connect` in place of websockets' ``connect`` in
``monitor.feed.supervisor``; nothing else of the daemon changes. ``python
benchmarks/picows_transport.py [--uvloop [--websockets]] run ...`` is ``liqmon run ...``
with it installed (and uvloop's event loop; with ``--websockets``, uvloop alone). What it
does not do that a real swap would have to: docs/benchmarks.md, "CPU at 1,000 price
frames/s", the `transport3` part.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from pathlib import Path
from typing import Any

import picows
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DATA = (picows.WSMsgType.TEXT, picows.WSMsgType.BINARY, picows.WSMsgType.CONTINUATION)


class PicowsConnection(picows.WSListener):  # type: ignore[misc]
    """Frames from picows' callback go to a deque; ``recv`` takes them one by one and
    suspends only when the deque is empty, as websockets' ``recv`` does with its queue."""

    def __init__(self) -> None:
        super().__init__()
        self._messages: deque[str | bytes] = deque()
        self._parts: list[bytes] = []
        self._text = True
        self._waiter: asyncio.Future[None] | None = None
        self._transport: Any = None
        self._close: Close | None = None
        self._ended: ConnectionClosed | None = None

    # -- picows callbacks (in the transport's data_received) -----------------------------
    def on_ws_connected(self, transport: Any) -> None:
        self._transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        kind = frame.msg_type
        if kind in DATA:
            if frame.fin and not self._parts:
                message: str | bytes = (frame.get_payload_as_utf8_text()
                                        if kind is picows.WSMsgType.TEXT
                                        else frame.get_payload_as_bytes())
            else:
                if kind is not picows.WSMsgType.CONTINUATION:
                    self._text = kind is picows.WSMsgType.TEXT
                self._parts.append(frame.get_payload_as_bytes())
                if not frame.fin:
                    return
                joined = b"".join(self._parts)
                self._parts.clear()
                message = joined.decode() if self._text else joined
            self._messages.append(message)
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif kind is picows.WSMsgType.CLOSE:
            self._close = Close(int(frame.get_close_code()), frame.get_close_reason() or "")
            transport.send_close(frame.get_close_code())
            transport.disconnect()

    def on_ws_disconnected(self, transport: Any) -> None:
        close = self._close
        self._ended = (ConnectionClosedOK(close, None) if close is not None and close.code in
                       (1000, 1001) else ConnectionClosedError(close, None))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- what ConnectionRunner calls --------------------------------------------------------
    async def recv(self) -> str | bytes:
        messages = self._messages
        if not messages:
            if self._ended is not None:
                raise self._ended
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
            if not messages:
                assert self._ended is not None
                raise self._ended
        return messages.popleft()

    async def send(self, message: str | bytes) -> None:
        if self._ended is not None:
            raise self._ended
        if isinstance(message, str):
            self._transport.send(picows.WSMsgType.TEXT, message.encode())
        else:
            self._transport.send(picows.WSMsgType.BINARY, message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        transport = self._transport
        if self._ended is None and transport is not None:
            transport.send_close(picows.WSCloseCode(code), reason.encode())
            transport.disconnect()
            try:
                async with asyncio.timeout(1.0):
                    await transport.wait_disconnected()
            except TimeoutError:
                transport.disconnect(graceful=False)


async def connect(url: str, *, ping_interval: float | None = None,
                  ping_timeout: float | None = None, max_size: int | None = None,
                  **_ignored: Any) -> PicowsConnection:
    """websockets' ``connect`` as the supervisor calls it, on picows: protocol pings every
    ``ping_interval`` with ``ping_timeout`` for the pong, frames up to ``max_size``."""
    _transport, listener = await picows.ws_connect(
        PicowsConnection, url, websocket_handshake_timeout=None,
        enable_auto_ping=bool(ping_interval), auto_ping_idle_timeout=ping_interval or 20.0,
        auto_ping_reply_timeout=ping_timeout or 20.0,
        auto_ping_strategy=picows.WSAutoPingStrategy.PING_PERIODICALLY,
        max_frame_size=max_size or 16 * 1024 * 1024)
    assert isinstance(listener, PicowsConnection)
    return listener


def install() -> None:
    import monitor.feed.supervisor as supervisor

    supervisor.connect = connect  # type: ignore[assignment]


def main() -> int:
    args = sys.argv[1:]
    if args[:1] == ["--uvloop"]:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        args = args[1:]
    if args[:1] == ["--websockets"]:  # uvloop alone, the client unchanged
        args = args[1:]
    else:
        install()
    from monitor.cli import main as liqmon

    return liqmon(args)


if __name__ == "__main__":
    sys.exit(main())
