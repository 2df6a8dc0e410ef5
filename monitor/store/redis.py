"""Direct Redis access: the batch write script and the window reads.

``RedisStore`` talks to Redis on every call and raises :class:`StoreUnavailable` when it
cannot; the daemon uses it through ``BufferedStore`` (``buffered.py``), which queues writes
across outages. Key layout and the hash-tag choice: ``keys.py``; a batch's script call is
built by ``write_batch.py``.

A window read fetches the hour roll-ups and edge minutes that cover it (at most 142 hashes
for 24 h) through a read script, 50 hashes per call, the calls concurrent; then one
pipeline of HGETs for the largest liquidation of each resulting row. Reads are not a
snapshot: a batch written in between can make a row's ``largest`` newer than its
``largest_usd``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeVar

import orjson
from redis.asyncio.sentinel import Sentinel
from redis.commands.core import AsyncScript

from monitor.clock import Clock, SystemClock
from monitor.errors import StoreUnavailable
from monitor.events import Liquidation
from monitor.store.aggregate import RowBuilder, cover, top_events, window_range
from monitor.store.base import LARGEST_KEEP, TotalsRow, check_by
from monitor.store.config import StoreConfig
from monitor.store.connect import REDIS_ERRORS, RedisClient, close_client, translate
from monitor.store.coverage import (
    DAY_MINUTES,
    CoverageMinute,
    CoverageRow,
    day_bits,
    read_day,
    rows_from,
)
from monitor.store.keys import Keys, parse_group_field
from monitor.store.lua import ADD_EVENTS, READ_HASHES, RECORD_CASCADE
from monitor.store.records import decode_record
from monitor.store.write_batch import BatchBuilder, Prepared

log = logging.getLogger(__name__)

T = TypeVar("T")

# A cell's largest liquidation, to fetch once its row has won: (largest-hash key, field).
Ref = tuple[str, bytes]

_READ_SLICE = 50  # hashes per read-script call


class RedisStore:
    """One Redis (standalone, Sentinel-managed or cluster) as the store, unbuffered."""

    def __init__(
        self,
        client: RedisClient,
        config: StoreConfig,
        clock: Clock | None = None,
        sentinel: Sentinel | None = None,
    ) -> None:
        self.client = client
        self.keys = Keys(config.key_prefix)
        self._sentinel = sentinel
        self._clock = clock or SystemClock()
        dedupe_ms = max(1, int(config.dedupe_ttl_hours * 3_600_000))
        self._retention_ms = max(1, int(config.retention_hours * 3_600_000))
        self._batches = BatchBuilder(self.keys, dedupe_ms, self._retention_ms)
        self._cascade_limit = config.cascade_history
        self._add_script: AsyncScript = client.register_script(ADD_EVENTS)
        self._cascade_script: AsyncScript = client.register_script(RECORD_CASCADE)
        self._read_script: AsyncScript = client.register_script(READ_HASHES)
        self._closed = False

    async def write(self, events: Sequence[Liquidation]) -> int:
        """Write one batch with one script call. Returns how many events were new; events
        no store can keep are logged and skipped."""
        prepared = self.prepare(events)
        for event, reason in prepared.refused:
            log.warning("not storing an event (%s): %r", reason, event)
        return await self.write_prepared(prepared)

    async def write_prepared(self, batch: Prepared) -> int:
        """Run the script on a batch from :meth:`prepare`. Building a batch costs more
        client CPU than sending it, so the buffered store builds the next one while Redis
        runs this one."""
        if not batch.args:
            return 0
        new = await self._call("write", self._add_script(keys=batch.keys, args=batch.args))
        return int(new)

    def prepare(self, events: Sequence[Liquidation]) -> Prepared:
        """The script's KEYS and ARGV for a batch (``write_batch.BatchBuilder.prepare``)."""
        return self._batches.prepare(events)

    async def ping(self) -> None:
        await self._call("ping", self.client.ping())

    async def persistence(self) -> tuple[bool | None, str]:
        """Whether Redis keeps its data across a restart (AOF or RDB snapshots on), and the
        settings that say so. None when it cannot be told: managed services often disable
        CONFIG, and then INFO shows AOF but not whether RDB snapshots are scheduled."""
        try:
            found: dict[Any, Any] = dict(await self.client.config_get("appendonly"))
            found.update(await self.client.config_get("save"))
        except REDIS_ERRORS as exc:
            error = translate(exc, "config get")
            if isinstance(error, StoreUnavailable):
                raise error from exc
            info = await self._call("info", self.client.info("persistence"))
            if int(info.get("aof_enabled", 0)) == 1:
                return True, "aof_enabled:1"
            return None, "CONFIG GET refused; aof_enabled:0"
        settings = _single_node(found)
        aof = str(settings.get("appendonly", "no")).lower() == "yes"
        rdb = bool(str(settings.get("save", "")).strip())
        return aof or rdb, (
            f"appendonly {settings.get('appendonly')!s}, save {settings.get('save')!r}")

    async def totals(
        self, window_minutes: int, by: Sequence[str] = (), now_ms: int | None = None
    ) -> list[TotalsRow]:
        start, end = window_range(window_minutes, self._now_ms(now_ms))
        hours, minutes = cover(start, end)
        k = self.keys
        sources = [(k.hour(h), k.hour_largest(h)) for h in hours]
        sources += [(k.minute(m), k.minute_largest(m)) for m in minutes]
        builder: RowBuilder[Ref] = RowBuilder(by)
        cells = await self._hgetall([s[0] for s in sources])
        fields: dict[bytes, tuple[str, str, str]] = {}
        for (_, largest_key), found in zip(sources, cells, strict=True):
            _fold(builder, fields, found, largest_key)
        events = await self._resolve(builder.refs())
        return builder.rows(events.get)

    async def minute_series(
        self, start_minute: int, end_minute: int, by: Sequence[str] = ()
    ) -> list[tuple[int, TotalsRow]]:
        by = check_by(by)
        minutes = range(start_minute, end_minute + 1)
        k = self.keys
        cells = await self._hgetall([k.minute(m) for m in minutes])
        fields: dict[bytes, tuple[str, str, str]] = {}
        builders: list[RowBuilder[Ref]] = []
        refs: list[Ref] = []
        for minute, found in zip(minutes, cells, strict=True):
            builder: RowBuilder[Ref] = RowBuilder(by)
            _fold(builder, fields, found, k.minute_largest(minute))
            builders.append(builder)
            refs += builder.refs()
        events = await self._resolve(refs)
        return [
            (minute, row)
            for minute, builder in zip(minutes, builders, strict=True)
            for row in builder.rows(events.get)
        ]

    async def largest(
        self, window_minutes: int, limit: int = 10, now_ms: int | None = None
    ) -> list[Liquidation]:
        start, end = window_range(window_minutes, self._now_ms(now_ms))
        hours, minutes = cover(start, end)
        limit = min(limit, LARGEST_KEEP)
        if limit <= 0:
            return []
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        for key in [k.hour_top(h) for h in hours] + [k.minute_top(m) for m in minutes]:
            pipe.zrevrange(key, 0, limit - 1)
        found: list[list[bytes]] = await self._call("read", pipe.execute())
        candidates: list[tuple[float, Liquidation]] = []
        for members in found:
            for member in members:
                event = decode_record(member)
                candidates.append((event.notional_usd, event))
        return top_events(candidates, limit)

    async def record_cascade(self, record: Mapping[str, Any]) -> None:
        k = self.keys
        data = orjson.dumps(dict(record))
        keys = [k.cascades, k.cascade_order, k.cascade_seq]
        args: list[str | bytes | int] = [str(record["id"]), data, self._cascade_limit]
        await self._call("record_cascade", self._cascade_script(keys=keys, args=args))

    async def cascades(self, limit: int = 20) -> list[dict[str, Any]]:
        if limit <= 0:
            return []
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.zrevrange(k.cascade_order, 0, limit - 1)
        pipe.hgetall(k.cascades)
        ids, records = await self._call("read", pipe.execute())
        return [orjson.loads(records[i]) for i in ids if i in records]

    async def claim(self, key: str, ttl_seconds: float) -> bool:
        ttl_ms = max(1, round(ttl_seconds * 1000))
        setting = self.client.set(self.keys.claim(key), b"1", nx=True, px=ttl_ms)
        done = await self._call("claim", setting)
        return bool(done)

    async def record_coverage(
        self, minutes: Sequence[CoverageMinute], heartbeat: Mapping[str, float]
    ) -> None:
        """One pipeline: a BITFIELD of 1-bits per (venue, day) bitmap, and the heartbeats.
        Bits are only ever set, so a retry or a second collector cannot undo a verdict."""
        k = self.keys
        pipe = self.client.pipeline(transaction=False)
        queued = False
        for (venue, day), bits in day_bits(minutes).items():
            key = k.coverage(venue, day)
            ops: list[str | int] = []
            for bit in bits:
                ops += ("SET", "u1", bit, 1)
            pipe.execute_command("BITFIELD", key, *ops)
            pipe.pexpire(key, self._retention_ms)
            queued = True
        if heartbeat:
            pipe.hset(k.heartbeat, mapping={v: repr(float(t)) for v, t in heartbeat.items()})
            pipe.pexpire(k.heartbeat, self._retention_ms)
            queued = True
        if queued:
            await self._call("record_coverage", pipe.execute())

    async def heartbeats(self) -> dict[str, float]:
        found = await self._call("heartbeats", self.client.hgetall(self.keys.heartbeat))
        return {_text(v): float(t) for v, t in found.items()}

    async def coverage(
        self, window_minutes: int, now_ms: int | None = None,
        venues: Sequence[str] | None = None,
    ) -> list[CoverageRow]:
        start, end = window_range(window_minutes, self._now_ms(now_ms))
        names = list(venues) if venues is not None else sorted(await self.heartbeats())
        days = range(start // DAY_MINUTES, end // DAY_MINUTES + 1)
        pipe = self.client.pipeline(transaction=False)
        for venue in names:
            for day in days:
                pipe.get(self.keys.coverage(venue, day))
        bitmaps: list[bytes | None] = await self._call("read", pipe.execute()) if names else []
        found: dict[str, list[tuple[int, bool]]] = {}
        for i, venue in enumerate(names):
            found[venue] = [
                verdict for j, day in enumerate(days)
                for verdict in read_day(bitmaps[i * len(days) + j], day, start, end)]
        return rows_from(found)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await close_client(self.client, self._sentinel)
        except REDIS_ERRORS as exc:
            # Closing must not fail a shutdown; the connections are gone either way.
            log.warning("closing the redis client: %s", exc)

    def _now_ms(self, now_ms: int | None) -> int:
        return int(self._clock.wall() * 1000) if now_ms is None else now_ms

    async def _hgetall(self, keys: list[str]) -> list[dict[bytes, bytes]]:
        """Every cell of these hashes, through the read script in slices, so that no single
        call keeps Redis busy for long (a slice of full minute buckets: a few ms)."""
        slices = [keys[i : i + _READ_SLICE] for i in range(0, len(keys), _READ_SLICE)]
        replies = await self._call(
            "read", asyncio.gather(*(self._read_script(keys=s) for s in slices))
        )
        hashes: list[dict[bytes, bytes]] = []
        for reply in replies:
            for blob in reply:
                parts = blob.split(b"\n") if blob else []
                hashes.append(dict(zip(parts[::2], parts[1::2], strict=True)))
        return hashes

    async def _resolve(self, refs: list[Ref]) -> dict[Ref, Liquidation]:
        """Fetch the event JSON of each row's largest liquidation, in one round trip."""
        if not refs:
            return {}
        pipe = self.client.pipeline(transaction=False)
        for key, field in refs:
            pipe.hget(key, field)
        found: list[bytes | None] = await self._call("read", pipe.execute())
        return {
            ref: decode_record(data)
            for ref, data in zip(refs, found, strict=True)
            if data is not None
        }

    @staticmethod
    async def _call(doing: str, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except REDIS_ERRORS as exc:
            raise translate(exc, doing) from exc


def _single_node(found: Mapping[Any, Any]) -> dict[str, Any]:
    """CONFIG GET's reply as one node's {name: value}; the cluster client returns one
    entry per node (the nodes of one deployment share their persistence settings)."""
    values = dict(found)
    if values and all(isinstance(v, dict) for v in values.values()):
        values = dict(next(iter(values.values())))
    return {_text(k): _text(v) for k, v in values.items()}


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _fold(
    builder: RowBuilder[Ref],
    fields: dict[bytes, tuple[str, str, str]],
    cells: Mapping[bytes, bytes],
    largest_key: str,
) -> None:
    for field, value in cells.items():
        group = fields.get(field)
        if group is None:
            group = fields[field] = parse_group_field(field.decode())
        usd, count, qty, largest, mask = value.split()
        builder.add(
            group, float(usd), int(count), float(qty), float(largest), int(mask),
            (largest_key, field),
        )

