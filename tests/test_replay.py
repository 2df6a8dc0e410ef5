"""Replay: recorded raw frames through dialect → ingest → detector on a virtual clock.

The recordings are made here from a simulator scenario by the simulator's own Bybit venue
(the frames a live ``liqmon record`` would have written from ``liqmon simulate``), so the
dialect, the instrument terms and the ingest path are the real ones.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client import CollectorRegistry

import monitor.replay as replay_module
from monitor.alerts import AlertState, CascadeAlert, WhaleAlert
from monitor.backtest import SCENARIO_EPOCH, scenario_events
from monitor.clock import VirtualClock
from monitor.config import Config
from monitor.detector.config import DetectorConfig
from monitor.detector.engine import Detector
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.feed.recorder import RawFrame, read_recording
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.replay import replay
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.scenarios.model import ScenarioEvent
from monitor.store.memory import MemoryStore
from tests.support.recordings import VENUE, simulated_frames, write_recording


@pytest.fixture(scope="module")
def night() -> list[ScenarioEvent]:
    # An hour-long feb-2026 on Bybit alone: its altcoin flush is a venue-scope cascade.
    return list(build_scenario("feb-2026", venues=[VENUE], duration_seconds=3600).iter_events())


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory, night: list[ScenarioEvent]) -> Path:
    path = tmp_path_factory.mktemp("rec") / "bybit.jsonl.gz"
    assert write_recording(path, simulated_frames(iter(night))) > 1000
    return path


async def test_replay_finds_the_cascade_in_recorded_frames(
    recording: Path, night: list[ScenarioEvent]
) -> None:
    config = Config()
    seen: list[CascadeAlert | WhaleAlert] = []
    result = await replay(recording, config, simulated=True, on_alert=seen.append)
    sent = [e for e in night if e.kind == "liquidation"]
    assert result.invalid_frames == 0 and result.unrecognised_frames == 0
    assert result.liquidations == len(sent)
    assert result.total_usd == pytest.approx(sum(e.notional_usd for e in sent), rel=1e-6)
    assert result.marks > 0
    statuses = [(a.scope, a.status) for a in result.cascades]
    assert statuses[0] == ("venue:bybit", AlertState.FIRING)
    assert statuses[-1] == ("venue:bybit", AlertState.RESOLVED)
    assert all(a.position_side.value == "long" for a in result.cascades)
    assert seen == [*result.whales, *result.cascades] or set(map(id, seen)) == set(
        map(id, [*result.whales, *result.cascades]))


async def test_replay_gives_the_same_alerts_as_the_events_fed_live(
    recording: Path, night: list[ScenarioEvent]
) -> None:
    """Frames parsed and ingested make the alerts the detector makes of the events."""
    result = await replay(recording, Config(), simulated=True)
    detector = Detector(Config().detector)
    live = []
    evaluated = -1
    for event in scenario_events(iter(night), SCENARIO_EPOCH):
        # A live daemon sees each event when its frame arrives, after the venue's batching.
        if int(event.received_at) > evaluated:
            evaluated = int(event.received_at)
            live.extend(detector.evaluate(evaluated))
        if isinstance(event, Liquidation):
            detector.on_liquidation(event)
        else:
            detector.on_mark_price(event)
    live.extend(detector.evaluate(evaluated + 3600))
    assert [(a.scope, a.status, a.severity) for a in result.cascades] == [
        (a.scope, a.status, a.severity) for a in live]
    for replayed, direct in zip(result.cascades, live, strict=True):
        assert abs(replayed.at - direct.at) <= 2
        assert replayed.total_usd == pytest.approx(direct.total_usd, rel=0.02)


async def test_replaying_twice_gives_identical_alerts(recording: Path) -> None:
    first = await replay(recording, Config(), simulated=True)
    second = await replay(recording, Config(), simulated=True)
    assert first.cascades and first.cascades == second.cascades
    assert [w.id for w in first.whales] == [w.id for w in second.whales]


async def test_a_frame_replayed_twice_is_counted_once(tmp_path: Path,
                                                      recording: Path) -> None:
    with gzip.open(recording, "rb") as f:
        lines = f.read().splitlines()
    liq_lines = [line for line in lines if b"allLiquidation" in line][:50]
    path = tmp_path / "dup.jsonl"
    path.write_bytes(b"\n".join(liq_lines + liq_lines) + b"\n")
    result = await replay(path, Config(), simulated=True)
    assert result.duplicates > 0
    assert result.liquidations == result.duplicates


async def test_bad_frames_are_counted_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join([
        orjson.dumps({"venue": "bybit", "received_at": SCENARIO_EPOCH, "frame": "{not json"}),
        orjson.dumps({"venue": "nowhere", "received_at": SCENARIO_EPOCH + 1, "frame": "{}"}),
    ]) + b"\n")
    result = await replay(path, Config(), simulated=True)
    assert (result.frames, result.invalid_frames, result.unknown_venue_frames) == (2, 1, 1)
    assert result.cascades == []


async def test_speed_paces_the_replay(tmp_path: Path, recording: Path) -> None:
    with gzip.open(recording, "rb") as f:
        lines = f.read().splitlines()
    start = orjson.loads(lines[0])["received_at"]
    short = [line for line in lines if orjson.loads(line)["received_at"] < start + 20]
    path = tmp_path / "short.jsonl"
    path.write_bytes(b"\n".join(short) + b"\n")
    import time

    began = time.monotonic()
    await replay(path, Config(), simulated=True, speed=100.0)
    assert time.monotonic() - began >= 0.15  # 20 s of recording at 100x


async def test_frames_in_runs_give_what_frame_by_frame_gives(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay hands ingest runs of frames; ingest must make of a run exactly what it makes
    of its frames one put at a time: the same events in the same order, alerts, whales,
    sums and tallies."""
    # Whales at $300k: frames that may raise one go to ingest on their own, ahead of the
    # queue, so the early path is exercised too.
    config = Config(detector=DetectorConfig(whale_usd=3e5))
    seen: dict[bool, list[object]] = {}
    results = {}
    for merge in (False, True):
        monkeypatch.setattr(replay_module, "MERGE_RUNS", merge)
        events: list[object] = []
        results[merge] = await replay(recording, config, simulated=True,
                                      on_event=events.append, on_alert=events.append)
        seen[merge] = events
    frame_by_frame, runs = results[False], results[True]
    assert frame_by_frame.whales and frame_by_frame.cascades  # the early path is exercised
    assert runs == frame_by_frame
    assert seen[True] == seen[False]


