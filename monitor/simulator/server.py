"""The exchange simulator: one loopback port serving every simulated venue, and the player.

Every venue lives under a path prefix equal to its venue id, followed by the venue's real
paths, for websockets and REST alike::

    ws://127.0.0.1:PORT/binance-usdm/market/ws        wss://fstream.binance.com/market/ws
    http://127.0.0.1:PORT/bybit/v5/market/instruments-info?category=linear
    http://127.0.0.1:PORT/hyperliquid/info            (POST {"type":"meta"})

so a daemon reaches it only through its configured base URLs (``config_overrides()``).

The player (``player.py``) plays the scenario to the venue sims; this module serves them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qsl

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from monitor.simulator.connection import SimConnection
from monitor.simulator.faults import Faults, faults_for
from monitor.simulator.http import HttpAwareConnection, QuietLog, http_response, not_found
from monitor.simulator.ledger import Ledger, SentCounts
from monitor.simulator.player import Player
from monitor.simulator.scenarios.model import Scenario
from monitor.simulator.venue_sim import RestRequest, SimContext, SimSession, VenueSim
from monitor.simulator.venues import SIMULATORS, make_venue_sim

log = logging.getLogger(__name__)

# Price streams go out at most every this many wall seconds, whatever the speed.
MARK_MIN_WALL_SECONDS = 0.1


class Simulator:
    """Local venue servers playing a scenario. An async context manager (or start/aclose)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        speed: float = 60.0,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | Sequence[Faults] | None = None,
        venues: Sequence[str] | None = None,
        start_wall: float | None = None,
        loop_scenario: bool = False,
        wait_for_subscribers: float | None = None,
        seed: int = 0,
        wall_clock: bool = False,
        seq_start: int = 0,
        start_when: asyncio.Event | None = None,
    ) -> None:
        """``wait_for_subscribers``: hold the scenario clock until every simulated venue has a
        subscribed connection, or for at most that many seconds (None: start at once).
        ``start_when``: hold it, besides, until that event is set (a test that must watch
        the scenario from its first second, e.g. through a browser that takes long to open)."""
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.scenario = scenario
        self.speed = speed
        self.host = host
        self.port = port
        self.loop_scenario = loop_scenario
        self.wait_for_subscribers = wait_for_subscribers
        self.venues = tuple(venues) if venues is not None else tuple(SIMULATORS)
        self._faults = faults
        self._ledger = Ledger(self.venues)
        self._rng = random.Random(seed)
        # On the wall clock the venues' time runs at 1x: a mark a second, as the real ones.
        mark_ms = 1000 if wall_clock else int(max(speed * MARK_MIN_WALL_SECONDS, 1.0) * 1000)
        self._sims: dict[str, VenueSim] = {}
        self._contexts: dict[str, SimContext] = {}
        for venue in self.venues:
            ctx = SimContext(venue, self._ledger.was_sent, mark_ms, random.Random(f"{seed}{venue}"))
            self._contexts[venue] = ctx
            self._sims[venue] = make_venue_sim(ctx)
        self._conns: dict[str, set[SimConnection]] = {venue: set() for venue in self.venues}
        self._server: Server | None = None
        self.wall_clock = wall_clock
        self._player = Player(
            scenario, self._sims, self._contexts, self._conns, self.sent, speed=speed,
            start_wall=start_wall, wall_clock=wall_clock, loop_scenario=loop_scenario,
            wait_for_subscribers=wait_for_subscribers, start_when=start_when,
            seq_start=seq_start)
        self._playing: asyncio.Task[None] | None = None
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        await self.aclose()

    async def start(self) -> None:
        if self._server is not None:
            return
        if self.start_wall is None:
            # Known from the start, so the ground truth can be written before the play begins.
            self.start_wall = time.time()
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            create_connection=HttpAwareConnection,
            compression=None,
            ping_interval=None,
            ping_timeout=None,
            max_size=1 << 20,
            logger=QuietLog(logging.getLogger("monitor.simulator.http")),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._playing = asyncio.create_task(self._player.play(), name="simulator-player")
        log.info("simulator on %s:%d: %s, %s at %gx", self.host, self.port, self.scenario.name,
                 ", ".join(self.venues), self.speed)  # fmt: skip

    async def aclose(self) -> None:
        """Stop playing and close every connection. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._playing is not None:
            self._playing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._playing
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_finished(self) -> None:
        """Until the scenario has been fully played and every queued frame written."""
        playing = self._playing
        if playing is None:
            raise RuntimeError("the simulator is not started")
        finished = asyncio.ensure_future(self._player.finished.wait())
        try:
            await asyncio.wait({finished, playing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
        if playing.done() and not self._player.finished.is_set():
            playing.result()  # raises what killed the player
            raise RuntimeError("the simulator stopped before the scenario ended")

    @property
    def start_wall(self) -> float | None:
        """The wall time (epoch seconds) the scenario's clock starts from: as given, or the
        time of :meth:`start`."""
        return self._player.start_wall

    @start_wall.setter
    def start_wall(self, value: float | None) -> None:
        self._player.start_wall = value

    def exchange_seconds(self, market_seconds: float) -> float:
        """The venues' clock (epoch seconds) at a point of market time."""
        return self._player.exchange_seconds(market_seconds)

    # --- addressing ------------------------------------------------------------------------

    def ws_base_url(self, venue: str) -> str:
        self._check_venue(venue)
        return f"ws://{self.host}:{self.port}/{venue}"

    def rest_base_url(self, venue: str) -> str:
        self._check_venue(venue)
        return f"http://{self.host}:{self.port}/{venue}"

    def _check_venue(self, venue: str) -> None:
        if venue not in self._sims:
            raise KeyError(f"{venue!r} is not simulated here; simulated: {list(self._sims)}")

    def config_overrides(self) -> dict[str, str]:
        """Environment overrides pointing a daemon at this simulator: every simulated venue
        enabled with its URLs, every other known venue disabled."""
        from monitor.venues import VENUES

        env = {}
        for venue in sorted(set(VENUES) | set(self._sims)):
            key = f"LIQMON_VENUES__{venue.upper().replace('-', '_')}__"
            if venue in self._sims:
                env[key + "ENABLED"] = "true"
                env[key + "WS_BASE_URL"] = self.ws_base_url(venue)
                env[key + "REST_BASE_URL"] = self.rest_base_url(venue)
            else:
                env[key + "ENABLED"] = "false"
        return env

    # --- results ---------------------------------------------------------------------------

    def sent(self) -> SentCounts:
        """Liquidations actually sent so far, per venue and position side."""
        return self._ledger.snapshot()

    @property
    def finished(self) -> bool:
        """Whether the scenario has been fully played (its first pass, when looping)."""
        return self._player.finished.is_set()

    def market_seconds(self) -> float:
        """How far into the scenario the player is (market time)."""
        return self._player.market_seconds

    def connections(self, venue: str | None = None) -> int:
        """Open websocket connections (of one venue, or all)."""
        if venue is not None:
            return len(self._conns.get(venue, ()))
        return sum(len(c) for c in self._conns.values())

    def delist(self, venue: str, symbol: str, *, rest: bool = True) -> None:
        """Delist ``symbol`` mid-run: subscribing it is refused in the venue's own words,
        its topics fall silent, and (``rest``) its REST documents drop it."""
        self._check_venue(venue)
        if not self._sims[venue].delist(symbol, rest):
            raise ValueError(f"{venue} does not list {symbol}")

    def holds(self, venue: str, topic: str) -> bool:
        """Whether some connection of ``venue`` holds ``topic`` (in the sim's spelling)."""
        self._check_venue(venue)
        return self._contexts[venue].subscribed[topic] > 0

    def relist(self, venue: str, symbol: str) -> None:
        """List ``symbol`` (delisted before) again: a new listing for the clients."""
        self._check_venue(venue)
        if not self._sims[venue].relist(symbol):
            raise ValueError(f"{venue} has no delisted {symbol}")

    def write_ground_truth(self, path: str | Path) -> None:
        """The scenario's ground truth, the clock mapping and what was sent, as JSON."""
        document: dict[str, Any] = dict(self.scenario.ground_truth)
        document["simulator"] = {
            "speed": self.speed,
            "start_wall": self.start_wall,
            "venues": list(self.venues),
            "sent": self.sent().to_json(),
        }
        if self.start_wall is not None:
            # The same instants on the venues' clock, as exchange_ts_ms of the events.
            document["simulator"]["exchange_ms"] = {
                name: int(self.exchange_seconds(document[name]) * 1000)
                for name in ("onset_seconds", "peak_seconds", "end_seconds")
                if document.get(name) is not None
            }
        Path(path).write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))

    # --- HTTP and websocket handling -----------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path, _, query = request.path.partition("?")
        venue, _, rest = path.lstrip("/").partition("/")
        if not venue:
            urls = {v: self.ws_base_url(v) for v in self._sims}
            return http_response(200, orjson.dumps({"scenario": self.scenario.name, "ws": urls}))
        sim = self._sims.get(venue)
        if sim is None:
            return not_found(path)
        rest = "/" + rest
        if "websocket" in request.headers.get("Upgrade", "").lower():
            reject = faults_for(venue, self._faults).reject_subscription
            session = sim.open(rest, query, reject=reject)
            if session is None:
                return not_found(path)
            assert isinstance(connection, HttpAwareConnection)
            connection.sim_entry = (venue, session)
            return None
        body = connection.http_body if isinstance(connection, HttpAwareConnection) else b""
        reply = sim.rest(RestRequest(request.method, rest, dict(parse_qsl(query)), body))
        if reply is None:
            return not_found(path)
        return http_response(reply.status, reply.body, reply.content_type)

    async def _handle(self, ws: ServerConnection) -> None:
        entry = getattr(ws, "sim_entry", None)
        if entry is None:
            return
        venue, session = cast(tuple[str, SimSession], entry)
        faults = faults_for(venue, self._faults)
        rng = random.Random(f"{faults.seed}-{self._rng.random()}")
        conn = SimConnection(ws, venue, session, faults, self._ledger, rng)
        self._conns[venue].add(conn)
        writer = asyncio.create_task(conn.run_writer(), name=f"simulator-writer-{venue}")
        try:
            conn.push(session.on_open(self._player.now()))
            async for message in ws:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                conn.push(session.on_text(text, self._player.now()))
        except Exception:  # a bad client never takes the simulator down
            log.debug("%s connection ended", venue, exc_info=True)
        finally:
            self._conns[venue].discard(conn)
            session.on_close()
            conn.closed = True
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
