"""``liqmon notify-test [--channel NAME]``: send a sample alert through the configured channels.

The sample is a cascade ``firing`` in the scope ``test`` (MQTT topic
``<root>/v1/alerts/cascade/test/long``; no retained state), with an id starting ``test-`` and
a reason that says it is a test, so nothing that filters on real scopes acts on it. Channel
filters (minimum severity, whales) do not apply to it. It waits for each channel to deliver
or fail, prints one line per channel and exits 0 when all delivered, 1 otherwise.

It leaves a running daemon alone: its MQTT client has an id of its own (a broker drops the
older of two clients with one id) and neither a last will nor a status message, so the
daemon's retained ``online`` stays as it is.
"""

from __future__ import annotations

import dataclasses
import secrets
import sys

from prometheus_client import CollectorRegistry

from monitor.alerts import AlertState, CascadeAlert, Severity, Share
from monitor.clock import SystemClock
from monitor.config import Config
from monitor.errors import ConfigError
from monitor.events import PositionSide
from monitor.metrics import Metrics
from monitor.notify.mqtt_topics import TEST_SCOPE
from monitor.notify.notifier import Notifier
from monitor.store.config import StoreConfig
from monitor.store.memory import MemoryStore


def sample_alert(now: float) -> CascadeAlert:
    """A realistic cascade transition (the figures of an ETH flush), marked as a test."""
    return CascadeAlert(
        id="test-" + secrets.token_hex(8),
        status=AlertState.FIRING,
        scope=TEST_SCOPE,
        position_side=PositionSide.LONG,
        severity=Severity.WARNING,
        started_at=now - 60.0,
        at=now,
        window_seconds=300,
        usd=21.4e6,
        usd_per_minute=4.28e6,
        acceleration=7.1,
        long_share=0.87,
        baseline_multiple=7.1,
        count=1840,
        symbol_seconds=240,
        venues=(Share("hyperliquid", 9.1e6, 0.43), Share("bybit", 6.4e6, 0.3),
                Share("binance-usdm", 5.9e6, 0.27)),
        coins=(Share("ETH", 7.3e6, 0.34), Share("BTC", 4.3e6, 0.2), Share("SOL", 3.2e6, 0.15)),
        price_move=-0.021,
        peak_usd=21.4e6,
        peak_at=now,
        total_usd=21.4e6,
        reason="liqmon notify-test: a sample alert, not a market event "
               "(test longs: $21.4M in 5m, 7.1x baseline, 87% long)",
    )


async def run_notify_test(config: Config, channels: list[str], wait_seconds: float) -> int:
    known = (["mqtt"] if config.notify.mqtt.enabled else []) + [
        name for name, wc in config.notify.webhooks.items() if wc.enabled]
    unknown = [name for name in channels if name not in known]
    if unknown:
        raise ConfigError("--channel", ",".join(unknown),
                          "an enabled channel: " + (", ".join(known) or "none is configured"))
    if not known:
        print("liqmon: no notification channel is enabled ([notify.mqtt] enabled = true or "
              "[notify.webhooks.<name>])", file=sys.stderr)
        return 1
    clock = SystemClock()
    metrics = Metrics(CollectorRegistry(), [], [])
    store = MemoryStore(StoreConfig())
    mqtt = dataclasses.replace(config.notify.mqtt,
                               client_id=config.notify.mqtt.side_client_id("notify-test"))
    notifier = Notifier(dataclasses.replace(config.notify, mqtt=mqtt), store, metrics, clock,
                        only=channels or None, mqtt_status=False)
    alert = sample_alert(clock.wall())
    await notifier.start()
    try:
        notifier.publish(alert, force=True)
        await notifier.drain(wait_seconds)
    finally:
        await notifier.aclose()
        await store.aclose()
    failed = 0
    for name, outbox in notifier.outboxes.items():
        stats = outbox.stats
        if stats.delivered:
            print(f"{name}: delivered {alert.id}")
        else:
            failed += 1
            why = stats.last_error or f"no answer within {wait_seconds:g}s"
            print(f"{name}: NOT delivered: {why}")
    return 1 if failed else 0
