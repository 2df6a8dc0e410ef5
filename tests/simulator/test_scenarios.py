"""Scenarios are pure: their events, totals and ground truth, checked without any I/O."""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any

import orjson
import pytest

from monitor.events import PositionSide
from monitor.simulator import SCENARIOS, Scenario, build_scenario
from monitor.simulator.catalogue import CATALOGUE, COIN_PRICES_USD, listing, size_liquidation
from monitor.simulator.scenarios import clear_cache
from monitor.simulator.scenarios.feb2026 import NIGHT_TOTAL_USD, UNASSIGNED_USD, VENUE_SHARES
from monitor.simulator.scenarios.model import ScenarioEvent

FIVE = ("binance-usdm", "binance-coinm", "bybit", "okx", "hyperliquid")


@pytest.fixture(scope="module")
def feb() -> Scenario:
    return build_scenario("feb-2026")


def liquidations(scenario: Scenario) -> list:  # type: ignore[type-arg]
    return [e for e in scenario.iter_events() if e.kind == "liquidation"]


def test_names_are_listed_and_unknown_ones_refused() -> None:
    assert SCENARIOS == ("calm", "feb-2026")
    with pytest.raises(ValueError, match="unknown scenario"):
        build_scenario("nope")
    with pytest.raises(KeyError, match="no simulated listings"):
        build_scenario("calm", venues=["nowhere"])


def test_feb_venue_totals_follow_the_reported_proportions(feb: Scenario) -> None:
    truth = feb.ground_truth
    venues = truth["venues"]
    hyperliquid = venues["hyperliquid"]["total_usd"]
    bybit = venues["bybit"]["total_usd"]
    binance = venues["binance-usdm"]["total_usd"] + venues["binance-coinm"]["total_usd"]
    # The reported figures, to within lot rounding.
    assert hyperliquid == pytest.approx(1_090e6, rel=1e-3)
    assert bybit == pytest.approx(574.8e6, rel=1e-3)
    assert binance == pytest.approx(258e6, rel=1e-3)
    assert hyperliquid / bybit == pytest.approx(1_090 / 574.8, rel=2e-3)
    assert bybit / binance == pytest.approx(574.8 / 258, rel=2e-3)
    # The rest of the night is either OKX's or left for the long-tail venues.
    assert truth["total_usd"] + UNASSIGNED_USD == pytest.approx(NIGHT_TOTAL_USD, rel=1e-3)
    assert {s.venue for s in VENUE_SHARES} >= set(FIVE)


def test_feb_is_94_percent_longs_and_bybit_over_95(feb: Scenario) -> None:
    truth = feb.ground_truth
    assert truth["long_share_usd"] == pytest.approx(0.94, abs=0.005)
    assert 0.92 < truth["long_share_count"] < 0.96
    bybit = truth["venues"]["bybit"]
    assert bybit["long"]["usd"] / bybit["total_usd"] > 0.95


def test_feb_has_the_two_whales(feb: Scenario) -> None:
    events = liquidations(feb)
    top = sorted(events, key=lambda e: e.notional_usd, reverse=True)[:2]
    hl, bn = top
    assert (hl.venue, hl.coin, hl.position_side) == ("hyperliquid", "ETH", PositionSide.LONG)
    assert hl.notional_usd == pytest.approx(222e6, rel=1e-6)
    assert (bn.venue, bn.instrument, bn.position_side) == (
        "binance-usdm", "BTCUSDT", PositionSide.LONG,
    )  # fmt: skip
    assert bn.notional_usd == pytest.approx(60e6, rel=1e-6)
    assert feb.ground_truth["largest"]["notional_usd"] == hl.notional_usd
    # Nothing ordinary comes close to the whales.
    assert top[0].notional_usd > 10 * sorted(e.notional_usd for e in events)[-3]
    # Binance's throttle keeps only the latest order of a second: nothing else of BTCUSDT
    # shares the whale's second, so it is published.
    near = [
        e for e in events
        if e.instrument == "BTCUSDT" and e.venue == "binance-usdm" and e is not bn
        and abs(e.at_seconds - bn.at_seconds) < 1.5
    ]  # fmt: skip
    assert near == []


