"""``liqmon tail`` against ``liqmon simulate``, both real commands, as a user runs them.

The simulator stamps events with the wall clock (nothing in the future at 600x) and its
trade ids differ from one run to the next, so a daemon's dedupe never drops a second run.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import orjson

from monitor.cli.tape import TapeFilter, TapePrinter, tape_line
from monitor.events import Completeness, Liquidation, PositionSide
from tests.cli.commands import cli_env, liqmon, simulator
from tests.support.timing import T

# Deribit's trades carry the venue's own trade id, which the simulator derives from its
# sequence; a quick venue to subscribe to.
VENUE = "deribit"
TAPE = re.compile(r"^\d\d:\d\d:\d\d\s+deribit\s+[A-Z]+\s+(LONG|SHORT)\s+\$[\d.]+[kMB]?\s+@\s+"
                  r"[\d,.e-]+")


def _tail(env: dict[str, str], *args: str) -> list[str]:
    done = liqmon(["tail", "--from", "feeds", "--venue", VENUE, "--duration", str(60 * T),
                   *args], env, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "watching 1 venue(s) directly" in done.stderr
    return done.stdout.splitlines()


def test_tail_prints_the_simulators_liquidations_on_the_wall_clock_with_fresh_ids(
    tmp_path: Path,
) -> None:
    env = cli_env(tmp_path)
    runs: list[list[dict[str, object]]] = []
    for _run in range(2):
        with simulator(env, "--speed", "600") as (proc, settings):
            lines = _tail({**env, **settings}, "--json", "--count", "15")
            events = [orjson.loads(line) for line in lines]
            assert len(events) == 15
            tape = _tail({**env, **settings}, "--count", "3", "--side", "long")
            assert len(tape) == 3 and all(TAPE.match(line) for line in tape), tape
            assert all("LONG" in line for line in tape)
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10 * T) == 130  # Ctrl-C
        runs.append(events)
    for events in runs:
        for event in events:
            assert event["venue"] == VENUE
            # Stamped when sent: at most the frame's trip behind its receipt, never ahead.
            delay = float(event["received_at"]) - int(event["exchange_ts_ms"]) / 1000  # type: ignore[arg-type]
            assert -1.0 < delay < 5.0 * T, event
    first, second = ({str(e["event_id"]) for e in events} for events in runs)
    assert not first & second


def _liq(usd: float, side: PositionSide = PositionSide.LONG, venue: str = "okx",
         coin: str = "BTC") -> Liquidation:
    return Liquidation(venue=venue, instrument=f"{coin}-USDT-SWAP", coin=coin,
                       position_side=side, price=97312.5, qty_base=usd / 97312.5,
                       notional_usd=usd, exchange_ts_ms=1_769_904_123_000,
                       received_at=1_769_904_123.2, completeness=Completeness.THROTTLED,
                       event_id=f"okx:{usd}")


def test_tape_lines_fit_80_columns_and_filters_apply(tmp_path: Path) -> None:
    line = tape_line(_liq(1_936_798_966.0))
    assert line == ("00:02:03  okx            BTC    LONG    $1.94B @    97,312.5  throttled")
    assert len(tape_line(_liq(5e5, venue="kraken-futures", coin="1000PEPE"), color=True)) < 120
    assert len(line) <= 80
    out = tmp_path / "tape.txt"
    with out.open("w") as stream:
        printer = TapePrinter(TapeFilter.build(["okx"], ["btc"], "short", 1e5), stream=stream,
                              limit=1)
        for event in (_liq(5e5), _liq(5e4, PositionSide.SHORT), _liq(2e5, venue="bybit"),
                      _liq(3e5, PositionSide.SHORT), _liq(4e5, PositionSide.SHORT)):
            printer(event)
    assert out.read_text().splitlines() == [tape_line(_liq(3e5, PositionSide.SHORT))]
