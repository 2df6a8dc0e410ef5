"""``liqmon top``: a live terminal view of the running daemon, good over SSH.

Windows (the last minute and hour by venue and side, top coins, the largest liquidations,
recent cascades) come from the configured store, so they are exact and shared by every
daemon writing to one Redis. Feed health and the cascade state now come from the daemon's
``/metrics``. With the embedded memory store the windows live inside the daemon's own
process; the view then shows the totals since the daemon started, from ``/metrics``.

Fetching (:func:`fetch`) is separate from rendering (:func:`render`, pure), which is what
the tests check without a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from monitor.cli.fmt import usd
from monitor.cli.tape import tape_line
from monitor.config import Config
from monitor.errors import StoreError
from monitor.events import Liquidation
from monitor.store.base import Store, TotalsRow
from monitor.store.factory import open_store

SIDES = ("long", "short")
SEVERITY_NAMES = {1: "warning", 2: "critical", 3: "extreme"}
LARGEST_LIMIT = 8
TOP_COINS = 8
METRICS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class FeedRow:
    venue: str
    connected: bool
    subscribed: int
    frames_total: float
    last_frame_at: float  # wall seconds, 0 when none yet
    reconnects_total: float
    frames_per_second: float | None = None


@dataclass
class TopData:
    at: float
    store_label: str
    metrics_url: str
    minute: list[TotalsRow] = field(default_factory=list)
    hour: list[TotalsRow] = field(default_factory=list)
    coins: list[TotalsRow] = field(default_factory=list)
    largest: list[Liquidation] = field(default_factory=list)
    cascades: list[dict[str, Any]] = field(default_factory=list)
    store_error: str | None = None
    feeds: list[FeedRow] = field(default_factory=list)
    active: list[tuple[str, str, int]] = field(default_factory=list)  # scope, side, severity
    since_start: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    store_up: bool | None = None
    store_buffered: float = 0.0
    metrics_error: str | None = None


def default_metrics_url(config: Config) -> str:
    host = config.metrics.host
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.metrics.port}/metrics"


def redact(url: str) -> str:
    """A store URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def parse_metrics(text: str, data: TopData) -> None:
    """Fill feed health, cascade state and since-start totals from a /metrics page."""
    feeds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    since: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name, labels, value = s.name, s.labels, float(s.value)
            venue = labels.get("venue", "")
            if name == "liqmon_feed_connected":
                feeds[venue]["connected"] = value
            elif name == "liqmon_feed_subscribed_connections":
                feeds[venue]["subscribed"] = value
            elif name == "liqmon_frames_total":
                feeds[venue]["frames"] = value
            elif name == "liqmon_feed_last_frame_timestamp_seconds":
                feeds[venue]["last"] = value
            elif name == "liqmon_feed_reconnects_total" and labels.get("reason") != "rotation":
                feeds[venue]["reconnects"] += value
            elif name == "liqmon_cascade_severity" and value > 0:
                data.active.append((labels["scope"], labels["position_side"], int(value)))
            elif name == "liqmon_liquidations_total":
                since[(venue, labels["position_side"])][0] += value
            elif name == "liqmon_liquidated_usd_total":
                since[(venue, labels["position_side"])][1] += value
            elif name == "liqmon_store_up":
                data.store_up = value >= 1
            elif name == "liqmon_store_buffered_events":
                data.store_buffered = value
    data.feeds = [
        FeedRow(venue, f.get("connected", 0) >= 1, int(f.get("subscribed", 0)),
                f.get("frames", 0.0), f.get("last", 0.0), f.get("reconnects", 0.0))
        for venue, f in sorted(feeds.items()) if venue
    ]
    data.since_start = {k: (v[0], v[1]) for k, v in since.items() if v[0]}
    data.active.sort(key=lambda a: (-a[2], a[0], a[1]))


