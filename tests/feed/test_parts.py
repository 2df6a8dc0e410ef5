"""Backoff, the recorder and the ingest path: pure or file-only parts of the feed."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from monitor.backoff import Backoff
from monitor.clock import VirtualClock
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.feed.recorder import Recorder, read_recording
from monitor.ingest import Ingest
from monitor.metrics import Metrics
from monitor.store.config import StoreConfig
from monitor.store.memory import MemoryStore


def liq(event_id: str, usd: float = 1000.0, side: PositionSide = PositionSide.LONG,
        venue: str = "bybit", ts_ms: int = 1_769_904_000_000) -> Liquidation:
    return Liquidation(venue=venue, instrument="BTCUSDT", coin="BTC", position_side=side,
                       price=100_000.0, qty_base=usd / 100_000.0, notional_usd=usd,
                       exchange_ts_ms=ts_ms, received_at=ts_ms / 1000 + 0.2,
                       completeness=Completeness.FULL, event_id=event_id)


def test_backoff_grows_caps_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [1, 2, 4, 8, 8, 8, 8, 8]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert 0.1 * ceiling <= delay <= ceiling
    backoff.reset()
    assert backoff.next_delay() <= 1.0


@pytest.mark.parametrize("name", ["frames.jsonl", "frames.jsonl.gz"])
def test_recorder_round_trips_frames(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    recorder = Recorder(path=path, gzip_files=name.endswith(".gz"))
    recorder.frame("bybit", 1769904000.123, '{"topic":"x"}')
    recorder.frame("okx", 1769904000.5, "pong")
    recorder.close()
    if name.endswith(".gz"):
        with gzip.open(path) as f:
            assert f.read().count(b"\n") == 2
    frames = list(read_recording(path))
    assert [(f.venue, f.received_at, f.frame) for f in frames] == [
        ("bybit", 1769904000.123, '{"topic":"x"}'), ("okx", 1769904000.5, "pong")]


def test_recorder_rotates_hourly_in_a_directory(tmp_path: Path) -> None:
    recorder = Recorder(directory=tmp_path, rotation="hourly", gzip_files=False)
    recorder.frame("bybit", 1769904000.0, "a")  # 2026-02-01T00
    recorder.frame("bybit", 1769907600.0, "b")  # 2026-02-01T01
    recorder.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["liqmon-20260201T00.jsonl", "liqmon-20260201T01.jsonl"]


def test_a_bad_recording_line_names_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"venue":"bybit","received_at":1,"frame":"x"}\nnot json\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:2"):
        list(read_recording(path))


async def test_ingest_counts_once_and_drops_beyond_capacity_with_a_count() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["bybit"], ["BTC"], process_metrics=False)
    clock = VirtualClock(1769904000.0)
    store = MemoryStore(StoreConfig(), None, clock)
    ingest = Ingest(store, None, metrics, clock, capacity=3)
    ingest.put("bybit", [liq("1"), liq("2")])
    ingest.put("bybit", [liq("1"), liq("3", side=PositionSide.SHORT)])  # 1 over capacity
    ingest.put("bybit", [MarkPrice("bybit", "BTCUSDT", "BTC", 99_000.0, 1, 1.0)])
    assert ingest.queued == 3
    left = await ingest.drain(1.0)
    assert left == 0
    assert ingest.counted == {("bybit", "long"): [2, 2000.0]}
    assert registry.get_sample_value(
        "liqmon_ingest_dropped_events_total", {"venue": "bybit"}) == 2
    assert registry.get_sample_value(
        "liqmon_duplicate_events_total", {"venue": "bybit"}) == 1
    assert registry.get_sample_value(
        "liqmon_liquidated_usd_total",
        {"venue": "bybit", "coin": "BTC", "position_side": "long"}) == 2000.0
    rows = await store.totals(60, by=("position_side",), now_ms=1_769_904_000_000)
    assert [(r.position_side, r.count) for r in rows] == [("long", 2)]


def test_a_gzip_recording_cut_short_replays_what_is_complete(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    recorder = Recorder(path=path, gzip_files=True)
    for i in range(2000):
        recorder.frame("bybit", 1769904000.0 + i, f'{{"n":{i}}}')
    recorder.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # the trailer and some data are missing
    frames = list(read_recording(path))
    assert 0 < len(frames) < 2000
    assert [f.frame for f in frames] == [f'{{"n":{i}}}' for i in range(len(frames))]