def test_recording_lines_decode_to_frames_typed_or_lenient(tmp_path: Path) -> None:
    """Lines as the recorder writes them decode straight into frames; other lines the
    reader has always taken (numbers as strings, a venue as a number, blank lines) still
    give the same frames, and a line that is no frame names itself."""
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"venue":"bybit","received_at":1769904000.5,"frame":"{\\"a\\":1}","conn":"c#1"}\n'
        "\n"
        '{"venue":"bybit","received_at":"1769904000.5","frame":"{\\"a\\":1}","conn":"c#1"}\n'
        '{"venue":7,"received_at":1769904001,"frame":"x","extra":true}\n'
        '{"received_at":1769904001,"venue":"okx","frame":"\\u00e9\\u0001"}\n')
    assert list(read_recording(path)) == [
        RawFrame("bybit", 1769904000.5, '{"a":1}', "c#1"),
        RawFrame("bybit", 1769904000.5, '{"a":1}', connection="c#1"),
        RawFrame("7", 1769904001.0, "x"),
        RawFrame("okx", 1769904001.0, "\u00e9\u0001", ""),
    ]
    path.write_text('{"venue":"bybit","received_at":1769904000.5,"frame":"x"}\n'
                    '{"venue":"bybit","frame":"x"}\n')
    with pytest.raises(ValueError, match=r"mixed\.jsonl:2: not a recorded frame"):
        list(read_recording(path))


@pytest.mark.parametrize("name", ["odd.jsonl", "odd.jsonl.gz"])
def test_recording_lines_split_and_fail_as_in_a_file_read_as_text(tmp_path: Path,
                                                                  name: str) -> None:
    """The reader takes lines as bytes, but they are the lines of the file read as text:
    a lone carriage return ends a line (a frame on each side of it), CRLF is a line end,
    a carriage return between a line's tokens splits it (into two lines that are no
    frames), line numbers count the lines so split, and invalid UTF-8 raises
    UnicodeDecodeError (a ValueError)."""
    line = b'{"venue":"bybit","received_at":1769904000.5,"frame":"x","conn":"c#1"}'
    frame = RawFrame("bybit", 1769904000.5, "x", "c#1")
    path = tmp_path / name

    def write(data: bytes) -> None:
        path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)

    write(line + b"\r" + line + b"\r\n\r" + line + b"\n \x1c\n" + line)
    assert list(read_recording(path)) == [frame] * 4
    write(line + b"\n" + b'{"venue":"bybit",\r"received_at":1769904000.5,"frame":"x"}\n')
    with pytest.raises(ValueError, match=r"odd\.jsonl(\.gz)?:2: not a recorded frame"):
        list(read_recording(path))
    write(line + b"\r\r\n" + line + b"\rnot json\n")
    with pytest.raises(ValueError, match=r"odd\.jsonl(\.gz)?:4: not a recorded frame"):
        list(read_recording(path))
    write(line + b"\n" + line.replace(b"bybit", b"byb\xc3t") + b"\n")
    with pytest.raises(UnicodeDecodeError):
        list(read_recording(path))


