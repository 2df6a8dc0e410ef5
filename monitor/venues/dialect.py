"""The Dialect protocol: what the one connection supervisor needs to know about a venue.

A dialect is sans-I/O: no sockets, no asyncio, no clock reads, no logging. Venue
differences are data here (URLs, subscribe frames, ping text and interval, sharding,
snapshot handling), never ``if venue == ...`` in the supervisor.

:class:`DialectDefaults` and :class:`SessionDefaults` hold what most venues share and
:func:`read_rows` the rules for frames of several rows, so that a venue module states only
what is particular to it.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import orjson

import monitor.venues._json as _json
import monitor.venues.instruments as instr
from monitor.errors import ConfigError, FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import Completeness, Liquidation, MarkPrice


@dataclass(frozen=True, slots=True)
class Ack:
    """The venue acknowledged one subscription request."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """The venue refused a subscription; ``message`` is the venue's own text.

    Its scope decides what the supervisor does. No ``topic``: the venue refused the
    connection's subscription as a whole (bad URL, auth, rate limit), an error with backoff.
    A ``topic`` alone: only that argument was refused (OKX, Kraken Futures); it is dropped
    and the connection keeps flowing. A ``topic`` with a ``request`` id: the venue refused
    the whole request and named only its first bad topic (Bybit); the request's other
    topics are subscribed again without it.
    """

    message: str
    topic: str | None = None
    request: str | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    """The venue answered an application-level ping."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame the venue requires us to send back (HTX pong with its ts, Deribit test_request)."""

    text: str


@dataclass(frozen=True, slots=True)
class Info:
    """A well-formed frame that carries nothing to count: welcome, skipped snapshot, heartbeat."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Invalid:
    """Part of an otherwise readable frame (one row of several) could not be read.

    The rest of the frame's items still count; this one is counted in
    ``liqmon_frames_invalid_total{reason}`` and logged.
    """

    reason: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """Well-formed JSON of a shape this dialect does not know. Counted, logged, never fatal."""

    reason: str


Notice = Ack | Rejection | Pong | Reply | Info | Invalid | Unrecognised
Item = Liquidation | MarkPrice | Notice


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    """One websocket connection: where to connect and what to send after it opens.

    ``expected_acks`` is how many :class:`Ack` notices mean "fully subscribed".
    ``subscribe_interval_seconds`` spaces the subscribe frames for venues that reset
    connections on bursts (Hyperliquid, Bybit batches).
    """

    name: str
    url: str
    subscribe_frames: tuple[str, ...]
    expected_acks: int
    subscribe_interval_seconds: float = 0.0
    # The connection's topics in the dialect's own spelling, for venues whose topics can be
    # added and removed on a live connection (``Dialect.topic_requests``); empty elsewhere.
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TopicRequest:
    """One (un)subscribe request for some topics of a live connection.

    ``request_id`` is the id the venue echoes in its answer (empty when it echoes none);
    ``acks`` is how many :class:`Ack` notices answer it.
    """

    request_id: str
    text: str
    topics: tuple[str, ...]
    acks: int


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A REST call for instrument metadata. ``key`` names the cached document."""

    key: str
    url: str
    method: str = "GET"
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class VenueSettings:
    """What a dialect takes from its ``[venues.<id>]`` config section.

    ``symbols`` is None for every instrument the venue lists; ``options`` holds the
    venue-specific keys (for example Hyperliquid's ``vault_addresses``).
    """

    symbols: tuple[str, ...] | None = None
    options: Mapping[str, object] = field(default_factory=dict)


class DialectSession(Protocol):
    """Parse state of one connection (delta merging, first-push skipping, partials)."""

    def parse(self, text: str, received_at: float) -> list[Item]:
        """Turn one text frame into items. Raises FrameError on a malformed frame."""
        ...


