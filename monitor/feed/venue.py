"""One venue's feed: its instrument service and one connection runner per plan (shard).

Every instrument refresh replans the venue. A plan whose connection (name and URL) is
still wanted and which lists its topics (``ConnectionPlan.topics``) is handed to the live
runner, which unsubscribes delisted topics and subscribes new listings on its socket; any
other changed plan rebuilds only its own shard. Topics a venue refused are shared by the
venue's runners and forgotten at each refresh, so they are tried once more then.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from pathlib import Path

from monitor.clock import Clock
from monitor.feed.instruments import InstrumentService
from monitor.feed.ports import EventSink, FeedObserver, FrameTap
from monitor.feed.supervisor import ConnectionRunner, FeedTiming
from monitor.logs import RateLimitedLog
from monitor.venues.dialect import ConnectionPlan, Dialect
from monitor.venues.instruments import BookChange

log = logging.getLogger(__name__)


class VenueFeed:
    def __init__(
        self,
        dialect: Dialect,
        ws_base_url: str,
        rest_base_url: str,
        timing: FeedTiming,
        sink: EventSink,
        observer: FeedObserver,
        clock: Clock,
        *,
        instruments_refresh_seconds: float,
        cache_dir: Path | None,
        tap: FrameTap | None = None,
    ) -> None:
        self.dialect = dialect
        self.venue = dialect.venue
        self._ws_base_url = ws_base_url
        self._timing = timing
        self._sink = sink
        self._observer = observer
        self._clock = clock
        self._tap = tap
        self._warn = RateLimitedLog(log)
        self._replan = asyncio.Event()
        self.instruments = InstrumentService(
            dialect, rest_base_url, refresh_seconds=instruments_refresh_seconds,
            cache_dir=cache_dir, on_change=self._instruments_changed)
        self.runners: dict[str, tuple[ConnectionPlan, ConnectionRunner, asyncio.Task[None]]] = {}
        self.refused: set[str] = set()

    @property
    def subscribed(self) -> int:
        return sum(1 for _p, r, _t in self.runners.values() if r.subscribed)

    @property
    def connections(self) -> int:
        return len(self.runners)

    @property
    def last_data_at(self) -> float | None:
        """Monotonic time of the last frame carrying data, on any connection."""
        return max((r.last_data_at for _p, r, _t in self.runners.values()
                    if r.last_data_at is not None), default=None)

    def _report(self) -> None:
        self._observer.connections(self.venue, self.subscribed, len(self.runners))

    def _instruments_changed(self, change: BookChange) -> None:
        self.refused.clear()
        self._replan.set()

    async def run(self) -> None:
        self._report()
        self._observer.completeness_of(self.venue, self.dialect.completeness.value)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.instruments.run(), name=f"{self.venue}-instruments")
            if self.dialect.instrument_requests(""):
                await self.instruments.loaded.wait()
            while True:
                await self._apply_plans(tg)
                await self._replan.wait()
                self._replan.clear()

    async def _apply_plans(self, tg: asyncio.TaskGroup) -> None:
        plans = {p.name: p for p in self.dialect.plans(self._ws_base_url, self.instruments.book)}
        for name in list(self.runners):
            old_plan, runner, task = self.runners[name]
            plan = plans.get(name)
            if plan is not None and plan.url == old_plan.url and plan.topics and old_plan.topics:
                # Even an unchanged plan: topics refused before the refresh are retried.
                self.runners[name] = (plan, runner, task)
                await runner.update(plan)
                continue
            if plan == old_plan:
                continue
            task.cancel()
            del self.runners[name]
        for name, plan in plans.items():
            if name in self.runners:
                continue
            runner = ConnectionRunner(
                self.dialect, plan,
                functools.partial(self.dialect.session, self.instruments.book, plan),
                self._sink, self._observer, self._clock, self._timing,
                on_state=self._report, instruments=self.instruments, tap=self._tap,
                warn=self._warn, refused=self.refused)
            task = tg.create_task(runner.run(), name=f"{self.venue}-{name}")
            self.runners[name] = (plan, runner, task)
        log.info("%s: %d connection(s) planned", self.venue, len(self.runners))
        self._report()
