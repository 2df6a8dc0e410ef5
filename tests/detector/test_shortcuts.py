"""The detector's shortcuts against the plain forms they replace, float for float.

Each test runs the plain form (the per-entry folds, ``ready`` of the figures, a Python key
for the ranking, ``max``, the scope order) beside the fast one on inputs made to tell them
apart: USD of many magnitudes (so that a sum in another order gives another float), ties,
sides that empty out of the window, late prints, and scopes that appear mid-step.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st

import monitor.detector.windows as windows_module
from monitor.alerts import coin_scope
from monitor.detector.aggregates import COIN, LONG, SHORT, Agg, Entry
from monitor.detector.config import DetectorConfig
from monitor.detector.engine import Detector
from monitor.detector.figures import _ranked, cheap_figures, top_child
from monitor.detector.machine import DetectorState, Machine, ready, scope_order
from monitor.detector.prices import PriceTracker
from monitor.detector.windows import Windows
from monitor.events import Completeness, Liquidation, PositionSide

# -- the per-entry folds, as written before the global sums ran in locals ---------------------


def _plain_fold_all(entries: Iterable[Entry], _g: list[float],
                    touched_add: Callable[[Agg], None]) -> None:
    for entry in entries:
        usd, raw, cnt, _folded, side, pair = entry
        entry[3] = 1
        for v in pair.vs[:3]:
            v[side] += usd
            v[side + 2] += raw
            v[side + 4] += cnt
            v[side + 6] += 1
            v[side + 8] += raw
        pair.vs[3][side + 2] += raw
        pair.vs[3][side + 6] += 1
        touched_add(pair)


def _plain_fold_one(entry: Entry) -> Agg:
    pair: Agg = entry[5]
    _plain_fold_all((entry,), [], lambda _agg: None)
    return pair


def _plain_fold_late(pair: Agg, side: int, capped: float, usd: float) -> Agg:
    for v in pair.vs[:3]:
        v[side] += capped
        v[side + 2] += usd
        v[side + 4] += 1
        v[side + 8] += usd
    pair.v[side + 2] += usd
    return pair


def _plain_leave_current(entries: Iterable[Entry], _g: list[float]) -> None:
    for entry in entries:
        usd, raw, cnt, _folded, side, pair = entry
        for v in pair.vs[:3]:
            if v[side + 6] <= 1.0:
                v[side] = v[side + 2] = v[side + 4] = v[side + 6] = 0.0
            else:
                v[side] -= usd
                v[side + 2] -= raw
                v[side + 4] -= cnt
                v[side + 6] -= 1
            v[side + 10] += usd
        p = pair.vs[3]
        if p[side + 6] <= 1.0:
            p[side + 2] = p[side + 6] = 0.0
        else:
            p[side + 2] -= raw
            p[side + 6] -= 1


def _plain_leave_previous(entries: Iterable[Entry], _g: list[float]) -> None:
    for entry in entries:
        usd, side, pair = entry[0], entry[4], entry[5]
        for v in pair.vs[:3]:
            left = v[side + 10] - usd
            v[side + 10] = left if left > 1e-6 else 0.0


_PLAIN = {"fold_all": _plain_fold_all, "fold_one": _plain_fold_one,
          "fold_late": _plain_fold_late, "leave_current": _plain_leave_current,
          "leave_previous": _plain_leave_previous}


def _day(seed: int) -> list[tuple[int, list[Liquidation]]]:
    """Frames of several venues and coins, both sides (one side often alone for a while),
    USD from cents to whales, late rows, and steps of one second and of several."""
    rng = random.Random(seed)
    venues, coins = ("bybit", "okx", "binance-usdm"), ("BTC", "ETH", "SOL", "DOGE")
    out: list[tuple[int, list[Liquidation]]] = []
    step, n = 1_000, 0
    for _ in range(400):
        step += rng.choice((1, 1, 1, 2, 7))
        frames: list[Liquidation] = []
        for _ in range(rng.randrange(0, 6)):
            venue, coin = rng.choice(venues), rng.choice(coins)
            # Mostly the second not yet folded; else late, some older than the window.
            sec = step - rng.choice((0, 0, 0, 0, 1, 3, 12, 40))
            phase = (step // 50) % 3  # a stretch of shorts only, of longs only, of both
            for _ in range(rng.randrange(1, 5)):
                n += 1
                short = phase == 0 or (phase == 2 and rng.random() < 0.4)
                side = PositionSide.SHORT if short else PositionSide.LONG
                usd = 10 ** rng.uniform(-2, 7) * rng.random()
                frames.append(Liquidation(venue, f"{coin}USDT", coin, side, 1.0, 1.0, usd,
                                          sec * 1000 + rng.randrange(1000), 0.0,
                                          Completeness.FULL, f"r{n}"))
        out.append((step, frames))
    return out


def _run(day: list[tuple[int, list[Liquidation]]], per_row: bool = False) -> list[list[str]]:
    """Every aggregate's sums, bit for bit (``float.hex``), after every step and frame, and
    the pairs each step folded into."""
    w = Windows(30, 2e6)
    seen: list[list[str]] = []
    for step, frame in day:
        w.advance(step)
        seen.append([x.hex() for agg in [*w.all_scopes(), *w.pairs.values()] for x in agg.v])
        # The pairs folded into (the folds note a pair once for a run of its entries).
        seen.append(sorted(agg.name for agg in w.touched))
        w.touched.clear()
        if per_row:
            # ``add`` of each row, which folds late rows with ``fold_one`` and ``fold_late``
            # (``add_liquidations`` does it inline, its global sums in locals).
            for event in frame:
                if not event.notional_usd > 0.0:
                    continue  # as on_liquidation
                w.add(event.venue, event.instrument, event.coin,
                      LONG if event.position_side is PositionSide.LONG else SHORT,
                      event.notional_usd, event.exchange_ts_ms // 1000)
        else:
            w.add_liquidations(frame)
        seen.append([x.hex() for agg in [*w.all_scopes(), *w.pairs.values()] for x in agg.v])
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_folds_give_the_floats_of_the_per_entry_folds(seed: int,
                                                           monkeypatch: Any) -> None:
    day = _day(seed)
    fast = _run(day)
    for name, plain in _PLAIN.items():
        monkeypatch.setattr(windows_module, name, plain)
    assert fast == _run(day, per_row=True)
    assert any(x != "0x0.0p+0" for x in fast[-1])


# -- the firing test read off the window ---------------------------------------------------------

_usd = st.one_of(st.just(0.0), st.floats(1e3, 5e8))


@settings(max_examples=300, deadline=None)
@given(long=_usd, short=_usd, prev=_usd, base=_usd,
       sym=st.integers(0, 400), base_sym=st.floats(0.0, 300.0), side=st.sampled_from([0, 1]))
def test_a_watching_scope_checks_its_other_conditions_exactly_when_ready(
        long: float, short: float, prev: float, base: float, sym: int, base_sym: float,
        side: int) -> None:
    detector = Detector(DetectorConfig())
    agg = Agg(COIN, "BTC", coin_scope("BTC"))
    agg.v[LONG], agg.v[SHORT], agg.v[10 + side], agg.v[6 + side] = long, short, prev, sym
    agg.base_usd[side], agg.base_sym[side] = base, base_sym
    th = detector._thresholds(agg)
    asked: list[bool] = []

    def entry(m: Machine, th: object, t: int) -> bool:
        asked.append(True)
        return False

    detector._entry = entry  # type: ignore[method-assign]
    machine = Machine(agg, side, 0)
    machine.state = DetectorState.WATCH
    detector._advance_machine(machine, 1, [])
    fig = cheap_figures(agg, side, th)
    assert bool(asked) == ready(fig, th)
    watching = fig.usd >= th.watch_usd and fig.share >= detector.config.sustain_share
    assert machine.state is (DetectorState.WATCH if watching else DetectorState.QUIET)


# -- rankings of a window's parts -----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(usd=st.lists(st.sampled_from([0.0, 1.0, 2.5, 2.5, 7.0, 1e6, -3.0]), max_size=12),
       side=st.sampled_from([0, 1]), top_n=st.integers(1, 6))
def test_ranked_and_top_child_are_their_plain_forms(usd: list[float], side: int,
                                                    top_n: int) -> None:
    names = [f"c{(i * 7) % 13}" for i in range(len(usd))]  # names not in sorted order
    parts: dict[str, Agg] = {}
    for name, x in zip(names, usd, strict=True):
        parts[name] = agg = Agg(COIN, name, coin_scope(name))
        agg.v[2 + side] = x
    plain = sorted([(n, a.raw(side)) for n, a in parts.items() if a.raw(side) > 0.0],
                   key=lambda kv: (-kv[1], kv[0]))[:top_n]
    assert _ranked(parts, side, top_n) == plain
    windows = Windows(30, 2e6)
    windows.coins = parts
    whole = Agg(0, "global", "global")
    whole.v[2 + side] = sum(usd)
    name, top = max(((n, a.raw(side)) for n, a in parts.items()), key=lambda kv: kv[1],
                    default=("", 0.0))
    share = top / whole.v[2 + side] if whole.v[2 + side] > 0.0 else 0.0
    assert top_child(whole, side, windows) == (name, share)


# -- the order live machines are stepped in ------------------------------------------------------


def test_a_scope_ranked_mid_step_is_stepped_in_scope_order() -> None:
    detector = Detector(DetectorConfig())
    windows = detector._windows
    btc, aaa = windows._pair("bybit", "BTC"), windows._pair("bybit", "AAA")
    live = Machine(windows.coins["BTC"], LONG, 0)
    live.state = DetectorState.WATCH
    detector._add_rank(windows.coins["BTC"].keys[LONG])
    detector._machines[windows.coins["BTC"].keys[LONG]] = live
    windows.coins["AAA"].v[LONG] = 9e6  # worth watching: one-sided, above watch_usd
    windows.touched.update((btc, aaa))
    stepped: list[tuple[str, int]] = []

    def advance(m: Machine, t: int, alerts: list[Any]) -> None:
        stepped.append((m.agg.scope, m.side))
        m.state = DetectorState.WATCH

    detector._advance_machine = advance  # type: ignore[method-assign]
    detector._step(1_001, [])
    keys = [("coin:AAA", LONG), ("coin:BTC", LONG)]
    assert stepped == keys == sorted(keys, key=scope_order)
    assert set(detector._machines) == set(keys)


def test_ranks_sort_as_the_scope_order() -> None:
    detector = Detector(DetectorConfig())
    keys = [(scope, side) for scope in ("venue:okx", "coin:ETH", "coin:BTC", "venue:bybit",
                                        "coin:SOL") for side in (LONG, SHORT)]
    random.Random(4).shuffle(keys)
    for key in keys:
        detector._add_rank(key)
    assert sorted(keys, key=detector._rank.__getitem__) == sorted(keys, key=scope_order)


# -- price moves ---------------------------------------------------------------------------------


def _plain_move(samples: deque[list[float]], window: int, stale: float, t: int
                ) -> float | None:
    end = t - 1
    if not samples:
        return None
    while len(samples) > 1 and samples[1][0] <= end - window:
        samples.popleft()
    i = len(samples) - 1
    while i > 0 and samples[i][0] > end:
        i -= 1
    if samples[i][0] > end or end - samples[i][0] > stale:
        return None
    return samples[i][1] / samples[0][1] - 1.0


@settings(max_examples=200, deadline=None)
@given(marks=st.lists(st.tuples(st.integers(0, 400), st.floats(1.0, 200.0)), max_size=40),
       steps=st.lists(st.integers(0, 500), max_size=8))
def test_price_moves_are_their_plain_form(marks: list[tuple[int, float]],
                                          steps: list[int]) -> None:
    prices = PriceTracker(window_seconds=120, stale_seconds=30)
    for sec, price in sorted(marks):
        prices.update("ETH", "bybit", "ETHUSDT", price, 1_000 + sec)
    series = prices._series.get(("ETH", "bybit"))
    copy: deque[list[float]] = deque(list(s) for s in series.samples) if series else deque()
    for t in sorted(steps):
        got = prices._move(series, 1_000 + t) if series else None
        assert got == _plain_move(copy, 120, 30, 1_000 + t)


def test_live_machines_are_kept_and_stepped_in_scope_order() -> None:
    # The step reads the live machines in the dict's order, unsorted: scopes that start
    # watching in another order (a venue, then coins named after it and before it) must
    # still be stepped global first, then coins by name, then venues.
    detector = Detector(DetectorConfig())
    windows = detector._windows
    pairs = {coin: windows._pair("bybit", coin) for coin in ("ZEC", "BTC", "AAA")}
    stepped: list[tuple[str, int]] = []

    def advance(m: Machine, t: int, alerts: list[Any]) -> None:
        stepped.append((m.agg.scope, m.side))
        m.state = DetectorState.WATCH

    detector._advance_machine = advance  # type: ignore[method-assign]
    for step, scopes in enumerate([[windows.venues["bybit"]], [windows.coins["ZEC"]],
                                   [windows.coins["BTC"], windows.coins["AAA"]], []]):
        for agg in scopes:
            agg.v[LONG] = 9e6  # worth watching: one-sided, above watch_usd
        windows.touched.update(pairs.values())
        stepped.clear()
        detector._step(1_001 + step, [])
        keys = list(detector._machines)
        assert keys == sorted(keys, key=scope_order)
        assert [k for k in stepped if k[0] != "global"] == keys
    assert keys == [("coin:AAA", LONG), ("coin:BTC", LONG), ("coin:ZEC", LONG),
                    ("venue:bybit", LONG)]


def _plain_price_move(agg: Agg, side: int, windows: Windows, prices: PriceTracker,
                      t: int) -> float | None:
    """A coin's price move by the general form: its ranked venues, weighted."""
    from monitor.detector.figures import _weighted
    return _weighted([(prices.move(agg.name, name, t), usd) for name, usd in _ranked(
        windows.pairs_by_coin.get(agg.name, {}), side, 1000)])


