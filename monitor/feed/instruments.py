"""Instrument documents over REST: fetched, cached on disk, refreshed on a timer.

The dialect says which documents to fetch and how to read them; this module only moves
bytes. A document that cannot be fetched falls back to the last cached copy, so a restart
during a venue's REST outage still values liquidations.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import httpx

from monitor.backoff import Backoff
from monitor.config.paths import cache_root
from monitor.errors import FrameError, InstrumentFetchError
from monitor.feed.tls import rest_context
from monitor.logs import RateLimitedLog
from monitor.venues.dialect import Dialect, RestRequest
from monitor.venues.instruments import BookChange, InstrumentBook, InstrumentSpec

log = logging.getLogger(__name__)

MAX_PAGES = 100
REFRESH_SOON_MIN_INTERVAL_SECONDS = 5.0
# During a REST outage the failures repeat every backoff step: one WARNING per this long.
REFRESH_WARN_EVERY_SECONDS = 60.0


def default_cache_dir() -> Path:
    """``instruments`` under :func:`monitor.config.paths.cache_root`."""
    return cache_root() / "instruments"


def cache_path(cache_dir: Path, venue: str, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
    return cache_dir / venue / f"{safe}.json"


async def fetch_documents(
    dialect: Dialect, rest_base_url: str, client: httpx.AsyncClient, cache_dir: Path | None
) -> list[InstrumentSpec]:
    """Fetch every instrument document of a venue (following pages); cache each page."""
    specs: list[InstrumentSpec] = []
    for first in dialect.instrument_requests(rest_base_url):
        request: RestRequest | None = first
        page = 0
        while request is not None and page < MAX_PAGES:
            try:
                response = await client.request(request.method, request.url,
                                                content=request.body)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise InstrumentFetchError(
                    f"{dialect.venue}: {request.method} {request.url}: {exc}") from exc
            body = response.content
            try:
                page_specs, request_next = dialect.parse_instruments(request, body)
            except FrameError as exc:
                raise InstrumentFetchError(
                    f"{dialect.venue}: unreadable instrument document {request.key}: {exc}"
                ) from exc
            if cache_dir is not None:
                _write_cache(cache_path(cache_dir, dialect.venue, f"{request.key}-{page}"), body)
            specs.extend(page_specs)
            request = request_next
            page += 1
    return specs


def load_cached(dialect: Dialect, cache_dir: Path) -> list[InstrumentSpec]:
    """Specs from the cached documents of a venue (empty when there are none)."""
    specs: list[InstrumentSpec] = []
    for first in dialect.instrument_requests(""):
        page = 0
        while True:
            path = cache_path(cache_dir, dialect.venue, f"{first.key}-{page}")
            if not path.is_file():
                break
            try:
                page_specs, _next = dialect.parse_instruments(first, path.read_bytes())
            except (FrameError, OSError) as exc:
                log.warning("%s: ignoring unreadable cached instruments %s: %s",
                            dialect.venue, path, exc)
                break
            specs.extend(page_specs)
            page += 1
    return specs


def _write_cache(path: Path, body: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(body)
        tmp.replace(path)
    except OSError as exc:
        log.warning("cannot cache instrument document at %s: %s", path, exc)


class InstrumentService:
    """Keeps one venue's :class:`InstrumentBook` current."""

    def __init__(
        self,
        dialect: Dialect,
        rest_base_url: str,
        *,
        refresh_seconds: float,
        cache_dir: Path | None,
        timeout_seconds: float = 10.0,
        on_change: Callable[[BookChange], None] | None = None,
    ) -> None:
        self.dialect = dialect
        self.book = InstrumentBook(dialect.venue)
        self._rest_base_url = rest_base_url
        self._refresh_seconds = refresh_seconds
        self._cache_dir = cache_dir
        self._timeout = timeout_seconds
        self._on_change = on_change
        self._wake = asyncio.Event()
        self.loaded = asyncio.Event()
        self._last_refresh = -1e18
        self._last_attempt = -1e18

    async def refresh(self) -> int:
        """Fetch now; return how many instruments the book holds. Raises InstrumentFetchError."""
        async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True,
                                     verify=rest_context()) as client:
            specs = await fetch_documents(self.dialect, self._rest_base_url, client,
                                          self._cache_dir)
        self._apply(specs)
        return len(self.book)

    def load_cache(self) -> int:
        if self._cache_dir is None:
            return 0
        specs = load_cached(self.dialect, self._cache_dir)
        if specs:
            self._apply(specs, announce=False)
        return len(specs)

    def _apply(self, specs: list[InstrumentSpec], announce: bool = True) -> None:
        if not specs and len(self.book):
            # An empty document is a venue fault, not the delisting of everything.
            log.warning("%s: instrument refresh listed nothing; keeping %d instruments",
                        self.dialect.venue, len(self.book))
            return
        had = len(self.book)
        change = self.book.replace(specs)
        self._last_refresh = asyncio.get_running_loop().time()
        self.loaded.set()
        if had and (change.added or change.removed):
            log.info("%s: %d instruments listed, %d delisted", self.dialect.venue,
                     len(change.added), len(change.removed))
        # Every refresh is announced, changed or not: refused topics are retried after it.
        if announce and self._on_change is not None:
            self._on_change(change)

    async def refresh_soon(self) -> None:
        """Ask the run loop for a refresh now (an unknown instrument was seen)."""
        # Measured from the last attempt, not the last success: while the venue's REST API
        # is down, every unknown-instrument frame would otherwise start a request at once.
        if asyncio.get_running_loop().time() - self._last_attempt >= (
            REFRESH_SOON_MIN_INTERVAL_SECONDS
        ):
            self._wake.set()

    async def run(self) -> None:
        """Load the cache, then refresh on the timer (sooner when asked); never returns."""
        cached = self.load_cache()
        if cached:
            log.info("%s: %d instruments from the cache", self.dialect.venue, cached)
        backoff = Backoff(1.0, 60.0)
        loop = asyncio.get_running_loop()
        warn = RateLimitedLog(log, REFRESH_WARN_EVERY_SECONDS)
        failures = 0
        while True:
            self._last_attempt = loop.time()
            try:
                count = await self.refresh()
                backoff.reset()
                if failures:
                    log.info("%s: %d instruments fetched after %d failed attempts",
                             self.dialect.venue, count, failures)
                else:
                    log.info("%s: %d instruments fetched", self.dialect.venue, count)
                failures = 0
                delay = self._refresh_seconds
            except InstrumentFetchError as exc:
                delay = backoff.next_delay()
                failures += 1
                warn.warning("refresh", "%s: instrument refresh failed (%s); retrying in %.1fs "
                             "(%d failed in a row)", self.dialect.venue, exc, delay, failures)
            self._wake.clear()
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
