"""End to end: a real Prometheus with the shipped rules scrapes the daemon while the simulator
replays the night of 1 February 2026 at high speed.

One live stack serves the whole module (it costs about 80 s, most of it the one-minute
``for`` of ``LiqmonFeedSilent``, so it is paid once):

- the simulator plays ``feb-2026`` on four venues at ``SPEED`` (looped, so the feeds stay live
  for the whole module); ``binance-usdm`` answers its subscription and then sends nothing (the
  retired-route fault) and ``okx`` mixes 2% malformed frames into its data;
- the daemon runs in-process on the simulator's market clock (tests/daemon.py), with the real
  Redis store, a webhook channel posting to a local receiver and a 1 s silence limit for
  ``binance-usdm``, serving /metrics on a free port;
- the Debian ``prometheus`` binary scrapes it every second and evaluates the shipped
  ``rules.yml`` and ``alerts.yml`` every second.

The simulator and the daemon run in their own thread and event loop, so the tests use the
fixture's blocking Prometheus helpers and the stack keeps running between tests.

Every dashboard query returns data here, with no exception list: the store and notifier
panels have data because the run has a real store and a real channel (with the memory store
"Store write latency p99" is NaN, and without a channel the notifier panels are empty).
"""

from __future__ import annotations

import asyncio
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.app import App
from monitor.simulator.faults import Faults
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from tests.fixtures.prometheus import RULES_DIR, PrometheusServer
from tests.fixtures.redis import RedisServer
from tests.fixtures.webhook import Hook
from tests.support.daemon import running_daemon
from tests.support.dashboards import QUERIES, substitute
from tests.support.timing import T

VENUES = ("binance-usdm", "bybit", "okx", "hyperliquid")
SILENT_VENUE = "binance-usdm"
MALFORMED_VENUE = "okx"
CHANNEL = "ops"
# 300x plays the 3-hour night in 36 s: the global long cascade reaches critical about 13 s in.
SPEED = 300.0 / T
SILENCE_LIMIT_SECONDS = max(1.0, 1.0 * T)
# LiqmonFeedSilent's `for` decides how long this module takes; more than this and the test
# (and the suite's 15-minute budget) must be rethought, not silently stretched.
MAX_FOR_SECONDS = 90.0


# --- the live stack -------------------------------------------------------------------------
class LiveDaemon:
    """Simulator and daemon in a background thread with its own event loop."""

    def __init__(self, cache_dir: Path, env: dict[str, str]) -> None:
        self.cache_dir = cache_dir
        self.env = env
        self.port = 0
        self.app: App | None = None
        self.error: BaseException | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._thread_main, name="live-daemon",
                                        daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60 * T):
            raise AssertionError("the simulator and daemon did not start within 60 s")
        if self.error is not None:
            raise AssertionError("the live daemon failed to start") from self.error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60 * T)
        assert not self._thread.is_alive(), "the live daemon did not stop"
        if self.error is not None:
            raise AssertionError("the live daemon failed") from self.error

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start() or stop() in the test thread
            self.error = exc
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        faults = (Faults(silent_after_ack=True, venues=frozenset({SILENT_VENUE})),
                  Faults(malformed_ratio=0.02, venues=frozenset({MALFORMED_VENUE}), seed=7))
        scenario = build_scenario("feb-2026", venues=VENUES)
        async with Simulator(scenario, speed=SPEED, venues=VENUES, faults=faults,
                             start_wall=time.time(), loop_scenario=True,
                             wait_for_subscribers=10 * T) as sim:
            async with running_daemon(sim, self.cache_dir, self.env) as app:
                assert app.server is not None
                self.app, self.port = app, app.server.port
                self._ready.set()
                await self._stop.wait()


@dataclass
class Live:
    prometheus: PrometheusServer
    daemon: LiveDaemon

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.prometheus.alerts() if a["labels"]["alertname"] == name]


