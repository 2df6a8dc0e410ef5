"""A PUBLISH on its way: written to the broker's socket in the step that starts it, then
awaited for the broker's PUBACK, or failed by the loss of the connection.

``mqtt.MqttChannel`` starts every publish through :class:`EagerWrites`, which hooks
aiomqtt's private paho client (aiomqtt has no public hook for it; see
:meth:`EagerWrites.install`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Generator
from typing import Any

import aiomqtt

from monitor.errors import NotifyError
from monitor.notify.eager import Started

# The channel's logger: its lines keep the name the docs and log filters know.
log = logging.getLogger("monitor.notify.mqtt")


class Connection:
    """One connection's client, and whether it is lost."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.lost = asyncio.Event()


class EagerWrites:
    """Makes paho write, in the same step, a packet that a publish started here sends."""

    __slots__ = ("_now",)

    def __init__(self) -> None:
        # Set while a publish starts: paho's request to watch the socket for writability is
        # then answered by writing at once (see install).
        self._now = False

    def start(self, publishing: Coroutine[Any, Any, None]) -> Started[None]:
        # aiomqtt's publish hands the packet to paho in its first step: run that step here
        # rather than as a task of its own on a later turn of the loop.
        self._now = True
        try:
            return Started(publishing)
        finally:
            self._now = False

    def install(self, client: aiomqtt.Client) -> None:
        """Make paho write a packet this channel publishes in the same step.

        aiomqtt answers paho's "watch the socket for writability" with ``add_writer``
        scheduled through ``call_soon_threadsafe`` (paho may ask from the connect thread):
        one turn of the loop to register the writer, another for the selector to report the
        socket writable, before the bytes leave. While this channel is starting a publish
        (on the loop's thread, holding none of paho's locks) the packet is written at once
        instead, and the writer is registered the usual way only if the socket did not take
        all of it. Everything else paho sends (CONNECT, PINGREQ, PUBACKs) goes as before."""
        # aiomqtt exposes no hook for this: reach its paho client, and where another
        # aiomqtt release lays it out differently, publish the usual (slower) way.
        paho = getattr(client, "_client", None)
        deferred = getattr(paho, "on_socket_register_write", None)
        if paho is None or deferred is None:
            log.info("mqtt: this aiomqtt gives no paho socket hook; alerts are written "
                     "on the next loop turns")
            return

        def register_write(pclient: Any, userdata: Any, sock: Any) -> None:
            if self._now:
                try:
                    pclient.loop_write()
                except Exception as exc:  # the deferred writer meets it again and disconnects
                    log.debug("mqtt: writing at once failed: %s", exc)
                if not pclient.want_write():
                    return
            deferred(pclient, userdata, sock)

        paho.on_socket_register_write = register_write


class Publishing:
    """A PUBLISH already written to the socket; await it for the broker's PUBACK."""

    __slots__ = ("_conn", "_started")

    def __init__(self, conn: Connection, started: Started[None]) -> None:
        self._conn, self._started = conn, started

    def __await__(self) -> Generator[Any, Any, None]:
        return confirm(self._conn, self._started).__await__()

    def close(self) -> None:
        """Nobody will wait for the PUBACK: let aiomqtt's wait for it end on its own (the
        PUBACK, the timeout or the disconnection) rather than leave its task pending."""
        task = asyncio.ensure_future(self._started)
        _orphans.add(task)
        task.add_done_callback(_orphan_done)


_orphans: set[asyncio.Future[None]] = set()


def _orphan_done(task: asyncio.Future[None]) -> None:
    _orphans.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned publish's failure is no news


async def confirm(conn: Connection, started: Started[None]) -> None:
    """The rest of a started publish: its PUBACK (or its timeout), unless ``conn`` is lost
    first (NotifyError)."""
    publishing = asyncio.ensure_future(started)
    lost = asyncio.ensure_future(conn.lost.wait())
    try:
        done, _ = await asyncio.wait({publishing, lost}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        lost.cancel()
        if not publishing.done():
            publishing.cancel()
    if publishing not in done:
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await publishing
        raise NotifyError("the connection to the MQTT broker was lost while publishing")
    exc = publishing.exception()
    if isinstance(exc, aiomqtt.MqttError):
        raise NotifyError(f"MQTT publish failed: {exc}") from None
    if exc is not None:
        raise exc
