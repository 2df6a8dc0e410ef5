"""The daemon's notifications end to end: the feb-2026 simulator through a real daemon to a
real mosquitto (and a real HTTP endpoint), a broker outage, two redundant daemons on one
Redis, and the last will of a daemon process killed with SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import orjson

from monitor.alerts import CascadeAlert, WhaleAlert
from monitor.app import App
from monitor.clock import SystemClock
from monitor.notify.webhook import SIGNATURE_HEADER, verify
from monitor.simulator import Simulator, build_scenario
from tests.fixtures.mosquitto import Mosquitto, Received, Subscriber, retained
from tests.fixtures.redis import RedisServer
from tests.fixtures.webhook import Hook
from tests.support.daemon import running_daemon, wait_until
from tests.support.paths import REPO
from tests.support.timing import T

VENUES = ("hyperliquid", "bybit", "okx", "binance-usdm")
SPEED = 600.0


class RunOnClock(SystemClock):
    """The simulator's market time, which keeps going at its speed after the scenario's
    end, so that the cascades of the night can cool down and resolve."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        self._end: tuple[float, float] | None = None

    def wall(self) -> float:
        start = self._sim.start_wall or 0.0
        market = self._sim.market_seconds()
        if market < self._sim.scenario.duration_seconds:
            return start + market
        if self._end is None:
            self._end = (time.monotonic(), market)
        at, market = self._end
        return start + market + (time.monotonic() - at) * self._sim.speed


def daemon(sim: Simulator, tmp_path: Path, env: Mapping[str, str]
           ) -> AbstractAsyncContextManager[App]:
    return running_daemon(sim, tmp_path / "cache", env, clock=RunOnClock(sim))


def notify_env(broker: Mosquitto, client_id: str, **extra: str) -> dict[str, str]:
    return {
        "LIQMON_NOTIFY__MQTT__ENABLED": "true",
        "LIQMON_NOTIFY__MQTT__PORT": str(broker.port),
        "LIQMON_NOTIFY__MQTT__CLIENT_ID": client_id,
        "LIQMON_NOTIFY__RETRY_INITIAL_SECONDS": "0.05",
        "LIQMON_NOTIFY__RETRY_MAX_SECONDS": "0.5",
        # At 600x one real second is ten market minutes: evaluate often, so that the
        # detector's times (and the ids made from them) do not depend on when a loop woke.
        "LIQMON_DETECTOR__EVAL_INTERVAL_SECONDS": "0.05",
        **extra,
    }


def feb() -> Simulator:
    return Simulator(build_scenario("feb-2026", venues=VENUES), speed=SPEED, venues=VENUES,
                     start_wall=time.time(), wait_for_subscribers=10 * T)


def transitions(app: App) -> list[tuple[str, str, str]]:
    return [(a.id, a.status.value, a.severity.value) for a in app.alerts
            if isinstance(a, CascadeAlert)]


def whales(app: App) -> list[str]:
    return [a.id for a in app.alerts if isinstance(a, WhaleAlert)]


def payloads(messages: list[Received]) -> list[dict[str, Any]]:
    return [orjson.loads(m.payload) for m in messages]


def published(sub: Subscriber) -> list[tuple[str, str, str]]:
    return [(p["id"], p["status"], p["severity"])
            for p in payloads(sub.on("liqmon/v1/alerts/cascade/"))]


def all_resolved(app: App) -> bool:
    fired = {a.id for a in app.alerts if isinstance(a, CascadeAlert)}
    done = {a.id for a in app.alerts
            if isinstance(a, CascadeAlert) and a.status.value == "resolved"}
    return bool(fired) and fired == done


