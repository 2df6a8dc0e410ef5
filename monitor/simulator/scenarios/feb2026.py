"""The ``feb-2026`` scenario: the night of 1 February 2026, from reference/feb-2026-crash.md.

Shape (at the default 3 hours): 15 quiet minutes, then the cascade starts slowly and
accelerates to its peak at 1 h 45, and decays over the last hour. Bitcoin ends 7% lower and
Ether 11% (the night's figures); the other coins fall between 6% and 18%, in step with the
cumulative liquidated volume, because forced selling is what moves the price.

Venue totals follow the "by platform" table: Hyperliquid $1.09B (with the record $222M single
ETH long, followed by a burst of ETH longs it set off), Bybit $574.8M (over 95% longs, mostly
altcoins), Binance $258M (split here between USD-M and COIN-M, with the $60M single
liquidation on BTCUSDT). The table leaves $643M to "other venues (OKX and others)": OKX gets
$150M here and the long tail (Bitget, Gate, HTX, BitMEX, Deribit, dYdX, Kraken Futures) the
remaining $493M, split by us since the report gives no per-venue figures for them. Long share
is 94% of USD overall.

The real night liquidated about 423,500 accounts; the scenario keeps the USD totals and
scales the number of events down to ``FEB_EVENTS`` (about 30,000), so it plays on a laptop.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import operator
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.events import PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listing, listings
from monitor.simulator.prices import PricePath
from monitor.simulator.scenarios.model import (
    Scenario,
    ScenarioEvent,
    coins_of,
    describe,
    liquidation_event,
    mark_events,
    pick_listing,
    totals,
)

NIGHT_TOTAL_USD = 2_566e6
NIGHT_ACCOUNTS = 423_500
NIGHT_LONG_SHARE = 0.94
FEB_EVENTS = 30_000
FEB_SECONDS = 3 * 3600.0
MARK_STEP = 5.0

# Crash depth per coin over the night (BTC and ETH are the reported figures).
DROPS = {
    "BTC": 0.07, "ETH": 0.11, "SOL": 0.14, "XRP": 0.12, "DOGE": 0.15, "BNB": 0.06,
    "HYPE": 0.12, "PEPE": 0.16, "LINK": 0.13, "AVAX": 0.13, "SUI": 0.15, "ADA": 0.13,
    "LTC": 0.10, "TRX": 0.04, "WIF": 0.18,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class VenueShare:
    """One venue's part of the night: USD, long share, share of the events, coin mix."""

    venue: str
    usd: float
    long_share: float
    count_share: float
    coins: dict[str, float] = field(default_factory=dict)