async def test_notices_among_a_frames_events_are_left_out_and_counted(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay hands ingest the parser's list as it is when it holds only events; a notice
    among them (a row that could not be read, an unknown shape, a pong) is counted and left
    out, and the events before and after it still count, in order."""
    from monitor.venues import bybit
    from monitor.venues.dialect import Invalid, Pong, Unrecognised

    plain: list[object] = []
    await replay(recording, Config(), simulated=True, on_event=plain.append)
    parse = bybit.BybitSession.parse
    notices = 0

    def with_notices(self: bybit.BybitSession, text: str, received_at: float) -> list[object]:
        nonlocal notices
        items: list[object] = list(parse(self, text, received_at))
        if len(items) >= 2 or (items and notices % 2):
            # Between events, in front of them and behind them, by turns.
            items.insert(notices % (len(items) + 1), (
                Invalid("bad_value", "x"), Unrecognised("odd"), Pong())[notices % 3])
            notices += 1
        return items

    monkeypatch.setattr(bybit.BybitSession, "parse", with_notices)
    seen: list[object] = []
    result = await replay(recording, Config(), simulated=True, on_event=seen.append)
    assert notices > 100
    assert seen == plain
    assert result.invalid_frames == (notices + 2) // 3
    assert result.unrecognised_frames == (notices + 1) // 3


async def test_ingest_and_the_store_read_the_latest_receipt_time_so_far(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay sets its clock only where it is read (a step, a frame counted on its own),
    to what setting it at every frame gives: the latest receipt time read so far. Frames
    here go back in time now and then, and whales at $300k take the early path."""
    latest = 0.0
    done = False
    reads: list[tuple[float, float]] = []

    def frames() -> Iterator[RawFrame]:
        nonlocal latest, done
        for n, raw in enumerate(read_recording(recording)):
            at = raw.received_at - (2.5 if n % 7 == 3 else 0.0)
            latest = max(latest, at)
            yield RawFrame(raw.venue, at, raw.frame, raw.connection)
        done = True

    class Watched(VirtualClock):
        def wall(self) -> float:
            if not done:
                reads.append((super().wall(), latest))
            return super().wall()

        monotonic = wall

    monkeypatch.setattr(replay_module, "VirtualClock", Watched)
    result = await replay(frames(), Config(detector=DetectorConfig(whale_usd=3e5)),
                          simulated=True)
    assert result.whales and len(reads) > 1000
    assert all(seen == expected for seen, expected in reads)


async def test_only_frames_that_may_raise_a_whale_alert_are_looked_at_for_one(
    recording: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replay tells ingest which lists hold no liquidation at the whale floor
    (``may_whale=False``: queued without a look); every list that holds one is put on its
    own and looked at, so it takes ingest's early path."""
    config = Config(detector=DetectorConfig(whale_usd=3e5))
    floor = Detector(config.detector).whale_floor_usd
    puts: list[tuple[bool, bool]] = []  # (may_whale, holds a row at the floor)
    put = Ingest.put

    def watched(self: Ingest, venue: str, events: list[Liquidation | MarkPrice], *,
                may_whale: bool = True) -> None:
        puts.append((may_whale, any(isinstance(e, Liquidation) and e.notional_usd >= floor
                                    for e in events)))
        put(self, venue, events, may_whale=may_whale)

    monkeypatch.setattr(Ingest, "put", watched)
    result = await replay(recording, config, simulated=True)
    assert result.whales
    assert (True, True) in puts and (False, False) in puts
    assert (False, True) not in puts


async def test_a_list_put_without_a_look_for_whales_is_queued() -> None:
    """``may_whale=False`` queues the list as it is, without a look (the caller has
    looked: here a whale is queued behind the backlog, which replay never does); the
    default counts a list with a whale at once, ahead of the queue."""
    config = Config(detector=DetectorConfig(whale_usd=3e5))
    clock = VirtualClock(1_769_904_000.0)
    metrics = Metrics(CollectorRegistry(), ["bybit"], ["BTC"], process_metrics=False)
    store = MemoryStore(clock=clock, own_dedupe=False)
    ingest = Ingest(store, Detector(config.detector), metrics, clock, capacity=100)

    def row(n: int, usd: float) -> Liquidation:
        return Liquidation("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 50_000.0,
                           usd / 50_000.0, usd, 1_769_903_999_000, 1_769_903_999.5,
                           Completeness.FULL, f"bybit:{n}")

    ingest.put("bybit", [row(1, 5e5)], may_whale=False)
    assert ingest.queued == 1 and ingest.counted_total == 0
    ingest.put("bybit", [row(2, 1_000.0), row(3, 5e5)])
    assert ingest.queued == 1 and ingest.counted_total == 2
    await ingest.process_queued()
    assert ingest.counted_total == 3
