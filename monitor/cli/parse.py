"""``liqmon parse`` and ``liqmon instruments fetch``."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from monitor.config import Config
from monitor.errors import FrameError, InstrumentFetchError
from monitor.events import Liquidation, MarkPrice
from monitor.feed.instruments import InstrumentService, default_cache_dir, load_cached
from monitor.venues import VENUES, make_dialect
from monitor.venues.bounds import screen
from monitor.venues.dialect import Dialect, Invalid, Item, Unrecognised
from monitor.venues.instruments import InstrumentBook, InstrumentSpec

log = logging.getLogger(__name__)


def read_instrument_file(dialect: Dialect, path: Path) -> list[InstrumentSpec]:
    """Specs from one REST document, read with the first of the venue's requests that fits."""
    body = path.read_bytes()
    errors = []
    for request in dialect.instrument_requests(""):
        try:
            specs, _next = dialect.parse_instruments(request, body)
        except (FrameError, InstrumentFetchError) as exc:
            errors.append(f"{request.key}: {exc}")
            continue
        if specs:
            return specs
    raise FrameError("bad_value", f"{path} is not a {dialect.venue} instrument document "
                     f"({'; '.join(errors) or 'no instruments in it'})")


def run_parse(
    venue: str, instrument_files: list[Path], prices: bool, received_at: float | None = None
) -> int:
    now = time.time() if received_at is None else received_at
    if venue not in VENUES:
        print(f"liqmon parse: unknown venue {venue!r}; expected one of "
              f"{', '.join(sorted(VENUES))}", file=sys.stderr)
        return 2
    if VENUES[venue].transport == "node-fills":
        return _parse_node_lines(now)
    dialect = make_dialect(venue)
    book = InstrumentBook(venue)
    if instrument_files:
        for path in instrument_files:
            try:
                book.update(read_instrument_file(dialect, path))
            except (FrameError, InstrumentFetchError, OSError) as exc:
                print(f"liqmon parse: {exc}", file=sys.stderr)
                return 2
    else:
        book.update(load_cached(dialect, default_cache_dir()))
    session = dialect.session(book)
    return _parse_lines(lambda text: session.parse(text, now), prices)


def _parse_lines(parse: Callable[[str], list[Item]], prices: bool) -> int:
    """Each stdin line through ``parse`` and the bounds; events to stdout as JSON Lines,
    what is invalid to stderr with its line number."""
    out = sys.stdout.buffer
    good = bad = 0
    for number, line in enumerate(sys.stdin.buffer, 1):
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if not text.strip():
            continue
        try:
            items = screen(parse(text), relative_time=False)
        except FrameError as exc:
            print(f"line {number}: {exc.reason}: {exc.detail}", file=sys.stderr)
            bad += 1
            continue
        if any(isinstance(item, Invalid) for item in items) or (
                items and all(isinstance(item, Unrecognised) for item in items)):
            bad += 1
        else:
            good += 1
        for item in items:
            if isinstance(item, Liquidation):
                out.write(orjson.dumps(item.to_json_dict()) + b"\n")
            elif isinstance(item, MarkPrice) and prices:
                out.write(orjson.dumps({"mark_price": {
                    "venue": item.venue, "instrument": item.instrument, "coin": item.coin,
                    "price": item.price, "exchange_ts_ms": item.exchange_ts_ms}}) + b"\n")
            elif isinstance(item, Invalid):
                print(f"line {number}: {item.reason}: {item.detail}", file=sys.stderr)
            elif isinstance(item, Unrecognised):
                print(f"line {number}: unrecognised: {item.reason}", file=sys.stderr)
    out.flush()
    return _status(good, bad)


def _status(good: int, bad: int) -> int:
    """1 when every line read was invalid: a script piping the wrong venue's frames learns
    it from the exit code, not only from stderr."""
    if bad and not good:
        print(f"liqmon parse: all {bad} lines were invalid", file=sys.stderr)
        return 1
    return 0


def _parse_node_lines(now: float) -> int:
    """``hyperliquid-node``: one block object of a node fills file per line."""
    from monitor.venues.hyperliquid_node import parse_block_line

    return _parse_lines(lambda text: list(parse_block_line(text, now)), prices=False)


async def run_instruments_fetch(config: Config, venues: list[str]) -> int:
    chosen = venues or [v for v in config.enabled_venues() if VENUES[v].transport == "websocket"]
    cache_dir = (Path(config.feed.instrument_cache_dir) if config.feed.instrument_cache_dir
                 else default_cache_dir())
    failed = 0
    for venue in chosen:
        if venue not in config.venues:
            print(f"liqmon: unknown venue {venue!r}", file=sys.stderr)
            return 2
        vc = config.venues[venue]
        dialect = make_dialect(venue, vc.settings())
        service = InstrumentService(dialect, vc.rest_base_url, refresh_seconds=0,
                                    cache_dir=cache_dir)
        try:
            count = await service.refresh()
        except InstrumentFetchError as exc:
            print(f"{venue}: failed: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"{venue}: {count} instruments cached in {cache_dir / venue}")
    return 1 if failed else 0
