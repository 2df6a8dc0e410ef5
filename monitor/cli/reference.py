"""The configuration reference of docs/configuration.md, made from the config dataclasses.

``liqmon check-config --reference`` prints it; a test keeps the copy in docs/configuration.md
current, so a key added to a section cannot go undocumented. Every key comes with its
default and the ``help`` of its field; tables of named sub-tables (``[detector.coins.<COIN>]``,
``[notify.webhooks.<name>]``) get a table of their own, and the venues' own defaults (which
ones are on, their URLs) are listed per venue, as the embedded defaults hold them.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Mapping
from typing import Any

from monitor.config import Config, VenueConfig, toml_value

SECTION_TITLES = {
    "venues": "`[venues.<id>]` (one section per venue id)",
    "feed": "`[feed]`: connections and the ingest queue",
    "store": "`[store]`: where per-minute buckets live",
    "detector": "`[detector]`: cascade detection",
    "metrics": "`[metrics]`: the Prometheus endpoint",
    "record": "`[record]`: the raw-frame archive",
    "logging": "`[logging]`",
    "notify": "`[notify]`: MQTT and webhooks",
}
# The placeholder for the name of one entry of a table of sub-tables.
ENTRY_NAMES = {"coins": "<COIN>"}
PER_VENUE = "per venue (below)"


def reference_markdown(config: Config | None = None) -> str:
    config = config or Config()
    parts: list[str] = []
    for section in dataclasses.fields(config):
        title = SECTION_TITLES.get(section.name, f"`[{section.name}]`")
        if section.name == "venues":
            parts.extend(_venues(config.venues, title))
            continue
        value = getattr(config, section.name)
        parts.extend(_table(title, _rows(value, "")))
        parts.extend(_entry_tables(value, section.name))
    return "\n".join(parts)


def _table(title: str, rows: list[str], intro: str = "") -> list[str]:
    head = [f"### {title}", ""]
    if intro:
        head += [intro, ""]
    return [*head, "| key | default | meaning |", "| --- | --- | --- |", *rows, ""]


def _venues(venues: Mapping[str, VenueConfig], title: str) -> list[str]:
    """The keys with the default they share, then each venue's own defaults."""
    shared = {f.name: {_default(getattr(vc, f.name)) for vc in venues.values()}
              for f in dataclasses.fields(VenueConfig)}
    rows = [
        _row(f, PER_VENUE if len(shared[f.name]) > 1 else next(iter(shared[f.name]), ""), "")
        for f in dataclasses.fields(VenueConfig)
    ]
    own = [f.name for f in dataclasses.fields(VenueConfig) if len(shared[f.name]) > 1]
    lines = _table(title, rows)
    lines += ["Each venue's own defaults:", "",
              "| venue | " + " | ".join(f"`{name}`" for name in own) + " |",
              "| --- |" + " --- |" * len(own)]
    lines += [f"| `{venue}` | " + " | ".join(f"`{_default(getattr(vc, name))}`" for name in own)
              + " |" for venue, vc in venues.items()]
    return [*lines, ""]


def _entry_tables(obj: Any, path: str) -> list[str]:
    """One table per field that holds named sub-tables of a dataclass type."""
    out: list[str] = []
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            out.extend(_entry_tables(value, f"{path}.{f.name}"))
            continue
        entry = _entry_type(hints[f.name])
        if entry is None:
            continue
        name = ENTRY_NAMES.get(f.name, "<name>")
        doc = inspect.getdoc(entry) or ""
        # A dataclass without a docstring gets its signature as one: no intro then.
        generated = doc.startswith(entry.__name__ + "(")
        intro = "" if generated or not doc else doc.splitlines()[0].replace("``", "`")
        out.extend(_table(f"`[{path}.{f.name}.{name}]`", _rows(entry(), ""), intro))
    return out


def _entry_type(hint: Any) -> Any:
    if typing.get_origin(hint) not in (Mapping, dict, typing.get_origin(Mapping[str, Any])):
        return None
    _key, value = typing.get_args(hint)
    return value if dataclasses.is_dataclass(value) and isinstance(value, type) else None


def _rows(obj: Any, prefix: str) -> list[str]:
    rows: list[str] = []
    nested: list[tuple[str, Any]] = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            nested.append((f.name, value))
            continue
        rows.append(_row(f, _default(value), prefix))
    for name, value in nested:
        rows.extend(_rows(value, f"{prefix}{name}."))
    return rows


def _row(f: dataclasses.Field[Any], default: str, prefix: str) -> str:
    meaning = str(f.metadata.get("help", ""))
    if not meaning and default == "(unset)":
        meaning = "unset keeps the section's value"
    if f.metadata.get("choices"):
        meaning += ("; " if meaning else "") + "one of " + ", ".join(
            f"`{c}`" for c in f.metadata["choices"])
    shown = default if default in (PER_VENUE, "(unset)") else f"`{default}`"
    return f"| `{prefix}{f.name}` | {shown} | {_escape_html(meaning)} |"


def _escape_html(text: str) -> str:
    """``<hostname>`` outside code spans would read as an HTML tag and vanish when rendered."""
    spans = text.split("`")
    return "`".join(s if i % 2 else s.replace("<", "&lt;") for i, s in enumerate(spans))


def _default(value: Any) -> str:
    if value is None:
        return "(unset)"
    return "{}" if isinstance(value, Mapping) and not value else toml_value(value)
