"""Configuration: frozen dataclasses per section, loaded from TOML, overridden by environment.

``load_config(path)`` reads a TOML file (or nothing: every key has a default), applies
``LIQMON_<SECTION>__<KEY>`` environment overrides, and builds the dataclasses. Every value
is checked against its field's type and metadata (``choices``, ``min``, ``max``); a bad
value raises :class:`ConfigError` naming the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from monitor.detector.config import DetectorConfig
from monitor.errors import ConfigError
from monitor.notify.config import NotifyConfig
from monitor.redact import redact
from monitor.store.config import StoreConfig
from monitor.venues import VENUES, make_dialect
from monitor.venues.bounds import Bounds
from monitor.venues.dialect import VenueSettings

ENV_PREFIX = "LIQMON_"


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


def _default_venues() -> dict[str, VenueConfig]:
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
    venues: Mapping[str, VenueConfig] = field(default_factory=_default_venues)
    feed: FeedConfig = field(default_factory=FeedConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    record: RecordConfig = field(default_factory=RecordConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)  # MQTT, webhooks

    def enabled_venues(self) -> dict[str, VenueConfig]:
        return {venue: vc for venue, vc in self.venues.items() if vc.enabled}


T = TypeVar("T")


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (None: defaults only), apply environment overrides, validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as f:
                raw = tomllib.load(f)
        except FileNotFoundError as exc:
            raise _bad("(file)", str(path), "an existing TOML file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise _bad("(file)", str(path), f"valid TOML ({exc})") from exc
    apply_env_overrides(raw, os.environ if env is None else env)
    return build_config(raw)


def build_config(raw: Mapping[str, Any]) -> Config:
    venues_raw = raw.get("venues", {})
    if not isinstance(venues_raw, Mapping):
        raise _bad("venues", venues_raw, "a table of [venues.<id>] sections")
    venues = _default_venues()
    for venue, table in venues_raw.items():
        if venue not in VENUES:
            raise _bad(f"venues.{venue}", venue, f"one of {', '.join(sorted(VENUES))}")
        if not isinstance(table, Mapping):
            raise _bad(f"venues.{venue}", table, "a table")
        venues[venue] = _build(VenueConfig, table, f"venues.{venue}", base=venues[venue])
    rest = {k: v for k, v in raw.items() if k != "venues"}
    config = dataclasses.replace(_build(Config, rest, "", base=Config()), venues=venues)
    check_config(config)
    return config


URL_SCHEMES = {"ws_base_url": ("ws", "wss"), "rest_base_url": ("http", "https")}


def check_config(config: Config) -> None:
    """What no single key's type can say: URLs that can be connected to, a webhook with a
    URL, severity thresholds in order, each enabled venue's options. ``run``, SIGHUP and
    ``check-config`` all come through here, so a config ``check-config`` passes runs."""
    for venue, vc in config.venues.items():
        for key, schemes in URL_SCHEMES.items():
            _check_url(f"venues.{venue}.{key}", getattr(vc, key), schemes)
        check_option_names(venue, vc)
        if vc.enabled:
            check_venue_options(venue, vc)
    if config.store.backend == "redis" and not config.store.url.startswith("unix://"):
        _check_url("store.url", config.store.url, ("redis", "rediss"), empty_ok=False)
    for name, wc in config.notify.webhooks.items():
        if wc.enabled and not (wc.url or wc.url_file):
            raise ConfigError(f"notify.webhooks.{name}.url", wc.url,
                              "the webhook's URL (or url_file), or enabled = false")
        _check_url(f"notify.webhooks.{name}.url", wc.url, ("http", "https"))
    detector = config.detector
    scopes = {"global_scope": detector.global_scope, "coin_scope": detector.coin_scope,
              "venue_scope": detector.venue_scope}
    scopes.update({f"coins.{coin}": detector.coin_thresholds(coin) for coin in detector.coins})
    for name, t in scopes.items():
        if not t.cascade_usd < t.critical_usd < t.extreme_usd:
            raise ConfigError(
                f"detector.{name}", f"cascade_usd={t.cascade_usd:g}, critical_usd="
                f"{t.critical_usd:g}, extreme_usd={t.extreme_usd:g}",
                "cascade_usd (warning) < critical_usd < extreme_usd")


def _check_url(key: str, url: str, schemes: tuple[str, ...], *, empty_ok: bool = True) -> None:
    if not url and empty_ok:
        return
    expected = "URL with a host, starting " + " or ".join(f"{s}://" for s in schemes)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ConfigError(key, url, f"a {expected} ({exc})") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ConfigError(key, url, f"a {expected}")


def check_option_names(venue: str, vc: VenueConfig) -> None:
    """Raise ConfigError for an option key the venue does not take: a misspelt option would
    otherwise be ignored and its default used without a word."""
    known = VENUES[venue].options
    for key in sorted(vc.options):
        if key not in known:
            expected = ("one of the options " + ", ".join(known) if known
                        else "no options (this venue takes none)")
            raise ConfigError(f"venues.{venue}.options.{key}", vc.options[key],
                              expected + "; see docs/venues.md")


def check_venue_options(venue: str, vc: VenueConfig) -> None:
    """Raise ConfigError for a venue option its feed would refuse. Every path that loads a
    config passes here, so ``check-config`` accepts exactly what ``run`` accepts."""
    if VENUES[venue].transport == "node-fills":
        vc.node_paths(venue)
    else:
        make_dialect(venue, vc.settings())  # a dialect checks its options when built


def apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    """``LIQMON_STORE__BACKEND=redis`` sets ``raw["store"]["backend"]``.

    Venue ids use ``_`` for ``-`` (``LIQMON_VENUES__BINANCE_USDM__ENABLED=false``). Values
    are read as TOML values where they parse as one (numbers, booleans, arrays), else text.
    """
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__")]
        if parts[0] == "venues" and len(parts) > 1:
            parts[1] = parts[1].replace("_", "-")
        table = raw
        for part in parts[:-1]:
            table = table.setdefault(part, {})
            if not isinstance(table, dict):
                raise _bad(".".join(parts), value, "a table to put the override in")
        table[parts[-1]] = _parse_env_value(value)


def _parse_env_value(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _build(cls: type[T], table: Mapping[str, Any], prefix: str, base: T) -> T:
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls))}
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}.{key}" if prefix else key
        if key not in fields:
            raise _bad(path, value, f"one of the keys {', '.join(sorted(fields))}")
        current = getattr(base, key)
        changes[key] = _convert(hints[key], value, path, fields[key].metadata, current)
    return dataclasses.replace(cast(Any, base), **changes) if changes else base


def _convert(hint: Any, value: Any, path: str, meta: Mapping[str, Any], current: Any) -> Any:
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        if not isinstance(value, Mapping):
            raise _bad(path, value, "a table")
        return _build(hint, value, path, base=current)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or value == "":
            return None
        return _convert(args[0], value, path, meta, current)
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list | tuple):
            raise _bad(path, value, "a list")
        (item_hint, *_rest) = typing.get_args(hint)
        return tuple(
            _convert(item_hint, v, f"{path}[{i}]", meta, None) for i, v in enumerate(value)
        )
    if origin in (Mapping, dict, typing.get_origin(Mapping[str, Any])):
        if not isinstance(value, Mapping):
            raise _bad(path, value, "a table")
        _key_hint, value_hint = typing.get_args(hint)
        if dataclasses.is_dataclass(value_hint) and isinstance(value_hint, type):
            built = {}
            for k, v in value.items():
                if not isinstance(v, Mapping):
                    raise _bad(f"{path}.{k}", v, "a table")
                built[k] = _build(value_hint, v, f"{path}.{k}", base=value_hint())
            return built
        return dict(value)
    return _scalar(hint, value, path, meta)


def _scalar(hint: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise _bad(path, value, "true or false")
        result: Any = value
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(path, value, "an integer")
        result = value
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad(path, value, "a number")
        result = float(value)
    elif hint is str:
        if not isinstance(value, str):
            raise _bad(path, value, "a string")
        result = value
    else:
        result = value
    choices = meta.get("choices")
    if choices is not None and result not in choices:
        raise _bad(path, value, "one of " + ", ".join(repr(c) for c in choices))
    if "min" in meta and result < meta["min"]:
        raise _bad(path, value, f"a value >= {meta['min']}")
    if "max" in meta and result > meta["max"]:
        raise _bad(path, value, f"a value <= {meta['max']}")
    return result


def config_to_toml(config: Config, comments: bool = False, *, reveal: bool = False) -> str:
    """The effective configuration as TOML text (``liqmon check-config``).

    With ``comments``, each key is preceded by its help text: that is how the commented
    example ``config/liqmon.toml`` is made (``liqmon check-config --example``). Secrets
    are redacted (``monitor.redact``) unless ``reveal``: printed output ends up in
    terminals, tickets and logs.
    """
    show = _identity if reveal else redact
    lines: list[str] = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if section.name == "venues":
            for venue, vc in value.items():
                lines.append(f"[venues.{venue}]")
                lines.extend(_toml_fields(vc, comments, section=f"venues.{venue}", show=show))
                lines.append("")
            continue
        lines.append(f"[{section.name}]")
        lines.extend(_toml_fields(value, comments, section=section.name, show=show))
        lines.append("")
    return "\n".join(lines)


def _toml_fields(obj: Any, comments: bool = False, prefix: str = "", *, section: str,
                 show: Callable[[str, Any], Any]) -> list[str]:
    out: list[str] = []
    nested = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            nested.append((f.name, value))
            continue
        if comments and f.metadata.get("help"):
            out.append(f"# {f.metadata['help']}")
        if comments and f.metadata.get("choices"):
            out.append("# one of: " + ", ".join(str(c) for c in f.metadata["choices"]))
        if isinstance(value, Mapping) and value and all(
            dataclasses.is_dataclass(v) for v in value.values()
        ):
            nested.extend((f"{f.name}.{_toml_key(k)}", v) for k, v in value.items())
            continue
        out.append(f"{f.name} = {_toml_value(show(f'{section}.{prefix}{f.name}', value))}")
    for name, value in nested:
        # Sub-tables as dotted keys keep them inside their section without a new header.
        out.extend(_toml_fields(value, comments, prefix=f"{prefix}{name}.", section=section,
                                show=show))
    if prefix:
        out = [line if line.startswith("#") else prefix + line for line in out]
    return out


def _identity(path: str, value: Any) -> Any:
    return value


def _bad(path: str, value: object, expected: str) -> ConfigError:
    """A ConfigError naming the key and expectation, its value with secrets redacted."""
    return ConfigError(path, redact(path, value), expected)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    if value is None:
        return '""'
    return _toml_value(str(value))
