"""The simulator core: playing a scenario, counting what it sent, addressing, ground truth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from monitor.config import load_config
from monitor.simulator import Simulator, build_scenario
from monitor.simulator.scenarios.model import scripted_scenario
from tests.support.daemon import wait_until
from tests.support.probe import Tally, run_probe
from tests.support.timing import T

FIVE = ["binance-usdm", "binance-coinm", "bybit", "okx", "hyperliquid"]


async def play_with_probe(sim: Simulator, venues: list[str]) -> Tally:
    tally = Tally()
    stop = asyncio.Event()
    urls = {v: sim.ws_base_url(v) for v in venues}
    probe = asyncio.create_task(run_probe(urls, tally, stop, venues))
    await asyncio.wait_for(sim.wait_finished(), 60 * T)
    stop.set()  # the probe reads what is still in flight, then ends
    await probe
    return tally


async def test_feb_2026_sent_counts_are_what_a_client_received() -> None:
    scenario = build_scenario("feb-2026", venues=FIVE, duration_seconds=900)
    async with Simulator(scenario, speed=300, venues=FIVE, wait_for_subscribers=10 * T) as sim:
        tally = await play_with_probe(sim, FIVE)
        sent = sim.sent()
    received = tally.totals()
    truth = scenario.ground_truth["venues"]
    assert tally.malformed == 0 and tally.duplicates == 0
    for venue in FIVE:
        for side in ("long", "short"):
            got = received[venue][side]
            assert got["count"] == sent.get(venue, side).count
            assert got["usd"] == pytest.approx(sent.get(venue, side).usd, abs=0.01)
            if venue.startswith("binance"):
                # The throttle drops orders: fewer sent than happened, never more.
                assert sent.get(venue, side).count <= truth[venue][side]["count"]
            else:
                assert sent.get(venue, side).count == truth[venue][side]["count"]
                assert sent.get(venue, side).usd == pytest.approx(truth[venue][side]["usd"])
    assert sent.count("binance-usdm") < truth["binance-usdm"]["total_count"]
    # The $60M order is alone in its second, so the throttle lets it through.
    biggest = max(item.notional_usd for item in tally.seen.values() if item.venue == "binance-usdm")
    assert biggest == pytest.approx(60e6, rel=1e-6)
    json_counts = sent.to_json()
    assert json_counts["total_count"] == sum(sent.count(v) for v in FIVE)
    assert set(json_counts["venues"]) == set(FIVE)


async def test_start_when_holds_the_scenario_clock_until_it_is_set() -> None:
    scenario = scripted_scenario(["okx"], duration_seconds=60, every_seconds=1.0)
    go = asyncio.Event()
    async with Simulator(scenario, speed=600, venues=["okx"], start_when=go) as sim:
        await asyncio.sleep(0.3 * T)
        assert sim.market_seconds() == 0.0 and not sim.finished
        go.set()
        await asyncio.wait_for(sim.wait_finished(), 30 * T)
        assert sim.market_seconds() >= 60


async def test_sent_counts_grow_during_the_run_and_stop_at_the_end() -> None:
    scenario = scripted_scenario(["okx"], duration_seconds=120, every_seconds=1.0)
    async with Simulator(scenario, speed=60, venues=["okx"], wait_for_subscribers=10 * T) as sim:
        tally = Tally()
        stop = asyncio.Event()
        probe = asyncio.create_task(
            run_probe({"okx": sim.ws_base_url("okx")}, tally, stop, ["okx"])
        )
        # The play starts once the probe has subscribed, which under load takes longer than
        # the first 0.4 s reading once allowed: read from the first send on, 0.4 s apart
        # (the run lasts 2 s of wall time at 60x, whatever T).
        await wait_until(lambda: sim.sent().count("okx") > 0, 10 * T, interval=0.01)
        readings = [sim.sent().count("okx")]
        for _ in range(2):
            await asyncio.sleep(0.4)
            readings.append(sim.sent().count("okx"))
        await asyncio.wait_for(sim.wait_finished(), 30 * T)
        final = sim.sent().count("okx")
        assert 0 < readings[0] < readings[1] < readings[2] <= final == 120
        assert sim.market_seconds() >= 120
        await asyncio.sleep(0.2 * T)
        assert sim.sent().count("okx") == final
        stop.set()
        await probe


async def test_loop_scenario_keeps_playing_with_later_timestamps() -> None:
    scenario = scripted_scenario(["bybit"], duration_seconds=20, every_seconds=1.0)
    async with Simulator(scenario, speed=100, venues=["bybit"], loop_scenario=True,
                         wait_for_subscribers=10 * T) as sim:  # fmt: skip
        tally = Tally()
        stop = asyncio.Event()
        probe = asyncio.create_task(
            run_probe({"bybit": sim.ws_base_url("bybit")}, tally, stop, ["bybit"])
        )
        await asyncio.wait_for(sim.wait_finished(), 30 * T)
        first_pass = sim.sent().count()
        assert first_pass >= 20  # the next pass may already have begun
        async with asyncio.timeout(10 * T):
            while sim.sent().count() < 3 * first_pass:  # noqa: ASYNC110 (polling a counter)
                await asyncio.sleep(0.05)
        stop.set()
    await probe  # closing the simulator closed its connections
    # Each pass is new liquidations at new times, not a replay of the first.
    assert len(tally.seen) >= 3 * first_pass
    times = sorted(key[2] for key in tally.seen)
    assert times[-1] - times[0] > 2 * 20 * 1000


async def test_config_overrides_point_a_daemon_config_at_the_simulator() -> None:
    scenario = scripted_scenario(["okx", "bybit"], duration_seconds=10)
    async with Simulator(scenario, venues=["okx", "bybit"]) as sim:
        env = sim.config_overrides()
        config = load_config(env=env)
    assert env["LIQMON_VENUES__OKX__WS_BASE_URL"] == f"ws://127.0.0.1:{sim.port}/okx"
    assert env["LIQMON_VENUES__BYBIT__REST_BASE_URL"] == f"http://127.0.0.1:{sim.port}/bybit"
    assert set(config.enabled_venues()) == {"okx", "bybit"}
    assert config.venues["okx"].ws_base_url == sim.ws_base_url("okx")
    assert config.venues["bybit"].rest_base_url == sim.rest_base_url("bybit")


async def test_write_ground_truth(tmp_path: Path) -> None:
    scenario = build_scenario("feb-2026", venues=["hyperliquid"], duration_seconds=60)
    path = tmp_path / "truth.json"
    async with Simulator(scenario, speed=600, venues=["hyperliquid"], start_wall=1_769_900_000.0,
                         port=0) as sim:  # fmt: skip
        await asyncio.wait_for(sim.wait_finished(), 30 * T)
        sim.write_ground_truth(path)
    truth = orjson.loads(path.read_bytes())
    for key in ("onset_seconds", "peak_seconds", "end_seconds", "total_usd", "venues", "follows"):
        assert key in truth
    assert truth["venues"]["hyperliquid"]["long"]["usd"] > truth["venues"]["hyperliquid"][
        "short"]["usd"]  # fmt: skip
    assert truth["simulator"]["start_wall"] == 1_769_900_000.0
    assert truth["simulator"]["exchange_ms"]["onset_seconds"] == int(
        (1_769_900_000.0 + truth["onset_seconds"]) * 1000
    )
    assert truth["simulator"]["sent"]["total_count"] == 0  # nobody was connected


async def test_lifecycle() -> None:
    sim = Simulator(scripted_scenario(["okx"], duration_seconds=5), venues=["okx"])
    with pytest.raises(RuntimeError, match="not started"):
        await sim.wait_finished()
    with pytest.raises(ValueError, match="speed"):
        Simulator(scripted_scenario(["okx"]), speed=0)
    with pytest.raises(KeyError, match="no simulator"):
        Simulator(scripted_scenario(["okx"]), venues=["nowhere"])
    await sim.start()
    assert sim.port > 0
    await sim.aclose()
    await sim.aclose()  # safe twice
