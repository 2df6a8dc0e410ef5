"""Parse time, liqmon ÷ cryptofeed, on the same recorded liquidation frames in one process.

cryptofeed is never a project dependency: it lives in the benchmark's own virtualenv,
together with orjson and msgspec (liqmon's parse-path dependencies), and liqmon is imported
from this checkout::

    python3.11 -m venv .venv-bench
    .venv-bench/bin/pip install cryptofeed==2.4.1 orjson msgspec
    .venv-bench/bin/python benchmarks/cryptofeed_compare.py [--repeat 7] [--loops 300]

    python3.13 -m venv .venv-bench313
    .venv-bench313/bin/pip install cryptofeed==3.0.1 orjson msgspec
    .venv-bench313/bin/python benchmarks/cryptofeed_compare.py

``--liqmon-only`` times liqmon alone (any venv with liqmon's dependencies), for instruction
counts that do not move with the machine's load::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python benchmarks/cryptofeed_compare.py --liqmon-only --loops 2000 \\
        --venue binance-usdm

minus the same with ``--loops 0``, divided by 2,000 × the frames it names. ``--side liqmon``
and ``--side cryptofeed`` (in the bench venv) run one side alone on the frames the
comparison times (those both read): the ratio of their instruction counts is the
comparison's figure that does not move with the machine's load::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv-bench/bin/python benchmarks/cryptofeed_compare.py --side cryptofeed \\
        --loops 2000 --venue okx

Which cryptofeed parses what (read from the installed sources):

* 2.4.1 is the newest release for Python 3.11 (2.5.0 needs 3.12, 3.0.x need 3.13).
  Binance USD-M ``forceOrder``: yes, combined-stream frames (``{"stream":..,"data":..}``).
  Bybit: only the v5 ``liquidation.<symbol>`` topic (``data.size``, ``data.updatedTime`` and
  a top-level ``ts``), not ``allLiquidation``, and not the 2021 v2 shape (``qty``/``time``).
  OKX: no websocket handler for ``liquidation-orders``: it polls the REST endpoint.
* 3.0.1 (Python 3.13): Binance as above; Bybit ``allLiquidation`` (and no legacy topic);
  OKX still the REST poller only.

For OKX the cryptofeed side is the body of its REST poller (``OKX._liquidations``) for one
response, run on the websocket frame: the REST answer and the websocket push carry the same
``data[0].details`` rows, and this loop body is what cryptofeed runs on OKX liquidation data.
It is copied here (its own ``json``, ``Decimal``, ``Liquidation``, symbol and timestamp
normalisation and callback) because the poller itself loops on HTTP and sleeps.

Frames: shared/realdata (read at run time, never copied). Only frames that BOTH libraries
turn into at least one liquidation are timed; the table says how many of each file's frames
that is. Each side parses the same frame list once untimed (liqmon's session then holds
its symbol caches and has seen OKX's first push, as a running daemon's has), then
``--loops`` times; the clock is the thread's CPU time; best of ``--repeat``, the two sides'
runs interleaved. cryptofeed's handlers are coroutines: they are awaited in one coroutine,
timed inside it, with an async no-op callback (cryptofeed requires an async one).
liqmon's side is ``dialect.session(book).parse(text, received_at)``; its instrument book is
made up from the frames' symbols (contract size 1: the sizes change values, not the work).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import logging
import platform
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monitor.errors import FrameError, UnknownInstrument
from monitor.events import Liquidation as LiqmonLiquidation
from monitor.venues import make_dialect
from monitor.venues.dialect import VenueSettings
from monitor.venues.instruments import ContractKind, InstrumentBook, InstrumentSpec

try:
    from cryptofeed.defines import BUY, LIQUIDATIONS, PERPETUAL, SELL
    from cryptofeed.exchanges import OKX, BinanceFutures, Bybit
    from cryptofeed.symbols import Symbols
    from cryptofeed.types import Liquidation as CfLiquidation
except ImportError:
    if "--liqmon-only" not in sys.argv:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit("cryptofeed is not installed in this interpreter: see the commands above")
    OKX = BinanceFutures = Bybit = None

# venue → (liqmon venue id, files, cryptofeed feed class, websocket address)
CASES: dict[str, tuple[str, tuple[str, ...], type[Any], str]] = {
    "Binance USD-M forceOrder": (
        "binance-usdm",
        ("binance_usdm_forceOrder.tardis.jsonl", "binance_usdm_forceOrder.unattributed.jsonl"),
        BinanceFutures, "wss://fstream.binance.com/stream"),
    "Bybit liquidation": (
        "bybit",
        ("bybit_v5_allLiquidation.tardis.jsonl", "bybit_v5_allLiquidation.unattributed.jsonl",
         "bybit_liquidation_legacy.tardis.jsonl"),
        Bybit, "wss://stream.bybit.com/v5/public/linear"),
    "OKX liquidation-orders": (
        "okx",
        ("okx_liquidation-orders.tardis.jsonl", "okx_liquidation-orders.unattributed.jsonl"),
        OKX, "wss://ws.okx.com:8443/ws/v5/public"),
}
QUOTES = ("USDT", "USDC", "USD", "PERP")
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"


def frames_of(files: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for name in files:
        with open(REALDATA / name, encoding="utf-8") as f:
            out += [(name, line.rstrip("\n")) for line in f if line.strip()]
    return out


# -- liqmon -----------------------------------------------------------------------------


def guess_spec(venue: str, instrument: str) -> InstrumentSpec:
    if venue == "okx":
        parts = instrument.split("-")
        inverse = len(parts) > 1 and parts[1] == "USD"
        category = "SWAP" if instrument.endswith("-SWAP") else "FUTURES"
        return InstrumentSpec(venue, instrument, parts[0],
                              ContractKind.INVERSE if inverse else ContractKind.LINEAR,
                              10.0 if inverse else 1.0, parts[1] if len(parts) > 1 else "USDT",
                              category=category)
    quote = next((q for q in QUOTES if instrument.endswith(q)), "USDT")
    inverse = venue == "bybit" and quote == "USD"
    kind = ContractKind.INVERSE if inverse else ContractKind.LINEAR
    return InstrumentSpec(venue, instrument, instrument.removesuffix(quote) or instrument, kind,
                          1.0, quote, category=kind.value)


class LiqmonSide:
    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.dialect = make_dialect(venue, VenueSettings())
        self.specs: dict[str, InstrumentSpec] = {}

    def session(self) -> Any:
        return self.dialect.session(InstrumentBook(self.venue, self.specs.values()))

    def accepts(self, text: str) -> bool:
        for _ in range(5):
            try:
                items = self.session().parse(text, 1.0)
            except UnknownInstrument as exc:
                self.specs[exc.instrument] = guess_spec(self.venue, exc.instrument)
                continue
            except FrameError:
                return False
            return any(isinstance(i, LiqmonLiquidation) for i in items)
        return False

    def time(self, texts: list[str], loops: int) -> float:
        session = self.session()
        parse = session.parse
        for text in texts:  # untimed: a daemon's session is warm (caches, OKX's first push)
            parse(text, 1.0)
        started = time.thread_time()
        for _ in range(loops):
            for text in texts:
                parse(text, 1.0)
        return time.thread_time() - started


# -- cryptofeed -------------------------------------------------------------------------


def std_symbol(venue: str, instrument: str) -> str:
    spec = guess_spec(venue, instrument)
    return f"{spec.coin}-{spec.quote}-PERP"


def okx_liquidations(feed: Any) -> Callable[[str, Any, float], Any]:
    """The body of cryptofeed's ``OKX._liquidations`` for one response (see the docstring)."""
    json = sys.modules[type(feed).__module__].json

    async def handle(msg: str, conn: Any, timestamp: float) -> None:
        data = json.loads(msg, parse_float=Decimal)
        pair = data["data"][0]["instId"]
        for entry in data["data"][0]["details"]:
            liq = CfLiquidation(
                feed.id, feed.exchange_symbol_to_std_symbol(pair),
                BUY if entry["side"] == "buy" else SELL, Decimal(entry["sz"]),
                Decimal(entry["bkPx"]), None, "filled",
                feed.timestamp_normalize(int(entry["ts"])), raw=data)
            await feed.callback(LIQUIDATIONS, liq, timestamp)
    return handle