class Fetcher:
    """Reads the store and /metrics; keeps the previous frame counts for rates."""

    def __init__(self, config: Config, metrics_url: str, store: Store | None) -> None:
        self._config = config
        self._url = metrics_url
        self._store = store
        self._previous: dict[str, tuple[float, float]] = {}  # venue -> (at, frames)
        self._client = httpx.AsyncClient(timeout=METRICS_TIMEOUT_SECONDS)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self) -> TopData:
        store_cfg = self._config.store
        label = ("memory (inside the daemon)" if store_cfg.backend == "memory"
                 else f"redis {redact(store_cfg.url)}")
        data = TopData(at=time.time(), store_label=label, metrics_url=self._url)
        await asyncio.gather(self._read_store(data), self._read_metrics(data))
        return data

    async def _read_store(self, data: TopData) -> None:
        store = self._store
        if store is None:
            return
        try:
            data.minute = await store.totals(1, by=("venue", "position_side"))
            data.hour = await store.totals(60, by=("venue", "position_side"))
            data.coins = await store.totals(60, by=("coin", "position_side"))
            data.largest = await store.largest(60, LARGEST_LIMIT)
            data.cascades = await store.cascades(5)
        except StoreError as exc:
            data.store_error = str(exc)

    async def _read_metrics(self, data: TopData) -> None:
        try:
            response = await self._client.get(self._url)
            response.raise_for_status()
            parse_metrics(response.text, data)
        except (httpx.HTTPError, ValueError) as exc:
            data.metrics_error = f"{type(exc).__name__}: {exc}"[:200]
            return
        rows = []
        for row in data.feeds:
            prev = self._previous.get(row.venue)
            rate = None
            if prev is not None and data.at > prev[0]:
                rate = max(0.0, (row.frames_total - prev[1]) / (data.at - prev[0]))
            self._previous[row.venue] = (data.at, row.frames_total)
            rows.append(FeedRow(row.venue, row.connected, row.subscribed, row.frames_total,
                                row.last_frame_at, row.reconnects_total, rate))
        data.feeds = rows


# -- rendering (pure) -------------------------------------------------------------------------


def _by_venue_table(title: str, rows: list[TotalsRow]) -> Table:
    table = Table(title=title, title_justify="left", expand=True)
    for name in ("venue", "longs", "shorts", "total", "count"):
        table.add_column(name, justify="left" if name == "venue" else "right")
    per: dict[str, dict[str, tuple[float, int]]] = defaultdict(dict)
    for r in rows:
        per[r.venue or "?"][r.position_side or "?"] = (r.usd, r.count)
    total_usd, total_count = 0.0, 0
    for venue, sides in sorted(per.items(), key=lambda kv: -sum(v[0] for v in kv[1].values())):
        long_usd = sides.get("long", (0.0, 0))[0]
        short_usd = sides.get("short", (0.0, 0))[0]
        count = sum(v[1] for v in sides.values())
        total_usd += long_usd + short_usd
        total_count += count
        table.add_row(venue, usd(long_usd), usd(short_usd), usd(long_usd + short_usd),
                      str(count))
    if not per:
        table.add_row("(none)", "", "", "", "")
    else:
        table.add_row(Text("all", style="bold"), "", "", Text(usd(total_usd), style="bold"),
                      Text(str(total_count), style="bold"))
    return table


def _coins_table(rows: list[TotalsRow]) -> Table:
    table = Table(title="Top coins, last hour", title_justify="left", expand=True)
    for name in ("coin", "longs", "shorts", "count"):
        table.add_column(name, justify="left" if name == "coin" else "right")
    per: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in rows:
        entry = per[r.coin or "?"]
        entry[0 if r.position_side == "long" else 1] += r.usd
        entry[2] += r.count
    ranked = sorted(per.items(), key=lambda kv: -(kv[1][0] + kv[1][1]))[:TOP_COINS]
    for coin, (long_usd, short_usd, count) in ranked:
        table.add_row(coin, usd(long_usd), usd(short_usd), str(int(count)))
    if not ranked:
        table.add_row("(none)", "", "", "")
    return table


