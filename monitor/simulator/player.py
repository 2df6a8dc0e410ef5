"""The player: plays a scenario's events to the venue sims on the wall clock.

It turns scenario (market) time into wall time at ``speed`` (60x: three hours in three
minutes). Exchange timestamps are either ``start_wall + market seconds`` (the market clock:
they run at the same speed, for a daemon whose clock follows market time, as in ``liqmon
demo``) or, with ``wall_clock``, the wall time at which the player reaches them (``liqmon
simulate``: a separate daemon reads its own clock, so the night is compressed in rate and
nothing is stamped in the future).

Trade ids derive from a sequence number that starts at ``seq_start``. ``liqmon simulate``
starts it at the wall clock in microseconds, so a restarted simulator never repeats an id
that a store's dedupe still remembers (a run emits far fewer than one event a microsecond).

Every ``TICK_SECONDS`` the player hands the due events to the venue sims, collects
their publications and queues them on the connections subscribed to them; nothing is
created per event and nothing waits for a client (see ``connection.py``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from monitor.simulator.connection import SimConnection
from monitor.simulator.ledger import SentCounts
from monitor.simulator.scenarios.model import Scenario, ScenarioEvent
from monitor.simulator.venue_sim import Liq, SimContext, SimNow, VenueSim

# The simulator's logger: its lines keep the name the docs and log filters know.
log = logging.getLogger("monitor.simulator.server")

TICK_SECONDS = 0.02


class Player:
    """The scenario's clock and its play. ``sims``, ``contexts`` and ``conns`` are the
    server's (per venue): the connections come and go while it plays."""

    def __init__(
        self,
        scenario: Scenario,
        sims: Mapping[str, VenueSim],
        contexts: Mapping[str, SimContext],
        conns: Mapping[str, set[SimConnection]],
        sent: Callable[[], SentCounts],
        *,
        speed: float,
        start_wall: float | None,
        wall_clock: bool,
        loop_scenario: bool,
        wait_for_subscribers: float | None,
        start_when: asyncio.Event | None,
        seq_start: int,
    ) -> None:
        self.scenario = scenario
        self._sims = sims
        self._contexts = contexts
        self._conns = conns
        self._sent = sent
        self.speed = speed
        self.start_wall = start_wall
        self.wall_clock = wall_clock
        self.loop_scenario = loop_scenario
        self.wait_for_subscribers = wait_for_subscribers
        self._start_when = start_when
        self.finished = asyncio.Event()
        self._seq = seq_start
        self._play_wall: float | None = None
        self.market_seconds = 0.0
        self._play_started: float | None = None

    def exchange_seconds(self, market_seconds: float) -> float:
        """The venues' clock (epoch seconds) at a point of market time."""
        wall0 = self.start_wall if self.start_wall is not None else time.time()
        if self.wall_clock:
            return (self._play_wall or wall0) + market_seconds / self.speed
        return wall0 + market_seconds

    def now(self) -> SimNow:
        """The venues' clock now, and the loop's."""
        exchange_ms = int(self.exchange_seconds(self.market_seconds) * 1000)
        return SimNow(exchange_ms, asyncio.get_running_loop().time())

    async def _wait_subscribers(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.wait_for_subscribers or 0.0)
        while loop.time() < deadline:
            if all(ctx.subscribed for ctx in self._contexts.values()):
                return
            await asyncio.sleep(TICK_SECONDS)

    async def play(self) -> None:
        """Until the scenario is played (forever with ``loop_scenario``)."""
        loop = asyncio.get_running_loop()
        if self.wait_for_subscribers:
            await self._wait_subscribers()
        if self._start_when is not None:
            await self._start_when.wait()
        started = self._play_started = loop.time()
        self._play_wall = time.time()
        duration = self.scenario.duration_seconds
        passes = 0
        while True:
            offset = passes * duration
            events = self.scenario.iter_events()
            upcoming = next(events, None)
            while True:
                self.market_seconds = (loop.time() - started) * self.speed
                in_pass = self.market_seconds - offset
                while upcoming is not None and upcoming.at_seconds <= in_pass:
                    self._dispatch(upcoming, offset)
                    upcoming = next(events, None)
                if upcoming is None and in_pass >= duration:
                    break
                self._tick(final=False)
                await asyncio.sleep(TICK_SECONDS)
            self._tick(final=True)
            if passes == 0:
                await self._drained()
                self.finished.set()
                log.info("simulator: scenario %s played; sent %s", self.scenario.name,
                         self._sent().to_json()["total_count"])  # fmt: skip
            if not self.loop_scenario:
                return
            passes += 1

    def _dispatch(self, event: ScenarioEvent, offset: float) -> None:
        ts_ms = int(self.exchange_seconds(offset + event.at_seconds) * 1000)
        if event.kind == "mark":
            for each in self._sims.values():
                each.on_mark(event.coin, event.price, ts_ms)
            return
        sim = self._sims.get(event.venue)
        # A delisted instrument trades no more: its liquidations never happen.
        if sim is not None and sim.is_listed(event.instrument):
            self._seq += 1
            sim.on_liquidation(Liq(self._seq, event, ts_ms))

    def _tick(self, *, final: bool) -> None:
        now = self.now()
        for venue, sim in self._sims.items():
            conns = self._conns[venue]
            pubs = sim.flush(now, final)
            for conn in list(conns):
                for pub in pubs:
                    conn.offer(pub)
                conn.push(conn.session.tick(now))
                drop = conn.faults.drop_every_seconds
                if drop is not None and conn.age() >= drop and not conn.closed:
                    conn.abort()
                else:
                    conn.flush()

    async def _drained(self) -> None:
        for conns in self._conns.values():
            for conn in list(conns):
                await conn.idle.wait()
