"""The VenueSim protocol: what one simulated venue has to provide to the simulator core.

The core (``server.py``) owns everything venue-neutral: the one loopback port, routing by the
``/<venue-id>`` path prefix, the market clock, faults (drops, silence, stalls, malformed and
duplicate frames), per-connection writers and the count of liquidations actually sent. A
venue module owns only its protocol, sans-I/O, like a dialect in reverse:

* ``VenueSim.rest(request)``: the venue's REST instrument documents, in its real format.
* ``VenueSim.open(path, query, reject=...)``: a :class:`SimSession` for a websocket path the
  venue serves (``None`` answers 404). ``reject`` asks the session to refuse subscriptions
  with the venue's own error frame (the ``reject_subscription`` fault).
* ``VenueSim.on_liquidation(liq)`` / ``on_mark(...)``: scenario input, in market-time order.
* ``VenueSim.flush(now, final)``: the :class:`Publication` frames due by ``now``. Venue
  behaviour lives here: Binance keeps the latest liquidation per symbol per second, Bybit
  batches per symbol every 500 ms, prices go out on the venue's cadence.
* ``SimSession.on_text`` answers a client frame (acks, rejections, pongs, OKX's first-push
  replay); ``SimSession.render`` turns a publication into this connection's frame, or ``None``
  when the connection did not subscribe to its topic (a Bybit connection gets only its symbols).
* ``SimSession.tick`` lets a session send on its own timer (server pings, for HTX or dYdX).

Every frame that carries liquidations names them (:class:`Liq`), so the core can count what
was really sent: a liquidation counts once, however many connections or duplicates carry it.

To add a venue: write ``monitor/simulator/venues/<name>.py`` with a ``make(ctx)`` factory,
add one line to ``monitor/simulator/venues/__init__.py`` (registry), the venue's listings
to ``catalogue.py`` and its share of the crash to ``feb2026.py``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from monitor.simulator.scenarios.model import ScenarioEvent


@dataclass(frozen=True, slots=True)
class Liq:
    """A scenario liquidation handed to a venue sim. ``seq`` is unique within one simulator."""

    seq: int
    event: ScenarioEvent
    ts_ms: int  # the venue's time of the liquidation (epoch ms)


@dataclass(frozen=True, slots=True)
class SimNow:
    """The time a venue sim sees: the venue clock (market time) and the wall clock.

    ``exchange_ms`` runs at the simulator's speed and stamps frames; ``wall`` is the
    monotonic wall clock in seconds, for heartbeats and timeouts that a real client has to
    meet in real time.
    """

    exchange_ms: int
    wall: float


@dataclass(frozen=True, slots=True)
class Frame:
    """One websocket message to send: text (``str``) or binary (``bytes``, e.g. gzip for HTX).

    ``is_data`` is False for control frames (acks, rejections, pongs): those still flow on a
    connection that went silent after its ack. ``liquidations`` are the ones this frame carries.
    """

    data: str | bytes
    is_data: bool = False
    liquidations: tuple[Liq, ...] = ()


@dataclass(frozen=True, slots=True)
class Close:
    """Ask the core to close this connection (after the frames before it are sent)."""

    code: int = 1000
    reason: str = ""


Out = Frame | Close


@dataclass(slots=True)
class Publication:
    """A frame published on a topic; the core offers it to every session of the venue.

    ``topics`` are the names under which a session may have subscribed (Binance's
    ``!forceOrder@arr`` and ``btcusdt@forceOrder`` carry the same order). ``payload`` is the
    frame text, or the part a session wraps (Binance combined streams). ``cache`` lets a
    session keep one rendering per publication (e.g. gzip) across connections.
    """

    topics: tuple[str, ...]
    payload: str
    liquidations: tuple[Liq, ...] = ()
    cache: dict[str, str | bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A plain HTTP request under the venue's prefix (``path`` has the prefix removed)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class RestReply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(slots=True)
class SimContext:
    """What the core gives a venue sim when it makes one.

    ``was_sent(seq)`` tells whether a liquidation already reached some connection (OKX's
    first push replays only those). ``mark_interval_ms`` is the shortest price cadence the
    core allows: at high speed a venue's 1 s price stream would flood the client, so it
    is at least ``speed x 0.1 s`` of market time.
    """

    venue: str
    was_sent: Callable[[int], bool]
    mark_interval_ms: int = 1000
    rng: random.Random = field(default_factory=random.Random)
    # Topics subscribed on this venue right now, counted over sessions; sessions update it,
    # venue sims read it to skip building frames nobody asked for.
    subscribed: Counter[str] = field(default_factory=Counter)


class SimSession(Protocol):
    """The protocol state of one websocket connection to a simulated venue."""

    def on_open(self, now: SimNow) -> Sequence[Out]:
        """Frames to send right after the handshake (welcome, URL-embedded subscriptions)."""
        ...

    def on_text(self, text: str, now: SimNow) -> Sequence[Out]:
        """Answer one client frame: acks, rejections, pongs, snapshots, replays."""
        ...

    def tick(self, now: SimNow) -> Sequence[Out]:
        """Frames the venue sends on its own timer (server pings); usually nothing."""
        ...

    def render(self, pub: Publication) -> str | bytes | None:
        """This connection's frame for ``pub``, or None when it is not subscribed to it."""
        ...

    def on_close(self) -> None:
        """The connection ended: release subscriptions (``SimContext.subscribed``)."""
        ...


class VenueSim(Protocol):
    venue: str

    def rest(self, request: RestRequest) -> RestReply | None:
        """Answer a REST request, or None for a path the venue does not serve (404)."""
        ...

    def open(self, path: str, query: str, *, reject: bool) -> SimSession | None:
        """A session for a websocket ``path`` (prefix removed), or None (404)."""
        ...

    def on_liquidation(self, liq: Liq) -> None:
        """A liquidation of this venue happened at ``liq.ts_ms``."""
        ...

    def on_mark(self, coin: str, price: float, ts_ms: int) -> None:
        """The market price of ``coin`` (USD per coin) is now ``price``."""
        ...

    def flush(self, now: SimNow, final: bool = False) -> list[Publication]:
        """Publications due by ``now``; ``final`` empties every pending window."""
        ...

    def delist(self, symbol: str, rest: bool = True) -> bool:
        """Take ``symbol`` off the venue mid-run: refused on subscribe, silent where it was
        subscribed and, with ``rest``, gone from the REST documents (without: they still
        list it, as venues do until a contract settles). False when it is unknown."""
        ...

    def relist(self, symbol: str) -> bool:
        """List a delisted (or catalogue) ``symbol`` again; False when it was listed."""
        ...

    def is_listed(self, symbol: str) -> bool: ...


def subscribe_topics(ctx: SimContext, held: set[str], topics: Sequence[str]) -> None:
    """Record that a session now holds ``topics`` (idempotent per session)."""
    for topic in topics:
        if topic not in held:
            held.add(topic)
            ctx.subscribed[topic] += 1


def release_topics(ctx: SimContext, held: set[str], topics: Sequence[str] | None = None) -> None:
    """Record that a session dropped ``topics`` (all of them when None)."""
    for topic in list(held) if topics is None else topics:
        if topic in held:
            held.discard(topic)
            ctx.subscribed[topic] -= 1
            if ctx.subscribed[topic] <= 0:
                del ctx.subscribed[topic]
