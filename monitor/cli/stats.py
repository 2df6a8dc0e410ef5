"""``liqmon stats``: windows from the configured store, as a table or JSON.

Totals come with the feed's coverage over the same window (``store/coverage.py``): per
venue, how many of the window's minutes have a verdict and which of them were gaps, when
the venue's feed was not subscribed for the whole minute or no liqmon was running. A
total over minutes with gaps is a lower bound.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from monitor.config import Config
from monitor.errors import StoreError
from monitor.store.base import LARGEST_KEEP, Store, check_by, parse_window
from monitor.store.coverage import CoverageRow, coverage_json, describe_gaps
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
        coverage = await store.coverage(minutes)
    except StoreError as exc:
        print(f"liqmon stats: the store cannot be read: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.aclose()
    gaps = {c.venue: len(c.gaps) for c in coverage}
    if args.json:
        doc = {"window": args.window, "rows": [
            {**{k: getattr(r, k) for k in by}, "usd": r.usd, "count": r.count,
             "largest_usd": r.largest_usd, "completeness": r.completeness,
             **({"gap_minutes": gaps.get(r.venue or "")} if "venue" in by else {})}
            for r in rows], "coverage": [coverage_json(c) for c in coverage]}
        sys.stdout.buffer.write(orjson.dumps(doc) + b"\n")
    else:
        print(render_table(args.window, by, rows, gaps))
        print(render_coverage(coverage, minutes))
    return 0


def render_coverage(coverage: list[CoverageRow], window_minutes: int) -> str:
    """One line per venue: its gaps in the window, or that it had none."""
    if not coverage:
        return "feed coverage: none recorded in the window"
    lines = ["feed coverage (minutes the feed was not subscribed throughout, or liqmon down):"]
    width = max(len(c.venue) for c in coverage)
    for c in coverage:
        lines.append(f"  {c.venue.ljust(width)}  {describe_gaps(c.gaps)} "
                     f"({c.recorded} of {window_minutes} min recorded)")
    return "\n".join(lines)


def render_table(window: str, by: tuple[str, ...], rows: list[Any],
                 gaps: dict[str, int] | None = None) -> str:
    """The totals; with ``gaps`` and rows by venue, a column of each venue's gap minutes
    (``-`` where none was recorded)."""
    show_gaps = gaps is not None and "venue" in by
    header = [*by, "usd", "count", "largest_usd", "completeness"] + (
        ["gap_min"] if show_gaps else [])
    body = [[str(getattr(r, k)) for k in by]
            + [f"{r.usd:,.2f}", str(r.count), f"{r.largest_usd:,.2f}", r.completeness]
            + ([str((gaps or {}).get(r.venue, "-"))] if show_gaps else [])
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