class CryptofeedSide:
    def __init__(self, venue: str, cls: type[Any], address: str, instruments: set[str]) -> None:
        mapping = {std_symbol(venue, i): i for i in instruments}
        info = {"instrument_type": dict.fromkeys(mapping, PERPETUAL),
                "tick_size": dict.fromkeys(mapping, 0.01)}
        Symbols.set(cls.id, mapping, info)
        self.count = 0

        async def on_liquidation(liq: Any, receipt_timestamp: float) -> None:
            self.count += 1

        self.feed = cls(symbols=sorted(mapping)[:1], channels=[LIQUIDATIONS],
                        callbacks={LIQUIDATIONS: on_liquidation})
        self.conn = SimpleNamespace(address=address, uuid="bench")
        self.handler = okx_liquidations(self.feed) if cls is OKX else self.feed.message_handler

    def accepts(self, text: str) -> bool:
        before = self.count
        try:
            asyncio.run(self.handler(text, self.conn, 1.0))
        except Exception:  # a frame cryptofeed cannot read is left out
            return False
        return self.count > before

    def time(self, texts: list[str], loops: int) -> float:
        async def run() -> float:
            handler, conn = self.handler, self.conn
            for text in texts:  # untimed, as liqmon's side is
                await handler(text, conn, 1.0)
            started = time.thread_time()
            for _ in range(loops):
                for text in texts:
                    await handler(text, conn, 1.0)
            return time.thread_time() - started
        return asyncio.run(run())