@pytest.fixture(scope="module")
def webhook_receiver() -> Iterator[Hook]:
    with Hook() as receiver:
        yield receiver


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory, shared_redis_server: RedisServer,
    webhook_receiver: Hook,
) -> Iterator[Live]:
    env = {
        f"LIQMON_VENUES__{SILENT_VENUE.upper().replace('-', '_')}__SILENCE_LIMIT_SECONDS":
            str(SILENCE_LIMIT_SECONDS),
        # The real store: the embedded memory store writes no batches, so the "Store write
        # latency p99" panel would be NaN (checked: it then fails here).
        "LIQMON_STORE__BACKEND": "redis",
        # One channel, so that the notifier panels have a `channel` series to show.
        f"LIQMON_NOTIFY__WEBHOOKS__{CHANNEL.upper()}__URL": webhook_receiver.url(),
        "LIQMON_STORE__URL": shared_redis_server.url,
        # The Redis server is shared by the session: keep to our own keys.
        "LIQMON_STORE__KEY_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
    }
    daemon = LiveDaemon(tmp_path_factory.mktemp("e2e-cache"), env)
    daemon.start()
    # Started after the daemon so its port is known (no free-port race); Prometheus 2.42
    # scrapes about 5 s after it is ready, well before the cascade turns critical.
    prometheus = PrometheusServer(tmp_path_factory.mktemp("prometheus-e2e"), [daemon.address])
    try:
        prometheus.start()
        yield Live(prometheus, daemon)
    finally:
        prometheus.stop()
        daemon.stop()


# --- the shipped rules ----------------------------------------------------------------------
def shipped_alert(name: str, severity: str) -> dict[str, Any]:
    groups = yaml.safe_load((RULES_DIR / "alerts.yml").read_text())["groups"]
    [rule] = [r for g in groups for r in g["rules"]
              if r.get("alert") == name and r["labels"]["severity"] == severity]
    return dict(rule)


def duration_seconds(text: str) -> float:
    """A Prometheus duration such as ``1m`` or ``1m30s``, in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+)(ms|[smhdwy])", text)
    assert parts and "".join(n + u for n, u in parts) == text, text
    return sum(int(n) * units[u] for n, u in parts)


def active_for(alert: dict[str, Any]) -> float:
    """Seconds since the alert became active, by Prometheus's own activeAt."""
    return time.time() - datetime.fromisoformat(alert["activeAt"].replace("Z", "+00:00")
                                                ).timestamp()


def test_duration_parser() -> None:
    assert duration_seconds("1m") == 60
    assert duration_seconds("1m30s") == 90
    with pytest.raises(AssertionError):
        duration_seconds("1 minute")


# --- alerts ---------------------------------------------------------------------------------
def test_cascade_alert_fires_from_the_detector(live: Live) -> None:
    rule = shipped_alert("LiqmonLiquidationCascade", "critical")
    # No `for`: the alert fires on the first evaluation that sees the detector's critical
    # state, which is why a bounded wait of a minute is enough here.
    assert duration_seconds(rule.get("for", "0s")) == 0

    def firing() -> list[dict[str, Any]]:
        # The night's cascade is global and 94% longs; coin and venue scopes may fire too.
        return [a for a in live.alerts("LiqmonLiquidationCascade")
                if a["state"] == "firing" and a["labels"]["severity"] == "critical"
                and a["labels"]["scope"] == "global"
                and a["labels"]["position_side"] == "long"]

    [alert] = live.prometheus.wait_until(firing, "LiqmonLiquidationCascade firing", 60)
    assert alert["labels"] == {
        "alertname": "LiqmonLiquidationCascade", "severity": "critical", "job": "liqmon",
        "scope": "global", "position_side": "long",
    }
    assert float(alert["value"]) >= 2
    annotations = alert["annotations"]
    assert annotations["summary"] == rule["annotations"]["summary"]
    assert annotations["description"].startswith(
        "Long positions are being liquidated in a cascade in scope global; detector "
        "severity "), annotations["description"]
    assert annotations["runbook_url"].endswith("#liqmonliquidationcascade")
    # The daemon counted the cascade it started, and Prometheus scraped that count.
    started = live.prometheus.query(
        'liqmon_cascades_total{job="liqmon", scope="global", position_side="long"}')
    assert started and float(started[0]["value"][1]) >= 1
    # Without `for` Prometheus never holds it pending: ALERTS has firing samples only.
    history = live.prometheus.query(
        'count_over_time(ALERTS{alertname="LiqmonLiquidationCascade", scope="global", '
        'severity="critical", alertstate="pending"}[10m])')
    assert history == []


