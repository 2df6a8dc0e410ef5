"""Bounds at the edge: what a parsed event must look like before anything counts it.

Every dialect reads untrusted text, and a frame can be well-formed JSON with absurd values:
a timestamp of -2^63, a quantity of 1e308, a price of 0. Each dialect checks its own fields'
types (``_json``); these bounds are the one check of the values every dialect's events go
through, applied where every event enters the counting path (``monitor.ingest``) and by
``liqmon parse``, so the live daemon, replay, backtest and parse refuse the same events.

- price, quantity and USD notional finite and above zero;
- notional below ``max_notional_usd``: the largest single liquidation on record is the
  $222M Hyperliquid ETH long of 1 February 2026 (../shared/reference/feb-2026-crash.md), so
  the $5B default refuses only nonsense;
- the venue's time a real date (2010 to 2100) and, where the receipt time means something
  (the daemon and its replays, not ``liqmon parse`` of old frames), within
  ``max_age_seconds`` before and ``max_lead_seconds`` after it (the event's own
  ``received_at``, so a replay of an old recording is judged against the time it was
  recorded, not today).

A refused event is counted in ``liqmon_frames_invalid_total{reason="bounds_<what>"}`` and
logged (rate-limited); it never becomes an event anyone counts. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import monitor.venues.dialect as dialect
from monitor.events import Liquidation, MarkPrice

# The reasons (labels are "bounds_" + reason).
PRICE, QUANTITY, NOTIONAL, TOO_LARGE, TIME = "price", "quantity", "notional", "too_large", "time"
REASONS = (PRICE, QUANTITY, NOTIONAL, TOO_LARGE, TIME)
REASON_PREFIX = "bounds_"


@dataclass(frozen=True, slots=True)
class Bounds:
    max_notional_usd: float = 5e9
    max_age_seconds: float = 7 * 86400.0
    max_lead_seconds: float = 3600.0


DEFAULT_BOUNDS = Bounds()


def _positive(value: float) -> bool:
    # Written so that NaN, which fails every comparison, is refused.
    return 0.0 < value < math.inf


# 2010-01-01 and 2100-01-01 in milliseconds: no derivatives venue stamps outside them.
EARLIEST_MS, LATEST_MS = 1_262_304_000_000, 4_102_444_800_000


def _time_ok(exchange_ts_ms: int, received_at: float, bounds: Bounds, relative: bool) -> bool:
    if not EARLIEST_MS <= exchange_ts_ms <= LATEST_MS:
        return False
    if not relative:
        return True
    lead = exchange_ts_ms / 1000.0 - received_at
    return -bounds.max_age_seconds <= lead <= bounds.max_lead_seconds


def out_of_bounds(
    event: Liquidation | MarkPrice, bounds: Bounds = DEFAULT_BOUNDS, *, relative_time: bool = True
) -> str | None:
    """Why ``event`` is outside the bounds (one of ``REASONS``), or None when it is inside.
    ``relative_time=False`` checks only that the venue's time is a real date."""
    if not _positive(event.price):
        return PRICE
    if isinstance(event, Liquidation):
        if not _positive(event.qty_base):
            return QUANTITY
        if not _positive(event.notional_usd):
            return NOTIONAL
        if event.notional_usd >= bounds.max_notional_usd:
            return TOO_LARGE
    if not _time_ok(event.exchange_ts_ms, event.received_at, bounds, relative_time):
        return TIME
    return None


def describe(event: Liquidation | MarkPrice, reason: str) -> str:
    """One line for the log: which value broke which bound."""
    if reason == TIME:
        return (f"exchange time {event.exchange_ts_ms} ms is not within the bounds of its "
                f"receipt at {event.received_at:.3f}")
    if isinstance(event, Liquidation):
        return (f"{event.instrument}: price {event.price!r}, quantity {event.qty_base!r}, "
                f"notional {event.notional_usd!r} USD ({reason})")
    return f"{event.instrument}: mark price {event.price!r} ({reason})"


def screen(
    items: list[dialect.Item], bounds: Bounds = DEFAULT_BOUNDS, *, relative_time: bool = True
) -> list[dialect.Item]:
    """``items`` with every event outside the bounds replaced by an :class:`Invalid` notice
    (``liqmon parse`` reports those as it reports unreadable rows)."""
    out: list[dialect.Item] = []
    for item in items:
        if isinstance(item, Liquidation | MarkPrice):
            reason = out_of_bounds(item, bounds, relative_time=relative_time)
            if reason is not None:
                out.append(dialect.Invalid(REASON_PREFIX + reason, describe(item, reason)))
                continue
        out.append(item)
    return out
