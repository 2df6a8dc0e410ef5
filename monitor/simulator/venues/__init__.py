"""The registry of simulated venues: venue id -> ``"module:factory"``.

A factory takes a :class:`~monitor.simulator.venue_sim.SimContext` and returns a
:class:`~monitor.simulator.venue_sim.VenueSim`. Modules load on first use. Adding a venue is
one line here (plus its listings in ``catalogue.py`` and its share in ``feb2026.py``).
"""

from __future__ import annotations

import importlib
from typing import cast

from monitor.simulator.venue_sim import SimContext, VenueSim

SIMULATORS: dict[str, str] = {
    "binance-usdm": "monitor.simulator.venues.binance:make_usdm",
    "binance-coinm": "monitor.simulator.venues.binance:make_coinm",
    "bybit": "monitor.simulator.venues.bybit:make",
    "okx": "monitor.simulator.venues.okx:make",
    "hyperliquid": "monitor.simulator.venues.hyperliquid:make",
    "kraken-futures": "monitor.simulator.venues.kraken_futures:make",
    "dydx": "monitor.simulator.venues.dydx:make",
    "htx": "monitor.simulator.venues.htx:make",
    "bitmex": "monitor.simulator.venues.bitmex:make",
    "deribit": "monitor.simulator.venues.deribit:make",
    "bitget": "monitor.simulator.venues.bitget:make",
    "gate": "monitor.simulator.venues.gate:make",
}


def make_venue_sim(ctx: SimContext) -> VenueSim:
    """The simulator of ``ctx.venue``; KeyError names the venues that have one."""
    try:
        path = SIMULATORS[ctx.venue]
    except KeyError:
        raise KeyError(f"no simulator for {ctx.venue!r}; known: {sorted(SIMULATORS)}") from None
    module_name, _, factory = path.partition(":")
    return cast(VenueSim, getattr(importlib.import_module(module_name), factory)(ctx))
