"""Listings, delistings and refused topics on live connections, against the simulator.

The venues delist weekly. One delisted symbol must cost nothing but its own topics: no
reconnect, not one liquidation of the other symbols, and a new listing is subscribed within
one instrument refresh.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from monitor.metrics import RECONNECT_REASONS
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from tests.support.daemon import counted, running_daemon, sample, sent, wait_until
from tests.support.timing import T

# venue: (refused at start while REST still lists it, listed mid-run, delisted mid-run),
# each with the topic the simulator knows it by.
CASES = {
    "bybit": (("LINKUSDT", "tickers.LINKUSDT"), ("AVAXUSDT", "allLiquidation.AVAXUSDT"),
              ("SUIUSDT", "allLiquidation.SUIUSDT")),
    "okx": (("DOGE-USDT-SWAP", "mark-price:DOGE-USDT-SWAP"),
            ("PEPE-USDT-SWAP", "mark-price:PEPE-USDT-SWAP"),
            ("HYPE-USDT-SWAP", "mark-price:HYPE-USDT-SWAP")),
    "kraken-futures": (("PF_DOGEUSD", "ticker:PF_DOGEUSD"), ("PF_XRPUSD", "trade:PF_XRPUSD"),
                       ("PF_SOLUSD", "trade:PF_SOLUSD")),
}
REFRESH_SECONDS = max(1.0, 0.5 * T)  # the shortest refresh the config allows


@pytest.mark.parametrize("venue", sorted(CASES))
async def test_delisting_and_listing_mid_run_cost_no_connection_and_no_liquidation(
    venue: str, tmp_path: Path
) -> None:
    (refused, refused_topic), (listed, listed_topic), (gone, gone_topic) = CASES[venue]
    scenario = build_scenario("calm", seed=5, venues=(venue,), duration_seconds=40 * 60)
    env = {f"LIQMON_VENUES__{venue.upper().replace('-', '_')}__INSTRUMENTS_REFRESH_SECONDS":
           str(REFRESH_SECONDS)}
    async with Simulator(scenario, speed=300, venues=(venue,), start_wall=time.time(),
                         wait_for_subscribers=10 * T) as sim:
        # The websocket already refuses one symbol that REST still lists; another is not
        # listed yet.
        sim.delist(venue, refused, rest=False)
        sim.delist(venue, listed)
        async with running_daemon(sim, tmp_path, env) as app:
            await wait_until(lambda: sample(app, "liqmon_topics_refused_total",
                                            {"venue": venue}) >= 1, 10 * T)
            await wait_until(lambda: sample(app, "liqmon_feed_connected",
                                            {"venue": venue}) == 1, 10 * T)
            assert not sim.holds(venue, refused_topic)
            assert sim.holds(venue, gone_topic)
            connects = sim.connections(venue)

            sim.relist(venue, listed)
            await wait_until(lambda: sim.holds(venue, listed_topic), REFRESH_SECONDS + 5 * T)
            sim.delist(venue, gone)
            await wait_until(lambda: not sim.holds(venue, gone_topic), REFRESH_SECONDS + 5 * T)
            # The refused symbol was tried again after a refresh while REST still listed it.
            refusals = sample(app, "liqmon_topics_refused_total", {"venue": venue})
            await wait_until(lambda: sample(app, "liqmon_topics_refused_total",
                                            {"venue": venue}) > refusals,
                             2 * REFRESH_SECONDS + 5 * T)

            await sim.wait_finished()
            await wait_until(lambda: counted(app) == sent(sim), 5 * T)
            assert sim.connections(venue) == connects
            for reason in RECONNECT_REASONS:
                assert sample(app, "liqmon_feed_reconnects_total",
                              {"venue": venue, "reason": reason}) == 0, reason
    assert sum(c for c, _ in sent(sim).values()) > 10
