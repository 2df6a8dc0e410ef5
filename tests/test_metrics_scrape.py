"""The daemon's /metrics, scraped over HTTP while it ingests the simulator's feb-2026 night.

One run (module fixture): four venues of a one-hour feb-2026 at high speed, the daemon
in-process with metrics on a free port. Once every liquidation the simulator sent has been
counted, ``/metrics`` is fetched with httpx, parsed with prometheus-client's own text parser,
and its values are compared with the simulator's ledger (what it really put on the wire).
The same scrape goes through ``promtool check metrics``.
"""

from __future__ import annotations

import asyncio
import math
import platform
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from monitor import __version__
from monitor.config import MetricsConfig
from monitor.simulator.scenarios import build_scenario
from monitor.simulator.server import Simulator
from tests.fixtures.prometheus import require_binary
from tests.support.daemon import counted, running_daemon, sent, wait_until
from tests.support.timing import T

VENUES = ("binance-usdm", "bybit", "okx", "hyperliquid")
SIDES = ("long", "short")
# One hour of the crash (its timeline scaled, totals kept) played in about 9 s.
SCENARIO_SECONDS = 3600.0
SPEED = 400.0 / T
# Labels liqmon may export; instrument, order id and price never.
ALLOWED_LABELS = {"venue", "coin", "position_side", "reason", "scope", "severity", "channel",
                  "version", "python", "le", "completeness"}  # completeness: 5 values


@dataclass
class Scrape:
    text: str
    content_type: str
    sent: dict[tuple[str, str], tuple[int, float]]
    # The market clock: each venue's last liquidation on it, and the daemon's at the scrape.
    last_liquidation_at: dict[str, float]
    clock_at_scrape: float
    samples: list[Sample] = field(default_factory=list)

    def values(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.name == name]

    def by_venue_side(self, name: str) -> dict[tuple[str, str], float]:
        """``name`` summed over coins, per (venue, position_side)."""
        totals: dict[tuple[str, str], float] = defaultdict(float)
        for s in self.values(name):
            totals[(s.labels["venue"], s.labels["position_side"])] += s.value
        return dict(totals)

    def one(self, name: str, **labels: str) -> float:
        [match] = [s for s in self.values(name)
                   if all(s.labels.get(k) == v for k, v in labels.items())]
        return match.value


async def _run(cache_dir: Path) -> Scrape:
    scenario = build_scenario("feb-2026", seed=5, venues=VENUES,
                              duration_seconds=SCENARIO_SECONDS)
    start_wall = time.time()
    last_liquidation_at = {
        e.venue: start_wall + e.at_seconds for e in scenario.iter_events()
        if e.kind == "liquidation"}
    async with Simulator(scenario, speed=SPEED, venues=VENUES, start_wall=start_wall,
                         wait_for_subscribers=10 * T) as sim:
        async with running_daemon(sim, cache_dir) as app:
            await sim.wait_finished()
            await wait_until(lambda: counted(app) == sent(sim), 10 * T)
            assert app.server is not None
            async with httpx.AsyncClient(timeout=10 * T) as client:
                response = await client.get(f"http://127.0.0.1:{app.server.port}/metrics")
            clock_at_scrape = app.clock.wall()
            response.raise_for_status()
            return Scrape(response.text, response.headers["content-type"], sent(sim),
                          last_liquidation_at, clock_at_scrape)


@pytest.fixture(scope="module")
def scrape(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scrape]:
    # asyncio.run in a sync module fixture: one daemon run shared by every test below.
    result = asyncio.run(_run(tmp_path_factory.mktemp("scrape-cache")))
    result.samples = [s for family in text_string_to_metric_families(result.text)
                      for s in family.samples]
    yield result


def test_the_run_liquidated_on_every_venue_and_side(scrape: Scrape) -> None:
    # Otherwise the comparisons below would prove little.
    assert set(scrape.sent) == {(v, s) for v in VENUES for s in SIDES}
    assert sum(usd for _, usd in scrape.sent.values()) > 100e6


def test_liquidation_counts_match_what_the_simulator_sent(scrape: Scrape) -> None:
    scraped = scrape.by_venue_side("liqmon_liquidations_total")
    for key, (count, _usd) in scrape.sent.items():
        assert scraped.get(key) == count, key
    # Nothing counted that was not sent (every known label set is exported, at zero).
    assert {k for k, v in scraped.items() if v} == set(scrape.sent)


