"""Where liqmon keeps what it can rebuild: instrument documents, built scenarios."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """systemd's CacheDirectory= (``$CACHE_DIRECTORY``), else ``$XDG_CACHE_HOME/liqmon``,
    else ``~/.cache/liqmon``."""
    env = os.environ.get("CACHE_DIRECTORY")
    if env:
        return Path(env.split(":")[0])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "liqmon"