# One line per venue; the venues not named here share UNASSIGNED_USD below. Listings are
# in catalogue.py.
VENUE_SHARES: tuple[VenueShare, ...] = (
    VenueShare("hyperliquid", 1_090e6, 0.935, 0.40,
               {"ETH": 0.55, "BTC": 0.2, "SOL": 0.08, "HYPE": 0.07, "XRP": 0.04, "DOGE": 0.03,
                "PEPE": 0.03}),
    VenueShare("bybit", 574.8e6, 0.955, 0.26,
               {"SOL": 0.22, "DOGE": 0.18, "ETH": 0.17, "BTC": 0.15, "XRP": 0.1, "PEPE": 0.05,
                "SUI": 0.04, "WIF": 0.04, "LINK": 0.03, "AVAX": 0.02}),
    VenueShare("binance-usdm", 235e6, 0.935, 0.20,
               {"BTC": 0.35, "ETH": 0.3, "SOL": 0.1, "XRP": 0.07, "DOGE": 0.06, "BNB": 0.04,
                "PEPE": 0.03, "SUI": 0.03, "LINK": 0.02}),
    VenueShare("binance-coinm", 23e6, 0.935, 0.04,
               {"BTC": 0.55, "ETH": 0.3, "SOL": 0.08, "XRP": 0.04, "DOGE": 0.03}),
    VenueShare("okx", 150e6, 0.935, 0.10,
               {"BTC": 0.35, "ETH": 0.35, "SOL": 0.1, "DOGE": 0.07, "XRP": 0.07, "PEPE": 0.03,
                "HYPE": 0.03}),
    # The long tail carries the rest of the night's $2.566B (about a fifth of it); the
    # report names no per-venue figures for these, so the split is ours.
    VenueShare("bitget", 150e6, 0.94, 0.05,
               {"BTC": 0.3, "ETH": 0.3, "SOL": 0.15, "DOGE": 0.1, "XRP": 0.1, "PEPE": 0.05}),
    VenueShare("gate", 110e6, 0.94, 0.04,
               {"BTC": 0.3, "ETH": 0.3, "SOL": 0.15, "DOGE": 0.1, "XRP": 0.1, "PEPE": 0.05}),
    VenueShare("htx", 60e6, 0.94, 0.02,
               {"BTC": 0.4, "ETH": 0.35, "SOL": 0.1, "DOGE": 0.08, "XRP": 0.07}),
    VenueShare("bitmex", 50e6, 0.94, 0.015,
               {"BTC": 0.6, "ETH": 0.3, "SOL": 0.04, "XRP": 0.03, "DOGE": 0.03}),
    VenueShare("deribit", 50e6, 0.94, 0.015, {"BTC": 0.6, "ETH": 0.35, "SOL": 0.03, "XRP": 0.02}),
    VenueShare("dydx", 40e6, 0.94, 0.015,
               {"BTC": 0.35, "ETH": 0.3, "SOL": 0.12, "DOGE": 0.06, "XRP": 0.05, "SUI": 0.04,
                "AVAX": 0.03, "LINK": 0.03, "WIF": 0.02}),
    VenueShare("kraken-futures", 33e6, 0.94, 0.01,
               {"BTC": 0.45, "ETH": 0.35, "SOL": 0.1, "XRP": 0.05, "DOGE": 0.05}),
)  # fmt: skip
UNASSIGNED_USD = NIGHT_TOTAL_USD - sum(share.usd for share in VENUE_SHARES)

# Single liquidations reported that night (USD), placed on the timeline at these fractions.
WHALES = (
    ("hyperliquid", "ETH", 222e6, 5_400.0),  # the 2026 record; sets off an ETH burst
    ("binance-usdm", "BTCUSDT", 60e6, 6_420.0),  # "one account lost over $60 million"
)
BURST_SECONDS = 480.0  # the ETH longs the $222M liquidation set off on Hyperliquid
BURST_SHARE = 0.05  # of Hyperliquid's events

ONSET, PEAK, DECAY_TAU = 900.0, 6_300.0, 1_200.0  # seconds, at the default length
BASE_INTENSITY = 0.01  # of the peak: the quiet market around the cascade


def _intensity(t: float) -> float:
    if t < ONSET:
        return BASE_INTENSITY
    if t < PEAK:
        return BASE_INTENSITY + float(((t - ONSET) / (PEAK - ONSET)) ** 2.5)
    return BASE_INTENSITY + math.exp(-(t - PEAK) / DECAY_TAU)


class _Profile:
    """The cascade's intensity over the default timeline, as a CDF on a 1-second grid."""

    def __init__(self) -> None:
        cumulative = [0.0]
        for second in range(int(FEB_SECONDS)):
            cumulative.append(cumulative[-1] + _intensity(second + 0.5))
        self._cdf = [c / cumulative[-1] for c in cumulative]

    def sample(self, rng: random.Random) -> float:
        u = rng.random()
        i = max(bisect.bisect_left(self._cdf, u) - 1, 0)
        return min(i + rng.random(), FEB_SECONDS - 1e-3)

    def progress(self, t: float) -> float:
        if t <= 0:
            return 0.0
        if t >= FEB_SECONDS:
            return 1.0
        i = int(t)
        frac = t - i
        return self._cdf[i] * (1 - frac) + self._cdf[i + 1] * frac


