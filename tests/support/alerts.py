"""For the notification tests: sample alerts (a cascade on ETH, a whale print) and a running
Notifier on a memory store with its own metrics registry."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry

from monitor.alerts import CascadeAlert, Severity, WhaleAlert
from monitor.cli.notify import sample_alert
from monitor.clock import SystemClock
from monitor.events import Completeness, Liquidation, PositionSide
from monitor.metrics import Metrics
from monitor.notify.config import NotifyConfig
from monitor.notify.notifier import Notifier
from monitor.store.memory import MemoryStore

NOW = 1_769_904_000.0


def cascade(**changes: object) -> CascadeAlert:
    alert = dataclasses.replace(sample_alert(NOW), scope="coin:ETH", id="cas-0123456789abcdef")
    return dataclasses.replace(alert, **changes)  # type: ignore[arg-type]


def whale(usd: float = 222e6) -> WhaleAlert:
    event = Liquidation("hyperliquid", "ETH", "ETH", PositionSide.LONG, 2300.0, usd / 2300.0,
                        usd, int(NOW * 1000), NOW + 0.2, Completeness.FULL, "hl-1")
    return WhaleAlert("whl-1", event, Severity.EXTREME, NOW,
                      "Whale: ETH long $222M liquidated on hyperliquid (ETH) at 2,300")


@asynccontextmanager
async def running_notifier(config: NotifyConfig
                           ) -> AsyncIterator[tuple[Notifier, CollectorRegistry]]:
    """A started Notifier for ``config`` and the registry of its metrics; closed after."""
    registry = CollectorRegistry()
    hub = Notifier(config, MemoryStore(), Metrics(registry, [], []), SystemClock())
    await hub.start()
    try:
        yield hub, registry
    finally:
        await hub.aclose()
