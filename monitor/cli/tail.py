"""``liqmon tail``: a live tape of individual liquidations.

Sources, chosen by ``--from`` (default ``auto``, the first that applies):

``mqtt``
    The running daemon's liquidation stream (``[notify.mqtt] liquidations = true``): exactly
    what it counted, deduplicated across venues' replays, from its ``liquidations_min_usd``
    up. A subscriber with a client id of its own; it publishes nothing.
``store``
    The running daemon's Redis store: the largest liquidations of each minute (the store
    keeps the top 50 a minute and an hour, not every event), polled every second, starting
    with those of the last two minutes.
``feeds``
    The venues themselves, through the same feeds and ingest as ``liqmon run`` but touching
    nothing of a running daemon (see ``side.py``). Works with no daemon at all.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections import OrderedDict

from monitor.cli.side import run_side_app
from monitor.cli.tape import TapeFilter, TapePrinter
from monitor.config import Config
from monitor.errors import NotifyError, StoreError
from monitor.store.base import LARGEST_KEEP
from monitor.store.factory import open_store

SOURCES = ("auto", "mqtt", "store", "feeds")
STORE_POLL_SECONDS = 1.0
STORE_SEEN_MAX = 10_000


def choose_source(config: Config, wanted: str) -> str:
    if wanted != "auto":
        return wanted
    mqtt = config.notify.mqtt
    if mqtt.enabled and mqtt.liquidations:
        return "mqtt"
    if config.store.backend == "redis":
        return "store"
    return "feeds"


def tape_filter(args: argparse.Namespace) -> TapeFilter:
    return TapeFilter.build(args.venue, args.coin, args.side, args.min_usd)


async def run_tail(config: Config, args: argparse.Namespace) -> int:
    source = choose_source(config, args.source)
    printer = TapePrinter(tape_filter(args), as_json=args.json, limit=args.count)
    unknown = [v for v in args.venue if v not in config.venues]
    if unknown:
        print(f"liqmon tail: unknown venue {', '.join(unknown)}; expected some of "
              f"{', '.join(sorted(config.venues))}", file=sys.stderr)
        return 2
    if source == "feeds":
        # Only the venues asked for are opened: a filter on one venue watches one venue.
        if args.venue:
            config = _only_venues(config, set(args.venue))
        print(f"liqmon tail: watching {len(config.enabled_venues())} venue(s) directly "
              "(no daemon needed); Ctrl-C stops", file=sys.stderr)
        stop = asyncio.Event()
        printer.on_done = stop.set
        return await run_side_app(config, args.metrics_port, on_liquidation=printer,
                                  duration=args.duration, stop=stop)
    work = _from_mqtt(config, printer) if source == "mqtt" else _from_store(config, printer)
    try:
        if args.duration is not None:
            async with asyncio.timeout(args.duration):
                await work
        else:
            await work
    except TimeoutError:
        pass
    except (NotifyError, StoreError) as exc:
        print(f"liqmon tail: {exc}", file=sys.stderr)
        return 1
    return 0


def _only_venues(config: Config, venues: set[str]) -> Config:
    chosen = {v: dataclasses.replace(vc, enabled=v in venues) for v, vc in config.venues.items()}
    return dataclasses.replace(config, venues=chosen)


async def _from_mqtt(config: Config, printer: TapePrinter) -> None:
    from monitor.notify.mqtt import liquidation_stream

    mqtt = config.notify.mqtt
    print(f"liqmon tail: following the daemon's liquidations on MQTT {mqtt.host}:{mqtt.port} "
          f"(it publishes those from ${mqtt.liquidations_min_usd:,.0f}); Ctrl-C stops",
          file=sys.stderr)
    async for event in liquidation_stream(mqtt, mqtt.side_client_id("tail")):
        printer(event)
        if printer.done:
            return


async def _from_store(config: Config, printer: TapePrinter) -> None:
    store = await open_store(config.store)
    print("liqmon tail: following the largest liquidations of each minute in the daemon's "
          "Redis store; Ctrl-C stops", file=sys.stderr)
    seen: OrderedDict[str, None] = OrderedDict()
    try:
        while not printer.done:
            # Two minutes: an event stamped in the last seconds of the previous minute.
            events = await store.largest(2, LARGEST_KEEP)
            for event in sorted(events, key=lambda e: (e.exchange_ts_ms, e.event_id)):
                if event.event_id in seen:
                    continue
                seen[event.event_id] = None
                if len(seen) > STORE_SEEN_MAX:
                    seen.popitem(last=False)
                printer(event)
            await asyncio.sleep(STORE_POLL_SECONDS)
    finally:
        await store.aclose()
