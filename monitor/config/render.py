"""The effective configuration as TOML text: ``liqmon check-config``, the example file."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from monitor.config.sections import Config
from monitor.redact import redact


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
        out.append(f"{f.name} = {toml_value(show(f'{section}.{prefix}{f.name}', value))}")
    for name, value in nested:
        # Sub-tables as dotted keys keep them inside their section without a new header.
        out.extend(_toml_fields(value, comments, prefix=f"{prefix}{name}.", section=section,
                                show=show))
    if prefix:
        out = [line if line.startswith("#") else prefix + line for line in out]
    return out


def _identity(path: str, value: Any) -> Any:
    return value


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() else f'"{key}"'


def toml_value(value: Any) -> str:
    """A value as TOML text (strings quoted and escaped, tables inline)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        inner = ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    if value is None:
        return '""'
    return toml_value(str(value))
