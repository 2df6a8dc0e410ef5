"""Parse benchmark: frames per second per venue, text → normalised events.

    .venv/bin/python benchmarks/parse.py [--liquidations 20000] [--marks 400] [--repeat 7]
        [--venue V ...] [--no-realdata] [--cpu N] [--wall]
    .venv/bin/python benchmarks/parse.py --events [--repeat 7]

``--events`` times only the parts of one event: ``event_id_from_fields``, the fast paths'
id from a per-symbol hash state (the same value), a readable key of the same fields (for
comparison), and building a ``Liquidation`` positionally and by keyword.

Corpus, built before anything is timed and the same on every run:

* ``sim liq``: ``--liquidations`` liquidations per venue (random listing, side, price and
  size from a fixed seed) encoded by the simulator's own venue encoders
  (``monitor/simulator/venues``), one liquidation per frame, rendered for the connection
  of the dialect's plans that subscribed to it, as ``tests/test_simulator_roundtrip.py``
  does.
* ``sim price``: the venue's price frames for ``--marks`` seconds of a moving market.
* ``real liq`` / ``real other``: when ``../shared/realdata`` exists, the recorded frames of
  the venue (liquidation channels, then price, ticker and other channels), read at run
  time and never copied. The instrument book is the simulator's; a recorded frame for an
  instrument it does not list cannot be valued and is left out (column ``left out``).

Binary frames (HTX's gzip) are inflated once while building the corpus: what is timed is
``dialect.session(book).parse(text, received_at)`` alone, on one core (one thread; pinned
with ``--cpu``), best of ``--repeat`` runs, each on fresh sessions primed with the
subscription acks. ``orjson/s`` is ``orjson.loads`` alone on the same frames, for scale.
The garbage collector stays on (the daemon runs with it); the prebuilt corpus is frozen
out of its sight (``gc.freeze``). The clock is the thread's CPU time, so that other
processes on a shared machine do not count as parse time (``--wall``: the wall clock).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from monitor.errors import FrameError
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.scenarios.model import liquidation_event
from monitor.simulator.venue_sim import (
    Frame,
    Liq,
    Publication,
    RestRequest as SimRequest,
    SimContext,
    SimNow,
    SimSession,
    VenueSim,
)
from monitor.simulator.venues import SIMULATORS, make_venue_sim
from monitor.venues import VENUES, make_dialect
from monitor.venues.dialect import Ack, Dialect, DialectSession, RestRequest
from monitor.venues.instruments import InstrumentBook

BASE_MS = 1_769_904_000_000
REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata"

# Recorded frames per dialect: (liquidation channels, other channels). The file names are
# those of shared/realdata/SOURCES.md; the venue tests read the same files.
REAL_FILES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "binance-usdm": (
        ("binance_usdm_forceOrder.tardis.jsonl", "binance_usdm_forceOrder.unattributed.jsonl"),
        ("binance_usdm_markPrice.tardis.jsonl", "binance_usdm_bookTicker.jsonl",
         "binance_usdm_ticker.tardis.jsonl")),
    "binance-coinm": (
        ("binance_coinm_forceOrder.tardis.jsonl",),
        ("binance_coinm_markPrice.tardis.jsonl", "binance_coinm_bookTicker.jsonl",
         "binance_coinm_ticker.tardis.jsonl")),
    "bybit": (
        ("bybit_v5_allLiquidation.tardis.jsonl", "bybit_v5_allLiquidation.unattributed.jsonl",
         "bybit_liquidation_legacy.tardis.jsonl"),
        ("bybit_v5_linear_tickers.jsonl", "bybit_v5_linear_tickers.unattributed.jsonl",
         "bybit_tickers_and_instrument_info.tardis.jsonl")),
    "okx": (
        ("okx_liquidation-orders.tardis.jsonl", "okx_liquidation-orders.unattributed.jsonl"),
        ("okx_mark-price.tardis.jsonl", "okx_tickers.jsonl", "okx_tickers.tardis.jsonl")),
    "bitmex": (
        ("bitmex_liquidation.tardis.jsonl", "bitmex_liquidation_session.unattributed.jsonl"),
        ("bitmex_instrument.tardis.jsonl", "bitmex_quote.jsonl")),
    "deribit": (
        ("deribit_trades_liquidation.tardis.jsonl",),
        ("deribit_ticker.jsonl", "deribit_ticker.tardis.jsonl")),
    "bitget": (("bitget_liquidation.tardis.jsonl",), ()),
    "kraken-futures": (("krakenfutures_trade_liquidation.tardis.jsonl",), ()),
    "htx": (("htx_liquidation_orders.tardis.jsonl", "htx_liquidation_orders.unattributed.jsonl"),
            ()),
}


@dataclass
class Corpus:
    """Frames of one venue, each tagged with the connection (plan) that receives it."""

    venue: str
    label: str
    dialect: Dialect
    book: InstrumentBook
    handshakes: list[list[str]]  # per connection: the frames that open and ack it
    frames: list[tuple[int, str]]  # (connection index, text)
    left_out: int = 0
    source_frames: int = 0

    def sessions(self) -> list[DialectSession]:
        """Fresh sessions, one per connection, primed with their handshake frames."""
        out = []
        for texts in self.handshakes:
            session = self.dialect.session(self.book)
            for text in texts:
                session.parse(text, BASE_MS / 1000)
            out.append(session)
        return out


# -- building the corpus -------------------------------------------------------------------


def sim_context(venue: str, seed: int, mark_interval_ms: int) -> SimContext:
    return SimContext(venue, lambda seq: True, mark_interval_ms, rng=random.Random(seed))


def book_from_sim(dialect: Dialect, sim: VenueSim) -> InstrumentBook:
    """The dialect's instrument book, read through its own REST requests from the sim."""
    book = InstrumentBook(dialect.venue)
    for first in dialect.instrument_requests(f"http://sim/{dialect.venue}"):
        request: RestRequest | None = first
        while request is not None:
            parts = urlsplit(request.url)
            query = dict(p.split("=", 1) for p in parts.query.split("&") if p)
            path = parts.path.removeprefix(f"/{dialect.venue}")
            reply = sim.rest(SimRequest(request.method, path, query, request.body or b""))
            if reply is None or reply.status != 200:
                raise RuntimeError(f"{dialect.venue}: simulator REST {path}: {reply}")
            specs, request = dialect.parse_instruments(request, reply.body)
            book.update(specs)
    return book


