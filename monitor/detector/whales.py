"""Whale alerts: one liquidation at or above the whale threshold, an alert of its own.

Severity is in multiples of the threshold (the coin's, or ``whale_usd``): with the default
$10M, a $60M print (the Binance account of the night of 1 February 2026) is critical and the
record $222M one (Hyperliquid, that night) extreme.
"""

from __future__ import annotations

from monitor.alerts import Severity, WhaleAlert, format_usd, whale_id
from monitor.events import Liquidation

WHALE_CRITICAL_MULTIPLE = 5.0
WHALE_EXTREME_MULTIPLE = 20.0


def whale_severity(usd: float, threshold: float) -> Severity:
    if usd >= WHALE_EXTREME_MULTIPLE * threshold:
        return Severity.EXTREME
    if usd >= WHALE_CRITICAL_MULTIPLE * threshold:
        return Severity.CRITICAL
    return Severity.WARNING


def whale_alert(event: Liquidation, threshold: float) -> WhaleAlert:
    usd = event.notional_usd
    reason = (
        f"Whale: {event.coin} {event.position_side.value} {format_usd(usd)} liquidated on "
        f"{event.venue} ({event.instrument}) at {event.price:,.6g}"
    )
    return WhaleAlert(whale_id(event), event, whale_severity(usd, threshold),
                      event.exchange_ts_ms / 1000, reason)
