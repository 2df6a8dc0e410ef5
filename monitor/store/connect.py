"""Redis clients from the ``[store]`` config, and redis errors translated into ours.

- ``url``: ``redis://[user:password@]host:port/db`` or ``rediss://`` for TLS (query options
  such as ``?ssl_ca_certs=/path`` pass through to redis-py); ``password_file`` (a systemd
  credential, for instance) overrides the URL's password.
- ``cluster = true``: redis-py's cluster client, seeded from the URL's host; it discovers
  the other nodes itself. All keys share one hash tag (see ``keys.py``).
- ``sentinels = ["host:port", ...]``: redis-py's Sentinel client asks the Sentinels for the
  master of ``service_name`` and follows failovers; the URL then supplies only the
  credentials, TLS and db, not the host. Sentinels themselves are reached without a
  password.

Timeouts come from the config. redis-py's own retry is cut to one immediate retry, which
lets a pooled connection that died with a Redis restart be replaced transparently; longer
waits belong to the buffered store's backoff, not to a caller blocked inside a command.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import SSLConnection, parse_url
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    ConnectionError as RedisConnectionError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TimeoutError as RedisTimeoutError,
    TryAgainError,
)

from monitor.errors import ConfigError, StoreError, StoreUnavailable
from monitor.redact import redact_url
from monitor.store.config import StoreConfig

RedisClient = Redis | RedisCluster

# Everything a Redis call can raise that we translate; anything else is a bug and propagates.
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, OSError)

_UNAVAILABLE: tuple[type[BaseException], ...] = (
    RedisConnectionError,  # includes authentication failures: retried, logged as an outage
    RedisTimeoutError,
    BusyLoadingError,
    ClusterDownError,
    TryAgainError,
    MasterDownError,
    ReadOnlyError,  # a replica promoted away under us during a failover
    OutOfMemoryError,  # maxmemory with noeviction: Redis answers "OOM ..."
    OSError,
)
_UNAVAILABLE_PREFIXES = ("OOM", "LOADING", "BUSY", "MISCONF", "READONLY", "MASTERDOWN")


def translate(exc: BaseException, doing: str) -> StoreError:
    """Our error for a redis error: StoreUnavailable for what waiting can cure."""
    text = f"redis {doing}: {type(exc).__name__}: {exc}"
    if isinstance(exc, _UNAVAILABLE):
        return StoreUnavailable(text)
    if isinstance(exc, ResponseError) and str(exc).startswith(_UNAVAILABLE_PREFIXES):
        # Out of memory, a replica, a disk that fails, a long script elsewhere: the store
        # takes no writes for now; not our bug. (redis-py strips the prefixes it maps to a
        # class, such as OOM, and keeps the others, such as MISCONF.)
        return StoreUnavailable(text)
    return StoreError(text)


def read_password(config: StoreConfig) -> str | None:
    if not config.password_file:
        return None
    try:
        return Path(config.password_file).read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        expected = f"a readable file ({exc})"
        raise ConfigError("store.password_file", config.password_file, expected) from exc


def _common_kwargs(config: StoreConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": config.connect_timeout_seconds,
        "socket_timeout": config.socket_timeout_seconds,
        "retry": Retry(NoBackoff(), 1),
    }
    password = read_password(config)
    if password is not None:
        kwargs["password"] = password
    return kwargs


def _check_url(config: StoreConfig) -> dict[str, Any]:
    try:
        parsed = dict(parse_url(config.url))
    except ValueError as exc:
        expected = f"a redis:// or rediss:// URL ({exc})"
        raise ConfigError("store.url", redact_url(config.url), expected) from exc
    if parsed.get("connection_class") not in (None, SSLConnection) and (
        config.cluster or config.sentinels
    ):
        raise ConfigError("store.url", redact_url(config.url),
                          "redis:// or rediss:// with cluster/sentinels")
    return parsed


def _sentinel_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError("store.sentinels", text, "host:port")
    return host.strip("[]"), int(port)


def connect(config: StoreConfig) -> tuple[RedisClient, Sentinel | None]:
    """Build (not yet connect) the client the config asks for, and its Sentinel if any.

    redis-py connects lazily, so an unreachable Redis is not an error here: the first
    command reports it, and the buffered store waits for it.
    """
    parsed = _check_url(config)
    kwargs = _common_kwargs(config)
    if config.sentinels:
        addresses = [_sentinel_address(s) for s in config.sentinels]
        sentinel_kwargs = {
            "socket_connect_timeout": config.connect_timeout_seconds,
            "socket_timeout": config.socket_timeout_seconds,
        }
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            addresses, sentinel_kwargs=sentinel_kwargs, **kwargs
        )
        master_kwargs = {k: v for k, v in parsed.items() if k not in ("host", "port")}
        if master_kwargs.pop("connection_class", None) is SSLConnection:
            master_kwargs["ssl"] = True
        master_kwargs.update(kwargs)
        client: RedisClient = sentinel.master_for(config.service_name, **master_kwargs)
        return client, sentinel
    if config.cluster:
        return RedisCluster.from_url(config.url, **kwargs), None
    return Redis.from_url(config.url, **kwargs), None


async def close_client(client: RedisClient, sentinel: Sentinel | None) -> None:
    await client.aclose()
    if sentinel is not None:
        for s in sentinel.sentinels:
            await s.aclose()
