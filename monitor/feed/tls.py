"""TLS client contexts built once per process, for venue websockets and instrument requests.

Building a context loads the CA bundle (``load_verify_locations``), about 70 ms of CPU on a
machine like the one the benchmarks run on (``benchmarks/notify.py --slow-callbacks 40``
showed each venue's instrument task holding the loop 55-150 ms, the CA load being most of
it), and it runs on the event loop: httpx builds one for every ``AsyncClient`` and asyncio
one for every ``wss://`` connection that does not bring its own. Built per request, every
hourly instrument refresh and every venue reconnect or rotation would hold the alert path
that long; built once and shared (an ``SSLContext`` may serve any number of connections),
only the first use pays. The trust settings are each library's own defaults, unchanged:
httpx's (certifi, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``) for REST, the system store
(``ssl.create_default_context``) for websockets.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def rest_context() -> ssl.SSLContext:
    """What ``httpx.AsyncClient()`` would verify with, built once."""
    return httpx.create_ssl_context()


@functools.cache
def _websocket_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def websocket_ssl(url: str) -> ssl.SSLContext | None:
    """The ``ssl`` argument of a websocket connect: the shared context for ``wss://``, none
    for ``ws://`` (which refuses one)."""
    return _websocket_context() if url.startswith("wss://") else None


def warm() -> None:
    """Build both contexts now: the app does so before its tasks start, so that no task
    (the first instrument fetch, the first connect) holds the running loop for it."""
    rest_context()
    _websocket_context()
