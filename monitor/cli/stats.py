"""``liqmon stats``: windows from the configured store, as a table or JSON."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from monitor.config import Config
from monitor.errors import StoreError
from monitor.store.base import LARGEST_KEEP, Store, check_by, parse_window
from monitor.store.factory import open_store

MEMORY_STORE_EMPTY = (
    "liqmon stats: the store is the embedded memory store ([store] backend = \"memory\"), "
    "which lives inside each process: no daemon writes where `stats` can read. Run the daemon "
    "and `stats` with [store] backend = \"redis\", or watch the running daemon with "
    "`liqmon top` (totals since it started) or `liqmon tail`.")


async def run_stats(config: Config, args: argparse.Namespace) -> int:
    try:
        minutes = parse_window(args.window)
        by = check_by([b.strip() for b in args.by.split(",") if b.strip()])
    except ValueError as exc:
        print(f"liqmon stats: {exc}", file=sys.stderr)
        return 2
    if config.store.backend == "memory":
        # Nothing can be in it: the memory store lives and dies inside one process.
        print(MEMORY_STORE_EMPTY, file=sys.stderr)
        return 1
    store = await open_store(config.store)
    try:
        if getattr(args, "largest", None):
            return await _print_largest(store, minutes, args)
        if args.cascades:
            cascades = await store.cascades(args.limit)
            if args.json:
                sys.stdout.buffer.write(orjson.dumps({"cascades": cascades}) + b"\n")
            else:
                print(render_cascades(cascades))
            return 0
        rows = await store.totals(minutes, by=by)
    except StoreError as exc:
        print(f"liqmon stats: the store cannot be read: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.aclose()
    if args.json:
        doc = {"window": args.window, "rows": [
            {**{k: getattr(r, k) for k in by}, "usd": r.usd, "count": r.count,
             "largest_usd": r.largest_usd, "completeness": r.completeness}
            for r in rows]}
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    else:
        print(render_table(args.window, by, rows))
    return 0


def render_table(window: str, by: tuple[str, ...], rows: list[Any]) -> str:
    header = [*by, "usd", "count", "largest_usd", "completeness"]
    body = [[str(getattr(r, k)) for k in by]
            + [f"{r.usd:,.2f}", str(r.count), f"{r.largest_usd:,.2f}", r.completeness]
            for r in sorted(rows, key=lambda r: -r.usd)]
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h)
              for i, h in enumerate(header)]
    lines = [f"liquidations in the last {window}",
             "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    if not body:
        lines.append("(none)")
    return "\n".join(lines)


def render_cascades(cascades: list[dict[str, Any]]) -> str:
    if not cascades:
        return "no cascades recorded"
    lines = []
    for c in cascades:
        lines.append(f"{c.get('time', '?')}  {c.get('status', '?'):<9} "
                     f"{c.get('severity', '?'):<8} {c.get('scope', '?'):<16} "
                     f"{c.get('reason', '')}")
    return "\n".join(lines)


async def _print_largest(store: Store, minutes: int, args: argparse.Namespace) -> int:
    """``--largest N``: the N largest liquidations of the window, after the filters."""
    from monitor.cli.tape import TapeFilter, tape_line

    keep = TapeFilter.build(args.venue, args.coin, args.side)
    events = [e for e in await store.largest(minutes, LARGEST_KEEP) if keep.accepts(e)]
    events = events[:args.largest]
    if args.json:
        doc = {"window": args.window, "largest": [e.to_json_dict() for e in events]}
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
        return 0
    print(f"the {len(events)} largest liquidations in the last {args.window} (UTC)")
    for event in events:
        day = time.strftime("%Y-%m-%d", time.gmtime(event.exchange_ts_ms / 1000))
        print(f"{day} {tape_line(event)}")
    if not events:
        print("(none)")
    return 0