async def test_feb_2026_alerts_reach_mqtt_and_a_webhook_in_order_once(
    tmp_path: Path, mosquitto: Mosquitto, hook: Hook,
) -> None:
    env = notify_env(mosquitto, "liqmon-e2e", **{
        "LIQMON_NOTIFY__WEBHOOKS__OPS__URL": hook.url(),
        "LIQMON_NOTIFY__WEBHOOKS__OPS__SECRET": "s3cret",
        "LIQMON_NOTIFY__WEBHOOKS__OPS__RATE_LIMIT_PER_MINUTE": "0",
    })
    async with Subscriber(mosquitto.port, ["liqmon/#"]) as sub, feb() as sim:
        async with daemon(sim, tmp_path, env) as app:
            # A late subscriber, while the night's global cascade runs, sees its state.
            def global_long() -> list[CascadeAlert]:
                return [a for a in app.alerts if isinstance(a, CascadeAlert)
                        and a.scope == "global" and a.position_side.value == "long"]

            await wait_until(lambda: global_long() and published(sub)[-1:] == [
                transitions(app)[-1]], 60 * T)
            live = global_long()
            assert live[-1].status.value != "resolved"
            state = await retained(mosquitto.port, "liqmon/v1/state/#")
            current = orjson.loads(state["liqmon/v1/state/cascade/global/long"])
            assert current["id"] == live[-1].id and current["status"] != "resolved"
            await sim.wait_finished()
            await wait_until(lambda: all_resolved(app), 60 * T)
            await wait_until(lambda: published(sub) == transitions(app), 10 * T)
            assert app.ingest is not None and app.ingest.counted_total > 1000
        expected, expected_whales = transitions(app), whales(app)
        await sub.wait_for(lambda ms: any(m.payload == b"offline" for m in ms), 5 * T)
    # Each transition once, in the order the detector raised them.
    assert published(sub) == expected
    assert {s for _i, s, _v in expected} == {"firing", "escalated", "resolved"}
    assert [p["id"] for p in payloads(sub.on("liqmon/v1/alerts/whale/"))] == expected_whales
    # Every cascade ended: no retained state is left; the status says offline.
    after = await retained(mosquitto.port, "liqmon/#")
    assert not [topic for topic in after if "/state/" in topic]
    assert after["liqmon/v1/status"] == b"offline"
    # The webhook got the same alerts in the same order, each signed.
    bodies = [orjson.loads(r.body) for r in hook.requests]
    assert [(b["id"], b["status"], b["severity"]) for b in bodies
            if b["kind"] == "cascade"] == expected
    assert [b["id"] for b in bodies if b["kind"] == "whale"] == expected_whales
    assert all(verify("s3cret", r.body, r.headers[SIGNATURE_HEADER]) for r in hook.requests)


async def test_broker_outage_delays_alerts_without_losing_doubling_or_stalling(
    tmp_path: Path, mosquitto: Mosquitto,
) -> None:
    env = notify_env(mosquitto, "liqmon-outage")
    async with Subscriber(mosquitto.port, ["liqmon/v1/alerts/#"], client_id="consumer",
                          persistent=True) as sub, feb() as sim:
        async with daemon(sim, tmp_path, env) as app:
            assert app.ingest is not None
            await wait_until(lambda: any(p[1] == "firing" for p in published(sub)), 60 * T)
            mosquitto.stop()
            before = app.ingest.counted_total
            raised = len(app.alerts)
            # The crash goes on with the broker away (ten market minutes a second), and at
            # least one more alert is raised meanwhile. Polled: a loaded machine counts the
            # hundred in more than a second.
            ingest = app.ingest
            await wait_until(lambda: ingest.counted_total > before + 100, 10 * T)  # kept counting
            await wait_until(lambda: len(app.alerts) > raised, 30 * T)  # detection too
            assert app.notifier is not None and len(app.notifier.outboxes["mqtt"]) > 0
            # The outbox takes the alert before its first delivery attempt fails.
            await wait_until(lambda: (app.registry.get_sample_value(
                "liqmon_notify_failures_total", {"channel": "mqtt"}) or 0) > 0, 10 * T)
            mosquitto.start()
            await sim.wait_finished()
            await wait_until(lambda: all_resolved(app), 60 * T)
            await wait_until(lambda: published(sub) == transitions(app), 20 * T)
            expected, expected_whales = transitions(app), whales(app)
        await sub.wait_for(
            lambda ms: len(sub.on("liqmon/v1/alerts/whale/")) >= len(expected_whales), 10 * T)
    assert sub.connected >= 2
    assert published(sub) == expected  # all of them, in order, none twice
    whale_ids = [p["id"] for p in payloads(sub.on("liqmon/v1/alerts/whale/"))]
    assert whale_ids == expected_whales


CLAIM_WINDOW = 150.0


def identity(scope: str, side: str, status: str, severity: str, started_ms: int
             ) -> tuple[str, str, str, str, float]:
    """What makes a transition the same one in two daemons: resolved whatever the severity,
    of a cascade that started within the claim window."""
    return (scope, side, status, "" if status == "resolved" else severity, started_ms / 1000)


