"""Liquidations for the store tests, at fixed times around a known "now"."""

from __future__ import annotations

import itertools
import random

from monitor.events import Completeness, Liquidation, PositionSide

BASE_MS = 1_769_904_000_000  # 2026-02-01T00:00:00Z, on a minute and an hour boundary
NOW_MS = BASE_MS + 30 * 3_600_000 + 30_000  # 30 h later, mid-minute
MINUTE = 60_000

_ids = itertools.count()


def make_event(
    usd: float = 1000.0,
    *,
    venue: str = "bybit",
    coin: str = "BTC",
    side: str = "long",
    ts_ms: int = NOW_MS,
    completeness: str = "full",
    event_id: str | None = None,
    qty: float | None = None,
) -> Liquidation:
    price = 50_000.0
    return Liquidation(
        venue=venue,
        instrument=f"{coin}USDT",
        coin=coin,
        position_side=PositionSide(side),
        price=price,
        qty_base=usd / price if qty is None else qty,
        notional_usd=usd,
        exchange_ts_ms=ts_ms,
        received_at=ts_ms / 1000 + 0.25,
        completeness=Completeness(completeness),
        event_id=event_id or f"{venue}:test-{next(_ids)}",
    )


def minutes_ago(n: int, now_ms: int = NOW_MS) -> int:
    """A timestamp inside the minute that is ``n`` minutes before the minute of ``now_ms``."""
    return (now_ms // MINUTE - n) * MINUTE + 1234


def sample_events() -> list[Liquidation]:
    """300 seeded events over 200 minutes, three venues, four coins, both sides."""
    rnd = random.Random(5)
    events = []
    for _ in range(300):
        events.append(make_event(
            round(rnd.lognormvariate(8, 1.5), 2),
            venue=rnd.choice(["bybit", "okx", "binance-usdm"]),
            coin=rnd.choice(["BTC", "ETH", "SOL", "DOGE"]),
            side=rnd.choice(["long", "short"]),
            ts_ms=minutes_ago(rnd.randrange(0, 200)),
            completeness=rnd.choice(["full", "full", "full", "throttled"]),
        ))
    return events