def _raw_sizes(rng: random.Random, n: int) -> list[float]:
    # Heavy-tailed like real liquidations; capped so that no ordinary one rivals a whale.
    return [min(rng.lognormvariate(0.0, 1.5), 150.0) for _ in range(n)]


def _venue_events(
    share: VenueShare, rng: random.Random, profile: _Profile, path: PricePath, scale: float
) -> list[ScenarioEvent]:
    """One venue's liquidations on the default timeline, totals matched to its share."""
    n = max(round(FEB_EVENTS * share.count_share), 20)
    whales = [(coin, usd, at) for venue, coin, usd, at in WHALES if venue == share.venue]
    coins = [c for c in share.coins if any(item.coin == c for item in listings(share.venue))]
    # Cumulative once, not per draw: random.choices accumulates the weights the same way.
    cum_weights = list(itertools.accumulate(share.coins[c] for c in coins))
    plan: list[tuple[float, str, PositionSide]] = []
    burst = int(n * BURST_SHARE) if share.venue == "hyperliquid" and whales else 0
    for i in range(n):
        if i < burst:
            start = whales[0][2]
            plan.append((start + rng.random() * BURST_SECONDS, "ETH", PositionSide.LONG))
            continue
        side = PositionSide.LONG if rng.random() < share.long_share else PositionSide.SHORT
        plan.append((profile.sample(rng), rng.choices(coins, cum_weights=cum_weights)[0], side))
    raw = _raw_sizes(rng, n)
    # Scale each side so the venue's totals (whales included) match its share exactly
    # before lot rounding.
    whale_usd = sum(usd for _coin, usd, _at in whales)
    targets = {
        PositionSide.LONG: share.usd * share.long_share - whale_usd,
        PositionSide.SHORT: share.usd * (1 - share.long_share),
    }
    sums = {side: sum(r for r, p in zip(raw, plan, strict=True) if p[2] is side) or 1.0
            for side in PositionSide}  # fmt: skip
    events = []
    for r, (at, coin, side) in zip(raw, plan, strict=True):
        item = pick_listing(rng, share.venue, coin)
        target = max(r * targets[side] / sums[side], 100.0)
        mark = path.price(coin, at * scale)
        slip = rng.uniform(0.0, 0.004)
        events.append(liquidation_event(at * scale, share.venue, item, side, mark, target, slip))
    for coin_or_symbol, usd, at in whales:
        item = (
            listing(share.venue, coin_or_symbol)
            if share.venue.startswith("binance")
            else pick_listing(rng, share.venue, coin_or_symbol)
        )
        t = at * scale
        events.append(
            liquidation_event(
                t, share.venue, item, PositionSide.LONG, path.price(item.coin, t), usd, 0.001
            )
        )
        if share.venue.startswith("binance"):
            events = _clear_throttle_window(events, item.symbol, t)
    return events


def _clear_throttle_window(
    events: list[ScenarioEvent], symbol: str, at: float
) -> list[ScenarioEvent]:
    """Move other liquidations of ``symbol`` out of the whale's second, so Binance's
    latest-per-second throttle publishes the whale (as it did that night)."""
    out = []
    for event in events:
        if (
            event.instrument == symbol
            and event.at_seconds != at
            and abs(event.at_seconds - at) < 1.5
        ):
            event = dataclasses.replace(event, at_seconds=at + 2.0 + abs(event.at_seconds - at))
        out.append(event)
    return out