def instruments_of(venue: str, texts: list[str]) -> set[str]:
    side = LiqmonSide(venue)
    for text in texts:
        side.accepts(text)
    return set(side.specs) | {s for s in _symbols_in(texts)}


def _symbols_in(texts: list[str]) -> set[str]:
    import orjson

    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("s", "symbol", "instId") and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    for text in texts:
        walk(orjson.loads(text))
    return found


def liqmon_only(loops: int, venues: list[str] | None) -> int:
    """Every frame of the files liqmon reads a liquidation from (for Bybit only the
    ``liquidation.<symbol>`` frames with ``size``, the shape cryptofeed 2.4.1 reads), parsed
    once to warm the session (symbol caches, OKX's first push), then ``loops`` times."""
    for label, (venue, files, _cls, _address) in CASES.items():
        if venues and venue not in venues:
            continue
        texts = [text for _name, text in frames_of(files)]
        if venue == "bybit":
            texts = [text for text in texts if '"size"' in text]
        side = LiqmonSide(venue)
        used = [text for text in texts if side.accepts(text)]
        session = side.session()
        for text in used:
            session.parse(text, 1.0)
        took = side.time(used, loops) if loops else 0.0
        per = took / (len(used) * loops) * 1e6 if loops else 0.0
        print(f"  {label:28} {len(used):3} frames {per:8.2f} us/frame")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--loops", type=int, default=300)
    parser.add_argument("--liqmon-only", action="store_true",
                        help="time liqmon alone (no cryptofeed needed) on the frames of the "
                        "shape cryptofeed 2.4.1 reads, once: for instruction counts under "
                        "valgrind, minus a run with --loops 0")
    parser.add_argument("--side", choices=("liqmon", "cryptofeed"),
                        help="run this side alone, once, on the frames both read: for "
                        "instruction counts of both sides on the same frames, under valgrind, "
                        "minus a run with --loops 0")
    parser.add_argument("--venue", action="append",
                        help="with --liqmon-only or --side: only this liqmon venue id "
                        "(repeatable)")
    args = parser.parse_args()
    if args.liqmon_only:
        return liqmon_only(args.loops, args.venue)
    # cryptofeed logs every frame it has no handler for; the table says how many those were.
    logging.disable(logging.WARNING)
    version = importlib.metadata.version("cryptofeed")
    print(f"liqmon vs cryptofeed {version} on Python {platform.python_version()}; "
          f"thread CPU, best of {args.repeat}, "
          f"{args.loops} loops over the frames")
    print(f"  {'frames':28} {'used':>9} {'liqmon us/frame':>16} {'cryptofeed us/frame':>20} "
          f"{'ratio':>6}")
    for label, (venue, files, cls, address) in CASES.items():
        if args.venue and venue not in args.venue:
            continue
        frames = frames_of(files)
        texts = [text for _name, text in frames]
        liqmon = LiqmonSide(venue)
        cf = CryptofeedSide(venue, cls, address, instruments_of(venue, texts))
        used = [text for text in texts if liqmon.accepts(text) and cf.accepts(text)]
        by_file = {name: 0 for name in files}
        for name, text in frames:
            if text in used:
                by_file[name] += 1
        detail = ", ".join(f"{n}: {c}" for n, c in by_file.items())
        if not used:
            print(f"  {label:28} {'0/' + str(len(texts)):>9}   cryptofeed reads none of them "
                  f"({detail})")
            continue
        if args.side:
            side: LiqmonSide | CryptofeedSide = liqmon if args.side == "liqmon" else cf
            took = side.time(used, args.loops)  # with --loops 0 the untimed pass alone
            per = took / (len(used) * args.loops) * 1e6 if args.loops else 0.0
            print(f"  {label:28} {len(used):3} frames, {args.side} alone {per:8.2f} us/frame")
            continue
        # Interleaved, so that both sides see the same load on a shared machine.
        ours = theirs = float("inf")
        for _ in range(args.repeat):
            ours = min(ours, liqmon.time(used, args.loops))
            theirs = min(theirs, cf.time(used, args.loops))
        n = len(used) * args.loops
        print(f"  {label:28} {f'{len(used)}/{len(texts)}':>9} {ours / n * 1e6:16.2f} "
              f"{theirs / n * 1e6:20.2f} {ours / theirs:6.2f}")
        print(f"      timed frames per file: {detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
