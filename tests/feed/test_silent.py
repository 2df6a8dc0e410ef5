"""A silent feed is declared down at once: the connected gauge drops the moment the watchdog
calls the connection stale, and the last-data time stops while acks keep arriving."""

from __future__ import annotations

import time
from pathlib import Path

from monitor.simulator.faults import Faults
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from tests.support.daemon import running_daemon, sample, wait_until
from tests.support.timing import T

VENUES = ("binance-usdm", "bybit")


async def test_stale_connection_drops_connected_at_once_and_data_time_stops(
    tmp_path: Path,
) -> None:
    faults = Faults(silent_after_ack=True, venues=frozenset({"binance-usdm"}))
    scenario = build_scenario("calm", seed=3, venues=VENUES, duration_seconds=600 * 60)
    limit = 1.0 * T
    env = {"LIQMON_VENUES__BINANCE_USDM__SILENCE_LIMIT_SECONDS": str(limit),
           "LIQMON_FEED__BACKOFF_INITIAL_SECONDS": str(0.3 * T)}
    async with Simulator(scenario, speed=60, venues=VENUES, faults=faults,
                         start_wall=time.time()) as sim:
        async with running_daemon(sim, tmp_path, env) as app:
            def connected() -> float:
                return sample(app, "liqmon_feed_connected", {"venue": "binance-usdm"})

            def stale() -> float:
                return sample(app, "liqmon_feed_reconnects_total",
                              {"venue": "binance-usdm", "reason": "stale"})

            await wait_until(lambda: connected() == 1, 5 * T)
            # Down before the stale close is counted as a reconnect, and for the backoff.
            await wait_until(lambda: connected() == 0, limit + 2 * T, interval=0.002)
            assert stale() <= 1
            await wait_until(lambda: stale() >= 1, 2 * T)
            # Acks arrive, data does not: only the frame time moves on.
            assert sample(app, "liqmon_feed_last_data_timestamp_seconds",
                          {"venue": "binance-usdm"}) == 0
            assert sample(app, "liqmon_feed_last_data_timestamp_seconds",
                          {"venue": "bybit"}) > 0
            assert sample(app, "liqmon_feed_last_frame_timestamp_seconds",
                          {"venue": "binance-usdm"}) > 0
            # What each venue's feed shows is a metric too.
            assert sample(app, "liqmon_venue_completeness_info",
                          {"venue": "bybit", "completeness": "full"}) == 1
            assert sample(app, "liqmon_venue_completeness_info",
                          {"venue": "binance-usdm", "completeness": "throttled"}) == 1
