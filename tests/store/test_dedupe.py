"""The one in-process dedupe: pure logic, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from monitor.store.dedupe import Dedupe, Verdict, arrival_dedupe, ingest_dedupe

NEW, DUP, OLD = Verdict.NEW, Verdict.DUPLICATE, Verdict.TOO_OLD
HOUR = 3600.0


def test_an_id_is_new_once_within_the_window() -> None:
    d = ingest_dedupe(48, 1000)
    now = 1_769_904_000.0
    assert d.admit("a", now - 10, now) is NEW
    assert d.admit("b", now - 47 * HOUR, now) is NEW
    assert d.admit("a", now - 10, now + 47 * HOUR) is DUP


def test_an_event_older_than_the_window_is_too_old_whatever_its_age() -> None:
    d = ingest_dedupe(48, 1000)
    now = 1_769_904_000.0
    for age_hours in (49, 100, 10_000, 50 * 365 * 24):
        assert d.admit(f"old-{age_hours}", now - age_hours * HOUR, now) is OLD
    assert len(d) == 0  # refused ids are not held


def test_ids_age_out_and_their_replays_are_then_too_old() -> None:
    d = ingest_dedupe(1, 1000)
    t0 = 1_769_904_000.0
    assert d.admit("a", t0, t0) is NEW
    later = t0 + 2 * HOUR
    assert d.admit("b", later, later) is NEW
    assert len(d) == 1  # "a" is forgotten...
    assert d.admit("a", t0, later) is OLD  # ...and its replay is not counted again


def test_the_count_bound_evicts_the_oldest_and_raises_the_floor() -> None:
    d = ingest_dedupe(48, 3)
    now = 1_769_904_000.0
    for i, minutes_ago in enumerate((30, 20, 10)):
        assert d.admit(f"e{i}", now - minutes_ago * 60, now) is NEW
    assert d.admit("e3", now, now) is NEW  # the 30-minutes-ago id goes
    assert len(d) == 3
    assert d.admit("e0", now - 30 * 60, now) is OLD  # evicted: refused, never counted twice
    assert d.admit("x", now - 30 * 60 + 5, now) is OLD  # anything in the evicted minute too
    assert d.floor_seconds == now - 29 * 60
    # A later minute is still taken; being the oldest held now, it is the one evicted,
    # so its replay is refused rather than counted again.
    assert d.admit("y", now - 25 * 60, now) is NEW
    assert d.admit("y", now - 25 * 60, now) is OLD
    assert d.admit("e2", now - 10 * 60, now) is DUP


def test_memory_stays_bounded_under_a_flood() -> None:
    d = ingest_dedupe(48, 10_000)
    now = 1_769_904_000.0
    for i in range(200_000):
        t = now + i * 0.05  # 10,000 s of a 20-per-second stream
        assert d.admit(f"id{i}", t, t) is NEW
    assert len(d) <= 10_000


def test_arrival_dedupe_is_a_ttl() -> None:
    d = arrival_dedupe(1, 100)
    assert d.admit("a", 0.0, 0.0) is NEW
    assert d.admit("a", 100.0, 100.0) is DUP
    assert d.admit("b", 3 * HOUR, 3 * HOUR) is NEW
    assert d.admit("a", 3 * HOUR, 3 * HOUR) is NEW  # forgotten after the TTL, as in Redis


@dataclass(frozen=True)
class _Row:
    event_id: str
    exchange_ts_ms: int


@pytest.mark.parametrize("max_ids", [5, 40, 10_000])
def test_a_frame_at_once_gives_the_verdicts_of_one_admit_each(max_ids: int) -> None:
    # Frames of rows over a few minutes, with replays within and across frames, ids
    # beyond the window, and a bound small enough to evict in the middle of a frame.
    rng = random.Random(max_ids)
    one, batch = ingest_dedupe(2, max_ids), ingest_dedupe(2, max_ids)
    now = 1_769_904_000.0
    for _frame in range(300):
        now += rng.uniform(0, 20)
        rows = [_Row(f"id-{rng.randrange(400)}",
                     int((now - rng.choice((1, 30, 90, 200, 3 * HOUR))) * 1000))
                for _ in range(rng.randrange(1, 25))]
        expected = [one.admit(r.event_id, r.exchange_ts_ms / 1000.0, now) for r in rows]
        new, refused = batch.admit_events(rows, now)
        assert new == [r for r, v in zip(rows, expected, strict=True) if v is NEW]
        assert refused == [(r, v) for r, v in zip(rows, expected, strict=True)
                           if v is not NEW]
        assert len(one) == len(batch)
        assert one.floor_seconds == batch.floor_seconds


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Dedupe(0, 10)
    with pytest.raises(ValueError):
        Dedupe(10, 0)


def test_a_row_at_a_minute_edge_is_in_the_slot_admit_gives_it() -> None:
    """admit_events finds a slot of whole seconds as ``ts_ms // slot_ms`` (one int
    operation): at a whole minute and a millisecond either side, across the bounds' range,
    each row lands in the slot ``admit(id, ts_ms / 1000.0, now)`` gives it."""
    from monitor.venues.bounds import EARLIEST_MS, LATEST_MS

    rng = random.Random(14)
    minutes = [EARLIEST_MS // 60_000 + 1, LATEST_MS // 60_000]
    minutes += [rng.randrange(EARLIEST_MS // 60_000 + 1, LATEST_MS // 60_000)
                for _ in range(500)]
    rows = [_Row(f"id-{i}-{d}", m * 60_000 + d) for i, m in enumerate(minutes)
            for d in (-1, 0, 1)]
    now = rows[0].exchange_ts_ms / 1000.0
    batch, one = ingest_dedupe(10**6, 10**6), ingest_dedupe(10**6, 10**6)
    new, refused = batch.admit_events(rows, now)
    assert len(new) == len(rows) and not refused
    for row in rows:
        assert one.admit(row.event_id, row.exchange_ts_ms / 1000.0, now) is NEW
    assert batch._slots == one._slots


def test_whole_second_slots_of_ms_are_exact_below_2_to_the_43_seconds() -> None:
    """Why ``ts_ms // slot_ms`` is ``int(ts_ms / 1000.0 // slot)`` for a slot of whole
    seconds: below 2**43 s half a float's spacing is under a millisecond, so ``ts_ms /
    1000.0`` never rounds onto or across a whole second it is not on."""
    rng = random.Random(43)
    top = 2**43 * 1000
    for slot in (1, 60, 3600, 1350):
        for _ in range(3000):
            whole = rng.randrange(-top, top) // (slot * 1000) * (slot * 1000)
            for ts in (whole - 1, whole, whole + 1):
                if -top < ts < top:
                    assert int(ts / 1000.0 // float(slot)) == ts // (slot * 1000)
