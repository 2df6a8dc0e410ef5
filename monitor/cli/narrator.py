"""What ``liqmon demo`` tells on stderr: a line every ten market minutes on the market clock
(the liquidations since the line before, humanised, and the cascade state), every alert as
it happens, and the end once every cascade has resolved.

The demo does not stop at the scenario's last frame: market time runs on (``MarketClock``)
until the detector has resolved every cascade, so nothing is left retained on MQTT and the
story ends where the operator's would.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from monitor.alerts import CascadeAlert, WhaleAlert, alert_log_line
from monitor.app import App
from monitor.cli.fmt import elapsed, usd
from monitor.events import Liquidation, PositionSide
from monitor.simulator.server import Simulator

# After the scenario's last frame the daemon counts what is still in flight: until it has
# counted every liquidation the simulator sent, or has counted nothing new for this long
# (frames lost to a --faults disconnect never arrive).
SETTLE_SECONDS = 3.0
# Then market time runs on until every cascade has resolved, for at most this long.
RESOLVE_WAIT_SECONDS = 60.0
LINE_EVERY_MARKET_SECONDS = 600.0
POLL_SECONDS = 0.1


class Narrator:
    def __init__(self, app: App, sim: Simulator, start: float,
                 stream: TextIO | None = None) -> None:
        self._app = app
        self._sim = sim
        self._start = start
        self._stream = stream or sys.stderr
        self._long = self._short = 0.0
        self._count = 0
        self._next_line = LINE_EVERY_MARKET_SECONDS
        self._began = time.monotonic()

    def _market(self) -> float:
        return self._app.clock.wall() - self._start

    def _say(self, text: str) -> None:
        self._stream.write(f"[{elapsed(self._market())}] {text}\n")
        self._stream.flush()

    # -- listeners (called from ingest and the detector loop: no waiting) --------------------
    def liquidation(self, event: Liquidation) -> None:
        if event.position_side is PositionSide.LONG:
            self._long += event.notional_usd
        else:
            self._short += event.notional_usd
        self._count += 1

    def alert(self, alert: CascadeAlert | WhaleAlert) -> None:
        self._say(alert_log_line(alert))

    # -- the story ---------------------------------------------------------------------------
    def started(self, metrics_port: int | None) -> None:
        if metrics_port is not None:
            host = self._app.config.metrics.host
            self._stream.write(f"metrics: http://{host}:{metrics_port}/metrics\n")

    def _cascades(self) -> str:
        detector = self._app.detector
        states = [s for s in (detector.states() if detector is not None else [])
                  if s.severity is not None]
        if not states:
            return "quiet"
        return ", ".join(f"{s.scope} {s.position_side.value} {s.severity.value}"
                         for s in states[:2] if s.severity is not None)

    def _progress(self) -> None:
        while self._market() >= self._next_line:
            self._next_line += LINE_EVERY_MARKET_SECONDS
            self._say(f"{self._count:>6,} liquidations: longs {usd(self._long):>7}, "
                      f"shorts {usd(self._short):>7}; cascade: {self._cascades()}")
            self._long = self._short = 0.0
            self._count = 0

    async def _until(self, done: object, limit: float | None = None) -> bool:
        """Say progress until ``done()``; False when ``limit`` real seconds passed first."""
        assert callable(done)
        deadline = None if limit is None else time.monotonic() + limit
        while not done():
            if deadline is not None and time.monotonic() > deadline:
                return False
            self._progress()
            await asyncio.sleep(POLL_SECONDS)
        return True

    async def _settle(self) -> None:
        """Until the daemon has counted what the simulator sent, or stopped counting.

        Not a fixed pause: the simulator has written its last frame, not the daemon read it.
        On a loaded machine the readers trail by seconds, with thousands of liquidations in
        the socket buffers, and the demo's stop closes the feeds: what they had not read was
        lost and the table said counted < sent."""
        ingest = self._app.ingest
        if ingest is None:
            return
        sent = self._sim.sent().count()
        counted = ingest.counted_total
        still_since = time.monotonic()
        while ingest.counted_total < sent:
            if ingest.counted_total != counted:
                counted, still_since = ingest.counted_total, time.monotonic()
            elif time.monotonic() - still_since >= SETTLE_SECONDS:
                return
            self._progress()
            await asyncio.sleep(POLL_SECONDS)

    async def play_to_the_end(self) -> None:
        state = self._app.pipeline_state
        # The simulator holds the scenario until every venue is subscribed, or for a while.
        await self._until(lambda: state().connected == state().feeds
                          or self._sim.market_seconds() > 0)
        self._say(f"connected to {state().connected} of {state().feeds} venues in "
                  f"{time.monotonic() - self._began:.1f} s; the night begins")
        await self._until(lambda: self._sim.finished)
        self._say("the scenario has played; market time runs on until the cascades resolve")
        await self._settle()
        resolved = await self._until(lambda: self._cascades() == "quiet", RESOLVE_WAIT_SECONDS)
        if resolved:
            retained = ("; no retained MQTT cascade state is left"
                        if self._app.config.notify.mqtt.enabled else "")
            self._say(f"every cascade has resolved{retained}")
        else:
            self._say(f"cascades still open after {RESOLVE_WAIT_SECONDS:.0f} s: "
                      f"{self._cascades()}")
