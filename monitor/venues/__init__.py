"""The registry: venue id → dialect. The one list of supported venues (DESIGN 3.1).

Dialect classes are named by import path and loaded on first use, so that a venue's module
is imported only when that venue is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import cast

from monitor.venues.dialect import Dialect, VenueSettings


@dataclass(frozen=True, slots=True)
class VenueEntry:
    venue: str
    dialect_path: str  # "module:Class"; the class takes a VenueSettings
    ws_base_url: str
    rest_base_url: str
    enabled_by_default: bool
    # "websocket": a dialect behind the connection supervisor; "node-fills": the files of a
    # Hyperliquid node (options.path), followed by monitor/feed/node_source.py.
    transport: str = "websocket"
    # The keys its ``options`` table may hold (docs/venues.md): any other is a config error,
    # so that a misspelt option fails at start instead of being silently ignored.
    options: tuple[str, ...] = ()


VENUES: dict[str, VenueEntry] = {
    entry.venue: entry
    for entry in (
        VenueEntry("binance-usdm", "monitor.venues.binance:BinanceUsdm",
                   "wss://fstream.binance.com", "https://fapi.binance.com", True),
        VenueEntry("binance-coinm", "monitor.venues.binance:BinanceCoinm",
                   "wss://dstream.binance.com", "https://dapi.binance.com", True),
        VenueEntry("bybit", "monitor.venues.bybit:Bybit",
                   "wss://stream.bybit.com", "https://api.bybit.com", True),
        VenueEntry("okx", "monitor.venues.okx:Okx",
                   "wss://ws.okx.com:8443", "https://www.okx.com", True,
                   options=("mark_price_topics_per_connection", "replay_max_age_seconds")),
        VenueEntry("hyperliquid", "monitor.venues.hyperliquid:Hyperliquid",
                   "wss://api.hyperliquid.xyz", "https://api.hyperliquid.xyz", True,
                   options=("vault_addresses", "infer_from_trades", "coins_per_connection",
                            "subscribe_interval_seconds", "replay_max_age_seconds")),
        VenueEntry("bitmex", "monitor.venues.bitmex:Bitmex",
                   "wss://ws.bitmex.com", "https://www.bitmex.com", True),
        VenueEntry("deribit", "monitor.venues.deribit:Deribit",
                   "wss://www.deribit.com", "https://www.deribit.com", True),
        VenueEntry("bitget", "monitor.venues.bitget:Bitget",
                   "wss://ws.bitget.com", "https://api.bitget.com", True),
        VenueEntry("gate", "monitor.venues.gate:Gate",
                   "wss://fx-ws.gateio.ws", "https://api.gateio.ws", True),
        VenueEntry("kraken-futures", "monitor.venues.kraken_futures:KrakenFutures",
                   "wss://futures.kraken.com", "https://futures.kraken.com", True),
        VenueEntry("dydx", "monitor.venues.dydx:Dydx",
                   "wss://indexer.dydx.trade", "https://indexer.dydx.trade", True),
        VenueEntry("htx", "monitor.venues.htx:Htx",
                   "wss://api.hbdm.com", "https://api.hbdm.com", True),
        VenueEntry("hyperliquid-node", "", "", "", False, transport="node-fills",
                   options=("path", "state_file")),
    )
}
WEBSOCKET_VENUES = tuple(v for v, e in VENUES.items() if e.transport == "websocket")


def dialect_class(venue: str) -> type:
    entry = VENUES[venue]
    if entry.transport != "websocket":
        raise KeyError(f"{venue} is not a websocket venue (its transport is {entry.transport})")
    module_name, _, class_name = entry.dialect_path.partition(":")
    return cast(type, getattr(importlib.import_module(module_name), class_name))


def make_dialect(venue: str, settings: VenueSettings | None = None) -> Dialect:
    """Build the dialect of ``venue``. Raises KeyError for an unknown venue id."""
    return cast(Dialect, dialect_class(venue)(settings or VenueSettings()))
