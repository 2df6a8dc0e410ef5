"""The ``[store]`` config section."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StoreConfig:
    backend: str = field(
        default="memory",
        metadata={"choices": ("memory", "redis"), "help": "memory (embedded) or redis"},
    )
    url: str = field(
        default="redis://127.0.0.1:6379/0",
        metadata={"help": "redis:// or rediss:// URL, with user:password@ for ACLs"},
    )
    cluster: bool = field(default=False, metadata={"help": "use the Redis Cluster client"})
    sentinels: tuple[str, ...] = field(
        default=(), metadata={"help": "host:port of Sentinels; non-empty switches to Sentinel"}
    )
    service_name: str = field(
        default="mymaster", metadata={"help": "the Sentinel service (master) name"}
    )
    password_file: str = field(
        default="", metadata={"help": "file holding the Redis password (systemd credential)"}
    )
    buffer_size: int = field(
        default=100_000, metadata={"min": 1, "help": "events held while Redis is unreachable"}
    )
    retention_hours: float = field(
        default=48.0, metadata={"min": 1, "help": "TTL of minute buckets"}
    )
    dedupe_ttl_hours: float = field(
        default=48.0, metadata={"min": 0.1, "help": "how long an event id is remembered"}
    )
    dedupe_max_ids: int = field(
        default=1_000_000,
        metadata={"min": 1, "help": "most event ids remembered in process (~75 B each); "
                  "past it the oldest go and events older than them are refused"},
    )
    connect_timeout_seconds: float = field(
        default=2.0, metadata={"min": 0.01, "help": "Redis connect timeout"}
    )
    socket_timeout_seconds: float = field(
        default=2.0, metadata={"min": 0.01, "help": "Redis command timeout"}
    )
    batch_size: int = field(default=500, metadata={"min": 1, "help": "events per write"})
    flush_interval_seconds: float = field(
        default=0.1, metadata={"min": 0.001, "help": "longest wait before a partial batch"}
    )
    write_stall_seconds: float = field(
        default=15.0,
        metadata={"min": 0.01, "help": "store_up falls to 0 when buffered events wait this "
                  "long without a write landing"},
    )
    cascade_history: int = field(
        default=100, metadata={"min": 1, "help": "how many cascades the store keeps"}
    )
    key_prefix: str = field(
        default="liqmon",
        metadata={"help": "Redis key prefix and hash tag {prefix}; deployments sharing a "
                  "Redis (or a cluster) keep apart by choosing different prefixes"},
    )
