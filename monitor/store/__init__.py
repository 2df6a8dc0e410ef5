"""Per-minute liquidation aggregates: the embedded memory store and the Redis store.

``open_store(config, observer)`` builds the configured one; ``base.py`` holds the contract.
``open_store`` is imported on first use: importing this package (``monitor.config`` does,
for ``StoreConfig``) must not pull in redis-py for commands that never open a store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.store.base import (
    GROUP_KEYS,
    WINDOWS,
    NullObserver,
    Store,
    StoreObserver,
    TotalsRow,
    parse_window,
)

if TYPE_CHECKING:
    from monitor.store.factory import open_store

__all__ = [
    "GROUP_KEYS",
    "WINDOWS",
    "NullObserver",
    "Store",
    "StoreObserver",
    "TotalsRow",
    "open_store",
    "parse_window",
]


def __getattr__(name: str) -> Any:
    if name == "open_store":
        from monitor.store.factory import open_store

        return open_store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
