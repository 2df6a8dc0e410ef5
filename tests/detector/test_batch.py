"""Detector.on_liquidations, ingest's per-frame entry point, is on_liquidation of each event."""

from __future__ import annotations

from monitor.detector.config import DetectorConfig
from monitor.detector.engine import Detector
from monitor.events import Liquidation
from tests.support.synth import Event, Result, feb_2026


def frames(events: list[Event], rows: int) -> list[tuple[float, list[Event]]]:
    """Consecutive events in frames of up to ``rows`` arriving in the same second."""
    out: list[tuple[float, list[Event]]] = []
    for at, event in events:
        if out and int(out[-1][0]) == int(at) and len(out[-1][1]) < rows:
            out[-1][1].append(event)
        else:
            out.append((at, [event]))
    return out


def test_a_night_fed_in_frames_gives_the_same_alerts_and_states_as_one_by_one() -> None:
    events, _ = feb_2026(seed=3, calm_before=1800, calm_after=1800)
    one, batched = Detector(DetectorConfig()), Detector(DetectorConfig())
    expected, got = Result(), Result()
    for at, frame in frames(events, 20):
        expected.cascades.extend(one.evaluate(at))
        got.cascades.extend(batched.evaluate(at))
        liquidations = [e for e in frame if isinstance(e, Liquidation)]
        for event in frame:
            if isinstance(event, Liquidation):
                expected.whales.extend(one.on_liquidation(event))
            else:
                one.on_mark_price(event)
                batched.on_mark_price(event)
        got.whales.extend(batched.on_liquidations(liquidations))
    end = events[-1][0] + 3600
    expected.cascades.extend(one.evaluate(end))
    got.cascades.extend(batched.evaluate(end))
    assert expected.whales and expected.cascades
    assert got.whales == expected.whales
    assert got.cascades == expected.cascades
    assert batched.states() == one.states()


def test_windows_take_a_frame_as_they_take_its_rows_one_by_one() -> None:
    # Runs of one instrument and second, both sides, a change of instrument mid-frame,
    # late rows (into a second already folded, and older than the window), a venue clock
    # far ahead, and a row with no positive USD.
    from monitor.detector.aggregates import LONG, SHORT
    from monitor.detector.windows import Windows
    from monitor.events import Completeness, PositionSide

    def row(i: int, instrument: str, sec: int, usd: float) -> Liquidation:
        side = PositionSide.LONG if i % 3 else PositionSide.SHORT
        return Liquidation("bybit", instrument, instrument[:3], side, 1.0, 1.0, usd,
                           sec * 1000 + i, 0.0, Completeness.FULL, f"r{i}")

    frames: list[list[Liquidation]] = []
    for n in range(60):
        sec = 1_000 + n // 2
        rows = [row(i, "BTCUSDT" if i < 12 else "ETHUSDT", sec, 1_000.0 * (i + 1) + n)
                for i in range(20)]
        rows.append(row(20, "BTCUSDT", sec - 3, 3e6))  # late: into a folded second
        rows.append(row(21, "ETHUSDT", sec - 400, 5.0))  # older than the window
        rows.append(row(22, "BTCUSDT", sec + 500, 7.0))  # far ahead
        rows.append(row(23, "BTCUSDT", sec, 0.0))  # no USD
        frames.append(rows)
    one, batched = Windows(60, 2e6), Windows(60, 2e6)
    for n, rows in enumerate(frames):
        if n % 4 == 3:
            one.advance(1_000 + n // 2)
            batched.advance(1_000 + n // 2)
        for event in rows:
            if event.notional_usd > 0.0:
                one.add(event.venue, event.instrument, event.coin,
                        LONG if event.position_side is PositionSide.LONG else SHORT,
                        event.notional_usd, event.exchange_ts_ms // 1000)
        assert batched.add_liquidations(rows) == max(e.notional_usd for e in rows)
        # The pairs a frame's late rows were folded into, frame by frame (a set takes a
        # pair once, so the batch notes it once for a run of rows).
        assert {a.name for a in batched.touched} == {a.name for a in one.touched}
        batched.touched.clear()
        one.touched.clear()
    assert batched.late_dropped == one.late_dropped > 0
    assert {s: {k: e[:5] for k, e in b.items()} for s, b in batched._seconds.items()} == {
        s: {k: e[:5] for k, e in b.items()} for s, b in one._seconds.items()}
    for mine, theirs in zip([*batched.all_scopes(), *batched.pairs.values()],
                            [*one.all_scopes(), *one.pairs.values()], strict=True):
        assert (mine.scope, mine.name, mine.v) == (theirs.scope, theirs.name, theirs.v)
    assert {a.name for a in batched.touched} == {a.name for a in one.touched}


def test_a_dropped_row_does_not_leave_its_second_to_the_rows_after_it() -> None:
    # A frame's rows skip the window's range checks while their second, instrument and
    # venue stay those of the run; a row too old for the window breaks the run. Here a
    # row of the run's second and instrument follows a dropped one, on the other side
    # (an entry not yet looked up): it goes into its own second, still pending, not
    # into the window as a late print of the dropped row's second. Then a venue clock
    # far ahead, twice in a row: both rows counted as now.
    from monitor.detector.aggregates import LONG, SHORT
    from monitor.detector.windows import Windows
    from monitor.events import Completeness, PositionSide

    def row(i: int, sec: int, side: PositionSide) -> Liquidation:
        return Liquidation("bybit", "BTCUSDT", "BTC", side, 1.0, 1.0, 1_000.0 + i,
                           sec * 1000 + i, 0.0, Completeness.FULL, f"r{i}")

    long, short = PositionSide.LONG, PositionSide.SHORT
    rows = [row(0, 2_000, long), row(1, 1_000, long), row(2, 2_000, short),
            row(3, 1_000, short), row(4, 1_500, short), row(5, 1_999, long),
            row(6, 1_999, short), row(7, 9_000, long), row(8, 9_000, short),
            row(9, 9_000, long), row(10, 2_000, long)]
    one, batched = Windows(60, 2e6), Windows(60, 2e6)
    one.advance(2_000)
    batched.advance(2_000)
    for event in rows:
        one.add(event.venue, event.instrument, event.coin,
                LONG if event.position_side is long else SHORT, event.notional_usd,
                event.exchange_ts_ms // 1000)
    batched.add_liquidations(rows)
    assert batched.late_dropped == one.late_dropped == 3
    assert {s: {k: e[:5] for k, e in b.items()} for s, b in batched._seconds.items()} == {
        s: {k: e[:5] for k, e in b.items()} for s, b in one._seconds.items()}
    for mine, theirs in zip([*batched.all_scopes(), *batched.pairs.values()],
                            [*one.all_scopes(), *one.pairs.values()], strict=True):
        assert (mine.scope, mine.name, mine.v) == (theirs.scope, theirs.name, theirs.v)
    # Of the shorts, only 1,999's (a late print) is in the window: 2,000 is pending.
    assert batched.global_agg.v[SHORT] == 1_006.0
