"""Synthetic markets for the detector tests and benchmark: calm, flushes, the feb-2026 night.

Everything is driven by a seeded ``random.Random`` and a virtual time, so each market is the
same on every run. A market is a time-ordered list of ``(seconds, Liquidation | MarkPrice)``;
:func:`run` feeds it to a detector the way replay does: before each event, ``evaluate`` is
called for the time the event arrives.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.alerts import AlertState, CascadeAlert, WhaleAlert
from monitor.detector.engine import Detector
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide

T0 = 1_769_904_000.0  # 2026-02-01 00:00:00 UTC
Event = tuple[float, Liquidation | MarkPrice]

THROTTLED = {"binance-usdm", "okx"}
START_PRICES = {
    "BTC": 78_000.0, "ETH": 2_500.0, "SOL": 105.0, "XRP": 1.6, "DOGE": 0.105, "BNB": 760.0,
    "ADA": 0.3, "AVAX": 10.5, "LINK": 10.0, "SUI": 1.1,
}
CALM_COINS = {"BTC": 0.35, "ETH": 0.25, "SOL": 0.1, "XRP": 0.07, "DOGE": 0.06, "BNB": 0.05,
              "ADA": 0.03, "AVAX": 0.03, "LINK": 0.03, "SUI": 0.03}
CALM_VENUES = ("binance-usdm", "bybit", "okx", "hyperliquid", "bitmex", "deribit", "bitget",
               "gate", "kraken-futures", "htx")

CALM_MARK_VENUE = "kraken-futures"

_serial = 0


def liq(venue: str, coin: str, side: PositionSide, usd: float, at: float,
        price: float | None = None, instrument: str | None = None) -> Liquidation:
    global _serial
    _serial += 1
    price = price if price is not None else START_PRICES.get(coin, 1.0)
    return Liquidation(
        venue=venue,
        instrument=instrument or f"{coin}USDT",
        coin=coin,
        position_side=side,
        price=price,
        qty_base=usd / price,
        notional_usd=usd,
        exchange_ts_ms=int(at * 1000),
        received_at=at + 0.05,
        completeness=Completeness.THROTTLED if venue in THROTTLED else Completeness.FULL,
        event_id=f"{venue}:{_serial}",
    )


def mark(venue: str, coin: str, price: float, at: float) -> MarkPrice:
    return MarkPrice(venue, f"{coin}USDT", coin, price, int(at * 1000), at + 0.02)


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


@dataclass
class Result:
    cascades: list[CascadeAlert] = field(default_factory=list)
    whales: list[WhaleAlert] = field(default_factory=list)

    def of(self, scope: str) -> list[CascadeAlert]:
        return [a for a in self.cascades if a.scope == scope]

    def firing(self, scope: str | None = None) -> list[CascadeAlert]:
        return [a for a in self.cascades if a.status is AlertState.FIRING
                and (scope is None or a.scope == scope)]


def run(detector: Detector, events: Iterable[Event], until: float | None = None,
        result: Result | None = None) -> Result:
    """Feed events in order, evaluating at each event's arrival time, then up to ``until``."""
    result = result if result is not None else Result()
    evaluate, on_liq, on_mark = detector.evaluate, detector.on_liquidation, detector.on_mark_price
    last = -1
    for at, ev in events:
        sec = int(at)
        if sec != last:
            result.cascades.extend(evaluate(at))
            last = sec
        if isinstance(ev, Liquidation):
            result.whales.extend(on_liq(ev))
        else:
            on_mark(ev)
    if until is not None:
        result.cascades.extend(evaluate(until))
    return result


def merge(*streams: Iterable[Event]) -> list[Event]:
    out = [e for s in streams for e in s]
    out.sort(key=lambda e: e[0])
    return out


