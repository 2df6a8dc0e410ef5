"""``liqmon parse --venue hyperliquid-node``: node fill blocks through the same loop and bounds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.support.node_fills import LIQUIDATED, block, fill
from tests.support.timing import T


def parse(lines: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monitor", "parse", "--venue", "hyperliquid-node"],
        input="".join(line + "\n" for line in lines), capture_output=True, text=True,
        timeout=60 * T, env={"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})


def test_a_block_with_a_liquidation_prints_it(tmp_path: Path) -> None:
    done = parse([block([LIQUIDATED, fill(px="100", sz="3")])], tmp_path)
    assert done.returncode == 0, done.stderr
    [event] = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert (event["venue"], event["coin"], event["notional_usd"]) == (
        "hyperliquid-node", "SOL", 300.0)


def test_a_block_outside_the_bounds_is_reported_not_printed(tmp_path: Path) -> None:
    done = parse([block([LIQUIDATED, fill(px="100", sz="3", time=-(2**63))])], tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert "line 1:" in done.stderr and "Traceback" not in done.stderr
