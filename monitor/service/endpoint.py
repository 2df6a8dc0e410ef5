"""The metrics endpoint: /metrics, /healthz, /readyz and, at /, the live page.

A small asyncio HTTP/1.1 server of our own (GET and HEAD only, one response per
connection) so that scrapes run on the daemon's event loop without a thread and without
another web framework. The live page's routes (``/``, ``/static/*``, ``/api/*``) belong to
``monitor.web.http``; without them ``/`` is a landing page of links.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections.abc import Callable
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from monitor.errors import PortInUse
from monitor.metrics.exposition import collect_for_exposition, render

log = logging.getLogger(__name__)

LANDING = b"""<!doctype html><html><head><title>liqmon</title></head><body>
<h1>liqmon</h1><p>Real-time liquidation monitor.</p>
<ul><li><a href="/metrics">/metrics</a></li><li><a href="/healthz">/healthz</a></li>
<li><a href="/readyz">/readyz</a></li></ul></body></html>
"""
REQUEST_TIMEOUT_SECONDS = 10.0


class WebPage(Protocol):
    """The live page's routes (monitor.web.http.WebRoutes): read-only, GET and HEAD."""

    def handles(self, path: str) -> bool: ...

    async def respond(self, method: str, target: str, writer: asyncio.StreamWriter) -> None: ...

    def close(self) -> None: ...


class MetricsServer:
    def __init__(
        self,
        registry: CollectorRegistry,
        host: str,
        port: int,
        ready: Callable[[], tuple[bool, str]],
        web: WebPage | None = None,
    ) -> None:
        self._registry = registry
        self._host = host
        self._port = port
        self._ready = ready
        self._web = web
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and listen now, so that a port in use fails before the daemon says READY."""
        try:
            self._server = await asyncio.start_server(self._handle, self._host, self._port)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(self._host, self._port) from None
            raise
        log.info("metrics endpoint listening on http://%s:%d/metrics", self._host, self.port)

    async def serve(self) -> None:
        """Accept connections until cancelled (the daemon runs this in its TaskGroup)."""
        if self._server is None:
            raise RuntimeError("MetricsServer.serve() before start()")
        await self._server.serve_forever()

    async def aclose(self) -> None:
        if self._web is not None:
            self._web.close()  # ends the live page's event streams
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                request_line = await reader.readline()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass
            parts = request_line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, target = parts[0], parts[1].split("?", 1)[0]
            if (self._web is not None and method in ("GET", "HEAD")
                    and self._web.handles(target)):
                await self._web.respond(method, parts[1], writer)
                return
            if method in ("GET", "HEAD") and target == "/metrics":
                status, content_type, body = "200 OK", CONTENT_TYPE_LATEST, await self._metrics()
            else:
                status, content_type, body = self._route(method, target)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == "HEAD" else head + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, UnicodeDecodeError):
            pass
        finally:
            writer.close()

    async def _metrics(self) -> bytes:
        """The exposition, made on the event loop in two steps of a few ms each (12 venues):
        the per-event families as text from cached lines with the other families'
        values, then the text of those (a few hundred samples, by prometheus_client).
        A formatting thread would hold the GIL against the loop about as long."""
        families = collect_for_exposition(self._registry)
        await asyncio.sleep(0)
        return render(families)

    def _route(self, method: str, target: str) -> tuple[str, str, bytes]:
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"only GET and HEAD\n"
        if target == "/healthz":
            return "200 OK", "text/plain", b"ok\n"
        if target == "/readyz":
            ok, detail = self._ready()
            return ("200 OK" if ok else "503 Service Unavailable"), "text/plain", (
                detail + "\n"
            ).encode()
        if target == "/":
            return "200 OK", "text/html; charset=utf-8", LANDING
        return "404 Not Found", "text/plain", b"not found\n"
