"""Plain HTTP on the websocket port: REST instrument documents beside the websocket endpoints.

websockets answers plain HTTP requests through ``process_request``, but its request parser
refuses a request body, and Hyperliquid's instrument document is a ``POST /info`` with a
JSON body. :class:`HttpAwareConnection` reads such a body off the stream before the parser
sees the request, removes ``Content-Length`` from the head and keeps the body on the
connection for ``process_request`` to read.
"""

from __future__ import annotations

import http
import logging
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Response

MAX_BODY = 1 << 20
MAX_HEAD = 1 << 16


class HttpAwareConnection(ServerConnection):
    """A websocket server connection that also accepts one HTTP request with a body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http_body = b""
        self.sim_entry: object = None  # set by the simulator when the path is a websocket
        self._head = bytearray()
        self._sniffing = True

    def data_received(self, data: bytes) -> None:
        if not self._sniffing:
            super().data_received(data)
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD:
                self._release(bytes(self._head))  # let websockets reject it
            return
        head, rest = bytes(self._head[: end + 4]), bytes(self._head[end + 4 :])
        length = _content_length(head)
        if length <= 0 or length > MAX_BODY:
            self._release(bytes(self._head))
            return
        if len(rest) < length:
            return  # wait for the rest of the body
        self.http_body = rest[:length]
        kept = [
            line for line in head.split(b"\r\n") if not line.lower().startswith(b"content-length:")
        ]
        self._release(b"\r\n".join(kept))

    def _release(self, data: bytes) -> None:
        self._sniffing = False
        self._head = bytearray()
        super().data_received(data)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return int(value.strip())
            except ValueError:
                return -1
    return 0


class QuietLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """websockets logs every connection and every REST answer at INFO; for a simulator
    serving thousands of them that is DEBUG detail. Warnings and errors keep their level."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


def http_response(status: int, body: bytes, content_type: str = "application/json") -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
    )
    return Response(status, http.HTTPStatus(status).phrase, headers, body)


def not_found(path: str) -> Response:
    return http_response(404, orjson.dumps({"error": f"not found: {path}"}))
