"""Venue behaviour of the simulated venues, sans I/O: throttle, batches, replays, cadence."""

from __future__ import annotations

import orjson
import pytest

from monitor.events import PositionSide
from monitor.simulator.catalogue import COIN_PRICES_USD, listing
from monitor.simulator.scenarios.model import ScenarioEvent, liquidation_event
from monitor.simulator.venue_sim import Liq, Publication, SimContext, SimNow
from monitor.simulator.venues import SIMULATORS, make_venue_sim
from monitor.simulator.venues.binance import BinanceSim
from monitor.simulator.venues.bybit import BybitSim
from monitor.simulator.venues.okx import OkxSim

T0 = 1_769_904_000_000  # a whole second


def event(venue: str, symbol: str, side: PositionSide = PositionSide.LONG,
          usd: float = 10_000.0) -> ScenarioEvent:  # fmt: skip
    item = listing(venue, symbol)
    return liquidation_event(0.0, venue, item, side, COIN_PRICES_USD[item.coin], usd, 0.0)


def liq(seq: int, venue: str, symbol: str, ts_ms: int, **kw: object) -> Liq:
    return Liq(seq, event(venue, symbol, **kw), ts_ms)  # type: ignore[arg-type]


def ctx(venue: str, sent: set[int] | None = None, mark_ms: int = 1000) -> SimContext:
    return SimContext(venue, (sent if sent is not None else set()).__contains__, mark_ms)


def now(ms: int) -> SimNow:
    return SimNow(ms, 0.0)


def carried(pubs: list[Publication]) -> list[int]:
    return [liq.seq for pub in pubs for liq in pub.liquidations]


def test_every_registered_venue_builds() -> None:
    for venue in SIMULATORS:
        assert make_venue_sim(ctx(venue)).venue == venue
    with pytest.raises(KeyError, match="no simulator"):
        make_venue_sim(ctx("nowhere"))


def test_binance_pushes_only_the_latest_order_per_symbol_per_second() -> None:
    sim = make_venue_sim(ctx("binance-usdm"))
    assert isinstance(sim, BinanceSim)
    orders = [("BTCUSDT", 10), ("BTCUSDT", 400), ("ETHUSDT", 500), ("BTCUSDT", 999),
              ("BTCUSDT", 1_000), ("BTCUSDT", 2_500)]  # fmt: skip

    def play_until(ms: int, final: bool = False) -> list[int]:
        # As the player does: hand over what is due, then flush.
        while orders and orders[0][1] <= ms - T0:
            symbol, offset = orders.pop(0)
            sim.on_liquidation(liq(7 - len(orders) - 1, "binance-usdm", symbol, T0 + offset))
        pubs = sim.flush(now(ms), final)
        published.extend(pubs)
        return carried(pubs)

    published: list[Publication] = []
    # Nothing of a second is pushed before the second is over.
    assert play_until(T0 + 999) == []
    assert sorted(play_until(T0 + 1_000)) == [3, 4]  # BTCUSDT's latest (seq 4) and ETHUSDT
    assert play_until(T0 + 2_000) == [5]
    assert play_until(T0 + 2_600, final=True) == [6]
    # Seqs 1 and 2 were dropped by the throttle: no frame ever carries them.
    assert sorted(carried(published)) == [3, 4, 5, 6]
    frame = orjson.loads(next(p for p in published if p.liquidations[0].seq == 4).payload)
    assert frame["e"] == "forceOrder"
    assert frame["E"] == T0 + 1_000 and frame["o"]["T"] == T0 + 999
    assert frame["o"]["S"] == "SELL"  # a long liquidated is a forced sell


def test_bybit_batches_each_symbol_every_500_ms() -> None:
    sim = make_venue_sim(ctx("bybit"))
    assert isinstance(sim, BybitSim)
    for seq, (symbol, offset) in enumerate(
        [("SOLUSDT", 0), ("SOLUSDT", 120), ("DOGEUSDT", 130), ("SOLUSDT", 499),
         ("SOLUSDT", 500)], start=1,
    ):  # fmt: skip
        sim.on_liquidation(liq(seq, "bybit", symbol, T0 + offset))
    pubs = sim.flush(now(T0 + 500))
    frames = {p.topics[0]: orjson.loads(p.payload) for p in pubs if p.liquidations}
    assert [row["T"] - T0 for row in frames["allLiquidation.SOLUSDT"]["data"]] == [0, 120, 499]
    assert len(frames["allLiquidation.DOGEUSDT"]["data"]) == 1
    assert frames["allLiquidation.SOLUSDT"]["type"] == "snapshot"
    assert frames["allLiquidation.SOLUSDT"]["ts"] == T0 + 500
    assert carried(sim.flush(now(T0 + 999))) == []
    assert carried(sim.flush(now(T0 + 1_000))) == [5]


