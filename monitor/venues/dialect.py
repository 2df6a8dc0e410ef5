"""The Dialect protocol: what the one connection supervisor needs to know about a venue.

A dialect is sans-I/O: no sockets, no asyncio, no clock reads, no logging. Venue
differences are data here (URLs, subscribe frames, ping text and interval, sharding,
snapshot handling), never ``if venue == ...`` in the supervisor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from monitor.events import Completeness, Liquidation, MarkPrice
from monitor.venues.instruments import InstrumentBook, InstrumentSpec


@dataclass(frozen=True, slots=True)
class Ack:
    """The venue acknowledged one subscription request."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """The venue refused a subscription; ``message`` is the venue's own text."""

    message: str


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
    ) -> tuple[list[InstrumentSpec], RestRequest | None]:
        """Read one instrument document; return its specs and the next page's request, if any."""
        ...

    def plans(self, ws_base_url: str, instruments: InstrumentBook) -> list[ConnectionPlan]:
        """The connections to open, sharded where the venue limits topics per connection."""
        ...

    def session(
        self, instruments: InstrumentBook, plan: ConnectionPlan | None = None
    ) -> DialectSession:
        """Fresh parse state for one connection; ``plan`` says which connection it serves
        (Bybit reads linear or inverse from its URL). None outside a live connection."""
        ...
