"""The live page in a real headless chromium, against a daemon fed by the simulator.

One run (module fixture): the feb-2026 night on four venues at high speed, plus a fifth
venue whose simulator feed answers the subscription and then stays silent; the daemon
in-process with a real redis-server as its store. Browser A opens the page before the
night starts, browser B in the middle of the first cascade. What they showed is recorded
and checked below against the simulator's own events, against `liqmon stats --json` run as
a command on the same Redis, against the store, and against each other.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, async_playwright

from monitor.alerts import CascadeAlert
from monitor.app import App
from monitor.events import Completeness, Liquidation, PositionSide
from monitor.simulator import Faults, Simulator, build_scenario
from monitor.simulator.scenarios.model import Scenario
from monitor.store.config import StoreConfig
from monitor.store.factory import open_store
from tests.fixtures.redis import RedisServer
from tests.support.daemon import counted, running_daemon, sent, wait_until
from tests.support.timing import T
from tests.web.browser import browser, screenshot, step

ROOT = Path(__file__).resolve().parents[2]
VENUES = ("hyperliquid", "bybit", "okx", "binance-usdm")
SILENT = "deribit"
SPEED = 600.0 / T
EVIL_INSTRUMENT = "<script>window.__pwned = 1</script>"
EVIL_COIN = "<img src=x onerror=window.__pwned=2>"

TAPE_JS = """() => [...document.querySelectorAll('#tape tbody tr')].map(tr => ({
  venue: tr.dataset.venue, side: tr.dataset.side, usd: Number(tr.dataset.usd),
  instrument: tr.cells[2].textContent, coin: tr.cells[3].textContent,
  side_text: tr.cells[4].textContent, usd_text: tr.cells[5].textContent,
  color: getComputedStyle(tr.cells[4]).color}))"""
TOTALS_JS = """() => Object.fromEntries([...document.querySelectorAll('#totals tbody tr')].map(
  tr => [tr.dataset.venue, Object.fromEntries([...tr.querySelectorAll('td[data-side]')].map(
    td => [td.dataset.side, Number(td.dataset.usd)]))]))"""
TOTALS_AT_ONE_SEQ_JS = """() => { const out = {};
  for (const w of ['1h', '4h', '24h']) {
    document.querySelector(`#windows button[data-window="${w}"]`).click();
    out[w] = (""" + TOTALS_JS + """)();
  }
  return [document.body.dataset.seq, out]; }"""
SUM_JS = """() => { const s = document.getElementById('chart-sum');
  return [Number(s.dataset.long), Number(s.dataset.short), Number(s.dataset.minutes)]; }"""
CASCADES_JS = """() => [...document.querySelectorAll('#cascades .cascade')].map(li => ({
  id: li.dataset.id, status: li.dataset.status, severity: li.dataset.severity,
  scope: li.dataset.scope, reason: li.querySelector('.reason').textContent,
  steps: li.querySelectorAll('.timeline li').length}))"""
FEEDS_JS = """() => Object.fromEntries([...document.querySelectorAll('#feeds tbody tr')].map(
  tr => [tr.dataset.venue, [tr.dataset.status, tr.cells[1].textContent]]))"""
VIEW_JS = """() => [document.body.dataset.seq, document.querySelector('main').innerText]"""


@dataclass
class Run:
    scenario: Scenario
    start_wall: float
    sent: dict[tuple[str, str], tuple[int, float]] = field(default_factory=dict)
    tape: list[dict[str, Any]] = field(default_factory=list)
    seen_live: list[dict[str, Any]] = field(default_factory=list)  # cascades while playing
    seen_by_b_on_open: list[dict[str, Any]] = field(default_factory=list)
    cascades_end: list[dict[str, Any]] = field(default_factory=list)
    app_cascades: list[tuple[str, str]] = field(default_factory=list)
    totals: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    store_totals: dict[str, dict[str, float]] = field(default_factory=dict)
    sums: dict[str, list[float]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    views: list[tuple[str, str]] = field(default_factory=list)
    feeds: dict[str, list[str]] = field(default_factory=dict)
    evil: dict[str, Any] = field(default_factory=dict)
    clients: int = 0
    shots: list[Path] = field(default_factory=list)


def stats_json(redis: RedisServer, *args: str) -> dict[str, Any]:
    env = {**os.environ, "LIQMON_STORE__BACKEND": "redis", "LIQMON_STORE__URL": redis.url,
           "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "monitor", "stats", "--json", *args],
                          cwd=ROOT, env=env, capture_output=True, timeout=60 * T, check=True)
    import orjson

    result: dict[str, Any] = orjson.loads(done.stdout)
    return result


async def chart_sum(page: Page, scope: str = "", coin: str = "") -> list[float]:
    await page.click(f'#scopes button[data-scope="{scope}"]')
    if coin:
        await page.click(f'#coins button[data-coin="{coin}"]')
        await page.wait_for_function(
            "c => document.getElementById('chart-title').textContent.endsWith(c)", arg=coin)
    await page.wait_for_timeout(100)  # one animation frame draws the selection
    result: list[float] = await page.evaluate(SUM_JS)
    if coin:
        await page.click(f'#coins button[data-coin="{coin}"]')  # off again
    return result


async def _run(tmp: Path, redis: RedisServer) -> Run:
    scenario = build_scenario("feb-2026", seed=3, venues=(*VENUES, SILENT))
    # Stamped in the recent past of the real clock, so that `liqmon stats` (wall clock) and
    # the daemon (market clock) both have the whole night inside their 24 h windows.
    start_wall = time.time() - scenario.duration_seconds - 600
    run = Run(scenario, start_wall)
    env = {"LIQMON_STORE__BACKEND": "redis", "LIQMON_STORE__URL": redis.url,
           "LIQMON_DETECTOR__EVAL_INTERVAL_SECONDS": "0.05",
           f"LIQMON_VENUES__{SILENT.upper()}__SILENCE_LIMIT_SECONDS": "1"}
    faults = Faults(silent_after_ack=True, venues=frozenset({SILENT}))
    # The night starts once browser A shows the page live: on a loaded machine chromium can
    # take longer to open than the first cascade lasts at 600x.
    page_a_live = asyncio.Event()
    sim = Simulator(scenario, speed=SPEED, venues=(*VENUES, SILENT), start_wall=start_wall,
                    faults=faults, wait_for_subscribers=10 * T, start_when=page_a_live)
    async with sim, running_daemon(sim, tmp / "cache", env) as app, async_playwright() as pw:
        assert app.server is not None and app.live is not None
        url = f"http://127.0.0.1:{app.server.port}/"
        async with browser(pw) as a_browser, browser(pw) as b_browser:
            a = await a_browser.new_page()
            pages = [a]
            async with step(pages, "open-a"):
                await a.goto(url)
                await a.wait_for_selector('#conn[data-state="live"]', timeout=10_000 * T)
                page_a_live.set()
            async with step(pages, "cascade-live"):
                # The list as it was when a cascade was live, read in the same call: at
                # 600x a cascade can resolve between two calls on a loaded machine.
                live = await a.wait_for_function(
                    "() => { const l = (" + CASCADES_JS + ")();"
                    " return l.some(c => c.status !== 'resolved') ? l : null; }",
                    timeout=60_000 * T)
                run.seen_live = await live.json_value()
            b = await b_browser.new_page()
            pages.append(b)
            async with step(pages, "open-b-mid-run"):
                await b.goto(url)
                await b.wait_for_function(
                    "() => document.querySelectorAll('#cascades .cascade').length > 0",
                    timeout=10_000 * T)
                run.seen_by_b_on_open = await b.evaluate(CASCADES_JS)
            async with step(pages, "everything-counted"):
                await sim.wait_finished()
                await wait_until(lambda: counted(app) == sent(sim), 20 * T)
                run.sent = sent(sim)
                total = round(sum(usd for _c, usd in run.sent.values()), 2)
                await a.wait_for_function(
                    "t => Math.abs(Number(document.querySelector("
                    "'#totals tr.all td.num[data-usd]:nth-child(4)').dataset.usd) - t) < 0.02",
                    arg=total, timeout=20_000 * T)
            async with step(pages, "same-data-in-two-browsers"):
                for _ in range(50):
                    view_a, view_b = await a.evaluate(VIEW_JS), await b.evaluate(VIEW_JS)
                    if view_a[0] == view_b[0]:
                        break
                    await asyncio.sleep(0.05)
                run.views = [tuple(view_a), tuple(view_b)]
                run.clients = app.live.hub.clients
            async with step(pages, "figures"):
                run.tape = await a.evaluate(TAPE_JS)
                # Every window's table and the store's figures at one update: the market
                # clock runs at 600x, so the 1h window moves between two updates.
                for _ in range(20):
                    seq, run.totals = await a.evaluate(TOTALS_AT_ONE_SEQ_JS)
                    snapshot = await a.evaluate(
                        "() => fetch('/api/snapshot').then(r => r.json())")
                    if str(snapshot["seq"]) == seq:
                        break
                else:
                    raise AssertionError("no snapshot at the page's update")
                store = await open_store(StoreConfig(backend="redis", url=redis.url))
                try:
                    for window, minutes in (("1h", 60), ("4h", 240)):
                        rows = await store.totals(minutes, by=("venue", "position_side"),
                                                  now_ms=snapshot["now_ms"])
                        run.store_totals[window] = {f"{r.venue}/{r.position_side}": r.usd
                                                    for r in rows}
                finally:
                    await store.aclose()
                run.sums["all"] = await chart_sum(a)
                for venue in VENUES:
                    run.sums[venue] = await chart_sum(a, venue)
                run.sums["BTC"] = await chart_sum(a, "", "BTC")
                run.stats["venue"] = await asyncio.to_thread(
                    stats_json, redis, "--window", "24h", "--by", "venue,position_side")
                run.stats["coin"] = await asyncio.to_thread(
                    stats_json, redis, "--window", "24h", "--by", "coin,position_side")
                run.feeds = await a.evaluate(FEEDS_JS)
            async with step(pages, "cascades-resolve"):
                await wait_until(lambda: all_resolved(app), 60 * T)
                await a.wait_for_function(
                    "() => [...document.querySelectorAll('#cascades .cascade')].every("
                    "li => li.dataset.status === 'resolved')", timeout=10_000 * T)
                run.cascades_end = await a.evaluate(CASCADES_JS)
                run.app_cascades = [(x.id, x.status.value) for x in app.alerts
                                    if isinstance(x, CascadeAlert)]
            async with step(pages, "venue-strings-are-text"):
                assert app.ingest is not None
                at_ms = int(app.clock.wall() * 1000)
                app.ingest.put("binance-usdm", [Liquidation(
                    "binance-usdm", EVIL_INSTRUMENT, EVIL_COIN, PositionSide.SHORT, 1.0, 1.0,
                    123456.0, at_ms, at_ms / 1000, Completeness.FULL, "evil-1")])
                await a.wait_for_function(
                    "i => [...document.querySelectorAll('#tape tbody td.instrument')].some("
                    "td => td.textContent === i)", arg=EVIL_INSTRUMENT, timeout=10_000 * T)
                run.evil = await a.evaluate("""() => ({
                    pwned: window.__pwned === undefined ? null : window.__pwned,
                    instrument: document.querySelector('#tape tbody td.instrument').textContent,
                    coin: document.querySelector('#tape tbody td.coin').textContent,
                    scripts: document.querySelectorAll('main script, main img').length})""")
                run.evil["csp"] = (await a.request.get(url)).headers.get(
                    "content-security-policy", "")
            run.shots = await screenshot(pages, "end-of-run")
    return run


def all_resolved(app: App) -> bool:
    fired = {a.id for a in app.alerts if isinstance(a, CascadeAlert)}
    done = {a.id for a in app.alerts
            if isinstance(a, CascadeAlert) and a.status.value == "resolved"}
    return bool(fired) and fired == done


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    redis = RedisServer(tmp_path_factory.mktemp("web-redis"))
    redis.start()
    try:
        yield asyncio.run(_run(tmp_path_factory.mktemp("web"), redis))
    finally:
        redis.kill()


def test_the_tape_shows_what_the_simulator_sent_with_side_and_usd(run: Run) -> None:
    assert len(run.tape) == 1000, run.shots  # a full tape: the last 1,000 liquidations
    sent_events: dict[tuple[str, str, str], list[float]] = {}
    for e in run.scenario.iter_events():
        if e.kind == "liquidation" and e.venue in VENUES:
            assert e.position_side is not None
            key = (e.venue, e.instrument, e.position_side.value)
            sent_events.setdefault(key, []).append(e.notional_usd)
    for row in run.tape:
        candidates = sent_events.get((row["venue"], row["instrument"], row["side"]))
        assert candidates, (row, run.shots)
        assert min(abs(usd - row["usd"]) for usd in candidates) < 0.01, (row, run.shots)
        assert row["side_text"] == row["side"]
        assert row["usd_text"].startswith("$")
    colours = {row["side"]: row["color"] for row in run.tape}
    assert set(colours) == {"long", "short"} and colours["long"] != colours["short"]


def test_totals_match_liqmon_stats_and_the_store(run: Run) -> None:
    stats = {(r["venue"], r["position_side"]): r["usd"] for r in run.stats["venue"]["rows"]}
    assert stats == {k: pytest.approx(v[1], abs=0.01) for k, v in run.sent.items()}
    page = run.totals["24h"]
    for (venue, side), usd in stats.items():
        assert page[venue][side] == pytest.approx(usd, abs=0.01), (venue, side, run.shots)
    assert page["all venues"]["long"] == pytest.approx(
        sum(u for (_v, s), u in stats.items() if s == "long"), abs=0.05)
    # 1h and 4h: the page's figures are the store's windows at the page's own minute.
    # At 600x an hour of market time is 6 s: on a loaded machine the night can have left the
    # 1h window by the time the figures are read, so only 4h must hold something.
    assert run.store_totals["4h"], run.store_totals
    for window in ("1h", "4h"):
        for key, usd in run.store_totals[window].items():
            venue, side = key.split("/")
            assert run.totals[window][venue][side] == pytest.approx(usd, abs=0.01), key
        shown = {f"{v}/{s}" for v, sides in run.totals[window].items() if v != "all venues"
                 for s, usd in sides.items() if usd}
        assert shown == set(run.store_totals[window]), window


def test_minute_bars_add_up_to_liqmon_stats(run: Run) -> None:
    stats = {(r["venue"], r["position_side"]): r["usd"] for r in run.stats["venue"]["rows"]}
    for venue in VENUES:
        longs, shorts, minutes = run.sums[venue]
        assert minutes == 1440
        assert longs == pytest.approx(stats[(venue, "long")], abs=0.5), (venue, run.shots)
        assert shorts == pytest.approx(stats[(venue, "short")], abs=0.5), (venue, run.shots)
    longs, shorts, _ = run.sums["all"]
    assert longs == pytest.approx(sum(u for (_v, s), u in stats.items() if s == "long"), abs=1)
    coins = {(r["coin"], r["position_side"]): r["usd"] for r in run.stats["coin"]["rows"]}
    btc_long, btc_short, _ = run.sums["BTC"]
    assert btc_long == pytest.approx(coins[("BTC", "long")], abs=0.5), run.shots
    assert btc_short == pytest.approx(coins.get(("BTC", "short"), 0.0), abs=0.5), run.shots


def test_a_cascade_appears_with_its_explanation_while_the_night_plays(run: Run) -> None:
    assert run.seen_live, run.shots
    first = next(c for c in run.seen_live if c["status"] != "resolved")
    assert first["status"] in ("firing", "escalated")
    assert first["severity"] in ("warning", "critical", "extreme")
    # The one-line explanation: the side's USD in the window and why it is unusual.
    assert "longs" in first["reason"] and " in 5m " in first["reason"], first["reason"]
    assert "baseline" in first["reason"], first["reason"]
    # A page opened mid-cascade shows what came before (backfill), not an empty list.
    assert {c["id"] for c in run.seen_live} <= {c["id"] for c in run.seen_by_b_on_open}


def test_every_cascade_resolves_on_the_page_as_in_the_daemon(run: Run) -> None:
    ids = {cid for cid, _s in run.app_cascades}
    assert {c["id"] for c in run.cascades_end} == ids, run.shots
    for c in run.cascades_end:
        assert c["status"] == "resolved"
        assert c["steps"] == sum(1 for cid, _s in run.app_cascades if cid == c["id"])
        assert c["reason"].strip()


def test_the_silent_feed_shows_as_down_and_the_others_up(run: Run) -> None:
    status, text = run.feeds[SILENT]
    assert status == "down" and text.startswith("down: "), (run.feeds, run.shots)
    for venue in VENUES:
        assert run.feeds[venue][0] == "up", (venue, run.feeds, run.shots)


def test_venue_strings_are_shown_as_text_under_a_strict_csp(run: Run) -> None:
    assert run.evil["pwned"] is None
    assert run.evil["instrument"] == EVIL_INSTRUMENT
    assert run.evil["coin"] == EVIL_COIN
    assert run.evil["scripts"] == 0
    csp = run.evil["csp"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp


def test_two_browsers_open_at_once_get_the_same_data(run: Run) -> None:
    (seq_a, text_a), (seq_b, text_b) = run.views
    assert seq_a == seq_b and int(seq_a) > 0
    assert text_a == text_b, run.shots
    assert run.clients == 2  # one event stream each, fed from one shared update
