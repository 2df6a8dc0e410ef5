"""``open_store``: the one place the app turns ``[store]`` config into a running store."""

from __future__ import annotations

from monitor.clock import Clock
from monitor.errors import ConfigError
from monitor.store.base import NullObserver, Store, StoreObserver
from monitor.store.buffered import BufferedStore
from monitor.store.config import StoreConfig
from monitor.store.connect import connect
from monitor.store.keys import Keys
from monitor.store.memory import MemoryStore
from monitor.store.redis import RedisStore


async def open_store(
    config: StoreConfig,
    observer: StoreObserver | None = None,
    clock: Clock | None = None,
    *,
    start: bool = True,
    behind_ingest: bool = False,
) -> Store:
    """A store for ``config.backend``; the caller ends it with ``await store.aclose()``.

    The Redis backend returns a :class:`BufferedStore`; with ``start`` its flusher is already
    running in a task of its own, without it the caller runs ``store.background()`` (the
    daemon does, in its TaskGroup).
    An unreachable Redis is not an error here (the store buffers and reports
    ``store_up(False)``); a malformed URL, prefix or password file is a ConfigError.

    ``behind_ingest``: every event will reach the store through ``Ingest``, whose dedupe
    over the store's window already admits each id once, so the memory store keeps no ids
    of its own. The Redis store keeps its ids whatever this says: they are what makes two
    daemons, and a daemon restarted within the window, count an event once.
    """
    obs = observer or NullObserver()
    if config.backend == "memory":
        return MemoryStore(config, obs, clock, own_dedupe=not behind_ingest)
    if config.backend != "redis":
        raise ConfigError("store.backend", config.backend, "'memory' or 'redis'")
    try:
        Keys(config.key_prefix)
    except ValueError as exc:
        raise ConfigError("store.key_prefix", config.key_prefix, str(exc)) from exc
    client, sentinel = connect(config)
    store = BufferedStore(RedisStore(client, config, clock, sentinel), config, obs, clock)
    if start:
        await store.start()
    return store