def calm(rng: random.Random, start: float, seconds: int, per_minute: float = 3.0,
         venues: Sequence[str] = CALM_VENUES, mark_every: int = 10) -> list[Event]:
    """A few liquidations a minute per venue, $1k-$200k, both sides; random-walk prices."""
    out: list[Event] = []
    coins, weights = list(CALM_COINS), list(CALM_COINS.values())
    rate = per_minute / 60.0
    for venue in venues:
        at = start + rng.expovariate(rate)
        while at < start + seconds:
            coin = rng.choices(coins, weights)[0]
            side = PositionSide.LONG if rng.random() < 0.5 else PositionSide.SHORT
            out.append((at, liq(venue, coin, side, log_uniform(rng, 1e3, 2e5), at)))
            at += rng.expovariate(rate)
    prices = dict(START_PRICES)
    sigma = 1e-4 * math.sqrt(mark_every)
    for step in range(0, seconds, mark_every):
        at = start + step
        for coin in CALM_COINS:
            prices[coin] *= math.exp(rng.gauss(0.0, sigma))
            # Flushes publish their own marks on their venues; calm's go on a venue of its own.
            out.append((at, mark(CALM_MARK_VENUE, coin, prices[coin], at)))
    out.sort(key=lambda e: e[0])
    return out


def flush(rng: random.Random, start: float, seconds: int, usd_per_second: float,
          venues: dict[str, float], coins: dict[str, float], long_share: float = 0.95,
          price_drop: float = 0.04, sizes: tuple[float, float] = (5e3, 3e5),
          pause: tuple[float, float] | None = None, marks_after: int = 1200) -> list[Event]:
    """A one-sided flush: a steady USD rate spread over venues and coins, prices falling
    linearly by ``price_drop`` over its length; nothing during ``pause`` (offsets)."""
    out: list[Event] = []
    mean = (sizes[1] - sizes[0]) / math.log(sizes[1] / sizes[0])
    per_second = usd_per_second / mean
    vnames, vweights = list(venues), list(venues.values())
    cnames, cweights = list(coins), list(coins.values())
    for step in range(seconds):
        at0 = start + step
        frac = step / seconds
        for coin in coins:
            for venue in venues:
                out.append((at0, mark(venue, coin, START_PRICES[coin] * (1 - price_drop * frac),
                                      at0)))
        if pause is not None and pause[0] <= step < pause[1]:
            continue
        for _ in range(poisson(rng, per_second)):
            at = at0 + rng.random()
            venue = rng.choices(vnames, vweights)[0]
            coin = rng.choices(cnames, cweights)[0]
            long = rng.random() < long_share
            side = PositionSide.LONG if long else PositionSide.SHORT
            price = START_PRICES[coin] * (1 - price_drop * frac)
            out.append((at, liq(venue, coin, side, log_uniform(rng, *sizes), at, price)))
    for step in range(seconds, seconds + marks_after, 5):
        # Prices go on being published after the flush, at its last level.
        for coin in coins:
            for venue in venues:
                last = START_PRICES[coin] * (1 - price_drop)
                out.append((start + step, mark(venue, coin, last, start + step)))
    out.sort(key=lambda e: e[0])
    return out


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw; a normal approximation above a mean of 30, where it is close enough."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


# -- the night of 1 February 2026 (reference/feb-2026-crash.md) -----------------------------

FEB_TOTAL_USD = 2.566e9
FEB_SECONDS = 3 * 3600
FEB_LONG_SHARE = 0.94
# Hyperliquid 42%, Bybit 22%, Binance 10% as reported; the rest spread over the others.
FEB_VENUES = {"hyperliquid": 0.42, "bybit": 0.22, "binance-usdm": 0.10, "okx": 0.09,
              "bitget": 0.07, "gate": 0.05, "bitmex": 0.03, "deribit": 0.02}
FEB_COINS = {
    "hyperliquid": {"ETH": 0.6, "BTC": 0.25, "SOL": 0.1, "HYPE": 0.05},
    "bybit": {"SOL": 0.35, "DOGE": 0.25, "ETH": 0.15, "BTC": 0.15, "XRP": 0.1},
    "default": {"BTC": 0.4, "ETH": 0.35, "SOL": 0.12, "XRP": 0.07, "DOGE": 0.06},
}
FEB_DROP = {"BTC": 0.07, "ETH": 0.11, "SOL": 0.14, "DOGE": 0.15, "XRP": 0.13, "HYPE": 0.16}
START_PRICES["HYPE"] = 32.0


def _feb_shape(x: float) -> float:
    """Slow start, acceleration, peak at ~57% of the night, decay."""
    return x * x * (1.0 - x) ** 1.5 if x < 1.0 else 0.0


