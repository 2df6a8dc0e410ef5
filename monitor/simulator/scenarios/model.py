"""Scenarios: what happens in the simulated market, in market time, with its ground truth.

Pure: no I/O, no clock. The simulator plays a scenario at a speed; backtests read the same
events directly. ``build_scenario("feb-2026")`` is the night of 1 February 2026 (see
``feb2026.py``); ``build_scenario("calm")`` is a quiet market.

Events are time-ordered. ``Scenario.events`` is either a sequence (``feb-2026``: tens of
thousands of events, built at once) or a zero-argument callable returning a fresh iterator
(``calm``: generated lazily, so a simulated week costs no memory). Always read them with
``Scenario.iter_events()``, which handles both.

A ``mark`` event is a coin's market price at a time, for every venue (``venue`` and
``instrument`` are empty); a ``liquidation`` names its venue and instrument and carries the
exact figures its venue's dialect must give back (sized on whole lots, see ``catalogue.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

from monitor.events import PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, Listing, listings, size_liquidation
from monitor.simulator.prices import PricePath


@dataclass(frozen=True, slots=True)
class ScenarioEvent:
    at_seconds: float  # market time from scenario start
    kind: str  # "liquidation" | "mark"
    venue: str  # "" for a mark (it applies to every venue)
    coin: str
    instrument: str  # the venue's symbol; "" for a mark
    position_side: PositionSide | None
    price: float  # USD per coin
    qty_base: float
    notional_usd: float


class _ScenarioEventDraft:
    """ScenarioEvent's slot layout without its frozen ``__setattr__``: the positional
    constructor of the generators (``new_event``), about half the cost of the frozen
    dataclass's ``__init__``, which sets each field through ``object.__setattr__``. The
    object it returns is a ScenarioEvent (``__class__`` assignment needs the same slots)."""

    __slots__ = ScenarioEvent.__slots__

    def __init__(self, at_seconds: float, kind: str, venue: str, coin: str, instrument: str,
                 position_side: PositionSide | None, price: float, qty_base: float,
                 notional_usd: float) -> None:
        self.at_seconds = at_seconds
        self.kind = kind
        self.venue = venue
        self.coin = coin
        self.instrument = instrument
        self.position_side = position_side
        self.price = price
        self.qty_base = qty_base
        self.notional_usd = notional_usd
        self.__class__ = ScenarioEvent  # type: ignore[assignment]


if ScenarioEvent.__slots__ != tuple(f.name for f in dataclasses.fields(ScenarioEvent)):
    raise RuntimeError("_ScenarioEventDraft must have ScenarioEvent's fields, in order")

new_event = cast(Callable[
    [float, str, str, str, str, PositionSide | None, float, float, float], ScenarioEvent],
    _ScenarioEventDraft)

EventSource = Callable[[], Iterator[ScenarioEvent]]


@dataclass(frozen=True)
class Scenario:
    name: str
    duration_seconds: float
    events: Sequence[ScenarioEvent] | EventSource
    # onset_seconds, peak_seconds, end_seconds (None for calm), per-venue and per-side totals
    # (USD and count), total_usd, and what of feb-2026-crash.md the scenario follows.
    ground_truth: dict[str, Any]

    def iter_events(self) -> Iterator[ScenarioEvent]:
        """A fresh, time-ordered iterator over every event."""
        if callable(self.events):
            return self.events()
        return iter(self.events)


def default_venues() -> tuple[str, ...]:
    from monitor.simulator.catalogue import CATALOGUE

    return tuple(CATALOGUE)


# --- shared helpers --------------------------------------------------------------------------


def coins_of(venues: Iterable[str]) -> list[str]:
    return sorted({item.coin for venue in venues for item in listings(venue)})


@functools.cache
def _options(venue: str, coin: str) -> tuple[tuple[Listing, ...], tuple[float, ...]]:
    options = tuple(item for item in listings(venue) if item.coin == coin) or listings(venue)
    # Perpetuals carry most of the volume; dated futures and odd quotes see some.
    weights = tuple(4.0 if item.contract_type == "perpetual" else 1.0 for item in options)
    return options, tuple(itertools.accumulate(weights))


def pick_listing(rng: random.Random, venue: str, coin: str) -> Listing:
    options, cumulative = _options(venue, coin)
    return rng.choices(options, cum_weights=cumulative)[0]


def liquidation_event(
    at: float, venue: str, item: Listing, side: PositionSide, mark: float, target_usd: float,
    slip: float,
) -> ScenarioEvent:  # fmt: skip
    """A liquidation near the mark: a long is closed a little below it, a short above."""
    price = mark * (1.0 - slip if side is PositionSide.LONG else 1.0 + slip)
    sized = size_liquidation(item, price, target_usd)
    return new_event(
        at, "liquidation", venue, item.coin, item.symbol, side, sized.price, sized.qty_base,
        sized.notional_usd,
    )  # fmt: skip


def mark_events(path: PricePath, coins: Sequence[str], step: float, duration: float,
                start: float = 0.0) -> Iterator[ScenarioEvent]:  # fmt: skip
    steps = math.floor((duration - start) / step)
    for i in range(steps + 1):
        t = start + i * step
        for coin, price in zip(coins, path.prices(coins, t), strict=True):
            yield new_event(t, "mark", "", coin, "", None, price, 0.0, 0.0)


def totals(events: Iterable[ScenarioEvent], venues: Sequence[str]) -> dict[str, Any]:
    """Per venue and side: count and USD, plus overall figures, of the liquidation events."""
    table: dict[str, dict[str, dict[str, float]]] = {
        venue: {side.value: {"count": 0, "usd": 0.0} for side in PositionSide} for venue in venues
    }
    count = 0
    total = 0.0
    long_usd = 0.0
    long_count = 0
    largest: ScenarioEvent | None = None
    for event in events:
        if event.kind != "liquidation" or event.position_side is None:
            continue
        sides = table.get(event.venue)
        if sides is None:
            sides = table[event.venue] = {
                side.value: {"count": 0, "usd": 0.0} for side in PositionSide}
        cell = sides[event.position_side.value]
        cell["count"] += 1
        cell["usd"] += event.notional_usd
        count += 1
        total += event.notional_usd
        if event.position_side is PositionSide.LONG:
            long_usd += event.notional_usd
            long_count += 1
        if largest is None or event.notional_usd > largest.notional_usd:
            largest = event
    return {
        "venues": {
            venue: {
                **sides,
                "total_usd": sides["long"]["usd"] + sides["short"]["usd"],
                "total_count": int(sides["long"]["count"] + sides["short"]["count"]),
            }
            for venue, sides in table.items()
        },
        "total_usd": total,
        "total_count": count,
        "long_share_usd": long_usd / total if total else 0.0,
        "long_share_count": long_count / count if count else 0.0,
        "largest": describe(largest) if largest is not None else None,
    }


def describe(event: ScenarioEvent) -> dict[str, Any]:
    return {
        "at_seconds": event.at_seconds,
        "venue": event.venue,
        "instrument": event.instrument,
        "coin": event.coin,
        "position_side": event.position_side.value if event.position_side else None,
        "price": event.price,
        "notional_usd": event.notional_usd,
    }


# --- scripted (tests) ------------------------------------------------------------------------


def scripted_scenario(
    venues: Sequence[str] | None = None,
    *,
    duration_seconds: float = 600.0,
    every_seconds: float = 2.0,
    usd: float = 10_000.0,
) -> Scenario:
    """A small deterministic scenario for tests: every ``every_seconds``, one liquidation on
    each venue, cycling through its listings, two longs for one short; a mark per coin
    every second. Not in ``SCENARIOS``: it is a tool, not a market."""
    chosen = tuple(venues) if venues is not None else default_venues()
    coins = coins_of(chosen)
    path = PricePath({c: COIN_PRICES_USD[c] for c in coins}, random.Random("scripted"))
    liqs = []
    for i in range(int(duration_seconds / every_seconds)):
        t = 0.5 + i * every_seconds
        for venue in chosen:
            items = listings(venue)
            item = items[i % len(items)]
            side = PositionSide.SHORT if i % 3 == 2 else PositionSide.LONG
            mark = path.price(item.coin, t)
            liqs.append(liquidation_event(t, venue, item, side, mark, usd * (1 + i % 7), 0.001))
    marks = mark_events(path, coins, 1.0, duration_seconds)
    events = tuple(heapq.merge(marks, liqs, key=lambda e: e.at_seconds))
    truth = {
        "scenario": "scripted",
        "duration_seconds": duration_seconds,
        "onset_seconds": None,
        "peak_seconds": None,
        "end_seconds": None,
        **totals(liqs, chosen),
        "follows": {"source": "none: a test script"},
    }
    return Scenario("scripted", duration_seconds, events, truth)
