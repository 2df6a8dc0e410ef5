"""Hyperliquid from a node: block-line parsing, and the fills-file follower on real files.

The follower tests write fills files in the node's own layout
(``<dir>/hourly/<YYYYMMDD>/<hour>``, one JSON block a line) and read them back across an
hour rollover and a restart.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from monitor.clock import SystemClock, VirtualClock
from monitor.errors import FrameError
from monitor.events import Liquidation, PositionSide, event_id_from_fields
from monitor.feed.node_fills import FollowPosition, NodeFillsFollower
from monitor.venues.hyperliquid_node import (
    VENUE,
    naive_utc_to_ms,
    parse_block,
    parse_block_line,
)
from tests.support.daemon import wait_until
from tests.support.node_fills import LIQUIDATED, MAKER, VAULT, block, fill
from tests.support.timing import T

NOW = 1_769_904_000.0
# -- parsing --------------------------------------------------------------------------------


def test_the_liquidated_users_own_fill_is_the_event() -> None:
    line = block(
        [LIQUIDATED, fill()],  # the liquidated user sells to close a long
        [MAKER, fill(side="B", start="-10", direction="Close Short")],  # counterparty leg
        [MAKER, fill(coin="BTC", px="95000", sz="1", liquidated=None, tid=7)],  # ordinary fill
    )
    (liq,) = parse_block_line(line, NOW)
    assert liq == Liquidation(
        venue=VENUE, instrument="SOL", coin="SOL", position_side=PositionSide.LONG,
        price=72.153, qty_base=0.58, notional_usd=72.153 * 0.58, exchange_ts_ms=1782636233257,
        received_at=NOW, completeness=liq.completeness,
        event_id=event_id_from_fields(VENUE, 340554939716632, LIQUIDATED))
    assert liq.completeness == "full"
    assert abs(liq.notional_usd - 41.85) < 0.005


def test_method_mark_and_block_are_kept_beside_the_event() -> None:
    parsed = parse_block(block([LIQUIDATED, fill(method="backstop")], number=42), NOW)
    assert parsed.block_number == 42
    assert parsed.block_time_ms == naive_utc_to_ms("2026-06-28T08:43:53.257", "t")
    (found,) = parsed.liquidations
    assert (found.method, found.mark_price, found.liquidated_user) == (
        "backstop", 72.149, LIQUIDATED)
    assert parsed.invalid == []


def test_backstop_takeover_counts_the_liquidated_user_not_the_vault() -> None:
    line = block([VAULT, fill(side="B", start="0", direction="Open Long", method="backstop")],
                 [LIQUIDATED, fill(side="A", start="5", direction="Close Long",
                                   method="backstop")])
    (liq,) = parse_block_line(line, NOW)
    assert liq.position_side is PositionSide.LONG


@pytest.mark.parametrize(
    ("direction", "start", "side", "expected"),
    [("Close Long", "1", "A", "long"), ("Close Short", "-1", "B", "short"),
     ("Liquidated Cross Long", "0", "B", "long"), ("Liquidated Isolated Short", "0", "A", "short"),
     # dir names no side: the start position's sign, then the fill side
     ("Auto-Deleveraging", "-3", "A", "short"), ("Long > Short", "2", "A", "long"),
     ("Open Long", "-3", "B", "short"), ("", "0", "A", "long"), ("Sell", "0", "B", "short")],
)
def test_position_side(direction: str, start: str, side: str, expected: str) -> None:
    line = block([LIQUIDATED, fill(direction=direction, start=start, side=side)])
    (liq,) = parse_block_line(line, NOW)
    assert liq.position_side == PositionSide(expected)


def test_user_match_ignores_address_case() -> None:
    (liq,) = parse_block_line(block([LIQUIDATED.upper().replace("0X", "0x"), fill()]), NOW)
    assert liq.event_id == event_id_from_fields(VENUE, 340554939716632, LIQUIDATED)


def test_coin_names() -> None:
    line = block([LIQUIDATED, fill(coin="kPEPE", px="0.0123", sz="1000", tid=1)],
                 [LIQUIDATED, fill(coin="xyz:SNDK", px="601", sz="2", tid=2)])
    pepe, sndk = parse_block_line(line, NOW)
    assert (pepe.instrument, pepe.coin, pepe.qty_base) == ("kPEPE", "PEPE", 1_000_000.0)
    assert math.isclose(pepe.price, 0.0000123) and math.isclose(pepe.notional_usd, 12.3)
    assert (sndk.instrument, sndk.coin, sndk.notional_usd) == ("xyz:SNDK", "SNDK", 1202.0)


def test_block_times() -> None:
    assert naive_utc_to_ms("2025-07-27T08:50:10.273720809", "t") == 1753606210273
    assert naive_utc_to_ms("2025-07-27T08:50:10", "t") == 1753606210000
    assert naive_utc_to_ms("2025-07-27T08:50:10.5Z", "t") == 1753606210500
    for bad in ("noon", "2025-07-27T08:50:10.x", 1753606210273, None):
        with pytest.raises(FrameError):
            naive_utc_to_ms(bad, "t")


def test_a_block_without_liquidations_is_empty() -> None:
    parsed = parse_block(block([MAKER, fill(liquidated=None)]), NOW)
    assert parsed.liquidations == [] and parsed.invalid == []
    assert parse_block_line(block(), NOW) == []


def test_one_bad_liquidation_fill_among_others_is_invalid() -> None:
    line = block([LIQUIDATED, fill(tid=1)], [LIQUIDATED, fill(px="x", tid=2)],
                 [LIQUIDATED, fill(tid=3)])
    parsed = parse_block(line, NOW)
    assert len(parsed.liquidations) == 2
    (invalid,) = parsed.invalid
    assert invalid.reason == "bad_value"
    assert len(parse_block_line(line, NOW)) == 2


BAD_LINES = {
    "not json": "{nope",
    "empty": "",
    "array": "[]",
    "no events": '{"block_number":1,"block_time":"2026-01-01T00:00:00"}',
    "events not a list": '{"block_number":1,"block_time":"2026-01-01T00:00:00","events":{}}',
    "no block number": '{"block_time":"2026-01-01T00:00:00","events":[]}',
    "bad block time": '{"block_number":1,"block_time":"soon","events":[]}',
    "event not a pair": block([LIQUIDATED]),
    "user not a string": block([1, fill()]),
    "liquidation not an object": block([LIQUIDATED, fill(liquidated=None, liquidation="yes")]),
    "no liquidated user": block([LIQUIDATED, fill(liquidated=None,
                                                  liquidation={"method": "market"})]),
    "px text": block([LIQUIDATED, fill(px="lots")]),
    "sz zero": block([LIQUIDATED, fill(sz="0")]),
    "no time": block([LIQUIDATED, {k: v for k, v in fill().items() if k != "time"}]),
    "tid not an id": block([LIQUIDATED, fill(tid=[1])]),  # type: ignore[arg-type]
    "no side at all": block([LIQUIDATED, fill(direction="?", start="0", side="?")]),
    "overflow": block([LIQUIDATED, fill(px="1e300", sz="1e300")]),
}


@pytest.mark.parametrize("text", BAD_LINES.values(), ids=BAD_LINES.keys())
def test_malformed_lines_raise_frame_error(text: str) -> None:
    with pytest.raises(FrameError) as excinfo:
        parse_block(text, NOW)
    assert excinfo.value.reason in {"malformed_json", "missing_field", "bad_value"}


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
LINES_TO_MUTATE = [
    block([LIQUIDATED, fill()]),
    block([LIQUIDATED, fill(tid=1)], [MAKER, fill(tid=1, side="B")]),
]


def _mutate(value: Any, path: list[int], replacement: Any) -> Any:
    if not path or not isinstance(value, dict | list) or not value:
        return replacement
    keys = list(value) if isinstance(value, dict) else list(range(len(value)))
    key = keys[path[0] % len(keys)]
    inner = _mutate(value[key], path[1:], replacement)
    if isinstance(value, dict):
        return {**value, key: inner}
    return [*value[:key], inner, *value[key + 1:]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(line=st.sampled_from(LINES_TO_MUTATE),
       path=st.lists(st.integers(min_value=0, max_value=30), max_size=6),
       replacement=JSON_VALUES)
def test_mutated_lines_raise_only_frame_error(line: str, path: list[int], replacement: Any
                                              ) -> None:
    try:
        liquidations = parse_block_line(json.dumps(_mutate(json.loads(line), path, replacement)),
                                        NOW)
    except FrameError:
        return
    for liq in liquidations:
        assert 0 < liq.notional_usd < math.inf and 0 < liq.qty_base < math.inf


# -- the follower ---------------------------------------------------------------------------


class Node:
    """Writes fills files the way the node does: hourly files, one block a line."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.number = 0

    def path(self, date: str, hour: int) -> Path:
        path = self.root / "hourly" / date / str(hour)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def line(self) -> str:
        self.number += 1
        return block([LIQUIDATED, fill(tid=self.number)], number=self.number)

    def append(self, date: str, hour: int, count: int = 1, partial: str = "") -> list[str]:
        lines = [self.line() for _ in range(count)]
        with open(self.path(date, hour), "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines) + partial)
        return lines


def follower(tmp_path: Path, clock: Any = None, **kwargs: Any) -> NodeFillsFollower:
    return NodeFillsFollower(tmp_path / "node_fills_by_block", tmp_path / "state" / "pos.json",
                             clock or VirtualClock(NOW), poll_interval_seconds=0.01,
                             silence_limit_seconds=30.0, **kwargs)


def test_first_start_follows_the_newest_file_from_its_end(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.append("20260201", 2, 3)
    node.append("20260201", 3, 2)
    writing = node.line()
    with open(node.path("20260201", 3), "a") as out:
        out.write(writing[:50])  # the node was mid-block when we started
    f = follower(tmp_path)
    assert f.poll() == []  # what was complete before the start is history
    assert f.position is not None and f.position.file == "hourly/20260201/3"
    with open(node.path("20260201", 3), "a") as out:
        out.write(writing[50:] + "\n")
    new = node.append("20260201", 3, 2)
    assert f.poll() == [writing, *new]


def test_only_complete_lines_are_read_and_none_twice(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.path("20260201", 5).touch()
    f = follower(tmp_path)
    assert f.poll() == []
    first = node.append("20260201", 5, 2)
    second = node.line()
    with open(node.path("20260201", 5), "a") as out:
        out.write(second[:40])  # the node is in the middle of writing a block
    assert f.poll() == first
    assert f.poll() == []
    with open(node.path("20260201", 5), "a") as out:
        out.write(second[40:] + "\n")
    assert f.poll() == [second]
    assert f.poll() == []
    assert [parse_block(line, NOW).block_number for line in [*first, second]] == [1, 2, 3]


def test_hour_rollover(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.path("20260201", 23).touch()
    f = follower(tmp_path)
    f.poll()
    late = node.append("20260201", 23, 2)
    assert f.poll() == late
    after = node.append("20260202", 0, 3)  # the next hour, on the next day
    last = node.append("20260201", 23, 1)  # the old hour's last block, flushed late
    assert f.poll() == last  # the old file is read to its end first
    assert f.poll() == after
    assert f.position == FollowPosition("hourly/20260202/0", f.position.offset)  # type: ignore[union-attr]
    more = node.append("20260202", 0, 1)
    assert f.poll() == more
    assert f.lines_read == 7


def test_rollover_waits_for_a_half_written_last_line_then_skips_it(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.path("20260201", 10).touch()
    clock = VirtualClock(NOW)
    f = follower(tmp_path, clock, rollover_grace_seconds=5.0)
    f.poll()
    node.append("20260201", 10, 1, partial='{"block_number":9')
    assert len(f.poll()) == 1
    after = node.append("20260201", 11, 1)
    assert f.poll() == []  # within the grace period: the writer may still finish it
    clock.advance(6.0)
    assert f.poll() == after
    assert f.partial_lines_dropped == 1


def test_restart_resumes_from_the_saved_position(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.path("20260201", 8).touch()
    first = follower(tmp_path)
    first.poll()
    seen = first.poll() + (node.append("20260201", 8, 2) and first.poll())
    assert len(seen) == 2
    # Down for a while: the hour rolls over meanwhile.
    missed_old = node.append("20260201", 8, 2)
    missed_new = node.append("20260201", 9, 2)
    saved = json.loads((tmp_path / "state" / "pos.json").read_text())
    assert saved["file"] == "hourly/20260201/8"
    second = follower(tmp_path)
    assert second.poll() == missed_old
    assert second.poll() == missed_new
    assert second.poll() == []
    # Nothing was handed on twice across the restart.
    numbers = [parse_block(line, NOW).block_number for line in seen + missed_old + missed_new]
    assert numbers == sorted(set(numbers)) == list(range(1, 7))


def test_restart_after_the_saved_file_was_pruned(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.path("20260201", 1).touch()
    f = follower(tmp_path)
    f.poll()
    node.append("20260201", 1, 1)
    f.poll()
    node.path("20260201", 1).unlink()
    kept = node.append("20260201", 2, 2)
    assert follower(tmp_path).poll() == kept


def test_an_unreadable_state_file_starts_afresh(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.append("20260201", 4, 2)
    state = tmp_path / "state" / "pos.json"
    state.parent.mkdir()
    for text in ("{not json", '{"file":"../../etc/passwd","offset":0}',
                 '{"file":"hourly/20260201/4","offset":-5}'):
        state.write_text(text)
        f = follower(tmp_path)
        assert f.poll() == []  # from the newest file's end, as on a first start
        assert f.position is not None and f.position.file == "hourly/20260201/4"


def test_files_that_appear_after_an_empty_start_are_read_whole(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    f = follower(tmp_path)
    assert f.poll() == [] and f.position is None
    lines = node.append("20260201", 6, 2)
    f.poll()
    assert f.poll() == lines
    # Stray files in the tree are not fills files.
    (node.root / "hourly" / "20260201" / "6.lz4").write_text("x\n")
    (node.root / "hourly" / "notes").mkdir()
    assert f.poll() == []


def test_staleness_is_reported_once_each_way(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.path("20260201", 0).touch()
    clock = VirtualClock(NOW)
    changes: list[bool] = []
    f = follower(tmp_path, clock, on_staleness=changes.append)
    f.poll()
    assert not f.check_staleness()
    clock.advance(29.0)
    assert not f.check_staleness()
    clock.advance(2.0)
    assert f.check_staleness() and f.check_staleness()
    assert changes == [True]
    node.append("20260201", 0, 1)
    f.poll()
    assert not f.check_staleness()
    assert changes == [True, False]


async def test_run_hands_on_every_block_across_a_rollover(tmp_path: Path) -> None:
    node = Node(tmp_path / "node_fills_by_block")
    node.path("20260201", 12).touch()
    received: list[tuple[str, float]] = []
    arrived = asyncio.Event()

    def on_line(text: str, at: float) -> None:
        received.append((text, at))
        arrived.set()

    f = follower(tmp_path, SystemClock())
    task = asyncio.create_task(f.run(on_line))

    async def until(count: int) -> None:
        async with asyncio.timeout(5 * T):
            while len(received) < count:
                arrived.clear()
                await arrived.wait()

    try:
        # The follower has found the file and its end: lines appended before would be
        # skipped as history. Waited for, not assumed after 0.05 s.
        await wait_until(lambda: f.position is not None, 5 * T, interval=0.01)
        expected = node.append("20260201", 12, 3)
        await until(3)
        expected += node.append("20260201", 13, 2)
        await until(5)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [text for text, _ in received] == expected
    assert all(at > NOW for _, at in received)
    liquidations = [liq for text, at in received for liq in parse_block_line(text, at)]
    assert len(liquidations) == 5 and len({liq.event_id for liq in liquidations}) == 5
    saved = json.loads((tmp_path / "state" / "pos.json").read_text())
    assert saved == {"file": "hourly/20260201/13",
                     "offset": node.path("20260201", 13).stat().st_size}
