"""The configuration's sections: frozen dataclasses, one per TOML table.

Every field carries its default and, in its metadata, ``help`` (the comment in
``config/liqmon.toml`` and the reference), and where it applies ``choices``, ``min`` and
``max``, which ``load.py`` checks. The store, detector and notify sections are their
packages' own (``store/config.py``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.detector.config import DetectorConfig
from monitor.errors import ConfigError
from monitor.notify.config import NotifyConfig
from monitor.store.config import StoreConfig
from monitor.venues import VENUES
from monitor.venues.bounds import Bounds
from monitor.venues.dialect import VenueSettings


@dataclass(frozen=True, slots=True)
class VenueConfig:
    enabled: bool = field(default=False, metadata={"help": "watch this venue"})
    ws_base_url: str = field(
        default="", metadata={"help": "websocket base URL without path (the venue's own default)"}
    )
    rest_base_url: str = field(
        default="", metadata={"help": "REST base URL for instrument metadata (the venue's own)"}
    )
    symbols: tuple[str, ...] = field(
        default=(), metadata={"help": "instruments to watch; empty means every listed one"}
    )
    silence_limit_seconds: float = field(
        default=60.0, metadata={"min": 1, "help": "reconnect after this long without a frame"}
    )
    instruments_refresh_seconds: float = field(
        default=3600.0, metadata={"min": 1, "help": "how often instrument lists are refetched"}
    )
    options: Mapping[str, Any] = field(
        default_factory=dict,
        metadata={"help": "venue-specific options (see docs/venues.md)"},
    )

    def settings(self) -> VenueSettings:
        return VenueSettings(symbols=self.symbols or None, options=dict(self.options))

    def node_paths(self, venue: str) -> tuple[Path, Path]:
        """A node-fills venue's directory and position file, from ``options``."""
        path = self.options.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"venues.{venue}.options.path", path,
                              "the node's node_fills_by_block directory")
        state = self.options.get("state_file") or str(Path(path) / ".liqmon-position.json")
        if not isinstance(state, str):
            raise ConfigError(f"venues.{venue}.options.state_file", state, "a file path")
        return Path(path), Path(state)


@dataclass(frozen=True, slots=True)
class FeedConfig:
    queue_size: int = field(
        default=100_000, metadata={"min": 1, "help": "events between the readers and ingest"}
    )
    backoff_initial_seconds: float = field(
        default=1.0, metadata={"min": 0.001, "help": "first reconnect delay (jittered)"}
    )
    backoff_max_seconds: float = field(
        default=60.0, metadata={"min": 0.001, "help": "reconnect delays double up to this"}
    )
    healthy_after_seconds: float = field(
        default=60.0, metadata={"min": 0.001, "help": "a connection this old resets backoff"}
    )
    open_timeout_seconds: float = field(
        default=10.0, metadata={"min": 0.001, "help": "TCP, TLS and websocket handshake limit"}
    )
    ack_timeout_seconds: float = field(
        default=10.0,
        metadata={"min": 0.001, "help": "wait for every subscription ack after the last request"},
    )
    unknown_instrument_hold_seconds: float = field(
        default=5.0, metadata={"min": 0, "help": "hold an unvalued frame while refreshing"}
    )
    read_pause_ms: float = field(
        default=50.0,
        metadata={"min": 0, "max": 1000,
                  "help": "a connection without liquidations reads its socket again this "
                          "long after its last frame (one read, fewer wake-ups); 0 = every "
                          "packet at once"},
    )
    instrument_cache_dir: str = field(
        default="", metadata={"help": "where REST instrument documents are cached; '' = default"}
    )
    max_notional_usd: float = field(
        default=5e9,
        metadata={"min": 1, "help": "a liquidation this large or larger is refused as invalid"},
    )
    max_event_age_seconds: float = field(
        default=7 * 86400.0,
        metadata={"min": 1, "help": "refuse events stamped this long before their receipt"},
    )
    max_event_lead_seconds: float = field(
        default=3600.0,
        metadata={"min": 0, "help": "refuse events stamped this long after their receipt"},
    )

    def bounds(self) -> Bounds:
        return Bounds(self.max_notional_usd, self.max_event_age_seconds,
                      self.max_event_lead_seconds)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = field(default=True, metadata={"help": "serve /metrics, /healthz, /readyz"})
    host: str = field(default="127.0.0.1", metadata={"help": "listen address"})
    port: int = field(
        default=10841,
        metadata={"min": 0, "max": 65535, "help": "0 picks a free port (tests)"},
    )
    coins: tuple[str, ...] = field(
        default=(
            "BTC", "ETH", "SOL", "XRP", "DOGE", "BNB", "ADA", "AVAX", "LINK", "SUI",
            "LTC", "TRX", "DOT", "TON", "PEPE", "HYPE", "BCH", "NEAR", "WIF", "APT",
        ),
        metadata={"help": "coins with their own label value; the rest are 'other'"},
    )


@dataclass(frozen=True, slots=True)
class RecordConfig:
    enabled: bool = field(
        default=False, metadata={"help": "record every raw frame while running (`liqmon run`)"}
    )
    directory: str = field(default="recordings", metadata={"help": "where recordings go"})
    rotation: str = field(
        default="hourly",
        metadata={"choices": ("hourly", "daily", "none"), "help": "a new file every"},
    )
    gzip: bool = field(default=True, metadata={"help": "write .jsonl.gz"})
    retention_days: float = field(
        default=30.0, metadata={"min": 0, "help": "delete older recordings; 0 keeps them all"}
    )


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = field(
        default="INFO",
        metadata={"choices": ("DEBUG", "INFO", "WARNING", "ERROR"), "help": "least level logged"},
    )
    format: str = field(
        default="text", metadata={"choices": ("text", "json"), "help": "one line per event"}
    )
    summary_interval_seconds: float = field(
        default=60.0, metadata={"min": 1, "help": "how often the INFO summary line is logged"}
    )


def default_venues() -> dict[str, VenueConfig]:
    """Every registered venue with its own URLs, enabled where the registry says so."""
    return {
        venue: VenueConfig(
            enabled=entry.enabled_by_default,
            ws_base_url=entry.ws_base_url,
            rest_base_url=entry.rest_base_url,
        )
        for venue, entry in VENUES.items()
    }


@dataclass(frozen=True, slots=True)
class Config:
    venues: Mapping[str, VenueConfig] = field(default_factory=default_venues)
    feed: FeedConfig = field(default_factory=FeedConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # MQTT, webhooks

    def enabled_venues(self) -> dict[str, VenueConfig]:
        return {venue: vc for venue, vc in self.venues.items() if vc.enabled}