def build_feb_2026(*, seed: int, venues: Sequence[str], duration_seconds: float | None) -> Scenario:
    duration = duration_seconds if duration_seconds is not None else FEB_SECONDS
    scale = duration / FEB_SECONDS
    profile = _Profile()
    coins = coins_of(venues)
    path = PricePath(
        {c: COIN_PRICES_USD[c] for c in coins},
        random.Random(f"feb-2026-price-{seed}"),
        wiggle=0.003,
        drops=DROPS,
        progress=lambda t: profile.progress(t / scale),
        pin_seconds=duration,
    )
    liquidations: list[ScenarioEvent] = []
    for share in VENUE_SHARES:
        if share.venue in venues:
            rng = random.Random(f"feb-2026-{share.venue}-{seed}")
            liquidations += _venue_events(share, rng, profile, path, scale)
    at_seconds = operator.attrgetter("at_seconds")
    liquidations.sort(key=at_seconds)
    marks = list(mark_events(path, coins, MARK_STEP * max(scale, 0.01), duration))
    # Marks before liquidations at the same time: the sort is stable and marks come first.
    events = sorted(marks + liquidations, key=at_seconds)
    return Scenario("feb-2026", duration, tuple(events), _truth(seed, venues, duration, scale,
                                                               liquidations, path))  # fmt: skip


def _truth(
    seed: int, venues: Sequence[str], duration: float, scale: float,
    liquidations: list[ScenarioEvent], path: PricePath,
) -> dict[str, Any]:  # fmt: skip
    minutes = [0.0] * (math.ceil(duration / 60.0) or 1)
    for event in liquidations:
        minutes[min(int(event.at_seconds // 60), len(minutes) - 1)] += event.notional_usd
    samples = [i * duration / 600 for i in range(601)]
    prices = {}
    for coin in path.coins():
        values = [path.price(coin, t) for t in samples]
        prices[coin] = {
            "start": values[0], "end": values[-1], "min": min(values),
            "change": values[-1] / values[0] - 1.0,
        }  # fmt: skip
    whales = [describe(e) for e in liquidations if e.notional_usd >= 50e6]
    summary = totals(liquidations, [v for v in venues if any(s.venue == v for s in VENUE_SHARES)])
    return {
        "scenario": "feb-2026",
        "seed": seed,
        "duration_seconds": duration,
        "onset_seconds": ONSET * scale,
        "peak_seconds": PEAK * scale,
        "end_seconds": (PEAK + DECAY_TAU * math.log(1 / 0.05)) * scale,
        **summary,
        "whales": whales,
        "prices": prices,
        "minute_usd": minutes,
        "follows": {
            "source": "reference/feb-2026-crash.md, the night of 1 February 2026",
            "figures": [
                "Bitcoin down over 7% and Ether over 11% within 3 hours",
                "94% of liquidations were of long positions (followed in USD)",
                "Hyperliquid $1.09B, Bybit $574.8M (over 95% longs), Binance $258M",
                "largest single liquidation $222M, an ETH long on Hyperliquid",
                "one Binance account lost over $60M in a single liquidation",
                "night total $2.566B",
            ],
            "assumptions": [
                "Binance's $258M is split $235M USD-M and $23M COIN-M",
                "OKX gets $150M of the $643M the table leaves to other venues",
                "the long tail's $493M is split among bitget, gate, htx, bitmex, deribit, dydx "
                "and kraken-futures by us (no per-venue figures reported)",
                f"${UNASSIGNED_USD / 1e6:.1f}M stays unassigned",
                "the $60M Binance liquidation is a BTCUSDT long",
                "the night's reported total is $2.566B; the scenario's total_usd is the sum of "
                "the simulated venues only",
            ],
            "venue_shares_usd": {s.venue: s.usd for s in VENUE_SHARES},
            "unassigned_usd": UNASSIGNED_USD,
        },
        "count_scale": {
            "accounts_reported": NIGHT_ACCOUNTS,
            "events_generated": len(liquidations),
            "note": "USD totals are kept; the number of liquidations is scaled down "
            f"to about {FEB_EVENTS} events so the scenario plays on a laptop",
        },
    }