def test_bybit_side_is_the_position_side_and_inverse_size_is_usd() -> None:
    sim = make_venue_sim(ctx("bybit"))
    sim.on_liquidation(liq(1, "bybit", "BTCUSD", T0, side=PositionSide.SHORT, usd=12_345))
    sim.on_liquidation(liq(2, "bybit", "ETHUSDT", T0, side=PositionSide.LONG))
    pubs = sim.flush(now(T0), final=True)
    rows = {p.topics[0]: orjson.loads(p.payload)["data"][0] for p in pubs if p.liquidations}
    assert rows["allLiquidation.BTCUSD"]["S"] == "Sell"  # a short position
    assert rows["allLiquidation.BTCUSD"]["v"] == "12345"  # USD contracts
    assert rows["allLiquidation.ETHUSDT"]["S"] == "Buy"  # a long position


def test_okx_first_push_replays_only_orders_already_sent() -> None:
    sent: set[int] = set()
    sim = make_venue_sim(ctx("okx", sent))
    assert isinstance(sim, OkxSim)
    for seq in (1, 2, 3):
        sim.on_liquidation(liq(seq, "okx", "BTC-USDT-SWAP", T0 + seq))
    sim.flush(now(T0 + 10))
    sent.update({1, 3})  # 2 reached no connection
    session = sim.open("/ws/v5/public", "", reject=False)
    assert session is not None
    request = {"op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}
    out = session.on_text(orjson.dumps(request).decode(), now(T0 + 20))
    ack, replay = out
    assert orjson.loads(ack.data)["event"] == "subscribe"  # type: ignore[union-attr]
    assert [liq.seq for liq in replay.liquidations] == [1, 3]  # type: ignore[union-attr]
    details = orjson.loads(replay.data)["data"][0]["details"]  # type: ignore[union-attr]
    assert [int(d["ts"]) - T0 for d in details] == [1, 3]


def test_okx_first_push_is_empty_when_nothing_was_sent_yet() -> None:
    sim = make_venue_sim(ctx("okx"))
    session = sim.open("/ws/v5/public", "", reject=False)
    assert session is not None
    request = {"op": "subscribe", "args": [{"channel": "liquidation-orders", "instType": "SWAP"}]}
    _ack, replay = session.on_text(orjson.dumps(request).decode(), now(T0))
    assert orjson.loads(replay.data)["data"] == []  # type: ignore[union-attr]


def test_prices_go_out_on_the_slower_of_venue_and_core_cadence() -> None:
    context = ctx("binance-usdm", mark_ms=5_000)
    sim = make_venue_sim(context)
    context.subscribed["!markPrice@arr@1s"] += 1
    times = [ms for ms in range(T0, T0 + 20_000, 250) if sim.flush(now(ms))]
    assert [t - T0 for t in times] == [0, 5_000, 10_000, 15_000]
    # Nobody subscribed: no price frames are even built.
    del context.subscribed["!markPrice@arr@1s"]
    assert sim.flush(now(T0 + 40_000)) == []


def test_mark_prices_follow_the_scenario() -> None:
    context = ctx("binance-usdm")
    sim = make_venue_sim(context)
    context.subscribed["!markPrice@arr@1s"] += 1
    sim.on_mark("BTC", 77_777.0, T0)
    sim.on_mark("PEPE", 0.000004, T0)
    (pub,) = sim.flush(now(T0))
    marks = {m["s"]: float(m["p"]) for m in orjson.loads(pub.payload)}
    assert marks["BTCUSDT"] == 77_777.0
    assert marks["1000PEPEUSDT"] == pytest.approx(0.004)  # quoted per 1000 PEPE


def test_ledger_counts_each_liquidation_once_and_forgets_old_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from monitor.simulator import ledger

    monkeypatch.setattr(ledger, "KEEP_SEQS", 10)
    book = ledger.Ledger(["okx"])
    first = [liq(seq, "okx", "BTC-USDT-SWAP", T0) for seq in range(1, 31)]
    book.record(first)
    book.record(first[-5:])  # a duplicate frame, a replay: nothing new
    counts = book.snapshot()
    assert counts.count("okx") == 30
    assert counts.usd("okx") == pytest.approx(sum(x.event.notional_usd for x in first))
    assert counts.get("okx", "long").count == 30 and counts.get("okx", "short").count == 0
    assert book.was_sent(1) and book.was_sent(30) and not book.was_sent(31)
    book.record(first[:3])  # forgotten but settled: never counted twice
    assert book.snapshot().count() == 30
    assert counts.to_json()["venues"]["okx"]["long"]["count"] == 30