def text_of(dialect: Dialect, data: str | bytes) -> str:
    return data if isinstance(data, str) else dialect.decode_binary(data)


def connect(venue: str, seed: int,
            mark_interval_ms: int) -> tuple[Corpus, VenueSim, list[SimSession]]:
    """A simulator, the dialect's book from it, and one subscribed sim session per plan."""
    sim = make_venue_sim(sim_context(venue, seed, mark_interval_ms))
    dialect = make_dialect(venue)
    book = book_from_sim(dialect, sim)
    handshakes: list[list[str]] = []
    sim_sessions: list[SimSession] = []
    for plan in dialect.plans(f"ws://sim/{venue}", book):
        parts = urlsplit(plan.url)
        session = sim.open(parts.path.removeprefix(f"/{venue}"), parts.query, reject=False)
        if session is None:
            raise RuntimeError(f"{venue}: the simulator does not serve {plan.url}")
        outs = [*session.on_open(SimNow(BASE_MS, 0.0))]
        for n, frame in enumerate(plan.subscribe_frames):
            # One second apart: slower than any venue's subscribe rate limit (dYdX's is 2/s).
            outs += session.on_text(frame, SimNow(BASE_MS, float(n)))
        texts = [text_of(dialect, f.data) for f in outs if isinstance(f, Frame)]
        reader = dialect.session(book)
        acks = sum(isinstance(item, Ack) for text in texts for item in reader.parse(text, 0.0))
        if acks != plan.expected_acks:
            raise RuntimeError(f"{plan.name}: {acks} acks, expected {plan.expected_acks}")
        handshakes.append(texts)
        sim_sessions.append(session)
    return Corpus(venue, "", dialect, book, handshakes, []), sim, sim_sessions


def render_all(corpus: Corpus, sim_sessions: list[SimSession],
               publications: list[Publication]) -> None:
    for pub in publications:
        for index, session in enumerate(sim_sessions):
            data = session.render(pub)
            if data is not None:
                corpus.frames.append((index, text_of(corpus.dialect, data)))


def sim_liquidations(venue: str, count: int, seed: int) -> Corpus:
    corpus, sim, sim_sessions = connect(venue, seed, 10**12)  # no price frames in between
    corpus.label = "sim liq"
    sim.flush(SimNow(BASE_MS, 0.0))  # the opening prices: not part of this corpus
    rng = random.Random(seed)
    items = listings(venue)
    for seq in range(count):
        item = rng.choice(items)
        side = rng.choice((PositionSide.LONG, PositionSide.SHORT))
        mark = COIN_PRICES_USD[item.coin] * rng.uniform(0.8, 1.2)
        usd = min(rng.lognormvariate(8.5, 1.5), 5e7)
        event = liquidation_event(0.0, venue, item, side, mark, usd, 0.001)
        ts_ms = BASE_MS + seq * 5_000
        sim.on_liquidation(Liq(seq, event, ts_ms))
        render_all(corpus, sim_sessions, sim.flush(SimNow(ts_ms + 1_000, 0.0), final=True))
    corpus.source_frames = len(corpus.frames)
    return corpus


