"""The daemon's side of the systemd conversation: READY, periodic STATUS, gated WATCHDOG.

The watchdog contract. Every ``WATCHDOG_USEC / 2`` the service loop, running on the event
loop itself (a blocked loop sends nothing), takes a :class:`PipelineSample` and pings
``WATCHDOG=1`` only when :class:`ProgressGate` says the pipeline made progress:

1. ingest is not stuck: it is stuck when events were waiting for it at the previous
   check, are still waiting now, and no liquidation was counted in between; and
2. the feeds are alive, which is any of:
   - a frame was read, on any connection, within the last ``WATCHDOG_USEC``;
   - a connection attempt ended (``liqmon_feed_reconnects_total`` moved, any reason:
     stale, closed, error, timeout, rejected, rotation) within that window;
   - some connection is legitimately between attempts now: connecting, subscribing,
     waiting out its backoff, or its venue is still waiting for an instrument list.
     Each of those states is bounded by the supervisor's own timeouts, so it cannot
     hide a wedge for long;
   - no venue feed is configured (then only the event loop and ingest are judged);
   - the process is younger than one window (start-up).

So the pings stop when every connection claims to be subscribed and none has produced a
frame or been recycled for a whole window — the supervisor's stale watchdog should have
reconnected a silent connection after its venue's ``silence_limit_seconds`` — or when
ingest has a backlog it does not drain. A store outage is not a wedge: the store buffers
within bounds and says so in metrics and in STATUS. For this to hold, ``WatchdogSec`` must
exceed every enabled venue's ``silence_limit_seconds`` plus ``feed.open_timeout_seconds``
and ``feed.ack_timeout_seconds``; :func:`check_watchdog_window` warns at start otherwise.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from monitor.clock import Clock
from monitor.config import Config
from monitor.service.sdnotify import SdNotify

log = logging.getLogger(__name__)

STATUS_INTERVAL_SECONDS = 10.0
RATE_WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class PipelineSample:
    at: float  # monotonic seconds
    frames: float  # frames read since start, every venue
    attempts: float  # connection attempts that ended since start, any reason
    between: int  # connections not subscribed now (or venues waiting for instruments)
    feeds: int  # venue feeds running
    queued: int  # events waiting for ingest
    counted: int  # liquidations counted since start


@dataclass(frozen=True, slots=True)
class PipelineState:
    """What the service loop reads of the running daemon, at one moment."""

    frames: float  # frames read since start, every venue
    attempts: float  # connection attempts that ended since start, any reason
    between: int  # connections not subscribed now (or venues waiting for instruments)
    feeds: int  # venue feeds running
    connected: int  # venues whose every connection is subscribed
    queued: int  # events waiting for ingest
    counted: int  # liquidations counted since start
    store: str  # the store's state in words: "redis ok, 12 buffered"


class Pipeline(Protocol):
    """The daemon as the service loop sees it."""

    @property
    def config(self) -> Config: ...

    def pipeline_state(self) -> PipelineState: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    progress: bool
    reason: str


class ProgressGate:
    """Pure: decides from successive samples whether the pipeline made progress."""

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._samples: deque[PipelineSample] = deque()
        self._first: PipelineSample | None = None

    def check(self, sample: PipelineSample) -> Verdict:
        previous = self._samples[-1] if self._samples else None
        if self._first is None:
            self._first = sample
        self._samples.append(sample)
        # Keep the newest sample at or before the window's start as the baseline.
        start = sample.at - self.window_seconds
        while len(self._samples) > 1 and self._samples[1].at <= start:
            self._samples.popleft()
        if (previous is not None and previous.queued > 0 and sample.queued > 0
                and sample.counted == previous.counted):
            return Verdict(False, f"ingest stuck: {sample.queued} events queued and none "
                                  f"counted for {sample.at - previous.at:.1f}s")
        if sample.feeds == 0:
            return Verdict(True, "no venue feeds")
        if sample.between > 0:
            return Verdict(True, f"{sample.between} connection(s) between attempts")
        baseline = self._samples[0]
        if baseline.at > start:
            return Verdict(True, "starting")
        if sample.frames > baseline.frames:
            return Verdict(True, "frames read")
        if sample.attempts > baseline.attempts:
            return Verdict(True, "connections recycled")
        return Verdict(False, f"no frame read and no connection recycled for "
                              f"{sample.at - baseline.at:.1f}s while every connection is "
                              "subscribed")


def check_watchdog_window(config: Config, watchdog_seconds: float | None) -> str | None:
    """A warning when WatchdogSec is too short for the feeds' own silence handling."""
    venues = config.enabled_venues()
    if watchdog_seconds is None or not venues:
        return None
    longest = max(vc.silence_limit_seconds for vc in venues.values())
    needed = longest + config.feed.open_timeout_seconds + config.feed.ack_timeout_seconds
    if watchdog_seconds > needed:
        return None
    return (f"WatchdogSec={watchdog_seconds:g}s is not above the longest silence limit "
            f"({longest:g}s) plus the open and ack timeouts ({needed:g}s in all): a venue "
            "going quiet can get the whole daemon restarted by systemd before it reconnects")


