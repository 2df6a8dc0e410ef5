"""Composition root: builds every part from Config and runs them in one TaskGroup.

Shutdown is ordered: stop taking frames, drain ingest, flush the store (and, when they
exist, the notifier outboxes) within a deadline, close connections, say what was left.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry

from monitor.alerts import CascadeAlert, WhaleAlert, alert_log_line, alert_payload
from monitor.clock import Clock, SystemClock
from monitor.config import Config
from monitor.detector import Detector
from monitor.errors import StoreError
from monitor.feed.instruments import default_cache_dir
from monitor.feed.recorder import Recorder
from monitor.feed.supervisor import FeedTiming, FrameTap
from monitor.feed.venue import VenueFeed
from monitor.httpserver import MetricsServer
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.store.base import Store
from monitor.store.factory import open_store
from monitor.venues import make_dialect

log = logging.getLogger(__name__)

SHUTDOWN_DEADLINE_SECONDS = 10.0


class App:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
        tap: FrameTap | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.registry = registry or CollectorRegistry()
        venues = list(config.enabled_venues())
        self.metrics = Metrics(self.registry, venues, config.metrics.coins)
        self._tap = tap
        self._metrics_port = config.metrics.port if metrics_port is None else metrics_port
        self.store: Store | None = None
        self.ingest: Ingest | None = None
        self.detector: Detector | None = (
            Detector(config.detector) if config.detector.enabled else None
        )
        self.feeds: dict[str, VenueFeed] = {}
        self.server: MetricsServer | None = None
        self.recorder: Recorder | None = None
        self.alerts: list[CascadeAlert | WhaleAlert] = []
        self.on_alert: list[Callable[[CascadeAlert | WhaleAlert], None]] = []
        self.ready = asyncio.Event()

    # -- health -----------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, str]:
        subscribed = sum(f.subscribed for f in self.feeds.values())
        store_ok = self.store is not None and self.store.healthy()
        ok = subscribed > 0 and store_ok
        return ok, f"subscribed connections: {subscribed}; store healthy: {store_ok}"

    # -- alerts -----------------------------------------------------------------------------
    def _alert(self, alert: CascadeAlert | WhaleAlert) -> None:
        log.warning("%s", alert_log_line(alert))
        self.alerts.append(alert)
        if len(self.alerts) > 1000:
            del self.alerts[:500]
        for callback in self.on_alert:
            callback(alert)

    async def _evaluate_loop(self) -> None:
        detector = self.detector
        interval = self.config.detector.eval_interval_seconds
        while True:
            await asyncio.sleep(interval)
            now = self.clock.wall()
            self.metrics.expire_largest(int(now * 1000))
            if detector is None:
                continue
            for alert in detector.evaluate(now):
                if alert.status.value == "firing":
                    self.metrics.cascade_started(alert.scope, alert.position_side.value)
                self._alert(alert)
                if self.store is not None:
                    try:
                        await self.store.record_cascade(alert_payload(alert))
                    except StoreError as exc:
                        log.warning("cannot keep cascade history in the store: %s", exc)
            self.metrics.cascade_state(
                (s.scope, s.position_side.value, s.severity.value if s.severity else None)
                for s in detector.states()
            )

    async def _summary_loop(self) -> None:
        interval = self.config.logging.summary_interval_seconds
        while True:
            await asyncio.sleep(interval)
            if self.ingest is None:
                continue
            stats = self.ingest.take_stats()
            connected = sum(1 for f in self.feeds.values()
                            if f.runners and f.subscribed == len(f.runners))
            log.info(
                "last %.0fs: %d liquidations, longs $%.0f, shorts $%.0f, %d duplicates, "
                "%d dropped; venues connected %d/%d; store %s",
                interval, stats.events, stats.usd_long, stats.usd_short, stats.duplicates,
                stats.dropped, connected, len(self.feeds),
                "ok" if self.store is not None and self.store.healthy() else "degraded")

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        config = self.config
        self.store = await open_store(config.store, self.metrics, self.clock)
        if config.record.enabled and self._tap is None:
            self.recorder = Recorder(
                directory=Path(config.record.directory), rotation=config.record.rotation,
                gzip_files=config.record.gzip, retention_days=config.record.retention_days)
            self._tap = self.recorder
        self.ingest = Ingest(self.store, self.detector, self.metrics, self.clock,
                             capacity=config.feed.queue_size, on_whale=self._alert)
        cache_dir = (Path(config.feed.instrument_cache_dir) if config.feed.instrument_cache_dir
                     else default_cache_dir())
        for venue, vc in config.enabled_venues().items():
            timing = FeedTiming(
                silence_limit_seconds=vc.silence_limit_seconds,
                open_timeout_seconds=config.feed.open_timeout_seconds,
                ack_timeout_seconds=config.feed.ack_timeout_seconds,
                backoff_initial_seconds=config.feed.backoff_initial_seconds,
                backoff_max_seconds=config.feed.backoff_max_seconds,
                healthy_after_seconds=config.feed.healthy_after_seconds,
                unknown_instrument_hold_seconds=config.feed.unknown_instrument_hold_seconds)
            self.feeds[venue] = VenueFeed(
                make_dialect(venue, vc.settings()), vc.ws_base_url, vc.rest_base_url, timing,
                self.ingest, self.metrics, self.clock,
                instruments_refresh_seconds=vc.instruments_refresh_seconds,
                cache_dir=cache_dir, tap=self._tap)
        if config.metrics.enabled:
            self.server = MetricsServer(self.registry, config.metrics.host, self._metrics_port,
                                        self.readiness)
            await self.server.start()
        log.info("liqmon running: venues %s, store %s", ", ".join(self.feeds) or "none",
                 config.store.backend)
        try:
            async with asyncio.TaskGroup() as tg:
                feed_tasks = [tg.create_task(feed.run(), name=f"feed-{venue}")
                              for venue, feed in self.feeds.items()]
                ingest_task = tg.create_task(self.ingest.run(), name="ingest")
                loops = [tg.create_task(self._evaluate_loop(), name="evaluate"),
                         tg.create_task(self._summary_loop(), name="summary")]
                self.ready.set()
                await stop.wait()
                log.info("shutting down")
                for task in feed_tasks:
                    task.cancel()
                await asyncio.gather(*feed_tasks, return_exceptions=True)
                left = await self.ingest.drain(SHUTDOWN_DEADLINE_SECONDS / 2)
                if left:
                    log.error("shutdown: %d events were still queued for ingest", left)
                for task in [ingest_task, *loops]:
                    task.cancel()
        finally:
            await self._close()
        return 0

    async def _close(self) -> None:
        if self.store is not None:
            try:
                left = await self.store.flush(SHUTDOWN_DEADLINE_SECONDS / 2)
                if left:
                    log.error("shutdown: %d events could not be written to the store", left)
            finally:
                await self.store.aclose()
        if self.recorder is not None:
            self.recorder.close()
        if self.server is not None:
            await self.server.aclose()


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
