"""Composition root: builds every part from Config and runs them in one TaskGroup.

Every long-lived task (each venue feed, ingest, detection, the summary and service loops,
the store flusher, the notifier's outbox workers and MQTT loops, the metrics endpoint) is a
named task of the app's one TaskGroup. A task that fails is logged with its traceback and
takes the daemon down (exit 1, so systemd restarts it); a task that returns while the daemon
runs is a bug treated the same way. Nothing is left half alive.

Shutdown is ordered: stop taking frames, drain ingest, deliver what the notifier holds
(its workers still run), flush the store (its flusher still runs), all within a deadline
(``shutdown.py``); then cancel what is left, close connections and say what was not done.
The detector's evaluation loop is ``evaluation.py``; signals and exit codes ``signals.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

import monitor.feed.tls as tls
from monitor.alerts import CascadeAlert, WhaleAlert, alert_log_line
from monitor.clock import Clock, SystemClock
from monitor.config import Config, VenueConfig
from monitor.detector.engine import Detector
from monitor.evaluation import evaluate_loop
from monitor.events import Liquidation
from monitor.feed.factory import Feed, build_feed
from monitor.feed.health import FeedChange, FeedWatch
from monitor.feed.instruments import default_cache_dir
from monitor.feed.ports import FrameTap
from monitor.feed.recorder import Recorder
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.notify.feed_notice import FeedNotice
from monitor.notify.notifier import Notifier
from monitor.service.endpoint import MetricsServer
from monitor.service.reload import Reloader, ReloadPlan
from monitor.service.sdnotify import SdNotify, watchdog_seconds
from monitor.service.watchdog import PipelineState, ServiceLoop
from monitor.shutdown import cancel_all, drain_in_order
from monitor.signals import EXIT_FAILURE, EXIT_OK, exit_code, signal_handlers
from monitor.store.base import Store
from monitor.store.coverage_writer import CoverageWriter
from monitor.store.dedupe import ingest_dedupe
from monitor.store.factory import open_store
from monitor.web.http import WebRoutes
from monitor.web.live import LiveView

log = logging.getLogger(__name__)

SHUTDOWN_DEADLINE_SECONDS = 10.0


class TaskEnded(RuntimeError):
    """A long-lived task returned while the daemon was running: a bug, never normal."""


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
        self.coverage: CoverageWriter | None = None  # feed gaps per venue and minute
        self.ingest: Ingest | None = None
        self.detector: Detector | None = (
            Detector(config.detector) if config.detector.enabled else None
        )
        self.feeds: dict[str, Feed] = {}
        self.server: MetricsServer | None = None
        self.recorder: Recorder | None = None
        self.alerts: list[CascadeAlert | WhaleAlert] = []
        self.on_alert: list[Callable[[CascadeAlert | WhaleAlert], None]] = []
        # Every counted liquidation, after dedupe (the MQTT stream, `--tape`, `liqmon tail`).
        self.on_liquidation: list[Callable[[Liquidation], None]] = []
        # The same a frame's liquidations at a time: one call per frame, not per row.
        self.on_liquidations: list[Callable[[list[Liquidation]], None]] = []
        self.notifier: Notifier | None = None  # MQTT and webhooks, built in run()
        self.live: LiveView | None = None  # the web page's state, served with /metrics
        self.ready = asyncio.Event()
        # systemd: READY/STATUS/WATCHDOG/STOPPING (no-ops without NOTIFY_SOCKET).
        self.service = ServiceLoop(self, self.clock, sd or SdNotify(None), watchdog_seconds)
        self.stopping = False
        self.feed_tasks: dict[str, asyncio.Task[None]] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._background: list[asyncio.Task[None]] = []
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

    def pipeline_state(self) -> PipelineState:
        """What the service loop judges progress and writes STATUS from."""
        between = connected = 0
        for feed in self.feeds.values():
            between += (feed.connections - feed.subscribed) if feed.connections else 1
            connected += bool(feed.connections and feed.subscribed == feed.connections)
        ingest = self.ingest
        return PipelineState(
            frames=self.metrics.frames_total(),
            attempts=self.metrics.connection_attempts_total(),
            between=between,
            feeds=len(self.feeds),
            connected=connected,
            queued=ingest.queued if ingest is not None else 0,
            counted=ingest.counted_total if ingest is not None else 0,
            store=self._store_state(),
        )

    def _store_state(self) -> str:
        store = self.store
        if store is None:
            return "opening"
        pending = int(getattr(store, "pending", 0))
        state = "ok" if store.healthy() else "degraded"
        return f"{self.config.store.backend} {state}" + (
            f", {pending} buffered" if pending else "")

    # -- alerts -----------------------------------------------------------------------------
    def _alert(self, alert: CascadeAlert | WhaleAlert) -> None:
        log.warning("%s", alert_log_line(alert))
        self.alerts.append(alert)
        if len(self.alerts) > 1000:
            del self.alerts[:500]
        for callback in self.on_alert:
            callback(alert)

    def _liquidations(self, events: list[Liquidation]) -> None:
        for batch_callback in self.on_liquidations:
            batch_callback(events)
        for callback in self.on_liquidation:
            for event in events:
                callback(event)

    async def _evaluate_loop(self) -> None:
        await evaluate_loop(self.detector, self.metrics, self.clock,
                            self.config.detector.eval_interval_seconds, self._alert, self.store)

    async def _summary_loop(self) -> None:
        interval = self.config.logging.summary_interval_seconds
        while True:
            await asyncio.sleep(interval)
            if self.ingest is None:
                continue
            stats = self.ingest.take_stats()
            state = self.pipeline_state()
            log.info(
                "last %.0fs: %d liquidations, longs $%.0f, shorts $%.0f, %d duplicates, "
                "%d dropped; venues connected %d/%d; store %s",
                interval, stats.events, stats.usd_long, stats.usd_short, stats.duplicates,
                stats.dropped, state.connected, state.feeds,
                "ok" if self.store is not None and self.store.healthy() else "degraded")

    # -- lifecycle --------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> int:
        """Run until ``stop`` is set (exit 0) or a task fails (logged, exit 1)."""
        failed = False
        try:
            await self._open()
            try:
                async with asyncio.TaskGroup() as tg:
                    self._tg = tg
                    self._start_background(tg)
                    self.ready.set()
                    await stop.wait()
                    await self._drain()
                    await cancel_all([*self._background, *self.feed_tasks.values()])
            except* Exception as failure:
                # The failing task logged its traceback; the group cancelled the others.
                failed = True
                log.critical("liqmon is stopping because a task failed: %s",
                             "; ".join(str(exc) for exc in failure.exceptions))
        finally:
            self._tg = None
            await self._close()
        return EXIT_FAILURE if failed else EXIT_OK

    async def _open(self) -> None:
        config = self.config
        self.store = await open_store(config.store, self.metrics, self.clock, start=False,
                                      behind_ingest=True)
        self.coverage = CoverageWriter(self.store, self.metrics, self.clock,
                                       config.enabled_venues(),
                                       retention_hours=config.store.retention_hours)
        self.metrics.connection_listeners.append(self.coverage.connections)
        # Every alert goes to the notifier's outboxes (publish never waits); large
        # liquidations reach it from ingest. It claims alerts in the store.
        self.notifier = Notifier(config.notify, self.store, self.metrics, self.clock)
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
            self.on_liquidations.append(self.live.on_liquidations)
        if self.notifier.wants_liquidations:
            self.on_liquidation.append(self.notifier.publish_liquidation)
        self.ingest = Ingest(self.store, self.detector, self.metrics, self.clock,
                             capacity=config.feed.queue_size, on_whale=self._alert,
                             on_liquidations=self._liquidations
                             if self.on_liquidation or self.on_liquidations else None,
                             dedupe=ingest_dedupe(config.store.dedupe_ttl_hours,
                                                  config.store.dedupe_max_ids),
                             bounds=config.feed.bounds())
        self._cache_dir = (Path(config.feed.instrument_cache_dir)
                           if config.feed.instrument_cache_dir else default_cache_dir())
        for venue, vc in config.enabled_venues().items():
            self.add_feed(venue, vc)
        # A feed delivering no data goes out as a notice on MQTT and webhooks.
        self.feed_watch = FeedWatch(lambda: self.feeds,
                                    lambda v: self.config.venues[v].silence_limit_seconds,
                                    self.clock, self._feed_changed)
        if config.metrics.enabled:
            self.server = MetricsServer(self.registry, config.metrics.host, self._metrics_port,
                                        self.readiness,
                                        web=WebRoutes(self.live) if self.live else None)
            await self.server.start()
        log.info("liqmon running: venues %s, store %s", ", ".join(self.feeds) or "none",
                 config.store.backend)

    def _start_background(self, tg: asyncio.TaskGroup) -> None:
        assert self.store is not None and self.notifier is not None and self.ingest is not None
        assert self.coverage is not None
        work: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
            **self.store.background(),
            "coverage": self.coverage.run,
            **self.notifier.background(),
            "ingest": self.ingest.run,
            "evaluate": self._evaluate_loop,
            "summary": self._summary_loop,
            "service": self.service.run,
            "feed-watch": self.feed_watch.run,
        }
        if self.server is not None:
            work["metrics-endpoint"] = self.server.serve
        if self.live is not None:
            work["web"] = self.live.run
        if self.feeds:
            tls.warm()
        for name, run in work.items():
            self._background.append(tg.create_task(self._supervised(name, run()), name=name))
        for venue in self.feeds:
            self._start_feed(venue)

    def _feed_changed(self, change: FeedChange) -> None:
        if change.up:
            log.info("%s: delivers data again after %.0fs without", change.venue,
                     change.silent_seconds)
        else:
            log.warning("%s: no price or liquidation for %.0fs; feed down", change.venue,
                        change.silent_seconds)
        if self.notifier is not None:
            self.notifier.publish(FeedNotice(change.venue, change.up, change.at,
                                             change.silent_seconds))

    async def _supervised(self, name: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except Exception:
            log.critical("task %s failed; stopping the daemon", name, exc_info=True)
            raise
        if not self.stopping:
            log.critical("task %s ended while the daemon was running; stopping", name)
            raise TaskEnded(f"task {name} ended while the daemon was running")

    async def _drain(self) -> None:
        """Stop taking frames first; everything after drains what was taken."""
        self.stopping = True
        self._tg = None
        self.service.stopping()
        log.info("shutting down: draining within %.0fs", self.shutdown_deadline_seconds)
        assert self.ingest is not None
        await drain_in_order(self.shutdown_left, list(self.feed_tasks.values()), self.ingest,
                             self.notifier, self.coverage, self.store)

    async def _close(self) -> None:
        if self.notifier is not None:
            await self.notifier.aclose()
        if self.store is not None:
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

    # -- feeds (also changed at run time by the reloader on SIGHUP) -------------------------
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
        name = f"feed-{venue}"
        self.feed_tasks[venue] = self._tg.create_task(
            self._supervised(name, self.feeds[venue].run()), name=name)

    async def remove_feed(self, venue: str) -> None:
        """Stop a venue's feed and forget it; what it counted stays counted."""
        self.feeds.pop(venue, None)
        task = self.feed_tasks.pop(venue, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # -- reload (the reloader sees the app through monitor.service.reload.Reloadable) ------
    def reload_refusal(self) -> str | None:
        if self.stopping:
            return "stopping"
        if not self.ready.is_set():
            return "still starting"
        return None

    async def apply_reload(self, plan: ReloadPlan) -> None:
        self.config = plan.config
        if plan.detector_changed and self.detector is not None:
            self.detector.reconfigure(plan.config.detector)
        for venue in (*plan.removed, *plan.restarted):
            await self.remove_feed(venue)
        for venue in plan.removed:
            self.metrics.remove_venue_health(venue)
            if self.coverage is not None:
                self.coverage.remove_venue(venue)
        venues = plan.config.enabled_venues()
        for venue in (*plan.added, *plan.restarted):
            if venue in plan.added:
                self.metrics.add_venue(venue)
                if self.coverage is not None:
                    self.coverage.add_venue(venue)
            self.add_feed(venue, venues[venue])


async def run_service(
    config: Config, path: str | None, *, log_level_override: str | None = None,
    metrics_port: int | None = None,
    on_liquidation: Callable[[Liquidation], None] | None = None,
) -> int:
    """``liqmon run``: the daemon with systemd notification, SIGHUP reload and SIGTERM drain.
    ``metrics_port`` overrides ``[metrics] port``; ``on_liquidation`` sees every counted
    liquidation (``--tape``)."""
    sd = SdNotify.from_env()
    app = App(config, sd=sd, watchdog_seconds=watchdog_seconds() if sd.enabled else None,
              metrics_port=metrics_port)
    if on_liquidation is not None:
        app.on_liquidation.append(on_liquidation)
    stop = asyncio.Event()
    reloader = Reloader(app, app.service, path, log_level_override=log_level_override)
    try:
        with signal_handlers(stop, reload=reloader.schedule) as received:
            return exit_code(await app.run(stop), received)
    finally:
        sd.close()