def sim_prices(venue: str, seconds: int, seed: int) -> Corpus:
    corpus, sim, sim_sessions = connect(venue, seed, 1_000)
    corpus.label = "sim price"
    rng = random.Random(seed)
    coins = sorted({item.coin for item in listings(venue)})
    prices = {coin: COIN_PRICES_USD[coin] for coin in coins}
    for sec in range(seconds):
        ts_ms = BASE_MS + sec * 1_000
        for coin in coins:
            prices[coin] *= 1.0 + rng.uniform(-0.002, 0.002)
            sim.on_mark(coin, prices[coin], ts_ms)
        render_all(corpus, sim_sessions, sim.flush(SimNow(ts_ms, float(sec))))
    corpus.source_frames = len(corpus.frames)
    return corpus


def real_frames(venue: str, names: Sequence[str], label: str, seed: int) -> Corpus | None:
    """Recorded frames of the venue that its dialect can read with the simulator's book."""
    texts = []
    for name in names:
        with open(REALDATA / name, encoding="utf-8") as f:
            texts += [line.rstrip("\n") for line in f if line.strip()]
    if not texts:
        return None
    corpus, _sim, _sessions = connect(venue, seed, 10**12)
    corpus.label = label
    corpus.handshakes = [[]]  # recordings hold data frames only: one plain session
    corpus.source_frames = len(texts)
    (session,) = corpus.sessions()
    for text in texts:
        try:
            session.parse(text, 1.0)
        except FrameError:  # mostly an instrument the simulator does not list
            corpus.left_out += 1
            continue
        corpus.frames.append((0, text))
    return corpus


# -- timing --------------------------------------------------------------------------------


@dataclass
class Result:
    corpus: Corpus
    parse_per_s: float
    orjson_per_s: float
    liquidations: int
    marks: int


MIN_FRAMES_PER_RUN = 20_000


