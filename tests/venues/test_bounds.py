"""Bounds at the edge: over every venue, what passes is a realistic event, whatever the frame.

A seeded mutator puts extreme values (0, negatives, 1e308, ±2^63, 1e10, "1e400", "nan") into
every numeric leaf of every golden frame and seed, one leaf at a time and all at once; each
frame goes through its venue's dialect and the bounds, and every event that comes out must
be inside them. The same events through ingest leave the store's totals finite.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.venues import WEBSOCKET_VENUES
from monitor.venues.bounds import (
    DEFAULT_BOUNDS,
    REASON_PREFIX,
    Bounds,
    out_of_bounds,
    screen,
)
from monitor.venues.dialect import Invalid
from tests.support.golden import golden_files, golden_session, seed_frames

EXTREMES: tuple[Any, ...] = (0, -1, 1e308, -(2**63), 2**63 - 1, 1e10, 1e12, "1e400", "nan",
                             "-5", "0.0", 9.9e9, 1e-300)
T0 = 1_769_904_000.0


def liq(usd: float = 1000.0, *, price: float = 50_000.0, ts: float = T0,
        received: float = T0 + 0.2) -> Liquidation:
    qty = usd / price if price > 0 else 1.0
    return Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG, price, qty, usd,
                       int(ts * 1000), received, Completeness.FULL, "bybit:1")


def test_a_realistic_event_is_inside() -> None:
    assert out_of_bounds(liq()) is None
    assert out_of_bounds(liq(222e6)) is None  # the record of 1 February 2026


@pytest.mark.parametrize(("event", "reason"), [
    (liq(5e9), "too_large"),
    (liq(float("inf")), "quantity"),
    (liq(1000.0, price=0.0), "price"),
    (liq(1000.0, price=float("nan")), "price"),
    (liq(-3.0), "quantity"),
    (liq(ts=0.0, received=T0), "time"),
    (liq(ts=-(2**63) / 1000, received=T0), "time"),
    (liq(ts=T0 + 7200), "time"),  # two hours ahead of its receipt
    (liq(ts=T0 - 8 * 86400), "time"),  # eight days behind it
])
def test_an_absurd_event_is_outside(event: Liquidation, reason: str) -> None:
    assert out_of_bounds(event) == reason


def test_the_bounds_are_configurable() -> None:
    tight = Bounds(max_notional_usd=1e6, max_age_seconds=60, max_lead_seconds=1)
    assert out_of_bounds(liq(2e6), tight) == "too_large"
    assert out_of_bounds(liq(ts=T0 - 120), tight) == "time"
    assert out_of_bounds(liq(ts=T0 - 120), tight, relative_time=False) is None


def test_a_mark_price_is_bounded_too() -> None:
    mark = MarkPrice("okx", "BTC-USDT-SWAP", "BTC", 0.0, int(T0 * 1000), T0)
    assert out_of_bounds(mark) == "price"
    [item] = screen([mark])
    assert isinstance(item, Invalid) and item.reason == REASON_PREFIX + "price"


def _numeric_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _numeric_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numeric_paths(value, (*path, i))
    elif isinstance(node, int | float) and not isinstance(node, bool):
        yield path
    elif isinstance(node, str):
        try:
            float(node)
        except ValueError:
            return
        yield path


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def mutants(frame: str, rng: random.Random) -> Iterator[str]:
    """``frame`` with extreme values in its numeric leaves: each leaf alone, then all."""
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return
    paths = list(_numeric_paths(value))
    for path in paths:
        copy = orjson.loads(frame)
        extreme = rng.choice(EXTREMES)
        _set(copy, path, str(extreme) if isinstance(extreme, float) and rng.random() < 0.5
             else extreme)
        yield orjson.dumps(copy).decode()
    for _ in range(5):
        copy = orjson.loads(frame)
        for path in paths:
            _set(copy, path, rng.choice(EXTREMES))
        yield orjson.dumps(copy).decode()


def _inside(event: Liquidation | MarkPrice) -> None:
    assert 0 < event.price < math.inf
    assert 2010 <= 1970 + event.exchange_ts_ms / 1000 / 86400 / 365.25 <= 2100
    assert abs(event.exchange_ts_ms / 1000 - event.received_at) <= DEFAULT_BOUNDS.max_age_seconds
    if isinstance(event, Liquidation):
        assert 0 < event.qty_base < math.inf
        assert 0 < event.notional_usd < DEFAULT_BOUNDS.max_notional_usd


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
def test_every_event_that_passes_the_edge_is_inside_the_bounds(venue: str) -> None:
    rng = random.Random(f"bounds-{venue}")
    cases = golden_files(venue)
    assert cases, f"{venue} has no golden frames"
    checked = refused = 0
    for path in cases:
        frames = [golden_session(path)[1]["frame"], *seed_frames(venue)]
        for frame in frames:
            for text in mutants(frame, rng):
                session, _ = golden_session(path)
                try:
                    items = screen(session.parse(text, T0))
                except FrameError:
                    continue
                for item in items:
                    if isinstance(item, Liquidation | MarkPrice):
                        _inside(item)
                        checked += 1
                    elif isinstance(item, Invalid) and item.reason.startswith(REASON_PREFIX):
                        refused += 1
    # The mutator must really produce both: events that pass and events the bounds stop.
    assert checked > 0 and refused > 0, (checked, refused)


def test_parse_of_the_gate_frame_with_a_minus_2_63_timestamp_is_invalid(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.support.golden import GOLDEN_DIR, load_case

    case = load_case(GOLDEN_DIR / "gate" / "docs_batch_decimal_sizes.json")
    argv = [sys.executable, "-m", "monitor", "parse", "--venue", "gate"]
    for i, doc in enumerate((case.get("instruments") or {}).values()):
        path = tmp_path / f"instruments-{i}.json"
        path.write_bytes(orjson.dumps(doc))
        argv += ["--instruments", str(path)]
    frame = orjson.loads(case["frame"])
    for row in frame["result"]:
        row["time"] = -(2**63)
    done = subprocess.run(argv, input=orjson.dumps(frame).decode() + "\n", capture_output=True,
                          text=True, timeout=60, env={"XDG_CACHE_HOME": str(tmp_path),
                                                      "PATH": "/usr/bin:/bin"})
    assert "Traceback" not in done.stderr
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert "bounds_time" in done.stderr