def test_feed_silent_fires_for_the_venue_silent_after_its_ack(live: Live) -> None:
    rule = shipped_alert("LiqmonFeedSilent", "warning")
    # No `for`: each arm carries its own hold (30 s without data, 120 s frame age, two stale
    # reconnects), so the data arm fires within 60 s of the last frame.
    hold = duration_seconds(rule.get("for", "0s"))
    assert hold == 0, f"LiqmonFeedSilent `for: {rule['for']}` delays the 60 s budget"

    def silent_venue(state: str) -> list[dict[str, Any]]:
        return [a for a in live.alerts("LiqmonFeedSilent")
                if a["state"] == state and a["labels"]["venue"] == SILENT_VENUE]

    # Two stale reconnects take the daemon two silence limits.
    [alert] = live.prometheus.wait_until(
        lambda: silent_venue("firing"), "LiqmonFeedSilent firing", 30)
    assert active_for(alert) >= 0
    assert alert["labels"] == {
        "alertname": "LiqmonFeedSilent", "severity": "warning", "job": "liqmon",
        "instance": live.daemon.address, "venue": SILENT_VENUE,
    }
    # The stale-reconnect arm fired (its value is the count); the last-frame-age arm cannot
    # here, because the daemon's market clock runs ahead of Prometheus's.
    assert float(alert["value"]) >= 2
    description = alert["annotations"]["description"]
    assert description.startswith(
        f"{SILENT_VENUE} on {live.daemon.address} delivers no data."), description
    assert re.search(r"Reconnected for silence \d+ times in 10 minutes\.", description)
    # Without `for` Prometheus never holds it pending.
    pending = live.prometheus.query(
        f'count_over_time(ALERTS{{alertname="LiqmonFeedSilent", venue="{SILENT_VENUE}", '
        f'alertstate="pending"}}[10m])')
    assert pending == []
    # The venues that keep talking never look silent, whatever state.
    others = [a["labels"]["venue"] for a in live.alerts("LiqmonFeedSilent")
              if a["labels"]["venue"] != SILENT_VENUE]
    assert others == []


# --- dashboards -----------------------------------------------------------------------------
def variable_values(live: Live) -> dict[str, str]:
    """What Grafana would put in each variable, for this Prometheus (1 s scrapes)."""
    return {
        "job": "liqmon",
        # Grafana escapes regex metacharacters of a single value; a multi-value is (a|b).
        "instance": live.daemon.address.replace(".", "\\\\."),
        "venue": "(" + "|".join(VENUES) + ")",
        "coin": "(BTC|ETH)",
        "__interval": "15s",
        # max(__interval + scrape interval, 4 * scrape interval)
        "__rate_interval": "16s",
        "__range": "1h",
    }


def finite(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(r["value"][1])) for r in result)


@pytest.mark.parametrize(("name", "where", "expr"), QUERIES,
                         ids=[f"{n.removesuffix('.json')}:{w}" for n, w, _ in QUERIES])
def test_dashboard_query_returns_data_from_the_live_daemon(
    name: str, where: str, expr: str, live: Live
) -> None:
    # A query that does not parse raises ServerError with Prometheus's message.
    query = substitute(expr, variable_values(live))

    def data() -> list[dict[str, Any]] | None:
        result = live.prometheus.query(query)
        return result if finite(result) else None

    # The first queries wait for Prometheus's first scrapes (about 5 s after it is ready) and
    # for enough samples inside a rate window.
    result = live.prometheus.wait_until(data, f"data for {query}", 60)
    assert finite(result), (query, result)


def test_the_webhook_channel_delivered(live: Live, webhook_receiver: Hook) -> None:
    # The notifier panels above showed a working channel, not an idle one.
    delivered = live.prometheus.wait_until(
        lambda: live.prometheus.query(
            f'liqmon_notify_delivered_total{{job="liqmon", channel="{CHANNEL}"}} > 0'),
        "a delivery counted", 60)
    assert delivered and webhook_receiver.requests
