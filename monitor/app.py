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
from monitor.config import Config, VenueConfig
from monitor.detector.engine import Detector
from monitor.errors import StoreError
from monitor.events import Liquidation
from monitor.feed.factory import Feed, build_feed
from monitor.feed.instruments import default_cache_dir
from monitor.feed.recorder import Recorder
from monitor.feed.supervisor import FrameTap
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.notify.notifier import Notifier
from monitor.service.endpoint import MetricsServer
from monitor.service.sdnotify import SdNotify
from monitor.service.watchdog import ServiceLoop
from monitor.store.base import Store
from monitor.store.factory import open_store
from monitor.web.http import WebRoutes
from monitor.web.live import LiveView

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
        sd: SdNotify | None = None,
        watchdog_seconds: float | None = None,
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
        self.feeds: dict[str, Feed] = {}
        self.server: MetricsServer | None = None
        self.recorder: Recorder | None = None
        self.alerts: list[CascadeAlert | WhaleAlert] = []
        self.on_alert: list[Callable[[CascadeAlert | WhaleAlert], None]] = []
        self.notifier: Notifier | None = None  # MQTT and webhooks (issue 6), built in run()
        self.live: LiveView | None = None  # the web page's state, served with /metrics
        self.ready = asyncio.Event()
        # systemd: READY/STATUS/WATCHDOG/STOPPING (no-ops without NOTIFY_SOCKET).
        self.service = ServiceLoop(self, sd or SdNotify(None), watchdog_seconds)
        self.stopping = False
        self.feed_tasks: dict[str, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._cache_dir: Path | None = None
        self._shutdown_deadline: float | None = None
        # Kept below the unit's TimeoutStopSec (30 s) so the drain ends before SIGKILL.
        self.shutdown_deadline_seconds = SHUTDOWN_DEADLINE_SECONDS

    # -- health -----------------------------------------------------------------------------
    def readiness(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "stopping"
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
                            if f.connections and f.subscribed == f.connections)
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
        # Notifications (issue 6): every alert goes to the notifier's outboxes (publish never
        # waits); large liquidations reach it from ingest. It claims alerts in the store.
        try:
            self.notifier = Notifier(config.notify, self.store, self.metrics, self.clock)
        except BaseException:
            await self.store.aclose()
            raise
        await self.notifier.start()
        self.on_alert.append(self.notifier.publish)
        if config.record.enabled and self._tap is None:
            self.recorder = Recorder(
                directory=Path(config.record.directory), rotation=config.record.rotation,
                gzip_files=config.record.gzip, retention_days=config.record.retention_days)
            self._tap = self.recorder
        if config.metrics.enabled:
            self.live = LiveView(self.store, self.metrics, self.detector, self.clock, lambda: {
                v: self.config.venues[v].silence_limit_seconds for v in self.feeds})
            self.on_alert.append(self.live.on_alert)
        self.ingest = Ingest(self.store, self.detector, self.metrics, self.clock,
                             capacity=config.feed.queue_size, on_whale=self._alert,
                             on_liquidation=_each(
                                 self.notifier.publish_liquidation
                                 if self.notifier.wants_liquidations else None,
                                 self.live.on_liquidation if self.live is not None else None))
        self._cache_dir = (Path(config.feed.instrument_cache_dir)
                           if config.feed.instrument_cache_dir else default_cache_dir())
        for venue, vc in config.enabled_venues().items():
            self.add_feed(venue, vc)
        if config.metrics.enabled:
            self.server = MetricsServer(self.registry, config.metrics.host, self._metrics_port,
                                        self.readiness,
                                        web=WebRoutes(self.live) if self.live else None)
            await self.server.start()
        log.info("liqmon running: venues %s, store %s", ", ".join(self.feeds) or "none",
                 config.store.backend)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                for venue in self.feeds:
                    self._start_feed(venue)
                ingest_task = tg.create_task(self.ingest.run(), name="ingest")
                loops = [tg.create_task(self._evaluate_loop(), name="evaluate"),
                         tg.create_task(self._summary_loop(), name="summary")]
                if self.live is not None:
                    loops.append(tg.create_task(self.live.run(), name="web"))
                self.ready.set()
                loops.append(tg.create_task(self.service.run(), name="service"))
                await stop.wait()
                # Stop taking frames first; everything after drains what was taken.
                self.stopping = True
                self._tg = None
                self.service.stopping()
                log.info("shutting down: draining within %.0fs", self.shutdown_deadline_seconds)
                feed_tasks = list(self.feed_tasks.values())
                for task in feed_tasks:
                    task.cancel()
                await asyncio.gather(*feed_tasks, return_exceptions=True)
                left = await self.ingest.drain(self.shutdown_left() / 2)
                if left:
                    log.error("shutdown: %d events were still queued for ingest", left)
                for task in [ingest_task, *loops]:
                    task.cancel()
        finally:
            self._tg = None
            await self._close()
        return 0

    async def _close(self) -> None:
        if self.notifier is not None:
            # Notifications (issue 6): after ingest drained, before the store closes (claims
            # use it); half of what is left of the deadline, so the store keeps the rest.
            left = await self.notifier.drain(self.shutdown_left() / 2)
            if left:
                log.error("shutdown: %d notifications were not delivered", left)
            await self.notifier.aclose()
        if self.store is not None:
            try:
                left = await self.store.flush(self.shutdown_left())
                if left:
                    log.error("shutdown: %d events could not be written to the store", left)
            finally:
                await self.store.aclose()
        if self.recorder is not None:
            self.recorder.close()
        if self.server is not None:
            await self.server.aclose()
        if self.ingest is not None:
            log.info("stopped: %d liquidations counted since start", self.ingest.counted_total)

    def shutdown_left(self) -> float:
        """Seconds left of the shutdown deadline, which starts at the first call."""
        if self._shutdown_deadline is None:
            self._shutdown_deadline = self.clock.monotonic() + self.shutdown_deadline_seconds
        return max(0.0, self._shutdown_deadline - self.clock.monotonic())

    # -- feeds (also changed at run time by the reloader on SIGHUP) -----------------------
    def add_feed(self, venue: str, vc: VenueConfig) -> None:
        """Build a venue's feed from ``self.config``; start it if the app is running."""
        assert self.ingest is not None, "feeds are added once ingest exists"
        sink = self.live.watch(self.ingest) if self.live is not None else self.ingest
        self.feeds[venue] = build_feed(venue, vc, self.config, sink, self.metrics,
                                       self.clock, cache_dir=self._cache_dir, tap=self._tap)
        if self._tg is not None:
            self._start_feed(venue)

    def _start_feed(self, venue: str) -> None:
        assert self._tg is not None
        self.feed_tasks[venue] = self._tg.create_task(self.feeds[venue].run(),
                                                      name=f"feed-{venue}")

    async def remove_feed(self, venue: str) -> None:
        """Stop a venue's feed and forget it; what it counted stays counted."""
        self.feeds.pop(venue, None)
        task = self.feed_tasks.pop(venue, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _each(*callbacks: Callable[[Liquidation], None] | None
          ) -> Callable[[Liquidation], None] | None:
    """One callback calling every given one (None when none is given)."""
    given = [c for c in callbacks if c is not None]
    if len(given) <= 1:
        return given[0] if given else None

    def each(event: Liquidation) -> None:
        for callback in given:
            callback(event)

    return each


def install_signal_handlers(
    stop: asyncio.Event, reload: Callable[[], None] | None = None
) -> None:
    """SIGTERM and SIGINT set ``stop``; SIGHUP calls ``reload`` when given."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, reload)
