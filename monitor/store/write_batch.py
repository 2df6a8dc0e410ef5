"""The write script's call for a batch of events: its KEYS and ARGV, built in the client.

Building a batch costs more client CPU than sending it, so the buffered store builds the
next one while Redis runs the current one (``RedisStore.write_prepared`` sends it). The
argument layout is the one ``lua.ADD_EVENTS`` reads; the key layout is ``keys.py``'s.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

from monitor.events import Liquidation
from monitor.store.base import COMPLETENESS_BITS, LARGEST_KEEP
from monitor.store.keys import FIELD_SEP, Keys
from monitor.store.records import REFUSED_UNENCODABLE, encode_record, refusal


class Prepared(NamedTuple):
    """One write-script call, built ahead, and the events left out of it (with why)."""

    keys: list[str]
    args: list[Any]
    refused: list[tuple[Liquidation, str]]


class BatchBuilder:
    """Turns a batch of events into one write-script call for one key prefix."""

    def __init__(self, keys: Keys, dedupe_ms: int, retention_ms: int) -> None:
        self._keys = keys
        self._dedupe_ms = dedupe_ms
        self._retention_ms = retention_ms

    def prepare(self, events: Sequence[Liquidation]) -> Prepared:
        """The script's KEYS and ARGV for a batch (both empty when nothing to write), and
        the events left out with the reason. Never raises for one event's content: one
        unencodable event must not stop the writer.

        The work per event is kept to grouping and a few list appends: the client sums
        each (minute, venue, completeness, coin, side) cell, and only the events that can
        be kept whole (each cell's largest, each bucket's ``LARGEST_KEEP`` largest) are
        encoded as records. A repeated id within the batch is left out here, so that the
        script may look every id up before adding any."""
        refused: list[tuple[Liquidation, str]] = []
        ids_in_batch: set[str] = set()
        minutes: dict[int, dict[tuple[str, int, str], list[Liquidation]]] = {}
        for e in events:
            reason = refusal(e)
            if reason is not None:
                refused.append((e, reason))
                continue
            event_id = e.event_id
            if event_id in ids_in_batch:
                continue
            ids_in_batch.add(event_id)
            minute = e.exchange_ts_ms // 60_000
            cells = minutes.get(minute)
            if cells is None:
                cells = minutes[minute] = {}
            key = (e.venue, COMPLETENESS_BITS[e.completeness],
                   e.coin + FIELD_SEP + e.position_side)
            group = cells.get(key)
            if group is None:
                cells[key] = [e]
            else:
                group.append(e)
        if not minutes:
            return Prepared([], [], refused)
        try:
            return self._build(minutes, refused)
        except _Unencodable as exc:
            # Rare: redo the batch without the events that cannot be sent.
            bad = {id(e) for e in exc.events}
            if not bad:
                return Prepared([], [], [(e, REFUSED_UNENCODABLE) for e in events])
            again = self.prepare([e for e in events if id(e) not in bad])
            again.refused.extend((e, REFUSED_UNENCODABLE) for e in exc.events)
            return again

    def _build(
        self,
        minutes: dict[int, dict[tuple[str, int, str], list[Liquidation]]],
        refused: list[tuple[Liquidation, str]],
    ) -> Prepared:
        keep = LARGEST_KEEP
        targets: dict[tuple[str, int], int] = {}  # ("m" | "h", index) → 1-based target
        tops: dict[int, list[tuple[float, int]]] = {}  # target → (usd, record) candidates
        header: list[bytes] = []
        records: list[bytes] = []
        record_no: dict[tuple[int, int], int] = {}  # (set, id index) → 1-based record
        per_set: list[bytes] = []
        set_keys: list[str] = []
        sep = FIELD_SEP.encode()

        def record(e: Liquidation, s: int, i: int) -> int:
            r = record_no.get((s, i))
            if r is None:
                try:
                    data = encode_record(e)
                except (TypeError, ValueError) as exc:  # orjson: out-of-range int, bad str
                    raise _Unencodable([e]) from exc
                records.append(b"%d %d %d %s" % (s, i, len(data), data))
                r = record_no[(s, i)] = len(records)
            return r

        for minute, cells in minutes.items():
            s = len(set_keys) + 1
            tm = targets.setdefault(("m", minute), len(targets) + 1)
            th = targets.setdefault(("h", minute // 60), len(targets) + 1)
            ids: list[str] = []
            usds: list[float] = []
            qtys: list[float] = []
            members: list[Liquidation] = []
            for (venue, mask, coin_side), group in cells.items():
                try:
                    field = (venue + FIELD_SEP + coin_side).encode()
                except UnicodeEncodeError:
                    field = b"\n"
                if b"\n" in field or field.count(sep) != 2:
                    refused.extend((e, REFUSED_UNENCODABLE) for e in group)
                    continue
                first = len(ids)
                group_usds = [e.notional_usd for e in group]
                group_qtys = [e.qty_base for e in group]
                largest = max(group_usds)
                at = group_usds.index(largest)  # the first of equals, as the memory store
                ids += [e.event_id for e in group]
                usds += group_usds
                qtys += group_qtys
                members += group
                rec = record(group[at], s, first + at + 1)
                header.append(b"%d %d %d %d %d %d %d %r %r %r %d %s" % (
                    mask, tm, th, s, first + 1, len(group), rec, sum(group_usds),
                    sum(group_qtys), largest, len(field), field))
            if not ids:
                continue
            try:
                blob = "\n".join(ids).encode()
            except UnicodeEncodeError:
                blob = b""
            if blob.count(b"\n") != len(ids) - 1 or b"\n\n" in blob or blob.startswith(
                    b"\n") or blob.endswith(b"\n") or not blob:
                raise _Unencodable([e for e in members if not _sendable_id(e.event_id)])
            # Only this minute's `keep` largest can enter its top.
            order: Sequence[int] = range(len(usds))
            if len(usds) > keep:
                order = sorted(order, key=usds.__getitem__, reverse=True)[:keep]
            candidates = [(usds[i], record(members[i], s, i + 1)) for i in order]
            tops.setdefault(tm, []).extend(candidates)
            tops.setdefault(th, []).extend(candidates)
            set_keys.append(self._keys.minute_ids(minute))
            per_set += (blob, struct.pack(f"<{len(usds)}d", *usds),
                        struct.pack(f"<{len(qtys)}d", *qtys))
        if not header:
            return Prepared([], [], refused)
        k = self._keys
        keys: list[str] = []
        top_parts: list[bytes] = []
        for kind, index in targets:
            if kind == "m":
                keys += (k.minute(index), k.minute_largest(index), k.minute_top(index))
            else:
                keys += (k.hour(index), k.hour_largest(index), k.hour_top(index))
            candidates = tops.get(targets[(kind, index)], [])
            if len(candidates) > keep:
                candidates = sorted(candidates, key=_first, reverse=True)[:keep]
            top_parts.append(b"%d %s " % (len(candidates), b" ".join(
                b"%d" % r for _, r in candidates)))
        keys += set_keys
        args: list[Any] = [
            self._dedupe_ms, self._retention_ms, keep, len(targets), len(set_keys),
            b"".join(header), b"".join(records), b"".join(top_parts), *per_set,
        ]
        return Prepared(keys, args, refused)


class _Unencodable(Exception):
    """Events of a batch that cannot be sent as they are."""

    def __init__(self, events: list[Liquidation]) -> None:
        super().__init__(len(events))
        self.events = events


def _sendable_id(event_id: str) -> bool:
    if not event_id or "\n" in event_id:
        return False
    try:
        event_id.encode()
    except UnicodeEncodeError:
        return False
    return True


def _first(item: tuple[float, int]) -> float:
    return item[0]

