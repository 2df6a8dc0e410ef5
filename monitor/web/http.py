"""The live page's routes on the daemon's HTTP endpoint, all read-only (GET and HEAD).

``/`` the page, ``/static/*`` its script and style (package data, loaded once),
``/api/snapshot`` the whole state as of the last update, ``/api/bars?coin=X`` one coin's
24 h of minute bars, ``/api/stream`` server-sent events: the whole state first, then one
update per interval. Every response carries a strict Content-Security-Policy: scripts and
styles only from this origin as files, nothing inline, no other origin at all.
"""

from __future__ import annotations

import asyncio
from importlib.resources import files
from urllib.parse import parse_qs, urlsplit

from monitor.web.hub import sse_message
from monitor.web.live import LiveView

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = (
    f"Content-Security-Policy: {CSP}\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "X-Frame-Options: DENY\r\n"
)
ASSETS = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/style.css": ("style.css", "text/css; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
JSON = "application/json"


def load_asset(name: str) -> bytes:
    return (files("monitor.web") / "assets" / name).read_bytes()


def response_head(status: str, content_type: str, length: int | None,
                  cache: str = "no-store") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{size}"
            f"Cache-Control: {cache}\r\n{SECURITY_HEADERS}Connection: close\r\n\r\n").encode()


class WebRoutes:
    def __init__(self, live: LiveView) -> None:
        self.live = live
        self._assets = {path: (load_asset(name), kind) for path, (name, kind) in ASSETS.items()}

    def handles(self, path: str) -> bool:
        return path in self._assets or path.startswith("/api/")

    async def respond(self, method: str, target: str, writer: asyncio.StreamWriter) -> None:
        parts = urlsplit(target)
        path = parts.path
        if path == "/api/stream" and method == "GET":
            await self._stream(writer)
            return
        status, kind, body, cache = self._route(path, parse_qs(parts.query))
        head = response_head(status, kind, len(body), cache)
        writer.write(head if method == "HEAD" else head + body)
        await writer.drain()

    def _route(self, path: str, query: dict[str, list[str]]) -> tuple[str, str, bytes, str]:
        asset = self._assets.get(path)
        if asset is not None:
            return "200 OK", asset[1], asset[0], "no-cache"
        if path == "/api/snapshot":
            return "200 OK", JSON, self.live.full(), "no-store"
        if path == "/api/bars":
            coin = (query.get("coin") or [""])[0]
            body = self.live.coin_bars(coin)
            if body is not None:
                return "200 OK", JSON, body, "no-store"
            return "404 Not Found", "text/plain", b"no liquidations of that coin\n", "no-store"
        if path == "/api/stream":  # HEAD
            return "200 OK", "text/event-stream", b"", "no-store"
        return "404 Not Found", "text/plain", b"not found\n", "no-store"

    def close(self) -> None:
        self.live.hub.close()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        hub = self.live.hub
        client = hub.subscribe()
        if client is None:
            body = b"too many live-view clients\n"
            writer.write(response_head("503 Service Unavailable", "text/plain", len(body))
                         + body)
            await writer.drain()
            return
        try:
            # Subscribed before the snapshot is taken, with no await between: the page gets
            # the state as of the last update and then every update after it.
            writer.write(response_head("200 OK", "text/event-stream", None)
                         + b"retry: 2000\n\n" + sse_message("full", self.live.full()))
            await client.stream(writer, hub.write_timeout)
        finally:
            hub.unsubscribe(client)
