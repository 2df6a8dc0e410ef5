"""A venue that drops every connection after a few seconds stays subscribed most of the time:
the backoff resets after a share of the venue's usual connection lifetime, not only after
healthy_after_seconds (60 s), which such a venue never reaches."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from monitor.feed.lifetimes import Lifetimes
from monitor.simulator.faults import Faults
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from tests.support.daemon import running_daemon, sample, wait_until
from tests.support.timing import T

VENUE = "binance-usdm"
# The venue drops after 5 s with a 1 s first delay and a 60 s cap; the same
# proportions, 10 times faster.
DROP_SECONDS = 0.5 * T
FIRST_DELAY = 0.1 * T
MAX_DELAY = 6.0 * T


async def test_a_venue_flapping_every_few_seconds_stays_subscribed_over_70_percent(
    tmp_path: Path,
) -> None:
    faults = Faults(drop_every_seconds=DROP_SECONDS, venues=frozenset({VENUE}))
    scenario = build_scenario("calm", seed=3, venues=(VENUE,), duration_seconds=600 * 60)
    env = {"LIQMON_FEED__BACKOFF_INITIAL_SECONDS": str(FIRST_DELAY),
           "LIQMON_FEED__BACKOFF_MAX_SECONDS": str(MAX_DELAY)}
    async with Simulator(scenario, speed=60, venues=(VENUE,), faults=faults,
                         start_wall=time.time()) as sim:
        async with running_daemon(sim, tmp_path, env) as app:
            def closed() -> float:
                return sample(app, "liqmon_feed_reconnects_total",
                              {"venue": VENUE, "reason": "closed"})

            await wait_until(lambda: closed() >= 3, 20 * DROP_SECONDS)
            up = total = 0
            end = time.monotonic() + 20 * DROP_SECONDS
            while time.monotonic() < end:
                up += sample(app, "liqmon_feed_connected", {"venue": VENUE}) == 1
                total += 1
                await asyncio.sleep(0.005)
            flaps = closed()
    assert up / total > 0.7, f"subscribed {100 * up / total:.0f}% of the time"
    assert flaps >= 15  # it did flap all along


def test_backoff_resets_after_half_the_usual_lifetime_within_its_bounds() -> None:
    lifetimes = Lifetimes(healthy_after_seconds=60.0, first_delay_seconds=1.0)
    assert not lifetimes.ended(5.0)  # nothing known yet: the 60 s rule
    assert lifetimes.healthy_after() == 2.5
    assert lifetimes.ended(5.0) and lifetimes.ended(4.0)
    assert not lifetimes.ended(1.0)  # short of half the usual 5 s
    for _ in range(9):
        lifetimes.ended(0.5)  # a venue that drops at once: never below twice the first delay
    assert lifetimes.healthy_after() == 2.0
    for _ in range(9):
        lifetimes.ended(3600.0)  # long-lived connections: never above healthy_after
    assert lifetimes.healthy_after() == 60.0
