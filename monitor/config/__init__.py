"""Configuration: frozen dataclasses per section, loaded from TOML, overridden by environment.

``load_config(path)`` reads a TOML file (or nothing: every key has a default), applies
``LIQMON_<SECTION>__<KEY>`` environment overrides, and builds the dataclasses. Every value
is checked against its field's type and metadata (``choices``, ``min``, ``max``); a bad
value raises :class:`ConfigError` naming the key, the value and what was expected.

The sections are ``sections.py``; loading, overrides and checks ``load.py``; the TOML
rendering (``check-config``) ``render.py``. Their public names are imported from here.
"""

from __future__ import annotations

from monitor.config.load import (
    ENV_PREFIX,
    URL_SCHEMES,
    apply_env_overrides,
    build_config,
    check_config,
    check_option_names,
    check_venue_options,
    load_config,
)
from monitor.config.render import config_to_toml, toml_value
from monitor.config.sections import (
    Config,
    FeedConfig,
    LoggingConfig,
    MetricsConfig,
    RecordConfig,
    VenueConfig,
)

__all__ = [
    "ENV_PREFIX",
    "URL_SCHEMES",
    "Config",
    "FeedConfig",
    "LoggingConfig",
    "MetricsConfig",
    "RecordConfig",
    "VenueConfig",
    "apply_env_overrides",
    "build_config",
    "check_config",
    "check_option_names",
    "check_venue_options",
    "config_to_toml",
    "load_config",
    "toml_value",
]
