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