class ServiceLoop:
    """Sends READY once, then STATUS every few seconds and WATCHDOG while progress is made."""

    def __init__(
        self, pipeline: Pipeline, clock: Clock, sd: SdNotify, watchdog_seconds: float | None
    ) -> None:
        self._pipeline = pipeline
        self._clock = clock
        self._sd = sd
        self.watchdog_seconds = watchdog_seconds
        self._gate = ProgressGate(watchdog_seconds or STATUS_INTERVAL_SECONDS)
        self._counted: deque[tuple[float, int]] = deque()
        self.note: str | None = None  # e.g. a rejected reload, shown until the next one
        self.pings = 0
        self._wedged = False
        self._last_state: PipelineState | None = None

    @property
    def tick_seconds(self) -> float:
        if self.watchdog_seconds is None:
            return STATUS_INTERVAL_SECONDS
        return min(self.watchdog_seconds / 2, STATUS_INTERVAL_SECONDS)

    def sample(self) -> PipelineSample:
        state = self._last_state = self._pipeline.pipeline_state()
        return PipelineSample(
            at=self._clock.monotonic(),
            frames=state.frames,
            attempts=state.attempts,
            between=state.between,
            feeds=state.feeds,
            queued=state.queued,
            counted=state.counted,
        )

    def status_line(self, sample: PipelineSample | None = None) -> str:
        sample = sample or self.sample()
        state = self._last_state
        assert state is not None
        parts = [f"venues connected {state.connected}/{state.feeds}",
                 f"{self._rate(sample):.0f} liquidations/min",
                 f"store {state.store}"]
        if self.note:
            parts.append(self.note)
        return "; ".join(parts)

    def _rate(self, sample: PipelineSample) -> float:
        self._counted.append((sample.at, sample.counted))
        while len(self._counted) > 1 and self._counted[1][0] <= sample.at - RATE_WINDOW_SECONDS:
            self._counted.popleft()
        at, counted = self._counted[0]
        elapsed = sample.at - at
        return (sample.counted - counted) * 60.0 / elapsed if elapsed > 0 else 0.0

    async def run(self) -> None:
        """READY=1 now (the metrics endpoint is up and the feeds are starting), then loop."""
        warning = check_watchdog_window(self._pipeline.config, self.watchdog_seconds)
        if warning:
            log.warning("%s", warning)
        self._sd.ready(self.status_line())
        while True:
            await asyncio.sleep(self.tick_seconds)
            self.tick()

    def tick(self) -> None:
        sample = self.sample()
        status = self.status_line(sample)
        if self.watchdog_seconds is None:
            self._sd.status(status)
            return
        verdict = self._gate.check(sample)
        if verdict.progress:
            if self._wedged:
                self._wedged = False
                log.info("watchdog: pipeline moving again (%s); pinging systemd",
                            verdict.reason)
            if self._sd.watchdog(status):
                self.pings += 1
        else:
            if not self._wedged:
                self._wedged = True
                log.error("watchdog: %s; not pinging systemd, which restarts the service "
                          "if this lasts %.0fs", verdict.reason, self.watchdog_seconds)
            self._sd.status(f"{status}; wedged: {verdict.reason}")

    def reloading(self) -> None:
        self._sd.reloading()

    def reloaded(self, note: str | None) -> None:
        self.note = note
        self._sd.ready(self.status_line())

    def stopping(self) -> None:
        self._sd.stopping()
