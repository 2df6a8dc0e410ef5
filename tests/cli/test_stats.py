"""``liqmon stats --largest`` over a real Redis store, and what it says on the memory store."""

from __future__ import annotations

import re
import time
from pathlib import Path

import orjson

from monitor.events import Completeness, Liquidation, PositionSide
from monitor.store.config import StoreConfig
from monitor.store.coverage import CoverageMinute
from monitor.store.factory import open_store
from tests.cli.commands import cli_env, liqmon
from tests.fixtures.redis import RedisServer


def _event(n: int, coin: str, side: PositionSide, usd: float, now_ms: int) -> Liquidation:
    return Liquidation(venue="okx" if n % 2 else "bybit", instrument=f"{coin}-USDT-SWAP",
                       coin=coin, position_side=side, price=100.0, qty_base=usd / 100,
                       notional_usd=usd, exchange_ts_ms=now_ms - n * 1000,
                       received_at=now_ms / 1000, completeness=Completeness.FULL,
                       event_id=f"e{n}")


def _config(redis_server: RedisServer, prefix: str) -> StoreConfig:
    return StoreConfig(backend="redis", url=redis_server.url, key_prefix=prefix)


def _env(tmp_path: Path, redis_server: RedisServer, prefix: str) -> dict[str, str]:
    """The environment of a command reading the store ``_config`` writes."""
    return cli_env(tmp_path, LIQMON_STORE__BACKEND="redis", LIQMON_STORE__URL=redis_server.url,
                   LIQMON_STORE__KEY_PREFIX=prefix)


async def test_largest_with_filters_from_the_daemons_store(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    store = await open_store(_config(redis_server, "statslargest"))
    now_ms = int(time.time() * 1000)
    coins = ("ETH", "BTC", "ETH", "ETH", "SOL", "ETH")
    events = [_event(n, coin, PositionSide.SHORT if n == 3 else PositionSide.LONG,
                     (n + 1) * 1e6, now_ms) for n, coin in enumerate(coins)]
    await store.add(events)
    assert await store.flush(5.0) == 0
    await store.aclose()
    env = _env(tmp_path, redis_server, "statslargest")

    done = liqmon(["stats", "--largest", "2", "--coin", "eth", "--side", "long",
                   "--window", "1h"], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "the 2 largest liquidations in the last 1h (UTC)"
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+okx\s+ETH\s+LONG\s+\$6\.00M @", lines[1])
    assert re.match(r"^\S+ \S+\s+bybit\s+ETH\s+LONG\s+\$3\.00M @", lines[2])
    assert len(lines) == 3

    done = liqmon(["stats", "--largest", "10", "--json", "--window", "1h"], env)
    doc = orjson.loads(done.stdout)
    assert [e["event_id"] for e in doc["largest"]] == [f"e{n}" for n in (5, 4, 3, 2, 1, 0)]


def test_the_memory_store_says_why_it_is_empty(tmp_path: Path) -> None:
    done = liqmon(["stats"], cli_env(tmp_path))
    assert done.returncode == 1
    assert "lives inside each process" in done.stderr
    assert 'backend = "redis"' in done.stderr and "liqmon top" in done.stderr
    assert done.stdout == ""


async def test_tail_follows_the_largest_in_the_store(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    store = await open_store(_config(redis_server, "tailstore"))
    now_ms = int(time.time() * 1000)
    await store.add([_event(n, "BTC", PositionSide.LONG, (n + 1) * 1e5, now_ms)
                     for n in range(4)])
    assert await store.flush(5.0) == 0
    await store.aclose()
    env = _env(tmp_path, redis_server, "tailstore")
    done = liqmon(["tail", "--json", "--count", "2", "--min-usd", "250k"], env)
    assert done.returncode == 0, done.stderr
    assert "largest liquidations of each minute in the daemon's Redis store" in done.stderr
    # Oldest first, as a tape: e3 ($400k) happened 3 s before e2 ($300k).
    assert [orjson.loads(line)["event_id"] for line in done.stdout.splitlines()] == ["e3", "e2"]


async def test_gaps_beside_the_totals_in_the_table_and_the_json(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    store = await open_store(_config(redis_server, "statsgaps"))
    now_ms = int(time.time() * 1000)
    minute = now_ms // 60_000
    await store.add([_event(n, "BTC", PositionSide.LONG, 1e6, now_ms) for n in range(2)])
    assert await store.flush(5.0) == 0
    # okx: two gaps in a row 10 and 9 minutes ago and one 3 minutes ago; bybit covered.
    await store.record_coverage(
        [CoverageMinute("okx", minute - ago, ago not in (10, 9, 3)) for ago in range(1, 20)]
        + [CoverageMinute("bybit", minute - ago, True) for ago in range(1, 20)],
        {"okx": time.time(), "bybit": time.time()})
    await store.aclose()
    env = _env(tmp_path, redis_server, "statsgaps")

    done = liqmon(["stats", "--window", "15m", "--by", "venue"], env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1].split() == ["venue", "usd", "count", "largest_usd", "completeness",
                                "gap_min"]
    assert {line.split()[0]: line.split()[-1] for line in lines[2:4]} == {"okx": "3",
                                                                       "bybit": "0"}
    hhmm = [time.strftime("%H:%M", time.gmtime((minute - ago) * 60)) for ago in (10, 8, 3, 2)]
    assert f"  okx    3 min of gaps: {hhmm[0]}-{hhmm[1]} UTC, {hhmm[2]}-{hhmm[3]} UTC " \
        "(14 of 15 min recorded)" in lines
    assert "  bybit  no gap (14 of 15 min recorded)" in lines

    done = liqmon(["stats", "--window", "1h", "--by", "venue", "--json"], env)
    doc = orjson.loads(done.stdout)
    assert {r["venue"]: r["gap_minutes"] for r in doc["rows"]} == {"okx": 3, "bybit": 0}
    okx = next(c for c in doc["coverage"] if c["venue"] == "okx")
    assert okx["recorded_minutes"] == 19 and okx["gap_minutes"] == 3
    assert [g["minutes"] for g in okx["gaps"]] == [2, 1]
    assert okx["gaps"][0]["start"] == time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime((minute - 10) * 60))