def feb_2026(seed: int = 0, calm_before: int = 3600, calm_after: int = 3600,
             mean_size: float = 40_000.0) -> tuple[list[Event], dict[str, float]]:
    """The night as a ramp, with calm hours around it; returns events and ground truth."""
    rng = random.Random(seed)
    onset = T0 + calm_before
    steps = 2000
    norm = sum(_feb_shape((i + 0.5) / steps) for i in range(steps)) / steps * FEB_SECONDS
    out: list[Event] = []
    vnames, vweights = list(FEB_VENUES), list(FEB_VENUES.values())
    seen: set[tuple[str, str, int]] = set()
    whales = {int(FEB_SECONDS * 0.55): ("hyperliquid", "ETH", 222e6),
              int(FEB_SECONDS * 0.6): ("binance-usdm", "ETH", 60e6)}
    for step in range(FEB_SECONDS):
        at0 = onset + step
        x = (step + 0.5) / FEB_SECONDS
        done = _feb_cum(x)
        for coin, drop in FEB_DROP.items():
            out.append((at0, mark("hyperliquid", coin, START_PRICES[coin] * (1 - drop * done),
                                  at0)))
        usd = FEB_TOTAL_USD * _feb_shape(x) / norm
        if step in whales:
            venue, coin, size = whales[step]
            price = START_PRICES[coin] * (1 - FEB_DROP[coin] * done)
            out.append((at0 + 0.5, liq(venue, coin, PositionSide.LONG, size, at0 + 0.5, price)))
            usd -= size
        for _ in range(poisson(rng, max(usd, 0.0) / mean_size)):
            at = at0 + rng.random()
            venue = rng.choices(vnames, vweights)[0]
            mix = FEB_COINS.get(venue, FEB_COINS["default"])
            coin = rng.choices(list(mix), list(mix.values()))[0]
            if venue in THROTTLED:
                key = (venue, coin, step)
                if key in seen:
                    continue  # the venue publishes one per symbol per second
                seen.add(key)
            side = PositionSide.LONG if rng.random() < FEB_LONG_SHARE else PositionSide.SHORT
            price = START_PRICES[coin] * (1 - FEB_DROP[coin] * done)
            size = min(rng.lognormvariate(math.log(mean_size) - 1.0, 1.4142), 5e6)
            out.append((at, liq(venue, coin, side, size, at, price)))
    out.extend(calm(rng, T0, calm_before))
    out.extend(calm(rng, onset + FEB_SECONDS, calm_after))
    out.sort(key=lambda e: e[0])
    truth = {"onset": onset, "end": onset + FEB_SECONDS,
             "peak": onset + FEB_SECONDS * 2 / 3.5}
    return out, truth


def _feb_cum(x: float) -> float:
    steps = 200
    total = sum(_feb_shape((i + 0.5) / steps) for i in range(steps))
    done = sum(_feb_shape((i + 0.5) / steps) for i in range(int(x * steps)))
    return done / total


# -- the acceptance markets of the engine and story tests ---------------------------------

LONG = PositionSide.LONG
CALM = 1200  # seconds of calm market before each flush
FIVE = {"hyperliquid": 0.35, "bybit": 0.25, "binance-usdm": 0.15, "okx": 0.15, "bitget": 0.10}
MAJORS = {"BTC": 0.4, "ETH": 0.4, "SOL": 0.2}


def market(*flushes: Sequence[Event], seconds: int = 3600, seed: int = 7) -> list[Event]:
    return merge(calm(random.Random(seed), T0, seconds), *flushes)


def global_flush(start: float = T0 + CALM, seconds: int = 240, rate: float = 150_000.0,
                 **kw: Any) -> list[Event]:
    return flush(random.Random(11), start, seconds, rate, FIVE, MAJORS, **kw)


def assert_lifecycle(result: Result, scope: str) -> None:
    """One firing, then only escalations, then one resolved, all with one id."""
    alerts = result.of(scope)
    assert alerts, f"no alert for {scope}"
    assert alerts[0].status is AlertState.FIRING
    assert alerts[-1].status is AlertState.RESOLVED
    assert all(a.status is AlertState.ESCALATED for a in alerts[1:-1])
    assert len({a.id for a in alerts}) == 1
    ranks = [a.severity.rank for a in alerts[:-1]]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
