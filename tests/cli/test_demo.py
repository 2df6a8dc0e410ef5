"""``liqmon demo``: the simulator and the daemon in one process, as a newcomer runs it."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli.commands import cli_env, liqmon

ROW = re.compile(r"^(\S+)\s+(long|short)\s+(\d+)\s+(\d+)\s+(\$[\d.]+[kMB]?)\s+(\$[\d.]+[kMB]?)$")
# Hours of more than one digit: on a loaded machine the market clock, which runs on at the
# demo's speed after the night while the daemon counts what is in flight, passes 9:59:59.
CLOCK = re.compile(r"^\[\d+:\d\d:\d\d\] ")
TAPE = re.compile(r"^\+\d:\d\d:\d\d\s+\S+\s+\S+\s+(LONG|SHORT)\s+\$[\d.]+[kMB]\s+@")
SCALE = {"": 1.0, "k": 1e3, "M": 1e6, "B": 1e9}


def dollars(text: str) -> float:
    return float(text.strip("$kMB")) * SCALE[text[-1] if text[-1] in "kMB" else ""]


def test_demo_tells_the_crash_on_the_market_clock_and_counts_what_was_sent(
    tmp_path: Path,
) -> None:
    done = liqmon(["demo", "--scenario", "feb-2026", "--speed", "1200", "--tape", "20M"],
                  cli_env(tmp_path), timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [ROW.match(line.strip()) for line in done.stdout.splitlines()]
    table = {(m[1], m[2]): (m[3], m[4], m[5], m[6]) for m in rows if m}
    venues = {venue for venue, _side in table}
    assert len(venues) == 12, done.stdout  # every websocket venue of the scenario
    for key, (sent, counted, sent_usd, counted_usd) in table.items():
        assert sent == counted and sent_usd == counted_usd, (key, done.stdout)
    longs = sum(dollars(v[2]) for (_venue, side), v in table.items() if side == "long")
    total = sum(dollars(v[2]) for v in table.values())
    assert longs / total > 0.9  # the night was 94% longs
    # The tape: the largest liquidations of the night, on the market clock.
    tape = [line for line in done.stdout.splitlines() if TAPE.match(line)]
    assert tape and all("LONG" in line for line in tape[:1]), done.stdout
    # The story on stderr: market clock lines, the cascade, its end; no connection noise.
    story = done.stderr.splitlines()
    told = [line for line in story if CLOCK.match(line)]
    assert len(told) >= 10, done.stderr
    assert any("cascade firing" in line for line in told)
    assert told[-1].endswith("every cascade has resolved"), done.stderr[-2000:]
    assert not [line for line in story if "subscribed" in line or " INFO " in line], story
    assert not re.search(r"\$\d{7,}", done.stdout + done.stderr)  # USD is humanised
    # The simulator's instrument lists stayed out of the real cache.
    assert not (tmp_path / "cache" / "liqmon" / "instruments").exists()
