"""The configuration reference in README.md, made from the config dataclasses' metadata.

``liqmon check-config --reference`` prints it; a test keeps README.md's copy current, so a
key added to a section cannot go undocumented.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from monitor.config import Config, VenueConfig, _toml_value

SECTION_TITLES = {
    "venues": "`[venues.<id>]` (one section per venue id)",
    "feed": "`[feed]`: connections and the ingest queue",
    "store": "`[store]`: where per-minute buckets live",
    "detector": "`[detector]`: cascade detection",
    "metrics": "`[metrics]`: the Prometheus endpoint",
    "record": "`[record]`: the raw-frame archive",
    "logging": "`[logging]`",
}


def reference_markdown(config: Config | None = None) -> str:
    config = config or Config()
    parts: list[str] = []
    for section in dataclasses.fields(config):
        value: Any = VenueConfig() if section.name == "venues" else getattr(config, section.name)
        title = SECTION_TITLES.get(section.name, f"`[{section.name}]`")
        parts.append(f"#### {title}\n")
        parts.append("| key | default | meaning |\n| --- | --- | --- |")
        parts.extend(_rows(value, ""))
        parts.append("")
    return "\n".join(parts)


def _rows(obj: Any, prefix: str) -> list[str]:
    rows: list[str] = []
    nested: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            nested.append((f.name, value))
            continue
        meaning = str(f.metadata.get("help", ""))
        if f.metadata.get("choices"):
            meaning += ("; " if meaning else "") + "one of " + ", ".join(
                f"`{c}`" for c in f.metadata["choices"])
        default = "{}" if isinstance(value, Mapping) and not value else _toml_value(value)
        rows.append(f"| `{prefix}{f.name}` | `{default}` | {meaning} |")
    for name, value in nested:
        rows.extend(_rows(value, f"{prefix}{name}."))
    return rows