def _largest_table(largest: list[Liquidation]) -> Table:
    table = Table(title="Largest liquidations, last hour", title_justify="left", expand=True)
    for name in ("time", "venue", "coin", "side", "usd", "price"):
        table.add_column(name, justify="right" if name in ("usd", "price") else "left")
    for liq in largest:
        table.add_row(time.strftime("%H:%M:%S", time.gmtime(liq.exchange_ts_ms / 1000)),
                      liq.venue, liq.coin, liq.position_side.value, usd(liq.notional_usd),
                      f"{liq.price:,.6g}")
    if not largest:
        table.add_row("(none)", "", "", "", "", "")
    return table


def _feeds_table(data: TopData) -> Table:
    table = Table(title="Feeds", title_justify="left", expand=True)
    for name in ("venue", "state", "subscribed", "frames/s", "last frame", "reconnects"):
        table.add_column(name, justify="left" if name in ("venue", "state") else "right")
    for f in data.feeds:
        age = f"{max(0.0, data.at - f.last_frame_at):.1f}s ago" if f.last_frame_at else "never"
        state = Text("up", style="green") if f.connected else Text("DOWN", style="bold red")
        rate = f"{f.frames_per_second:.1f}" if f.frames_per_second is not None else "…"
        table.add_row(f.venue, state, str(f.subscribed), rate, age,
                      str(int(f.reconnects_total)))
    if not data.feeds:
        table.add_row("(no metrics)" if data.metrics_error else "(no feeds)", "", "", "", "",
                      "")
    return table


def _cascade_text(data: TopData, recent: int = 3) -> Text:
    text = Text("Cascade: ", style="bold")
    if data.metrics_error:
        text.append("unknown (metrics unreachable)", style="yellow")
    elif not data.active:
        text.append("quiet", style="green")
    else:
        text.append(", ".join(f"{scope} {side} {SEVERITY_NAMES.get(level, str(level))}"
                              for scope, side, level in data.active), style="bold red")
    for c in data.cascades[:recent]:
        text.append(f"\n  {c.get('time', '?')}  {c.get('status', '?')} "
                    f"{c.get('severity', '?')} {c.get('scope', '?')} "
                    f"{c.get('position_side', '')}")
    return text


# Below this many rows or columns the view is one table a venue, as over a small SSH window.
FULL_VIEW_MIN_ROWS, FULL_VIEW_MIN_COLUMNS = 40, 120


def render(data: TopData, width: int = 160, height: int = 60) -> RenderableType:
    """The view for a terminal of ``width`` x ``height``: everything in a large one, the
    essentials in one table a venue in a small one (80x24 shows every venue)."""
    if height < FULL_VIEW_MIN_ROWS or width < FULL_VIEW_MIN_COLUMNS:
        return render_compact(data, height)
    return _render_full(data)


def _per_venue(rows: list[TotalsRow]) -> dict[str, dict[str, float]]:
    per: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in rows:
        per[r.venue or "?"][r.position_side or "?"] += r.usd
    return per


