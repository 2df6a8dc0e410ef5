"""Every Redis key liqmon uses, and nothing else makes one.

Layout (``P`` is the configured ``key_prefix``, default ``liqmon``)::

    {P}:m:<minute>     hash   per-minute cells: field "venue|coin|side" → "usd count qty max mask"
                              (max: the largest single USD value; mask: completeness bits)
    {P}:mx:<minute>    hash   the largest liquidation of each cell of that minute (a record)
    {P}:mt:<minute>    zset   the minute's LARGEST_KEEP largest liquidations: member = record,
                              score = USD
    {P}:h:<hour>       hash   the same cells summed per hour (roll-up), <hour> = minute // 60
    {P}:hx:<hour>      hash   the largest liquidation of each hourly cell
    {P}:ht:<hour>      zset   the hour's LARGEST_KEEP largest liquidations
    {P}:ids:<minute>   set    the ids of the events counted in that minute (dedupe TTL)
    {P}:cascades       hash   cascade id → record JSON
    {P}:cascades:order zset   cascade id → sequence number of its first recording
    {P}:cascades:seq   string the sequence counter
    {P}:claim:<key>    string held by the daemon that claimed an alert id (SET NX PX)
    {P}:cov:<venue>:<day>  string  a bitmap of the venue's coverage over one UTC day
                              (``coverage.py``: bit 2i recorded, bit 2i+1 covered, minute i)
    {P}:heartbeat      hash   venue → wall time of the last coverage record

Minutes and hours are counted from the Unix epoch in the venue's time. Buckets, roll-ups,
coverage bitmaps and the heartbeat expire ``retention`` after their last write; id sets
the dedupe TTL after theirs. A record is a liquidation as a JSON array (``records.py``).

Hash tag. Every key carries the same ``{P}`` tag, so on Redis Cluster all of them live in one
hash slot: the write script (id sets and buckets of many minutes in one call), the cascade
script and the pipelined window reads never cross slots, and no CROSSSLOT error can occur.
Every key a script touches is passed to it in KEYS, as Redis asks (proxies and some managed
services refuse scripts that make up key names).
The price is that one deployment's data sits on one shard. That is deliberate: the whole
dataset is small (48 h of minute cells is megabytes, plus the dedupe ids) and the write rate
of even a crash is far below one Redis node's capacity, while sharding by venue or by hour
would split every batch and turn each window read into one round trip per shard, at most a
dozen uneven shards anyway. The cluster is used for availability and shared infrastructure;
deployments that share a cluster spread out by choosing different prefixes.
"""

from __future__ import annotations

import re

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.:-]+$")

# Separates the group fields inside a hash field. Venue ids, coins and sides never hold it.
FIELD_SEP = "|"


class Keys:
    """Key names for one deployment prefix."""

    __slots__ = ("_p", "cascade_order", "cascade_seq", "cascades", "heartbeat", "prefix")

    def __init__(self, prefix: str = "liqmon") -> None:
        if not _PREFIX_RE.match(prefix):
            raise ValueError(
                f"key prefix {prefix!r}: expected letters, digits and _ . : - only "
                "(braces would break the hash tag)"
            )
        self.prefix = prefix
        self._p = "{" + prefix + "}:"
        self.cascades = self._p + "cascades"
        self.cascade_order = self._p + "cascades:order"
        self.cascade_seq = self._p + "cascades:seq"
        self.heartbeat = self._p + "heartbeat"

    def minute_ids(self, minute: int) -> str:
        return f"{self._p}ids:{minute}"

    def minute(self, minute: int) -> str:
        return f"{self._p}m:{minute}"

    def minute_largest(self, minute: int) -> str:
        return f"{self._p}mx:{minute}"

    def minute_top(self, minute: int) -> str:
        return f"{self._p}mt:{minute}"

    def hour(self, hour: int) -> str:
        return f"{self._p}h:{hour}"

    def hour_largest(self, hour: int) -> str:
        return f"{self._p}hx:{hour}"

    def hour_top(self, hour: int) -> str:
        return f"{self._p}ht:{hour}"

    def coverage(self, venue: str, day: int) -> str:
        return f"{self._p}cov:{venue}:{day}"

    def claim(self, key: str) -> str:
        return self._p + "claim:" + key

    def pattern(self) -> str:
        """A SCAN pattern matching every key of this prefix (for tests and cleanup)."""
        return "{" + self.prefix + "}:*"


def group_field(venue: str, coin: str, position_side: str) -> str:
    """The hash field of one (venue, coin, position_side) cell."""
    return f"{venue}{FIELD_SEP}{coin}{FIELD_SEP}{position_side}"


def parse_group_field(field: str) -> tuple[str, str, str]:
    parts = field.split(FIELD_SEP)
    if len(parts) != 3:
        raise ValueError(f"bucket field {field!r}: expected venue|coin|position_side")
    return parts[0], parts[1], parts[2]
