"""The Notifier: what the app sees of notifications.

Built from ``[notify]``: the MQTT channel when enabled and every enabled webhook, each behind
its own outbox (``outbox.py``). ``publish`` and ``publish_liquidation`` are synchronous and
never wait, so detection and ingest call them inline. Before a channel sends a transition it
claims it in the store (``claims.py``): with Redis, two redundant daemons send it once; with
the memory store every claim is won. A store that cannot answer does not hold an alert back:
the claim counts as won (a duplicate, which consumers dedupe by id, beats a lost alert).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from monitor.alerts import AlertState, CascadeAlert, Severity, WhaleAlert
from monitor.clock import Clock
from monitor.errors import ConfigError, StoreError
from monitor.events import Liquidation
from monitor.metrics import Metrics
from monitor.notify.claims import claim_keys
from monitor.notify.config import NotifyConfig
from monitor.notify.feed_notice import FeedNotice
from monitor.notify.mqtt import CHANNEL_NAME as MQTT_NAME, MqttChannel
from monitor.notify.outbox import Alert, Claimer, Outbox, OutboxPolicy
from monitor.notify.webhook import WebhookChannel
from monitor.store.base import Store
from monitor.store.memory import MemoryStore

log = logging.getLogger(__name__)

# A claim is one SET NX; a store slower than this is treated as unreachable for the claim.
# Generous, because a claim that times out is sent anyway and a redundant daemon may then
# send it too (a new pool connection under load can take over a second); once claims are
# failing, the short timeout keeps a Redis outage from delaying every alert.
CLAIM_TIMEOUT_SECONDS = 5.0
CLAIM_TIMEOUT_WHILE_FAILING_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class Filter:
    min_severity: Severity
    whales: bool

    def accepts(self, alert: Alert) -> bool:
        if isinstance(alert, FeedNotice):
            return True  # a feed that stops is news whatever the alert filters say
        if isinstance(alert, WhaleAlert):
            return self.whales and alert.severity >= self.min_severity
        if alert.status is AlertState.RESOLVED:
            # Resolve what this channel announced: a cascade that reached the minimum.
            return (alert.peak_severity or alert.severity) >= self.min_severity
        return alert.severity >= self.min_severity


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        store: Store,
        metrics: Metrics,
        clock: Clock,
        *,
        only: Collection[str] | None = None,
        mqtt_status: bool = True,
    ) -> None:
        """``only``: the channel names to build (``liqmon notify-test --channel``);
        ``mqtt_status=False``: leave the daemon's retained MQTT status alone."""
        self.config = config
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self.mqtt: MqttChannel | None = None
        self.outboxes: dict[str, Outbox[Any]] = {}
        self._filters: dict[str, Filter] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._webhooks: list[WebhookChannel] = []
        self._claim_failing = False
        self._closed = False

        def wanted(name: str) -> bool:
            return only is None or name in only

        if config.mqtt.enabled and wanted(MQTT_NAME):
            self.mqtt = MqttChannel(config.mqtt, status=mqtt_status)
            self._add(self.mqtt, self._policy(0.0, 1),
                      Filter(Severity(config.mqtt.min_severity), config.mqtt.whales))
        for name, wc in config.webhooks.items():
            if name == MQTT_NAME:
                raise ConfigError(f"notify.webhooks.{name}", name,
                                  f"a webhook name other than {MQTT_NAME!r}")
            if not wc.enabled or not wanted(name):
                continue
            channel = WebhookChannel(name, wc)
            self._webhooks.append(channel)
            self._add(channel, self._policy(wc.rate_limit_per_minute, wc.burst),
                      Filter(Severity(wc.min_severity), wc.whales))

    def _policy(self, rate_per_minute: float, burst: int) -> OutboxPolicy:
        c = self.config
        return OutboxPolicy(
            capacity=c.queue_size, retry_initial_seconds=c.retry_initial_seconds,
            retry_max_seconds=c.retry_max_seconds, max_age_seconds=c.max_age_seconds,
            rate_per_minute=rate_per_minute, burst=burst)

    def _add(self, channel: Any, policy: OutboxPolicy, filt: Filter) -> None:
        outbox: Outbox[Any] = Outbox(channel, policy, self._metrics, self._clock,
                                     self._claimer(channel.name))
        self.outboxes[channel.name] = outbox
        self._filters[channel.name] = filt

    def _claimer(self, channel: str) -> Claimer | None:
        """None with the memory store: no other daemon shares it, every claim is won, and
        the outbox may send without waiting for an answer."""
        store, config = self._store, self.config
        if isinstance(store, MemoryStore):
            return None

        async def claim(alert: Alert) -> bool:
            keys = claim_keys(alert, channel, config.claim_window_seconds)
            try:
                timeout = (CLAIM_TIMEOUT_WHILE_FAILING_SECONDS if self._claim_failing
                           else CLAIM_TIMEOUT_SECONDS)
                async with asyncio.timeout(timeout):
                    for key in keys:
                        if not await store.claim(key, config.claim_ttl_seconds):
                            return False
            except (StoreError, TimeoutError) as exc:
                if not self._claim_failing:
                    log.warning("notify: cannot claim alerts in the store (%s); sending "
                                "without a claim, redundant daemons may both send",
                                exc or "timeout")
                    self._claim_failing = True
                return True
            self._claim_failing = False
            return True

        return claim

    @property
    def channels(self) -> list[str]:
        return list(self.outboxes)

    @property
    def wants_liquidations(self) -> bool:
        return self.mqtt is not None and self.config.mqtt.liquidations

    # -- lifecycle ----------------------------------------------------------------------------
    def background(self) -> Mapping[str, Callable[[], Coroutine[Any, Any, None]]]:
        """The long-lived tasks by name: the MQTT connection and liquidation loops and one
        worker per outbox. The daemon runs them in its TaskGroup."""
        tasks: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        if self.mqtt is not None:
            tasks.update(self.mqtt.background())
        for name, outbox in self.outboxes.items():
            tasks[f"notify-outbox-{name}"] = outbox.run
        if self.outboxes:
            log.info("notify: channels %s", ", ".join(self.outboxes))
        return tasks

    async def start(self) -> None:
        """Run the background work in tasks of its own: for ``liqmon notify-test``, which
        uses the notifier outside the daemon. The MQTT loops stay the channel's, so that it
        can say offline before its connection goes."""
        if self.mqtt is not None:
            await self.mqtt.start()
        for name, outbox in self.outboxes.items():
            self._tasks.append(asyncio.create_task(outbox.run(), name=f"notify-outbox-{name}"))

    def publish(self, alert: Alert, *, force: bool = False) -> None:
        """Queue ``alert`` on every channel that takes it; never waits. ``force`` skips the
        channels' severity and whale filters (notify-test)."""
        for name, outbox in self.outboxes.items():
            if not force and not self._filters[name].accepts(alert):
                continue
            if name == MQTT_NAME and self.mqtt is not None and isinstance(
                    alert, CascadeAlert | FeedNotice):
                self.mqtt.note(alert)
            outbox.put(alert)

    def publish_liquidation(self, event: Liquidation) -> None:
        """Every counted liquidation passes here; the large ones go out on MQTT at QoS 0."""
        mqtt = self.mqtt
        if (mqtt is not None and self.config.mqtt.liquidations
                and event.notional_usd >= self.config.mqtt.liquidations_min_usd):
            mqtt.put_liquidation(event)

    async def drain(self, timeout: float) -> int:  # noqa: ASYNC109
        """Deliver what the outboxes hold within ``timeout``; return how many are left."""
        if not self.outboxes:
            return 0
        lefts = await asyncio.gather(*(o.drain(timeout) for o in self.outboxes.values()))
        for name, left in zip(self.outboxes, lefts, strict=True):
            if left:
                log.error("notify: %d alerts for %s were not delivered before shutdown",
                          left, name)
        return sum(lefts)

    async def aclose(self) -> None:
        """Stop the outboxes, then close the channels (MQTT says offline). Safe twice."""
        if self._closed:
            return
        self._closed = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.mqtt is not None:
            await self.mqtt.aclose()
        for channel in self._webhooks:
            await channel.aclose()
