"""Ingest benchmark: daemon CPU per liquidation after parse, split by part, in one process.

    .venv/bin/python benchmarks/ingest.py [--frames 20000] [--rows 20] [--repeat 5]

The frames of ``benchmarks/e2e.py`` (Bybit ``allLiquidation``, ``--rows`` distinct rows of
$1k-$50k each, one symbol per frame) are parsed by the Bybit dialect outside the timed part;
then, as ``liqmon run`` builds them (memory store, default detector, metrics of the 12
websocket venues), thread CPU time, best of ``--repeat`` (fresh parts each time):

* ``ingest``: ``Ingest._process`` of every frame (bounds, dedupe, detector, metrics,
  tallies, and the live page's tape fed as ``liqmon run`` wires it) with no store call;
* ``store``: ``MemoryStore.add`` of the admitted events in ingest's slices (the store as
  the daemon opens it, behind ingest: no dedupe of its own);
* ``parse``: the dialect's ``parse`` of the same frames, for scale.

The e2e figure (liquidations per daemon CPU-second) is about 1 / (parse + ingest + store +
the websocket and loop overhead); this one leaves out the I/O so that before/after
comparisons of ingest are not lost in the noise of a shared machine.

Instructions instead of CPU time (the same on a loaded machine): ``--callgrind`` runs each
part once, ingest inside ``functools.reduce``, the store inside ``sorted`` and parse inside
``min`` (C functions callgrind can start and stop counting at), so that

    valgrind --tool=callgrind --callgrind-out-file=/tmp/ingest.cg --collect-atstart=no \
        --toggle-collect=functools_reduce --toggle-collect=builtin_sorted \
        --toggle-collect=builtin_min \
        .venv/bin/python benchmarks/ingest.py --frames 2000 --callgrind
    callgrind_annotate --inclusive=yes /tmp/ingest.cg \
        | grep -E 'functools_reduce|builtin_sorted|builtin_min'

gives each part's instructions (divide by the liquidations it prints). Run it with
``PYTHONHASHSEED=0`` for counts that repeat exactly.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from e2e import LiquidationFrames
from prometheus_client import CollectorRegistry

from monitor.clock import SystemClock
from monitor.config import Config
from monitor.detector.engine import Detector
from monitor.events import Liquidation, MarkPrice
from monitor.ingest import SLICE_EVENTS, Ingest
from monitor.metrics import Metrics
from monitor.store.memory import MemoryStore
from monitor.venues import VENUES, make_dialect
from monitor.web.live import LiveView

Event = Liquidation | MarkPrice


def bybit_session() -> Callable[[str, float], list[object]]:
    from parse import book_from_sim, sim_context

    from monitor.simulator.venues import make_venue_sim

    dialect = make_dialect("bybit")
    book = book_from_sim(dialect, make_venue_sim(sim_context("bybit", 0, 1000)))
    return dialect.session(book).parse  # type: ignore[return-value]


def parsed_frames(count: int, rows: int) -> tuple[list[str], list[list[Event]]]:
    frames = LiquidationFrames(rows)
    texts = [frames.next() for _ in range(count)]
    parse = bybit_session()
    now = time.time()
    events = [[e for e in parse(text, now) if isinstance(e, (Liquidation, MarkPrice))]
              for text in texts]
    return texts, events


def thread_cpu(fn: Callable[[], None]) -> float:
    gc.collect()
    started = time.thread_time()
    fn()
    return time.thread_time() - started


def under_callgrind(name: str, fn: Callable[[], None]) -> float:
    """Run ``fn`` once inside the C function that ``--toggle-collect`` names for its part."""
    if name == "ingest":
        functools.reduce(lambda _acc, _item: fn(), [0], None)
    elif name == "store":
        sorted([0], key=lambda _item: fn())
    else:
        min([0], key=lambda _item: fn())
    return 0.0


def one_round(config: Config, texts: list[str], frames: list[list[Event]],
              parse: Callable[[str, float], list[object]],
              measure: Callable[[str, Callable[[], None]], float]) -> dict[str, float]:
    """What ``measure`` (name, part) says of each part over every frame, with fresh parts:
    thread CPU seconds by default."""
    # As ``liqmon run`` opens it (``open_store(behind_ingest=True)``): ingest's dedupe only.
    store = MemoryStore(own_dedupe=False)
    metrics = Metrics(CollectorRegistry(), sorted(VENUES), config.metrics.coins)
    detector = Detector(config.detector)
    live = LiveView(store, metrics, detector, SystemClock(), dict)
    feed: dict[str, Any]
    if hasattr(live, "on_liquidations"):
        feed = {"on_liquidations": live.on_liquidations}  # a frame at a time
    else:
        # Trees before the frame callback: one call per row through the app's fan-out.
        callbacks = [live.on_liquidation]

        def fan_out(event: Liquidation) -> None:
            for callback in callbacks:
                callback(event)

        feed = {"on_liquidation": fan_out}
    ingest = Ingest(store, detector, metrics, SystemClock(), capacity=10**9, **feed)
    slices: list[list[Liquidation]] = []

    def run_ingest() -> None:
        batch: list[Liquidation] = []
        for events in frames:
            ingest._process(events, batch)
            if len(batch) >= SLICE_EVENTS:
                slices.append(batch)
                batch = []
        slices.append(batch)

    def run_store() -> None:
        loop = asyncio.new_event_loop()
        try:
            for batch in slices:
                loop.run_until_complete(store.add(batch))
        finally:
            loop.close()

    def run_parse() -> None:
        now = time.time()
        for text in texts:
            parse(text, now)

    spent: dict[str, float] = {}
    gc.freeze()
    for name, fn in (("ingest", run_ingest), ("store", run_store), ("parse", run_parse)):
        spent[name] = measure(name, fn)
    gc.unfreeze()
    liquidations = sum(len(f) for f in frames)
    if ingest.counted_total != liquidations:
        raise SystemExit(f"counted {ingest.counted_total} of {liquidations}")
    return spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--callgrind", action="store_true",
                        help="run each part once, for callgrind to count (see the docstring)")
    args = parser.parse_args()
    texts, frames = parsed_frames(args.frames, args.rows)
    liquidations = sum(len(f) for f in frames)
    if liquidations != args.frames * args.rows:
        raise SystemExit(f"the dialect gave {liquidations} events, not {args.frames * args.rows}")
    config = Config()
    parse = bybit_session()
    if args.callgrind:
        one_round(config, texts, frames, parse, under_callgrind)
        print(f"{liquidations:,} liquidations")
        return 0
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for name, spent in one_round(config, texts, frames, parse,
                                     lambda _name, fn: thread_cpu(fn)).items():
            best[name] = min(best.get(name, spent), spent)
    print(f"ingest of {args.frames:,} Bybit frames of {args.rows} rows ({liquidations:,} "
          f"liquidations), thread CPU best of {args.repeat}:")
    for name in ("ingest", "store", "parse"):
        print(f"  {name:7s} {1e6 * best[name] / liquidations:6.2f} µs per liquidation")
    total = sum(best.values())
    print(f"  sum     {1e6 * total / liquidations:6.2f} µs = {liquidations / total:,.0f} "
          f"liquidations per CPU-second before the websocket and the loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