class Dialect(Protocol):
    venue: str
    completeness: Completeness
    # Seconds between application pings; None when the venue needs none (protocol pings suffice).
    ping_interval_seconds: float | None
    # Proactive rotation before the venue's lifetime limit; None when there is none.
    max_lifetime_seconds: float | None
    # Whether liquidations cannot be valued without instrument metadata.
    needs_instruments: bool

    def ping_frame(self, now_wall: float) -> str | None:
        """The application ping text to send now, or None."""
        ...

    def decode_binary(self, data: bytes) -> str:
        """Binary frames to text (gzip for HTX; UTF-8 elsewhere)."""
        ...

    def instrument_requests(self, rest_base_url: str) -> list[RestRequest]:
        """The first REST requests for this venue's instrument documents (one per category)."""
        ...

    def parse_instruments(
        self, request: RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], RestRequest | None]:
        """Read one instrument document; return its specs and the next page's request, if any."""
        ...

    def plans(self, ws_base_url: str, instruments: instr.InstrumentBook) -> list[ConnectionPlan]:
        """The connections to open, sharded where the venue limits topics per connection."""
        ...

    def session(
        self, instruments: instr.InstrumentBook, plan: ConnectionPlan | None = None
    ) -> DialectSession:
        """Fresh parse state for one connection; ``plan`` says which connection it serves
        (Bybit reads linear or inverse from its URL). None outside a live connection."""
        ...

    def topic_requests(
        self, op: str, topics: Sequence[str], tag: str
    ) -> list[TopicRequest]:
        """Requests that ``op`` ("subscribe" or "unsubscribe") ``topics`` on a live
        connection, their ids starting with ``tag``; [] when the venue cannot."""
        ...


class DialectDefaults:
    """What most venues share; a dialect subclasses it and states only what differs.

    No application ping (``ping_text`` None: protocol pings suffice), no lifetime limit,
    binary frames as UTF-8 JSON, no instrument documents (or the one ``GET`` of
    ``instrument_document``), the configured symbols as a filter (``wanted``: None means
    every symbol the venue lists), and one ``session_type(book, wanted)`` per connection
    whatever its plan.
    """

    venue: str = ""
    session_type: type[SessionDefaults]
    # (key, path below the REST base URL) of a venue's one instrument document.
    instrument_document: tuple[str, str] | None = None
    ping_interval_seconds: float | None = None
    ping_text: str | None = None
    max_lifetime_seconds: float | None = None
    needs_instruments: bool = False

    def __init__(self, settings: VenueSettings) -> None:
        self.settings = settings
        self.wanted = None if settings.symbols is None else frozenset(settings.symbols)

    def ping_frame(self, now_wall: float) -> str | None:
        return self.ping_text

    def decode_binary(self, data: bytes) -> str:
        return _json.decode_utf8(data)

    def instrument_requests(self, rest_base_url: str) -> list[RestRequest]:
        if self.instrument_document is None:
            return []
        key, path = self.instrument_document
        return [RestRequest(key=key, url=rest_base_url.rstrip("/") + path)]

    def parse_instruments(
        self, request: RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], RestRequest | None]:
        return [], None

    def topic_requests(
        self, op: str, topics: Sequence[str], tag: str
    ) -> list[TopicRequest]:
        return []

    def session(
        self, instruments: instr.InstrumentBook, plan: ConnectionPlan | None = None
    ) -> DialectSession:
        return self.session_type(instruments, self.wanted)

    def option_float(self, name: str, default: float) -> float:
        """``options.<name>``: a number >= 0, else ConfigError naming the key."""
        value = self.settings.options.get(name, default)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value)
        raise ConfigError(f"venues.{self.venue}.options.{name}", value, "a number >= 0")

    def option_int(self, name: str, default: int) -> int:
        """``options.<name>``: an integer >= 1, else ConfigError naming the key."""
        value = self.settings.options.get(name, default)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ConfigError(f"venues.{self.venue}.options.{name}", value, "an integer >= 1")


# When a frame whose rows cannot all be read is itself malformed (see read_rows).
ALL_ROWS_FAILED = "all_rows_failed"  # raise only when no row could be read
LONE_ROW = "lone_row"  # raise when the frame's only row cannot be read
NEVER = "never"  # every failed row is a notice, whatever the others did


