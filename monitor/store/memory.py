"""The embedded store: every aggregate in this process's memory (the default backend).

Same semantics as the Redis store (one contract suite runs over both), without sharing or
surviving a restart. Buckets and hour roll-ups expire ``retention`` after their last write,
as Redis keys do; event ids are forgotten after the dedupe TTL or beyond
``dedupe_max_ids`` (``dedupe.py``), so memory stays bounded.

A store written only by ``Ingest`` (the daemon's, replay's: ``open_store(behind_ingest=True)``)
keeps no ids at all: ingest's own dedupe, over the same window, admits each id once and
refuses as too old whatever it may have forgotten, so the store would only hold a second
copy of ingest's ids (about 75 bytes each); nor does it test each event against refusal()'s
bounds, which ingest admits none outside. Opened any other way, the store is idempotent and
refuses what cannot be stored on its own, as the Store contract requires.
Expiry is checked on every read and swept at most once a second.

What a bucket holds, and how a kept liquidation is packed, is ``memory_buckets.py``; the
coverage verdicts and heartbeats are ``memory_coverage.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import orjson

from monitor.clock import Clock, SystemClock
from monitor.events import SIDE_NAMES, Completeness, Liquidation, PositionSide
from monitor.logs import RateLimitedLog
from monitor.store.aggregate import Group, RowBuilder, cover, window_range
from monitor.store.base import (
    COMPLETENESS_BITS,
    LARGEST_KEEP,
    Background,
    NullObserver,
    StoreObserver,
    TotalsRow,
    check_by,
)
from monitor.store.config import StoreConfig
from monitor.store.coverage import CoverageMinute, CoverageRow
from monitor.store.dedupe import Dedupe, Verdict, arrival_dedupe
from monitor.store.memory_buckets import Bucket, Cell, keep_largest, lowest_kept, pack, unpack
from monitor.store.memory_coverage import MemoryCoverage
from monitor.store.records import INT64_MAX, INT64_MIN, STORABLE_MAX, refusal

log = logging.getLogger(__name__)

_SWEEP_EVERY_SECONDS = 1.0
# The minutes whose cells ``MemoryStore.add`` keeps found (the current and a late one or two).
_CELL_CACHE_MINUTES = 4
_LONG = PositionSide.LONG
# A coin's two sides' (minute cell, hour cell), None until found.
_Pair = list[tuple[Cell, Cell] | None]


class MemoryStore:
    """The embedded store. An async context manager; ``aclose()`` is safe twice."""

    def __init__(
        self,
        config: StoreConfig | None = None,
        observer: StoreObserver | None = None,
        clock: Clock | None = None,
        *,
        own_dedupe: bool = True,
    ) -> None:
        """``own_dedupe=False`` only for a store every event reaches through ``Ingest``:
        it then neither dedupes nor checks what it is given."""
        cfg = config or StoreConfig()
        self._clock = clock or SystemClock()
        self._retention_seconds = cfg.retention_hours * 3600.0
        self._dedupe: Dedupe | None = (
            arrival_dedupe(cfg.dedupe_ttl_hours, cfg.dedupe_max_ids) if own_dedupe else None)
        self._cascade_limit = cfg.cascade_history
        self._minutes: dict[int, Bucket] = {}
        self._hours: dict[int, Bucket] = {}
        self._groups: dict[Group, Group] = {}
        self._cascades: dict[str, bytes] = {}
        self._coverage = MemoryCoverage(self._retention_seconds)
        self._next_sweep = 0.0
        # No bucket expires before this (the smallest expiry at the last scan, lowered by
        # each bucket made since): a sweep scans the buckets only from then on, as an
        # expiry is only ever pushed later.
        self._sweep_buckets_at = 0.0
        # minute → (its bucket, its hour's bucket, venue → coin → [long cells, short
        # cells]): the cells a batch found, for the next batches of the same buckets (a
        # batch of replay holds a second of many coins, each in a run of a row or two).
        self._cell_cache: dict[int, tuple[Bucket, Bucket, dict[str, dict[str, _Pair]]]] = {}
        self._closed = False
        self._observer = observer or NullObserver()
        self._limited = RateLimitedLog(log)
        self._observer.store_up(True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def add(self, events: Sequence[Liquidation]) -> int:
        now = self._clock.monotonic()
        self._sweep(now)
        admit = self._dedupe.admit if self._dedupe is not None else None
        expires_at = now + self._retention_seconds
        new = 0
        # One loop counts an event in its minute's and its hour's bucket (a call for each
        # cost more than the counting). A batch's events mostly share a minute and a venue,
        # and a frame's rows a coin: the two buckets are looked up once a minute, and the
        # two cells of each side of a coin once a minute, venue and coin (``by_coin``, kept
        # for the next batches of the same buckets in ``_cell_cache``).
        last_minute: int | None = None
        venue = coin = ""
        in_minute = in_hour = Bucket()
        minute_top = hour_top = in_minute.top
        minute_low = hour_low = -1.0
        long_cells: tuple[Cell, Cell] | None = None
        short_cells: tuple[Cell, Cell] | None = None
        by_venue: dict[str, dict[str, _Pair]] = {}
        by_coin: dict[str, _Pair] = {}
        coin_cells: _Pair = [None, None]
        completeness: Completeness | None = None
        mask = 0
        for event in events:
            usd = event.notional_usd
            if admit is not None:
                # A store of its own checks and dedupes what it is given. Behind ingest
                # (``admit`` None) every event was admitted by ingest, which refuses what
                # refusal() would (its quick test is stricter, else it asks refusal()).
                qty = event.qty_base
                ts_ms = event.exchange_ts_ms
                # refusal()'s tests, inline: it is called (for the reason) only when one
                # fails.
                if not (0.0 < usd < STORABLE_MAX and 0.0 <= qty < STORABLE_MAX
                        and 0.0 <= event.price < STORABLE_MAX
                        and INT64_MIN <= ts_ms <= INT64_MAX
                        and -STORABLE_MAX < event.received_at < STORABLE_MAX):
                    reason = refusal(event)
                    if reason is not None:
                        # One NaN or inf would poison every sum it joins; the Redis store
                        # refuses the same events.
                        self._observer.rejected(reason, 1)
                        self._limited.warning("refused:" + reason,
                                              "not storing an event (%s): %r", reason, event)
                        continue
                if admit(event.event_id, now, now) is not Verdict.NEW:
                    continue
            new += 1
            if event.completeness is not completeness:
                # Enum members hash through a Python-level lookup: once per run, not per row.
                completeness = event.completeness
                mask = COMPLETENESS_BITS[completeness]
            minute = event.exchange_ts_ms // 60_000
            if minute != last_minute or event.coin != coin or event.venue != venue:
                if minute != last_minute or event.venue != venue:
                    if minute != last_minute:
                        last_minute = minute
                        in_minute = self._bucket(self._minutes, minute, now, expires_at)
                        in_hour = self._bucket(self._hours, minute // 60, now, expires_at)
                        minute_top, hour_top = in_minute.top, in_hour.top
                        minute_low, hour_low = lowest_kept(minute_top), lowest_kept(hour_top)
                        by_venue = self._found_cells(minute, in_minute, in_hour)
                    venue = event.venue
                    found_coins = by_venue.get(venue)
                    if found_coins is None:
                        found_coins = by_venue[venue] = {}
                    by_coin = found_coins
                coin = event.coin
                found_cells = by_coin.get(coin)
                if found_cells is None:
                    found_cells = by_coin[coin] = [None, None]
                coin_cells = found_cells
                long_cells, short_cells = coin_cells
            packed: bytes | None = None
            is_long = event.position_side is _LONG
            cells = long_cells if is_long else short_cells
            if cells is None:
                # The first row of this side in these buckets: its cells are found or made
                # (and the row counted in them).
                cells, packed = self._cells(in_minute, in_hour, event, is_long, mask)
                if is_long:
                    long_cells = coin_cells[0] = cells
                else:
                    short_cells = coin_cells[1] = cells
            else:
                # Unrolled over the two cells: this is the per-row path.
                qty = event.qty_base
                cell, hour_cell = cells
                cell.usd += usd
                cell.count += 1
                cell.qty += qty
                cell.mask |= mask
                if usd > cell.largest_usd:
                    packed = cell.largest = pack(event)
                    cell.largest_usd = usd
                hour_cell.usd += usd
                hour_cell.count += 1
                hour_cell.qty += qty
                hour_cell.mask |= mask
                if usd > hour_cell.largest_usd:
                    if packed is None:
                        packed = pack(event)
                    hour_cell.largest_usd = usd
                    hour_cell.largest = packed
            # A bucket keeps its LARGEST_KEEP largest by (usd, id): ``*_low`` is the smallest
            # kept once the heap is full (-1 until then), so most rows take one comparison.
            if usd >= minute_low:
                packed = keep_largest(minute_top, event, packed)
                minute_low = lowest_kept(minute_top)
            if usd >= hour_low:
                keep_largest(hour_top, event, packed)
                hour_low = lowest_kept(hour_top)
        return new

    def _found_cells(self, minute: int, in_minute: Bucket, in_hour: Bucket
                     ) -> dict[str, dict[str, _Pair]]:
        """The cells already found in ``minute``'s buckets, by venue and coin: kept while
        the minute's and the hour's buckets are these ones (a bucket that expired and was
        made again has none of the old cells)."""
        cache = self._cell_cache
        found = cache.get(minute)
        if found is not None and found[0] is in_minute and found[1] is in_hour:
            return found[2]
        by_venue: dict[str, dict[str, _Pair]] = {}
        cache[minute] = (in_minute, in_hour, by_venue)
        while len(cache) > _CELL_CACHE_MINUTES:
            del cache[next(iter(cache))]  # the minute cached longest ago
        return by_venue

    def _cells(self, in_minute: Bucket, in_hour: Bucket, event: Liquidation, is_long: bool,
               mask: int) -> tuple[tuple[Cell, Cell], bytes | None]:
        """The minute's and the hour's cell of ``event``'s group with ``event`` counted, made
        if missing; and the packed event if it was packed."""
        key = (event.venue, event.coin, SIDE_NAMES[0 if is_long else 1])
        # One tuple per group, shared by every bucket's cell of it.
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = key
        usd = event.notional_usd
        packed: bytes | None = None
        found: list[Cell] = []
        for bucket in (in_minute, in_hour):
            cell = bucket.cells.get(group)
            if cell is None:
                if packed is None:
                    packed = pack(event)
                cell = bucket.cells[group] = Cell(usd, event.qty_base, mask, packed)
            else:
                cell.usd += usd
                cell.count += 1
                cell.qty += event.qty_base
                cell.mask |= mask
                if usd > cell.largest_usd:
                    if packed is None:
                        packed = pack(event)
                    cell.largest_usd = usd
                    cell.largest = packed
            found.append(cell)
        return (found[0], found[1]), packed

    def _bucket(self, buckets: dict[int, Bucket], index: int, now: float, expires_at: float
                ) -> Bucket:
        """The live bucket ``index``, a new one if it is missing or expired, with its expiry
        pushed to ``expires_at`` (as a Redis write renews a key's TTL)."""
        bucket = buckets.get(index)
        if bucket is None or bucket.expires_at <= now:
            bucket = buckets[index] = Bucket()
            if expires_at < self._sweep_buckets_at:
                self._sweep_buckets_at = expires_at
        bucket.expires_at = expires_at
        return bucket

    async def totals(
        self, window_minutes: int, by: Sequence[str] = (), now_ms: int | None = None
    ) -> list[TotalsRow]:
        start, end = window_range(window_minutes, self._now_ms(now_ms))
        hours, minutes = cover(start, end)
        builder: RowBuilder[bytes] = RowBuilder(by)
        for bucket in self._live(hours, minutes):
            self._fold(builder, bucket)
        return builder.rows(unpack)

    async def minute_series(
        self, start_minute: int, end_minute: int, by: Sequence[str] = ()
    ) -> list[tuple[int, TotalsRow]]:
        by = check_by(by)
        now = self._clock.monotonic()
        series: list[tuple[int, TotalsRow]] = []
        for minute in range(start_minute, end_minute + 1):
            builder: RowBuilder[bytes] = RowBuilder(by)
            bucket = self._minutes.get(minute)
            if bucket is not None and bucket.expires_at > now:
                self._fold(builder, bucket)
            series.extend((minute, row) for row in builder.rows(unpack))
        return series

    async def largest(
        self, window_minutes: int, limit: int = 10, now_ms: int | None = None
    ) -> list[Liquidation]:
        start, end = window_range(window_minutes, self._now_ms(now_ms))
        hours, minutes = cover(start, end)
        limit = min(limit, LARGEST_KEEP)
        if limit <= 0:
            return []
        # As aggregate.top_events ranks them (by USD, ties by id), unpacking only the winners.
        ranked = sorted((entry for bucket in self._live(hours, minutes) for entry in bucket.top),
                        key=lambda entry: (-entry[0], entry[1]))
        result: list[Liquidation] = []
        seen: set[str] = set()
        for _, event_id, packed in ranked:
            if event_id not in seen:
                seen.add(event_id)
                result.append(unpack(packed))
                if len(result) == limit:
                    break
        return result

    async def record_cascade(self, record: Mapping[str, Any]) -> None:
        cascade_id = str(record["id"])
        # Stored as JSON so readers get what the Redis store would give them.
        self._cascades[cascade_id] = orjson.dumps(dict(record))
        while len(self._cascades) > self._cascade_limit:
            del self._cascades[next(iter(self._cascades))]

    async def cascades(self, limit: int = 20) -> list[dict[str, Any]]:
        records = list(self._cascades.values())[::-1][: max(limit, 0)]
        return [orjson.loads(r) for r in records]

    async def record_coverage(
        self, minutes: Sequence[CoverageMinute], heartbeat: Mapping[str, float]
    ) -> None:
        self._coverage.record(minutes, heartbeat, self._clock.monotonic())

    async def heartbeats(self) -> dict[str, float]:
        return self._coverage.heartbeats(self._clock.monotonic())

    async def coverage(
        self, window_minutes: int, now_ms: int | None = None,
        venues: Sequence[str] | None = None,
    ) -> list[CoverageRow]:
        start, end = window_range(window_minutes, self._now_ms(now_ms))
        names = list(venues) if venues is not None else list(await self.heartbeats())
        return self._coverage.rows(names, start, end, self._clock.monotonic())

    async def claim(self, key: str, ttl_seconds: float) -> bool:
        # One process holds every alert it raises; claims matter only between daemons.
        return True

    async def flush(self, timeout: float) -> int:  # noqa: ASYNC109 (the Store contract)
        return 0

    def healthy(self) -> bool:
        return True

    def background(self) -> Background:
        return {}

    async def aclose(self) -> None:
        self._closed = True

    def _now_ms(self, now_ms: int | None) -> int:
        return int(self._clock.wall() * 1000) if now_ms is None else now_ms

    def _live(self, hours: list[int], minutes: list[int]) -> list[Bucket]:
        now = self._clock.monotonic()
        self._sweep(now)
        found = [self._hours.get(h) for h in hours] + [self._minutes.get(m) for m in minutes]
        return [b for b in found if b is not None and b.expires_at > now]

    @staticmethod
    def _fold(builder: RowBuilder[bytes], bucket: Bucket) -> None:
        for group, c in bucket.cells.items():
            builder.add(group, c.usd, c.count, c.qty, c.largest_usd, c.mask, c.largest)

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + min(_SWEEP_EVERY_SECONDS, self._retention_seconds / 4)
        if now >= self._sweep_buckets_at:
            # Not before a bucket may have expired: scanning every bucket each second cost
            # as much as a second's writes on a day of 1,440 minutes.
            soonest = float("inf")
            for buckets in (self._minutes, self._hours):
                gone = []
                for index, bucket in buckets.items():
                    if bucket.expires_at <= now:
                        gone.append(index)
                    elif bucket.expires_at < soonest:
                        soonest = bucket.expires_at
                for index in gone:
                    del buckets[index]
            self._sweep_buckets_at = soonest
        self._coverage.sweep(now)
