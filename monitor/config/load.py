"""Loading a configuration: TOML, then ``LIQMON_`` environment overrides, then checks.

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
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from monitor.config.sections import Config, VenueConfig, default_venues
from monitor.errors import ConfigError
from monitor.redact import redact
from monitor.venues import VENUES, make_dialect

ENV_PREFIX = "LIQMON_"

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
    venues = default_venues()
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


def _bad(path: str, value: object, expected: str) -> ConfigError:
    """A ConfigError naming the key and expectation, its value with secrets redacted."""
    return ConfigError(path, redact(path, value), expected)