@settings(max_examples=200, deadline=None)
@given(usd=st.sampled_from([0.0, 3.0, 1234.567, 9.87e6]),
       start=st.floats(0.5, 5e4), end=st.floats(0.5, 5e4), side=st.sampled_from([0, 1]),
       venues=st.integers(1, 2))
def test_the_price_move_of_a_coin_on_one_venue_is_its_general_form(
        usd: float, start: float, end: float, side: int, venues: int) -> None:
    from monitor.detector.figures import price_move
    windows = Windows(120, 2e6)
    prices = PriceTracker(window_seconds=120, stale_seconds=30)
    for i, venue in enumerate(("bybit", "okx")[:venues]):
        windows._pair(venue, "ETH").v[2 + side] = usd * (i + 1)
        prices.update("ETH", venue, "ETHUSDT", start, 1_000)
        prices.update("ETH", venue, "ETHUSDT", end * (1 + i), 1_100)
    coin = windows.coins["ETH"]
    got = price_move(coin, side, windows, prices, DetectorConfig(), 1_110)
    expected = _plain_price_move(coin, side, windows, prices, 1_110)
    assert (got is None) == (expected is None)
    if got is not None:
        assert got.hex() == expected.hex()  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(long=st.floats(0.0, 2e7), short=st.floats(0.0, 2e7))
def test_a_touched_scope_is_a_candidate_exactly_when_worth_watching(long: float,
                                                                   short: float) -> None:
    # The step's inline form of ``_worth_watching`` for the scopes a fold touched. (It
    # filters before ``_visit``, which asks ``_worth_watching`` again: one that let
    # through too much would cost time, one that let through too little alerts.)
    detector = Detector(DetectorConfig())
    windows = detector._windows
    pair = windows._pair("bybit", "BTC")
    coin = windows.coins["BTC"]
    coin.v[LONG], coin.v[SHORT] = long, short
    visited: list[tuple[str, int]] = []

    def advance(m: Machine, t: int, alerts: list[Any]) -> None:
        visited.append((m.agg.scope, m.side))
        m.state = DetectorState.WATCH

    detector._advance_machine = advance  # type: ignore[method-assign]
    windows.touched.add(pair)
    detector._step(1_001, [])
    expected = [coin.keys[side] for side in (LONG, SHORT)
                if detector._worth_watching(coin, side)]
    assert [k for k in visited if k[0] == coin.scope] == expected