def test_liquidated_usd_matches_what_the_simulator_sent_to_the_cent(scrape: Scrape) -> None:
    scraped = scrape.by_venue_side("liqmon_liquidated_usd_total")
    for key, (_count, usd) in scrape.sent.items():
        assert scraped.get(key) == pytest.approx(usd, abs=0.005), key


def test_size_histogram_agrees_with_the_counters(scrape: Scrape) -> None:
    for (venue, side), (count, usd) in scrape.sent.items():
        labels = {"venue": venue, "position_side": side}
        assert scrape.one("liqmon_liquidation_size_usd_count", **labels) == count
        assert scrape.one("liqmon_liquidation_size_usd_sum", **labels) == pytest.approx(
            usd, abs=0.005)
        assert scrape.one("liqmon_liquidation_size_usd_bucket", le="+Inf", **labels) == count
        buckets = sorted(
            (float(s.labels["le"]), s.value) for s in scrape.values(
                "liqmon_liquidation_size_usd_bucket")
            if s.labels["venue"] == venue and s.labels["position_side"] == side)
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative


def test_feed_health_per_venue(scrape: Scrape) -> None:
    for venue in VENUES:
        assert scrape.one("liqmon_feed_connected", venue=venue) == 1
        assert scrape.one("liqmon_feed_subscribed_connections", venue=venue) >= 1
        # Every liquidation arrived in some frame (some venues batch several per frame).
        assert scrape.one("liqmon_frames_total", venue=venue) > 0
        # The daemon runs on the simulator's market clock (about an hour ahead of the real
        # one here): the frame with the venue's last liquidation came no earlier than that
        # liquidation on it, and no frame later than the scrape. Not "within the replayed
        # hour": once played, market time runs on at SPEED (MarketClock), so a frame read
        # 0.2 s late under load is stamped 80 market seconds past the hour.
        last = scrape.one("liqmon_feed_last_frame_timestamp_seconds", venue=venue)
        assert scrape.last_liquidation_at[venue] <= last <= scrape.clock_at_scrape
        assert scrape.one("liqmon_ingest_dropped_events_total", venue=venue) == 0
        lag_count = scrape.one("liqmon_event_lag_seconds_count", venue=venue)
        assert lag_count == sum(c for (v, _), (c, _) in scrape.sent.items() if v == venue)


def test_build_info(scrape: Scrape) -> None:
    [info] = scrape.values("liqmon_build_info")
    assert info.value == 1
    assert info.labels == {"version": __version__, "python": platform.python_version()}


def test_labels_are_bounded(scrape: Scrape) -> None:
    coins = set(MetricsConfig().coins) | {"other"}
    for s in scrape.samples:
        if not s.name.startswith("liqmon_"):
            continue
        assert set(s.labels) <= ALLOWED_LABELS, s
        assert s.labels.get("coin", "BTC") in coins, s
        assert s.labels.get("venue", VENUES[0]) in VENUES, s
        assert not s.name.endswith("_created"), s
        assert math.isfinite(s.value), s


def test_promtool_check_metrics_accepts_the_scrape(scrape: Scrape) -> None:
    promtool = require_binary("promtool", "prometheus")
    # prometheus-client 0.26 labels its text format version=1.0.0 (UTF-8 names allowed); the
    # syntax is the classic one, which Prometheus 2.x parses for any text/plain version.
    assert scrape.content_type.startswith("text/plain;"), scrape.content_type
    result = subprocess.run([promtool, "check", "metrics"], input=scrape.text.encode(),
                            capture_output=True, timeout=30 * T, check=False)
    output = (result.stdout + result.stderr).decode()
    # promtool exits 1 on a parse error and 3 on lint findings; the scrape must have neither.
    assert result.returncode == 0, output
    assert output.strip() == "", output


def test_the_promtool_check_can_fail() -> None:
    promtool = require_binary("promtool", "prometheus")
    bad = b"# TYPE liqmon_things counter\nliqmon_things 1\n"
    result = subprocess.run([promtool, "check", "metrics"], input=bad, capture_output=True,
                            timeout=30 * T, check=False)
    assert result.returncode != 0
    assert b"_total" in result.stdout + result.stderr
