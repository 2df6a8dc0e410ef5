"""The one exception tree of liqmon.

::

    LiqmonError
    ├── ConfigError            a bad config value: names the key, the value and what was expected
    ├── FrameError             a venue frame that cannot be turned into events (sans-I/O)
    │   └── UnknownInstrument  a liquidation whose contract size is not known yet
    ├── FeedError              a venue connection failed (I/O)
    │   └── SubscriptionRejected  the venue refused a subscription; carries its message
    ├── InstrumentFetchError   a REST instrument document could not be fetched or read
    ├── PortInUse              a port liqmon was to listen on is taken (exit 3, never retried)
    ├── StoreError             the store backend failed (redis errors are translated here)
    │   └── StoreUnavailable   the backend cannot be reached right now; writes are buffered
    └── NotifyError            a notification channel failed (MQTT, webhook)
        └── NotifyRejected     the receiving end refused the message; retrying is pointless

Adapters translate third-party errors (websockets, redis, aiomqtt, httpx) into these with
``raise ... from``, so callers never import another library to catch an error.
"""

from __future__ import annotations


class LiqmonError(Exception):
    """Root of every error liqmon raises on purpose."""


class ConfigError(LiqmonError):
    """A configuration value is wrong. The message names the key, the value and the expectation."""

    def __init__(self, key: str, value: object, expected: str) -> None:
        self.key = key
        self.value = value
        self.expected = expected
        super().__init__(f"config key {key!r}: got {value!r}, expected {expected}")


class FrameError(LiqmonError):
    """A frame from a venue is malformed or not what its dialect understands.

    ``reason`` is a short, bounded label used as the ``reason`` metric label, for example
    ``malformed_json``, ``missing_field``, ``bad_value``, ``unknown_instrument``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class UnknownInstrument(FrameError):
    """A liquidation names an instrument whose contract terms are not known yet."""

    def __init__(self, venue: str, instrument: str) -> None:
        self.venue = venue
        self.instrument = instrument
        super().__init__("unknown_instrument", f"{venue} instrument {instrument!r} is not known")


class FeedError(LiqmonError):
    """A venue connection failed."""


class SubscriptionRejected(FeedError):
    """The venue refused a subscription. Retrying the same request is pointless."""

    def __init__(self, venue: str, message: str) -> None:
        self.venue = venue
        self.venue_message = message
        super().__init__(f"{venue} rejected the subscription: {message}")


class InstrumentFetchError(LiqmonError):
    """An instrument document could not be fetched over REST or could not be read."""


class PortInUse(LiqmonError):
    """A listening port is taken. Restarting will not help until its owner goes, so the
    command line exits with a code of its own that the systemd unit does not restart on."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(f"port {port} on {host} is already in use")


class StoreError(LiqmonError):
    """The store backend failed."""


class StoreUnavailable(StoreError):
    """The store backend cannot be reached right now."""


class NotifyError(LiqmonError):
    """A notification channel failed to deliver."""


class NotifyRejected(NotifyError):
    """The receiving end refused the message (an HTTP 4xx other than 408/429, a bad topic).

    A configuration or payload problem: the outbox drops the message instead of retrying.
    """