def measure(corpus: Corpus, repeat: int, clock: Callable[[], float]) -> Result:
    """Best of ``repeat`` runs; a small corpus is parsed several times per run (each pass on
    fresh sessions, only the parsing timed) so that every run covers enough frames."""
    frames = corpus.frames
    texts = [text for _index, text in frames]
    received_at = BASE_MS / 1000
    liquidations = marks = 0
    sessions = corpus.sessions()  # once, untimed: what the frames produce
    for session_index, text in frames:
        for item in sessions[session_index].parse(text, received_at):
            liquidations += item.__class__ is Liquidation
            marks += item.__class__ is MarkPrice
    n = len(frames)
    passes = max(1, -(-MIN_FRAMES_PER_RUN // n)) if n else 0

    def parse_run() -> float:
        elapsed = 0.0
        for _ in range(passes):
            parsers = [s.parse for s in corpus.sessions()]
            calls = [(parsers[i], text) for i, text in frames]
            start = clock()
            for parse, text in calls:
                parse(text, received_at)
            elapsed += clock() - start
        return elapsed

    def orjson_run() -> float:
        loads = orjson.loads
        start = clock()
        for _ in range(passes):
            for text in texts:
                loads(text)
        return clock() - start

    if not n:
        return Result(corpus, 0.0, 0.0, 0, 0)
    gc.collect()
    gc.freeze()
    parse_s = orjson_s = math.inf
    try:
        for _ in range(repeat):  # interleaved: a busy spell on the machine hits both alike
            parse_s = min(parse_s, parse_run())
            orjson_s = min(orjson_s, orjson_run())
    finally:
        gc.unfreeze()
    return Result(corpus, n * passes / parse_s, n * passes / orjson_s, liquidations, marks)


def build(venues: Sequence[str], args: argparse.Namespace) -> list[Corpus]:
    corpora: list[Corpus] = []
    for venue in venues:
        corpora.append(sim_liquidations(venue, args.liquidations, args.seed))
        prices = sim_prices(venue, args.marks, args.seed)
        if prices.frames:
            corpora.append(prices)
        if args.realdata and REALDATA.is_dir() and venue in REAL_FILES:
            liq_files, other_files = REAL_FILES[venue]
            for label, names in (("real liq", liq_files), ("real other", other_files)):
                real = real_frames(venue, names, label, args.seed) if names else None
                if real is not None:
                    corpora.append(real)
    return corpora


def print_table(results: list[Result]) -> None:
    head = (f"{'venue':<15} {'corpus':<10} {'frames':>7} {'left out':>8} {'liq/frame':>9} "
            f"{'marks/frame':>11} {'parse/s':>10} {'µs/frame':>8} {'orjson/s':>10} "
            f"{'parse/orjson':>12}")
    print(head)
    print("-" * len(head))
    for r in results:
        n = len(r.corpus.frames)
        if n == 0:
            print(f"{r.corpus.venue:<15} {r.corpus.label:<10} {0:>7} {r.corpus.left_out:>8}")
            continue
        print(f"{r.corpus.venue:<15} {r.corpus.label:<10} {n:>7} {r.corpus.left_out:>8} "
              f"{r.liquidations / n:>9.2f} {r.marks / n:>11.2f} {r.parse_per_s:>10,.0f} "
              f"{1e6 / r.parse_per_s:>8.2f} {r.orjson_per_s:>10,.0f} "
              f"{r.parse_per_s / r.orjson_per_s:>12.2f}")


def event_costs(repeat: int, calls: int = 200_000) -> None:
    """``--events``: what building one event costs, its id and its object, per call."""
    from hashlib import blake2b

    import monitor.events as events

    fields = ("PIPPINUSDT", 1740480207110, "Sell", "2846", "0.02456")
    args = ("bybit", "PIPPINUSDT", "PIPPIN", PositionSide.LONG, 0.02456, 2846.0, 69.9,
            1740480207110, 1.0, events.Completeness.FULL, "bybit:0123456789abcdef01234567")
    kwargs = dict(zip(events.LIQUIDATION_KEYS, args, strict=True))
    state = blake2b(b"bybit\x1fPIPPINUSDT\x1f", digest_size=12)
    symbol, ts, side, size, price = fields

    def hashed_from_state() -> str:
        digest = state.copy()
        digest.update(f"{ts}\x1f{side}\x1f{size}\x1f{price}".encode())
        return "bybit:" + digest.hexdigest()

    cases: list[tuple[str, Callable[[], object]]] = [
        ("event_id_from_fields(venue, 5 fields)",
         lambda: events.event_id_from_fields("bybit", *fields)),
        ("id from a per-symbol blake2b state (same value)", hashed_from_state),
        ("readable key of the same fields (other value)",
         lambda: f"bybit:{symbol}:{ts}:{side}:{size}:{price}"),
        ("Liquidation(*11 positional)", lambda: events.Liquidation(*args)),
        ("new_liquidation(*11 positional)", lambda: events.new_liquidation(*args)),
        ("Liquidation(**11 keywords)", lambda: events.Liquidation(**kwargs)),
    ]
    assert hashed_from_state() == events.event_id_from_fields("bybit", *fields)
    print(f"python {platform.python_version()}, thread CPU, best of {repeat}, "
          f"{calls:,} calls")
    for label, call in cases:
        best = math.inf
        for _ in range(repeat):
            started = time.thread_time()
            for _ in range(calls):
                call()
            best = min(best, time.thread_time() - started)
        print(f"  {label:50} {best / calls * 1e9:7.0f} ns")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--liquidations", type=int, default=20_000,
                        help="liquidation frames per venue (default 20000)")
    parser.add_argument("--marks", type=int, default=400,
                        help="seconds of price frames per venue (default 400)")
    parser.add_argument("--repeat", type=int, default=7, help="best of N runs (default 7)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--venue", action="append", choices=sorted(SIMULATORS),
                        help="only this venue (repeatable); default: every simulated venue")
    parser.add_argument("--no-realdata", dest="realdata", action="store_false",
                        help="leave out the recorded frames of ../shared/realdata")
    parser.add_argument("--cpu", type=int, help="pin the process to this CPU")
    parser.add_argument("--wall", action="store_true",
                        help="time with the wall clock instead of the thread's CPU time")
    parser.add_argument("--events", action="store_true",
                        help="only the cost of an event id and a Liquidation, per call")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    if args.events:
        event_costs(args.repeat)
        return 0
    venues = args.venue or [v for v in VENUES if v in SIMULATORS]
    corpora = build(venues, args)
    clock = time.perf_counter if args.wall else time.thread_time
    print(f"python {platform.python_version()} ({platform.python_implementation()}), "
          f"orjson {orjson.__version__}, best of {args.repeat}, "
          f"{'wall clock' if args.wall else 'CPU time'}, "
          f"realdata {'yes' if args.realdata and REALDATA.is_dir() else 'no'}")
    results = [measure(corpus, args.repeat, clock) for corpus in corpora]
    print_table(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