def render_compact(data: TopData, height: int) -> RenderableType:
    clock = time.strftime("%H:%M:%S UTC", time.gmtime(data.at))
    header = Text(f"liqmon top {clock}  ", style="bold")
    header.append(f"store: {data.store_label}", style="dim")
    parts: list[RenderableType] = [header]
    problems = [f"metrics unreachable: {data.metrics_error}"] if data.metrics_error else []
    problems += [f"store unreadable: {data.store_error}"] if data.store_error else []
    parts += [Text(p[:200], style="bold red", no_wrap=True, overflow="ellipsis")
              for p in problems]
    memory = data.store_label.startswith("memory")
    names: tuple[str, ...] = ("1m long", "1m short", "1h long", "1h short")
    first, second = _per_venue(data.minute), _per_venue(data.hour)
    if memory:  # the windows live inside the daemon: its totals since start instead
        first = _per_venue([TotalsRow(v, None, side, t[1], int(t[0]), 0.0, 0.0, None, "full")
                            for (v, side), t in data.since_start.items()])
        names = ("longs since start", "shorts since start")
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False)
    table.add_column("venue", no_wrap=True, overflow="ellipsis", max_width=14)
    table.add_column("feed", no_wrap=True)
    table.add_column("fr/s", justify="right", no_wrap=True)
    table.add_column("last", justify="right", no_wrap=True)
    for name in names:
        table.add_column(name, justify="right", no_wrap=True)
    feeds = {f.venue: f for f in data.feeds}
    totals = [0.0] * len(names)
    for venue in sorted(set(feeds) | set(first) | set(second)):
        f = feeds.get(venue)
        state = (Text("up", style="green") if f.connected else Text("DOWN", style="bold red")
                 ) if f is not None else Text("?")
        rate = (f"{f.frames_per_second:.1f}" if f is not None and f.frames_per_second is not None
                else "…")
        age = (f"{max(0.0, data.at - f.last_frame_at):.0f}s" if f is not None
               and f.last_frame_at else "-")
        values = [first[venue].get("long", 0.0), first[venue].get("short", 0.0)]
        if not memory:
            values += [second[venue].get("long", 0.0), second[venue].get("short", 0.0)]
        totals = [a + b for a, b in zip(totals, values, strict=True)]
        table.add_row(venue, state, rate, age, *(usd(v) if v else "-" for v in values))
    table.add_row(Text("all", style="bold"), "", "", "",
                  *(Text(usd(v), style="bold") for v in totals))
    parts.append(table)
    parts.append(_cascade_text(data, recent=0))
    used = len(parts) - 2 + len(table.rows) + 1 + 1  # header, problems, table head, cascade
    room = height - used - 2
    if room > 0 and data.largest and not memory:
        parts.append(Text("Largest, last hour", style="bold"))
        parts += [Text(tape_line(liq), no_wrap=True, overflow="ellipsis")
                  for liq in data.largest[:room]]
    return Group(*parts)


def _render_full(data: TopData) -> RenderableType:
    clock = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(data.at))
    header = Text(f"liqmon top  {clock}\n", style="bold")
    header.append(f"store: {data.store_label}", style="dim")
    if data.store_up is False:
        header.append(f"  (daemon reports the store DOWN, {data.store_buffered:.0f} buffered)",
                      style="bold red")
    header.append(f"\nmetrics: {data.metrics_url}", style="dim")
    parts: list[RenderableType] = [header]
    if data.metrics_error:
        parts.append(Text(f"metrics unreachable: {data.metrics_error}", style="bold red"))
    if data.store_error:
        parts.append(Text(f"store unreadable: {data.store_error}", style="bold red"))
    if data.store_label.startswith("memory"):
        rows = [TotalsRow(venue, None, side, usd_total, int(count), 0.0, 0.0, None, "full")
                for (venue, side), (count, usd_total) in data.since_start.items()]
        parts.append(Text("The memory store lives inside the daemon: for windows, run it with "
                          "the Redis store. Totals since the daemon started:", style="yellow"))
        parts.append(_by_venue_table("Since start", rows))
    else:
        windows = Table.grid(expand=True, padding=(0, 2))
        windows.add_column(ratio=1)
        windows.add_column(ratio=1)
        windows.add_row(_by_venue_table("Last minute", data.minute),
                        _by_venue_table("Last hour", data.hour))
        windows.add_row(_coins_table(data.coins), _largest_table(data.largest))
        parts.append(windows)
    parts.append(_feeds_table(data))
    parts.append(_cascade_text(data))
    return Group(*parts)


async def run_top(config: Config, args: argparse.Namespace) -> int:
    from rich.live import Live

    if not getattr(args, "log_level", None):
        # Log lines on stderr would tear the live view; errors still show.
        logging.getLogger().setLevel(logging.ERROR)
    interval = max(0.2, float(args.interval))
    store = await open_store(config.store) if config.store.backend != "memory" else None
    fetcher = Fetcher(config, args.metrics_url or default_metrics_url(config), store)
    console = Console()
    try:
        if args.once or not console.is_terminal:
            width, height = console.size
            console.print(render(await fetcher.fetch(), width, height))
            return 0
        with Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                # The terminal's size now: a resized window gets the view that fits it.
                width, height = console.size
                live.update(render(await fetcher.fetch(), width, height), refresh=True)
                await asyncio.sleep(interval)
    finally:
        await fetcher.aclose()
        if store is not None:
            await store.aclose()
