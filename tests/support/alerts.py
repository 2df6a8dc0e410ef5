"""Sample alerts for the notification tests: a cascade on ETH and a whale print."""

from __future__ import annotations

import dataclasses

from monitor.alerts import CascadeAlert, Severity, WhaleAlert
from monitor.cli.notify import sample_alert
from monitor.events import Completeness, Liquidation, PositionSide

NOW = 1_769_904_000.0


def cascade(**changes: object) -> CascadeAlert:
    alert = dataclasses.replace(sample_alert(NOW), scope="coin:ETH", id="cas-0123456789abcdef")
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


def whale(usd: float = 222e6) -> WhaleAlert:
    event = Liquidation("hyperliquid", "ETH", "ETH", PositionSide.LONG, 2300.0, usd / 2300.0,
                        usd, int(NOW * 1000), NOW + 0.2, Completeness.FULL, "hl-1")
    return WhaleAlert("whl-1", event, Severity.EXTREME, NOW,
                      "Whale: ETH long $222M liquidated on hyperliquid (ETH) at 2,300")
