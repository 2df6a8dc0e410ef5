"""Raw recordings made from simulator scenarios, as ``liqmon record`` would have written them.

The frames come from the simulator's own venue encoders, so replay and backtest tests run the
real dialect, instrument terms and ingest path over them.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson

from monitor.backtest import SCENARIO_EPOCH
from monitor.feed.recorder import RawFrame
from monitor.simulator.catalogue import listings
from monitor.simulator.scenarios.model import ScenarioEvent
from monitor.simulator.venue_sim import Liq, SimContext, SimNow
from monitor.simulator.venues import make_venue_sim

VENUE = "bybit"


def simulated_frames(events: Iterator[ScenarioEvent], venue: str = VENUE,
                     epoch: float = SCENARIO_EPOCH) -> Iterator[RawFrame]:
    """What a recorder subscribed to every liquidation and ticker topic of ``venue`` writes."""
    ctx = SimContext(venue, was_sent=lambda seq: True, mark_interval_ms=1000)
    sim = make_venue_sim(ctx)
    priced: set[str] = set()
    for item in listings(venue):
        ctx.subscribed[f"allLiquidation.{item.symbol}"] += 1
        if item.coin not in priced:  # one price stream per coin, as the daemon subscribes
            priced.add(item.coin)
            ctx.subscribed[f"tickers.{item.symbol}"] += 1
    step_ms = 100
    next_ms: int | None = None

    def flush_until(ms: int, final: bool = False) -> Iterator[RawFrame]:
        nonlocal next_ms
        while next_ms is not None and (next_ms <= ms or final):
            for pub in sim.flush(SimNow(next_ms, next_ms / 1000), final and next_ms > ms):
                # Frames reach the recorder a few milliseconds after the venue pushed them.
                yield RawFrame(venue, next_ms / 1000 + 0.004, pub.payload)
            next_ms += step_ms
            if final and next_ms > ms + 1000:
                return

    seq = 0
    for event in events:
        ts_ms = int((epoch + event.at_seconds) * 1000)
        if next_ms is None:
            next_ms = ts_ms - ts_ms % step_ms
        yield from flush_until(ts_ms)
        if event.kind == "mark":
            sim.on_mark(event.coin, event.price, ts_ms)
        elif event.venue == venue:
            seq += 1
            sim.on_liquidation(Liq(seq, event, ts_ms))
    if next_ms is not None:
        yield from flush_until(next_ms, final=True)


def write_recording(path: Path, frames: Iterator[RawFrame]) -> int:
    """Write ``frames`` as JSON Lines (gzip for a .gz path); the number written."""
    opener = gzip.open if path.suffix == ".gz" else open
    count = 0
    with opener(path, "wb") as f:
        for frame in frames:
            f.write(orjson.dumps({"venue": frame.venue, "received_at": frame.received_at,
                                  "frame": frame.frame}) + b"\n")
            count += 1
    return count