def read_rows(
    rows: Sequence[Any],
    read: Callable[[Any], Item | list[Item] | None],
    *,
    raise_when: str = ALL_ROWS_FAILED,
    unknown_holds_frame: bool = False,
) -> list[Item]:
    """Read every row of a frame: one unreadable row must not hide the others.

    A row that fails becomes an :class:`Invalid` notice (in its place, or after the good
    items under ``ALL_ROWS_FAILED``) unless ``raise_when`` says the frame as a whole is
    malformed; then the (first) row's FrameError is raised. With ``unknown_holds_frame``, an
    UnknownInstrument in any row is raised: the whole frame waits for an instrument refresh.
    """
    items: list[Item] = []
    errors: list[FrameError] = []
    for row in rows:
        try:
            got = read(row)
        except FrameError as exc:
            if (unknown_holds_frame and isinstance(exc, UnknownInstrument)) or (
                    raise_when == LONE_ROW and len(rows) == 1):
                raise
            if raise_when == ALL_ROWS_FAILED:
                errors.append(exc)
            else:
                items.append(Invalid(exc.reason, exc.detail))
            continue
        if isinstance(got, list):
            items.extend(got)
        elif got is not None:
            items.append(got)
    if errors and len(errors) == len(rows):
        raise errors[0]  # nothing in the frame was readable
    items.extend(Invalid(e.reason, e.detail) for e in errors)
    return items


class SessionDefaults(abc.ABC):
    """Parse state most sessions start from: the instrument book and the symbol filter.

    Its ``parse`` is the framing most venues share: the venue's plain-text pong
    (``pong_text``, where it has one), else one JSON object per frame, handed to the
    venue's ``parse_object``. Valid JSON that is not an object is unrecognised, not
    malformed.
    """

    pong_text: str | None = None

    def __init__(self, book: instr.InstrumentBook, wanted: frozenset[str] | None) -> None:
        self._book = book
        self._wanted = wanted

    def is_wanted(self, symbol: object) -> bool:
        return self._wanted is None or symbol in self._wanted

    def parse(self, text: str, received_at: float) -> list[Item]:
        if text == self.pong_text:
            return [Pong()]
        msg = _json.loads(text)
        if not isinstance(msg, dict):
            return [Unrecognised("not_an_object")]
        return self.parse_object(msg, received_at)

    @abc.abstractmethod
    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[Item]:
        """The items of one frame's JSON object; FrameError when it is malformed."""


def unknown(field: str, value: object) -> list[Item]:
    """A frame whose ``field`` names nothing this dialect knows (``unknown_<field>``), or
    that has no string there at all (``unknown_shape``)."""
    return [Unrecognised(f"unknown_{field}" if isinstance(value, str) else "unknown_shape")]


def subscribe_plan(name: str, url: str, args: Sequence[object]) -> ConnectionPlan:
    """One connection subscribing with one ``{"op":"subscribe","args":[...]}`` frame that
    the venue answers with one ack per argument."""
    frame = orjson.dumps({"op": "subscribe", "args": args}).decode()
    return ConnectionPlan(name, url, (frame,), expected_acks=len(args))


def read_document(context: str, body: bytes,
                  rows: Callable[[Any], Sequence[Any]]) -> Sequence[Any]:
    """The rows of a REST instrument document; InstrumentFetchError says what is wrong."""
    try:
        return rows(_json.loads(body))
    except FrameError as exc:
        raise InstrumentFetchError(f"{context}: {exc}") from None


def read_specs(rows: Iterable[Any],
               spec: Callable[[Any], instr.InstrumentSpec | None]) -> list[instr.InstrumentSpec]:
    """The spec of every readable row: one odd listing must not hide the others."""
    specs = []
    for row in rows:
        try:
            got = spec(row)
        except FrameError:
            continue
        if got is not None:
            specs.append(got)
    return specs


T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    """``items`` in runs of at most ``size``: the topics of one connection each."""
    return [items[i : i + size] for i in range(0, len(items), size)]


def plan_name(venue: str, n: int) -> str:
    """The first connection of a venue carries its name, the others a number too."""
    return venue if n == 0 else f"{venue}-{n}"