def same(a: tuple[str, str, str, str, float], b: tuple[str, str, str, str, float]) -> bool:
    return a[:4] == b[:4] and abs(a[4] - b[4]) <= CLAIM_WINDOW


async def test_two_daemons_on_one_redis_publish_each_transition_once(
    tmp_path: Path, mosquitto: Mosquitto, redis_server: RedisServer,
) -> None:
    shared = {"LIQMON_STORE__BACKEND": "redis", "LIQMON_STORE__URL": redis_server.url,
              # Two detectors can start one cascade a few market minutes apart at 600x.
              "LIQMON_NOTIFY__CLAIM_WINDOW_SECONDS": str(CLAIM_WINDOW)}
    async with Subscriber(mosquitto.port, ["liqmon/v1/alerts/#"]) as sub, feb() as sim:
        async with daemon(sim, tmp_path / "a", {**notify_env(mosquitto, "liqmon-a"), **shared}
                          ) as a, daemon(sim, tmp_path / "b",
                                         {**notify_env(mosquitto, "liqmon-b"), **shared}) as b:
            await sim.wait_finished()
            await wait_until(lambda: all_resolved(a) and all_resolved(b), 60 * T)
            assert a.notifier is not None and b.notifier is not None
            assert await a.notifier.drain(10 * T) == 0
            assert await b.notifier.drain(10 * T) == 0
            delivered = {name: app.notifier.outboxes["mqtt"].stats.delivered
                         for name, app in (("a", a), ("b", b)) if app.notifier is not None}
            # What the broker took has reached the subscriber (not a fixed pause: a loaded
            # machine takes longer than the 0.2 s this once waited).
            await sub.wait_for(lambda ms: len(sub.on("liqmon/v1/alerts/cascade/")) + len(
                sub.on("liqmon/v1/alerts/whale/")) >= sum(delivered.values()), 10 * T)
        skipped = {name: app.notifier.outboxes["mqtt"].stats.skipped
                   for name, app in (("a", a), ("b", b)) if app.notifier is not None}
    raised = [identity(x.scope, x.position_side.value, x.status.value, x.severity.value,
                       round(x.started_at * 1000))
              for app in (a, b) for x in app.alerts if isinstance(x, CascadeAlert)]
    assert raised
    cascades = payloads(sub.on("liqmon/v1/alerts/cascade/"))
    seen = [identity(p["scope"], p["position_side"], p["status"], p["severity"],
                     p["started_at_ms"]) for p in cascades]
    # Never one transition twice: neither by what it is, nor by id and status.
    for i, one in enumerate(seen):
        assert not [other for other in seen[i + 1:] if same(one, other)], one
    by_id = [(p["id"], p["scope"], p["status"], p["severity"] if p["status"] != "resolved"
              else "") for p in cascades]
    assert len(by_id) == len(set(by_id))
    # Every transition either daemon raised went out, from one or the other. (Under load
    # the two detectors need not agree on every step: what only one saw is sent once.)
    for one in raised:
        assert [other for other in seen if same(one, other)], one
    whale_ids = [p["id"] for p in payloads(sub.on("liqmon/v1/alerts/whale/"))]
    assert len(whale_ids) == len(set(whale_ids))
    assert set(whale_ids) == set(whales(a)) | set(whales(b))
    # The daemons shared the work: what one sent, the other skipped.
    assert sum(delivered.values()) == len(cascades) + len(whale_ids)
    assert sum(skipped.values()) > 0


async def test_the_last_will_says_offline_when_the_daemon_is_killed(
    tmp_path: Path, mosquitto: Mosquitto,
) -> None:
    env = {**os.environ, **notify_env(mosquitto, "liqmon-killed"),
           "LIQMON_METRICS__PORT": "0",
           "LIQMON_FEED__INSTRUMENT_CACHE_DIR": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO)}
    async with Subscriber(mosquitto.port, ["liqmon/v1/status"]) as sub:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monitor", "demo", "--scenario", "calm", "--speed", "60",
            "--log-level", "WARNING",
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await sub.wait_for(lambda ms: [m.payload for m in ms][-1:] == [b"online"], 30 * T)
            process.send_signal(signal.SIGKILL)
            async with asyncio.timeout(10 * T):
                await process.wait()
            await sub.wait_for(lambda ms: [m.payload for m in ms][-1:] == [b"offline"], 5 * T)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == -signal.SIGKILL
    assert (await retained(mosquitto.port, "liqmon/v1/status"))["liqmon/v1/status"] == b"offline"
