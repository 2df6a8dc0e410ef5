"""``liqmon backtest --html``: one self-contained file, opened in chromium with the network
cut off, whose figures are the JSON report's."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.async_api import Route, async_playwright

from monitor.backtest import backtest_recording
from monitor.config import Config
from monitor.simulator.scenarios import build_scenario
from monitor.web.report import render_html
from tests.support.timing import T
from tests.test_replay import simulated_frames, write_recording
from tests.web.browser import browser, step

ROOT = Path(__file__).resolve().parents[2]

FIGURES_JS = """() => ({
  figures: Object.fromEntries([...document.querySelectorAll('.figures [data-key]')].map(
    b => [b.dataset.key, b.dataset.value])),
  cascades: [...document.querySelectorAll('tr.cascade')].map(tr => ({id: tr.dataset.id,
    ...Object.fromEntries([...tr.querySelectorAll('[data-key]')].map(
      td => [td.dataset.key, td.dataset.value]))})),
  sums: [Number(document.getElementById('minute-sums').dataset.long),
         Number(document.getElementById('minute-sums').dataset.short)],
  gaps: [...document.querySelectorAll('tr.gap')].map(tr => [tr.cells[0].textContent,
    Number(tr.cells[3].dataset.value)]),
  charts: document.querySelectorAll('svg.chart').length,
  bars: document.querySelectorAll('#volumes rect').length,
  scripts: document.querySelectorAll('script').length})"""


async def open_offline(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Open the file in chromium, every request but the file itself refused; return what
    the page shows and the requests it tried."""
    tried: list[str] = []

    async def refuse(route: Route) -> None:
        if route.request.url == path.as_uri():
            await route.continue_()
            return
        tried.append(route.request.url)
        await route.abort()

    async with async_playwright() as pw, browser(pw) as context:
        await context.route("**/*", refuse)
        page = await context.new_page()
        async with step([page], "open-report"):
            await page.goto(path.as_uri())
            shown: dict[str, Any] = await page.evaluate(FIGURES_JS)
    return shown, tried


def check_figures(shown: dict[str, Any], doc: dict[str, Any]) -> None:
    figures = shown["figures"]
    assert int(figures["liquidations"]) == doc["liquidations"]
    assert float(figures["total_usd"]) == doc["total_usd"]
    assert int(figures["cascades"]) == len(doc["cascades"])
    for key in ("lead_seconds", "first_alert_share"):
        value = doc[key]
        assert figures[key] == ("None" if value is None else str(value)), key
    assert int(figures["feed_gaps"]) == len(doc["feed_gaps"])
    assert [c["id"] for c in shown["cascades"]] == [c["id"] for c in doc["cascades"]]
    for row, cascade in zip(shown["cascades"], doc["cascades"], strict=True):
        assert int(row["start_ms"]) == cascade["start_ms"]
        assert row["end_ms"] == str(cascade["end_ms"])
        assert row["max_severity"] == cascade["max_severity"]
        assert float(row["usd"]) == cascade["usd"]
    longs = sum(m[1] for m in doc["minutes"])
    shorts = sum(m[2] for m in doc["minutes"])
    assert shown["sums"] == [pytest.approx(longs, abs=0.01), pytest.approx(shorts, abs=0.01)]
    assert longs + shorts == pytest.approx(doc["total_usd"], abs=0.5)
    assert [[g["venue"], g["seconds"]] for g in doc["feed_gaps"]] == shown["gaps"]


async def test_the_feb_2026_report_opens_offline_with_the_json_report_s_figures(
        tmp_path: Path) -> None:
    html, json_file = tmp_path / "feb.html", tmp_path / "feb.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "monitor", "backtest", "--scenario", "feb-2026",
                         "--json", "--html", str(html)], cwd=ROOT, env=env,
        capture_output=True, timeout=120 * T, check=True)
    json_file.write_bytes(done.stdout)
    doc = orjson.loads(json_file.read_bytes())
    assert doc["cascades"] and doc["lead_seconds"] is not None  # the night was caught
    shown, tried = await open_offline(html)
    assert tried == []  # one file: nothing else was even asked for
    assert shown["scripts"] == 0
    assert shown["charts"] >= 3  # volumes, at least one price panel, the cascade lanes
    assert shown["bars"] >= len(doc["minutes"])
    check_figures(shown, doc)


async def test_a_recording_s_feed_gap_is_reported_in_both(tmp_path: Path) -> None:
    scenario = build_scenario("feb-2026", venues=["bybit"], duration_seconds=3600)
    frames = list(simulated_frames(scenario.iter_events()))
    start = frames[0].received_at
    # Two minutes without a frame from bybit (its silence limit is 60 s).
    frames = [f for f in frames if not start + 1200 <= f.received_at < start + 1320]
    recording = tmp_path / "gap.jsonl"
    write_recording(recording, iter(frames))
    report = await backtest_recording(recording, Config(), simulated=True)
    doc = report.to_json()
    [gap] = doc["feed_gaps"]
    assert gap["venue"] == "bybit" and 120 <= gap["seconds"] < 122
    html = tmp_path / "gap.html"
    html.write_text(render_html(doc, report.series, report.transitions()), encoding="utf-8")
    shown, tried = await open_offline(html)
    assert tried == []
    check_figures(shown, doc)


def test_venue_strings_are_escaped_in_the_report() -> None:
    doc: dict[str, Any] = {
        "source": "<b>x</b>", "cascades": [], "ground_truth": None, "lead_seconds": None,
        "first_alert_share": None, "total_usd": 1.0, "liquidations": 1, "start": None,
        "end": None, "minutes": [[0, 1.0, 0.0]], "feed_gaps": [{
            "venue": "<i>v</i>", "start": "s", "end": "e", "seconds": 61.0}],
        "whales": [{"id": "w", "at": "2026-02-01T00:00:00.000Z", "venue": "okx",
                    "instrument": "<script>alert(1)</script>", "coin": "<img src=x>",
                    "position_side": "long", "usd": 1e7, "price": 1.0, "severity": "critical",
                    "reason": "r"}]}
    page = render_html(doc, None)
    assert "<script>" not in page and "<img" not in page and "<i>v" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
