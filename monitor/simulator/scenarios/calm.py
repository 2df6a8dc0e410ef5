"""The calm scenario: a quiet market for soak tests and baselines, generated lazily so a
simulated week costs no memory."""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Iterator, Sequence

from monitor.events import PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listings
from monitor.simulator.prices import PricePath
from monitor.simulator.scenarios.model import (
    Scenario,
    ScenarioEvent,
    coins_of,
    liquidation_event,
    mark_events,
    pick_listing,
    totals,
)

CALM_DEFAULT_SECONDS = 3600.0
CALM_RATE_PER_MINUTE = 3.0  # per venue
CALM_MIN_USD, CALM_MAX_USD = 1_000.0, 200_000.0
CALM_MARK_STEP = 10.0
CALM_COIN_WEIGHTS = {"BTC": 0.35, "ETH": 0.25, "SOL": 0.1, "XRP": 0.08, "DOGE": 0.08}


def build_calm(*, seed: int, venues: Sequence[str], duration_seconds: float | None) -> Scenario:
    duration = duration_seconds if duration_seconds is not None else CALM_DEFAULT_SECONDS
    coins = coins_of(venues)
    path = PricePath({c: COIN_PRICES_USD[c] for c in coins}, random.Random(f"calm-price-{seed}"))

    def liquidations() -> Iterator[ScenarioEvent]:
        rng = random.Random(f"calm-liq-{seed}")
        rate = CALM_RATE_PER_MINUTE * len(venues) / 60.0
        mixes = {}
        for venue in venues:
            venue_coins = sorted({item.coin for item in listings(venue)})
            weights = [CALM_COIN_WEIGHTS.get(c, 0.02) for c in venue_coins]
            mixes[venue] = (venue_coins, list(itertools.accumulate(weights)))
        t = 0.0
        while venues:
            t += rng.expovariate(rate)
            if t >= duration:
                return
            venue = rng.choice(venues)
            venue_coins, cumulative = mixes[venue]
            coin = rng.choices(venue_coins, cum_weights=cumulative)[0]
            item = pick_listing(rng, venue, coin)
            side = PositionSide.LONG if rng.random() < 0.5 else PositionSide.SHORT
            target = math.exp(rng.uniform(math.log(CALM_MIN_USD), math.log(CALM_MAX_USD)))
            mark = path.price(item.coin, t)
            yield liquidation_event(t, venue, item, side, mark, target, rng.uniform(0, 0.002))

    def events() -> Iterator[ScenarioEvent]:
        marks = mark_events(path, coins, CALM_MARK_STEP, duration)
        return heapq.merge(marks, liquidations(), key=lambda e: e.at_seconds)

    truth = {
        "scenario": "calm",
        "seed": seed,
        "duration_seconds": duration,
        "onset_seconds": None,
        "peak_seconds": None,
        "end_seconds": None,
        **totals(liquidations(), venues),
        "follows": {
            "source": "none: a quiet market for soak tests and baselines",
            "rate_per_minute_per_venue": CALM_RATE_PER_MINUTE,
            "size_usd": [CALM_MIN_USD, CALM_MAX_USD],
        },
    }
    return Scenario("calm", duration, events, truth)
