"""Feed-down and feed-up notices on MQTT (retained per venue) and webhooks, from the daemon,
within the venue's silence limit of its last data frame (60 s by default)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from monitor.simulator.faults import Faults
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from tests.fixtures.mosquitto import Mosquitto, Subscriber, retained
from tests.fixtures.webhook import Hook
from tests.support.daemon import running_daemon, wait_until
from tests.support.timing import T

VENUES = ("binance-usdm", "bybit")
LIMIT = 2.0 * T  # the watchdog's; down is declared at half of it


async def test_a_stalled_feed_sends_down_then_up_on_mqtt_and_the_webhook(
    tmp_path: Path, mosquitto: Mosquitto, hook: Hook,
) -> None:
    # binance-usdm's connection stalls after 1 s; the watchdog replaces it at LIMIT, and
    # the new connection delivers again.
    faults = Faults(stall_after_seconds=1.0 * T, venues=frozenset({"binance-usdm"}))
    scenario = build_scenario("calm", seed=3, venues=VENUES, duration_seconds=600 * 60)
    env = {
        "LIQMON_VENUES__BINANCE_USDM__SILENCE_LIMIT_SECONDS": str(LIMIT),
        "LIQMON_NOTIFY__MQTT__ENABLED": "true",
        "LIQMON_NOTIFY__MQTT__PORT": str(mosquitto.port),
        "LIQMON_NOTIFY__MQTT__CLIENT_ID": "liqmon-feed-notices",
        "LIQMON_NOTIFY__RETRY_INITIAL_SECONDS": "0.05",
        "LIQMON_NOTIFY__RETRY_MAX_SECONDS": "0.5",
        "LIQMON_NOTIFY__WEBHOOKS__OPS__URL": hook.url(),
        "LIQMON_NOTIFY__WEBHOOKS__OPS__RATE_LIMIT_PER_MINUTE": "0",
    }
    async with Subscriber(mosquitto.port, ["liqmon/v1/alerts/feed/#"]) as sub, Simulator(
            scenario, speed=60, venues=VENUES, faults=faults, start_wall=time.time()) as sim:
        async with running_daemon(sim, tmp_path, env):
            def notices(feed: str) -> list[dict[str, object]]:
                got = [json.loads(m.payload) for m in sub.on("liqmon/v1/alerts/feed/")]
                return [n for n in got if n["feed"] == feed]

            started = time.monotonic()
            await sub.wait_for(lambda _m: notices("down"), 1.0 * T + LIMIT + 2 * T)
            (down,) = notices("down")
            assert down["venue"] == "binance-usdm" and down["kind"] == "feed"
            # The stall began 1 s after the connection opened: down within the limit.
            assert time.monotonic() - started < 1.0 * T + LIMIT + 1.5 * T
            state = await retained(mosquitto.port, "liqmon/v1/state/feed/#")
            assert json.loads(state["liqmon/v1/state/feed/binance-usdm"])["feed"] == "down"

            await sub.wait_for(lambda _m: notices("up"), LIMIT + 3 * T)
            state = await retained(mosquitto.port, "liqmon/v1/state/feed/#")
            assert json.loads(state["liqmon/v1/state/feed/binance-usdm"])["feed"] == "up"
            await wait_until(lambda: len(hook.requests) >= 2, 3 * T)
    bodies = [json.loads(r.body) for r in hook.requests]
    assert [(b["venue"], b["feed"]) for b in bodies][:2] == [
        ("binance-usdm", "down"), ("binance-usdm", "up")]
    assert all(b["venue"] == "binance-usdm" for b in bodies)  # bybit never went quiet
