"""The live view's parts without a browser: bars, feed health, the SSE hub, the shared
snapshot over the memory store, and the HTTP routes on a real socket."""

from __future__ import annotations

import asyncio
import socket

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from monitor.alerts import AlertState, CascadeAlert, Severity, Share
from monitor.clock import VirtualClock
from monitor.events import Completeness, Liquidation, PositionSide
from monitor.metrics import Metrics
from monitor.service.endpoint import MetricsServer
from monitor.store.memory import MemoryStore
from monitor.web.bars import MinuteBars
from monitor.web.feeds import DataWatch, FeedHealth, FeedSample, feed_samples
from monitor.web.http import CSP, WebRoutes
from monitor.web.hub import Hub, sse_message
from monitor.web.live import LiveView
from tests.support.timing import T

NOW = 1_769_904_000.0  # a whole minute
MINUTE = int(NOW // 60)


def liq(n: int, at: float, usd: float, side: PositionSide = PositionSide.LONG,
        venue: str = "bybit", coin: str = "BTC") -> Liquidation:
    return Liquidation(venue, f"{coin}USDT", coin, side, 100.0, usd / 100.0, usd,
                       int(at * 1000), at, Completeness.FULL, f"e{n}")


def cascade(status: AlertState, at: float) -> CascadeAlert:
    return CascadeAlert(
        id="cas-1", status=status, scope="global", position_side=PositionSide.LONG,
        severity=Severity.CRITICAL, started_at=NOW - 120, at=at, window_seconds=300,
        usd=5e6, usd_per_minute=1e6, acceleration=2.0, long_share=0.97,
        baseline_multiple=9.0, count=300, symbol_seconds=50,
        venues=(Share("bybit", 5e6, 1.0),), coins=(Share("BTC", 5e6, 1.0),), price_move=-0.01,
        peak_usd=5e6, peak_at=at, total_usd=7e6, reason=f"global longs {status.value}")


# -- bars --

def test_minute_bars_slice_by_venue_and_coin_and_forget_the_old() -> None:
    bars = MinuteBars(span=10)
    bars.replace(100, {("bybit", "BTC", "long"): 5.0, ("bybit", "ETH", "short"): 2.0,
                       ("okx", "BTC", "long"): 1.0})
    bars.replace(103, {("okx", "ETH", "long"): 4.0})
    assert bars.by_venue(100, 103) == {"bybit": [[5.0, 0, 0, 0], [2.0, 0, 0, 0]],
                                       "okx": [[1.0, 0, 0, 4.0], [0, 0, 0, 0]]}
    assert bars.by_venue(100, 103, "ETH") == {"bybit": [[0, 0, 0, 0], [2.0, 0, 0, 0]],
                                              "okx": [[0, 0, 0, 4.0], [0, 0, 0, 0]]}
    assert bars.coins() == ["BTC", "ETH"]  # $6 each: the tie goes by name
    assert bars.total(100, 103) == {("bybit", "long"): 5.0, ("bybit", "short"): 2.0,
                                    ("okx", "long"): 5.0}
    bars.replace(100, {})  # reread: nothing left in that minute
    bars.trim(112)  # span 10: minutes 103..112 stay
    assert bars.cells(0, 200) == [(103, "okx", "ETH", "long", 4.0)]
    assert bars.coins() == ["ETH"]  # what left the span left the coin list too
    bars.trim(113)
    assert bars.cells(0, 200) == [] and bars.end == 103 and bars.coins() == []


# -- feed health --

def test_feed_samples_sum_invalid_and_reconnects_but_not_rotations() -> None:
    samples = feed_samples([
        ("liqmon_feed_connected", {"venue": "okx"}, 1.0),
        ("liqmon_frames_total", {"venue": "okx"}, 7.0),
        ("liqmon_frames_invalid_total", {"venue": "okx", "reason": "json"}, 2.0),
        ("liqmon_frames_invalid_total", {"venue": "okx", "reason": "range"}, 1.0),
        ("liqmon_feed_reconnects_total", {"venue": "okx", "reason": "stale"}, 2.0),
        ("liqmon_feed_reconnects_total", {"venue": "okx", "reason": "rotation"}, 5.0),
    ])
    assert samples == {"okx": FeedSample(True, 0, 7.0, 3.0, 2.0)}


def test_a_venue_is_down_without_data_and_its_gap_is_kept() -> None:
    health = FeedHealth()
    limits = {"okx": 10.0}

    def status(frames: float, data_at: float | None, mono: float, connected: bool = True
               ) -> dict[str, object]:
        data = {} if data_at is None else {"okx": data_at}
        [row] = health.update({"okx": FeedSample(connected, 1, frames)}, data, limits, mono,
                              NOW + mono)
        return row

    assert status(0, None, 0.0)["detail"] == "connected, no frames"
    assert status(1, None, 1.0)["status"] == "down"  # frames (acks, pings) but no data
    assert status(2, 1.5, 2.0)["status"] == "up"
    # Pings keep frames coming; data stopped at 1.5: down once past the silence limit.
    row = status(20, 1.5, 12.0)
    assert (row["status"], row["detail"]) == ("down", "connected, no data for 10s")
    assert status(21, 13.0, 13.0, connected=False)["detail"] == "not connected"
    row = status(22, 14.0, 14.0)
    assert row["status"] == "up"
    assert row["gaps"] == [[round((NOW + 12.0) * 1000), round((NOW + 14.0) * 1000)]]


def test_data_watch_notes_the_venue_and_hands_every_event_on() -> None:
    got: list[tuple[str, int]] = []

    class Sink:
        def put(self, venue: str, events: list[object]) -> None:
            got.append((venue, len(events)))

    clock = VirtualClock(5.0)
    watch = DataWatch(Sink(), clock)  # type: ignore[arg-type]
    watch.put("okx", [liq(1, NOW, 1.0)])
    assert got == [("okx", 1)] and watch.data_at == {"okx": 5.0}


# -- the hub --

def test_a_client_that_stops_reading_is_dropped_not_waited_for() -> None:
    hub = Hub(queue_size=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    assert slow is not None and fast is not None
    for n in range(3):
        hub.publish(sse_message("update", b"%d" % n))
    fast._queue.clear()  # what its stream would have written
    hub.publish(sse_message("update", b"3"))
    assert slow.dropped and slow.closed and not fast.dropped
    assert hub.clients == 1 and hub.dropped_total == 1


def test_the_hub_refuses_clients_past_its_limit_and_close_ends_every_stream() -> None:
    hub = Hub(max_clients=2)
    clients = [hub.subscribe(), hub.subscribe()]
    assert hub.subscribe() is None
    hub.close()
    assert all(c is not None and c.closed for c in clients) and hub.clients == 0


# -- the live view over the memory store --

async def live_view(tape_size: int = 1000) -> tuple[LiveView, MemoryStore, VirtualClock]:
    clock = VirtualClock(NOW + 30)
    store = MemoryStore(clock=clock)
    metrics = Metrics(CollectorRegistry(), ["bybit", "okx"], ["BTC"], process_metrics=False)
    view = LiveView(store, metrics, None, clock, lambda: {"bybit": 60.0, "okx": 60.0},
                    tape_size=tape_size)
    return view, store, clock


async def test_a_page_that_opens_before_the_first_update_gets_an_empty_state() -> None:
    view, _store, _clock = await live_view()
    doc = orjson.loads(view.full())
    assert (doc["seq"], doc["minute"], doc["tape"], doc["cascades"]) == (0, MINUTE, [], [])
    assert doc["bars"]["venues"] == {} and doc["tape_size"] == 1000


async def test_one_snapshot_per_tick_with_the_store_s_windows_and_a_bounded_tape() -> None:
    view, store, _clock = await live_view(tape_size=3)
    events = [liq(n, NOW - 90 * 60 + n * 60, 1000.0 + n,
                  PositionSide.SHORT if n % 2 else PositionSide.LONG,
                  "okx" if n % 3 else "bybit") for n in range(5)]
    await store.add(events)
    view.on_liquidations(events[:2])  # a frame at a time, as ingest hands them on
    for event in events[2:]:
        view.on_liquidation(event)
    await view.tick()
    full = view.full()
    assert view.full() is full  # built once for every page that opens before the next tick
    doc = orjson.loads(full)
    assert doc["seq"] == 1 and doc["minute"] == MINUTE
    assert [row[5] for row in doc["tape"]] == [1004.0, 1003.0, 1002.0]  # newest first, 3 kept
    rows = await store.totals(60, by=("venue", "position_side"), now_ms=doc["now_ms"])
    assert {(r["venue"], r["position_side"], r["usd"]) for r in doc["totals"]["1h"]} == {
        (r.venue, r.position_side, r.usd) for r in rows}
    day = doc["bars"]
    assert day["end"] - day["start"] == 1439
    assert sum(map(sum, day["venues"]["okx"])) == pytest.approx(
        sum(e.notional_usd for e in events if e.venue == "okx"))
    coin = orjson.loads(view.coin_bars("BTC") or b"{}")
    assert coin["venues"] == day["venues"]
    assert view.coin_bars("<nope>") is None
    await view.tick()
    assert orjson.loads(view.full())["seq"] == 2


async def test_an_update_carries_only_what_is_new_and_late_minutes_are_reread() -> None:
    view, store, clock = await live_view()
    await view.tick()
    client = view.hub.subscribe()
    assert client is not None
    clock.advance(60)
    late = liq(1, NOW - 30, 500.0)  # stamped in an earlier minute, arriving now
    await store.add([late])
    view.on_liquidation(late)
    await view.tick()
    message = client._queue.popleft()
    assert message.startswith(b"event: update\ndata: ")
    update = orjson.loads(message.split(b"data: ", 1)[1])
    assert update["tape"] == [[late.exchange_ts_ms, "bybit", "BTCUSDT", "BTC", "long", 500.0,
                               100.0, "full"]]
    bars = update["bars"]
    assert isinstance(bars, dict) and not bars["reset"]
    assert bars["start"] <= late.minute <= bars["end"]
    assert update["cells"] == [[late.minute, "bybit", "BTC", "long", 500.0]]


async def test_cascades_keep_their_timeline_newest_first() -> None:
    view, _store, _clock = await live_view()
    view.on_alert(cascade(AlertState.FIRING, NOW - 100))
    view.on_alert(cascade(AlertState.RESOLVED, NOW - 10))
    await view.tick()
    [c] = orjson.loads(view.full())["cascades"]
    assert c["status"] == "resolved" and c["reason"] == "global longs resolved"
    assert [t["status"] for t in c["transitions"]] == ["firing", "resolved"]


# -- HTTP on a real socket --------------------------------------------------------------------

async def test_routes_are_read_only_with_a_strict_csp() -> None:
    view, _store, _clock = await live_view()
    await view.tick()
    server = MetricsServer(CollectorRegistry(), "127.0.0.1", 0, lambda: (True, "ok"),
                           web=WebRoutes(view))
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     timeout=5 * T) as http:
            page = await http.get("/")
            assert page.status_code == 200 and "/static/app.js" in page.text
            assert page.headers["content-security-policy"] == CSP
            assert "<script>" not in page.text.replace('<script src="/static/app.js" defer>',
                                                       "")
            script = await http.get("/static/app.js")
            assert script.headers["content-type"].startswith("text/javascript")
            assert "innerHTML" not in script.text
            assert (await http.post("/api/snapshot")).status_code == 405
            assert (await http.get("/api/bars?coin=%3Cx%3E")).status_code == 404
            assert (await http.get("/api/nothing")).status_code == 404
            assert (await http.get("/metrics")).status_code == 200
            snapshot = (await http.get("/api/snapshot")).json()
            assert snapshot["seq"] == 1
    finally:
        await server.aclose()


async def test_a_reader_that_stalls_is_dropped_while_others_stream_on() -> None:
    view, _store, _clock = await live_view()
    view.hub.write_timeout = 0.5 * T
    await view.tick()
    server = MetricsServer(CollectorRegistry(), "127.0.0.1", 0, lambda: (True, "ok"),
                           web=WebRoutes(view))
    await server.start()
    stalled = socket.create_connection(("127.0.0.1", server.port))
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.sendall(b"GET /api/stream HTTP/1.1\r\nHost: x\r\n\r\n")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}",
                                     timeout=5 * T) as http:
            async with http.stream("GET", "/api/stream") as live:
                lines = live.aiter_lines()
                assert await anext(lines) == "retry: 2000"
                loop = asyncio.get_running_loop()
                big = sse_message("update", b'"' + b"x" * 200_000 + b'"')
                started = loop.time()
                for _ in range(40):  # about 8 MB to each: the stalled one cannot take it
                    view.hub.publish(big)
                    await asyncio.sleep(0.01)
                    async for line in lines:
                        if line.startswith("data: \"x"):
                            break
                assert loop.time() - started < 10 * T
                assert view.hub.dropped_total + (2 - view.hub.clients) >= 1
                assert view.hub.clients == 1  # the reading client is still there
    finally:
        stalled.close()
        await server.aclose()