def test_feb_shape_is_slow_start_acceleration_peak_decay(feb: Scenario) -> None:
    truth = feb.ground_truth
    onset, peak, end = truth["onset_seconds"], truth["peak_seconds"], truth["end_seconds"]
    assert 0 < onset < peak < end <= truth["duration_seconds"] == 3 * 3600
    minutes = truth["minute_usd"]
    assert sum(minutes) == pytest.approx(truth["total_usd"], rel=1e-9)

    def rate(start: float, stop: float) -> float:
        total: float = sum(minutes[int(start // 60) : int(stop // 60)])
        return total / max((stop - start) / 60, 1)

    quiet = rate(0, onset)
    early = rate(onset, onset + 1200)
    late = rate(peak - 1200, peak)
    tail = rate(end, truth["duration_seconds"])
    assert quiet < early < late  # a slow start, then acceleration
    assert tail < late / 10  # it decays
    # Without the whales the busiest minutes sit around the peak.
    counts = [0] * len(minutes)
    for e in liquidations(feb):
        counts[int(e.at_seconds // 60)] += 1
    busiest = max(range(len(counts)), key=counts.__getitem__) * 60
    assert abs(busiest - peak) < 1800


def test_feb_prices_fall_as_reported(feb: Scenario) -> None:
    prices = feb.ground_truth["prices"]
    assert prices["BTC"]["change"] == pytest.approx(-0.07, abs=1e-6)
    assert prices["ETH"]["change"] == pytest.approx(-0.11, abs=1e-6)
    for coin in ("SOL", "DOGE"):
        assert prices[coin]["change"] < -0.1
    marks = [e for e in feb.iter_events() if e.kind == "mark" and e.coin == "BTC"]
    assert marks[0].price == pytest.approx(COIN_PRICES_USD["BTC"], rel=1e-9)
    assert marks[-1].price == pytest.approx(COIN_PRICES_USD["BTC"] * 0.93, rel=1e-6)
    # The fall follows the liquidations: little before the onset, most of it by the end.
    onset = feb.ground_truth["onset_seconds"]
    before = [m.price for m in marks if m.at_seconds <= onset]
    assert min(before) > COIN_PRICES_USD["BTC"] * 0.99


def test_feb_count_is_scaled_down_and_documented(feb: Scenario) -> None:
    truth = feb.ground_truth
    assert 20_000 <= truth["total_count"] <= 50_000
    assert truth["count_scale"]["accounts_reported"] == 423_500
    assert truth["count_scale"]["events_generated"] == truth["total_count"]
    assert any("Hyperliquid $1.09B" in f for f in truth["follows"]["figures"])


def test_events_are_time_ordered_and_sized_on_lots(feb: Scenario) -> None:
    times = [e.at_seconds for e in feb.iter_events()]
    assert times == sorted(times)
    for event in itertools.islice(liquidations(feb), 0, None, 97):
        item = listing(event.venue, event.instrument)
        # Re-sizing the event's own figures gives the same figures: whole lots, tick prices.
        again = size_liquidation(item, event.price, event.notional_usd)
        assert again.notional_usd == pytest.approx(event.notional_usd, rel=1e-9, abs=1e-6)
        assert again.qty_base == pytest.approx(event.qty_base, rel=1e-9)
        assert event.notional_usd > 0 and event.qty_base > 0
        assert event.coin == item.coin


def test_same_seed_same_events_and_other_seed_differs() -> None:
    a = build_scenario("feb-2026", seed=3, venues=["okx"], duration_seconds=600)
    b = build_scenario("feb-2026", seed=3, venues=["okx"], duration_seconds=600)
    c = build_scenario("feb-2026", seed=4, venues=["okx"], duration_seconds=600)
    assert list(a.iter_events()) == list(b.iter_events())
    assert list(a.iter_events()) != list(c.iter_events())


def test_venue_subset_keeps_each_venue_total_and_duration_scales_the_timeline() -> None:
    short = build_scenario("feb-2026", venues=["bybit", "okx"], duration_seconds=360)
    truth = short.ground_truth
    assert set(truth["venues"]) == {"bybit", "okx"}
    assert {e.venue for e in liquidations(short)} == {"bybit", "okx"}
    assert truth["venues"]["bybit"]["total_usd"] == pytest.approx(574.8e6, rel=1e-3)
    assert truth["duration_seconds"] == 360
    assert truth["peak_seconds"] == pytest.approx(6300 / 30)
    assert max(e.at_seconds for e in short.iter_events()) <= 360


def test_calm_is_quiet_both_sided_and_lazy() -> None:
    calm = build_scenario("calm", duration_seconds=2 * 3600)
    assert callable(calm.events)  # generated lazily, not held
    truth = calm.ground_truth
    assert truth["onset_seconds"] is None and truth["peak_seconds"] is None
    events = liquidations(calm)
    assert len(events) == truth["total_count"]
    per_venue_minute = len(events) / len(CATALOGUE) / 120
    assert 1.5 < per_venue_minute < 5  # a few a minute per venue
    for venue in CATALOGUE:
        sides = truth["venues"][venue]
        assert sides["long"]["count"] > 10 and sides["short"]["count"] > 10
    for event in events:
        # $1k-$200k, give or take a lot of the instrument.
        assert 500 < event.notional_usd < 210_000
    marks = [e for e in calm.iter_events() if e.kind == "mark" and e.coin == "BTC"]
    moves = [abs(b.price / a.price - 1) for a, b in itertools.pairwise(marks)]
    assert max(moves) < 0.002  # a small random walk
    assert max(abs(m.price / marks[0].price - 1) for m in marks) < 0.03
    # Iterating twice gives the same market.
    assert [e.at_seconds for e in itertools.islice(calm.iter_events(), 500)] == [
        e.at_seconds for e in itertools.islice(calm.iter_events(), 500)
    ]


def test_calm_runs_for_days_without_holding_them() -> None:
    days = build_scenario("calm", venues=["okx"], duration_seconds=3 * 86400)
    truth = days.ground_truth
    assert truth["total_count"] == pytest.approx(3 * 60 * 24 * 3, rel=0.05)
    sampled = list(itertools.islice(days.iter_events(), 0, None, 5000))
    assert sampled[-1].at_seconds > 2.9 * 86400
    assert math.isfinite(truth["total_usd"])


# Digests of every event's repr (floats repr exactly) and of the ground truth, taken from the
# generator before it was made faster: a faster build must give the same events, bit for bit.
GOLDEN = [
    ({}, 67_367, "9061a24c6832a2d1972b6aa1898c32d0", "b639df67b5d04dc375ae490d9ca8a8f6"),
    ({"seed": 3}, 67_367, "ff151d943c843cbbeb01e4e63ac5ee1d",
     "492e685e027ae475db2fac8a1256e87f"),
    ({"duration_seconds": 3600, "venues": ["bybit"]}, 40_215,
     "789feea4ca815e405b688124380f4f4e", "c3f4630e7ff0cbf29cc7058b586eafdc"),
    ({"duration_seconds": 90, "seed": 1}, 61_967, "863fd2e0d6d0451d8fd5c11eac283caf",
     "29674f911fe46159aab260bd38165c59"),
]


@pytest.mark.parametrize(("kwargs", "count", "events_digest", "truth_digest"), GOLDEN)
def test_feb_events_are_the_golden_ones(kwargs: dict[str, Any], count: int,
                                        events_digest: str, truth_digest: str) -> None:
    clear_cache()  # built here, not taken from an earlier test's build
    scenario = build_scenario("feb-2026", **kwargs)
    digest = hashlib.sha256()
    n = 0
    for event in scenario.iter_events():
        assert type(event) is ScenarioEvent
        digest.update(repr(event).encode())
        n += 1
    truth = orjson.dumps(scenario.ground_truth, option=orjson.OPT_SORT_KEYS)
    assert (n, digest.hexdigest()[:32], hashlib.sha256(truth).hexdigest()[:32]) == (
        count, events_digest, truth_digest)


def test_a_scenario_is_built_once_and_each_caller_has_its_own_ground_truth() -> None:
    first = build_scenario("feb-2026", seed=5, duration_seconds=600)
    first.ground_truth["scenario"] = "changed by a caller"
    second = build_scenario("feb-2026", seed=5, duration_seconds=600)
    assert second.events is first.events  # not built again
    assert second.ground_truth["scenario"] == "feb-2026"
    assert build_scenario("feb-2026", seed=6, duration_seconds=600).events != first.events
