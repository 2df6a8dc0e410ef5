"""The live view's state and its one shared snapshot per update interval.

Fed by the daemon: every counted liquidation (ingest's ``on_liquidations``, a frame at a
time) joins a bounded tape, every alert (the app's ``on_alert``) updates the cascade and
whale lists. Once per interval :meth:`LiveView.tick` reads the store's minute buckets and
1h/4h/24h windows (the same store API ``liqmon stats`` reads, so the page's figures are the
store's), the detector's states and the feed metrics, and publishes ONE update to every
connected page, however many there are. A page that connects gets :meth:`LiveView.full`, the
whole state as of the last tick, built at most once per tick, then the updates after it.

The tick reads 24 h of minute buckets only on its first run and every
``FULL_READ_SECONDS`` (so writes of other daemons sharing a Redis store show up); otherwise
it rereads the minutes since the tick of ``LATE_SECONDS`` ago, plus ``LATE_MINUTES``: a
late frame lands in its own minute, and the buffered Redis store writes a little after
ingest (in real seconds, which are many market minutes in a sped-up demo). Long reads go
in chunks with a yield to the loop between them.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from monitor.alerts import CascadeAlert, WhaleAlert
from monitor.clock import Clock
from monitor.detector.engine import Detector
from monitor.errors import StoreError
from monitor.events import Liquidation
from monitor.feed.ports import EventSink
from monitor.metrics import Metrics
from monitor.store.base import Store, TotalsRow
from monitor.web.bars import MinuteBars, cells_of
from monitor.web.feeds import DataWatch, FeedHealth, feed_samples
from monitor.web.hub import Hub, sse_message

log = logging.getLogger(__name__)

UPDATE_SECONDS = 1.0
TAPE_SIZE = 1000
CASCADES_KEPT = 30
WHALES_KEPT = 30
LATE_MINUTES = 2
LATE_SECONDS = 10.0
CHUNK_MINUTES = 60
FULL_READ_SECONDS = 300.0
TOTAL_WINDOWS = {"1h": 60, "4h": 240, "24h": 1440}
CELL_KEYS = ("venue", "coin", "position_side")
TAPE_FIELDS = ("ts_ms", "venue", "instrument", "coin", "side", "usd", "price",
               "completeness")


def tape_row(event: Liquidation) -> list[Any]:
    return [event.exchange_ts_ms, event.venue, event.instrument, event.coin,
            event.position_side.value, round(event.notional_usd, 2), event.price,
            event.completeness.value]


def totals_rows(rows: list[TotalsRow]) -> list[dict[str, Any]]:
    return [{"venue": r.venue, "position_side": r.position_side, "usd": round(r.usd, 2),
             "count": r.count, "largest_usd": round(r.largest_usd, 2),
             "completeness": r.completeness} for r in rows]


def cascade_record(alert: CascadeAlert, old: dict[str, Any] | None) -> dict[str, Any]:
    """A cascade as the page shows it: the latest figures and every transition so far."""
    transitions = list(old["transitions"]) if old is not None else []
    transitions.append({"at_ms": round(alert.at * 1000), "status": alert.status.value,
                        "severity": alert.severity.value, "scope": alert.scope,
                        "reason": alert.reason})
    return {
        "id": alert.id, "scope": alert.scope, "side": alert.position_side.value,
        "status": alert.status.value, "severity": alert.severity.value,
        "peak_severity": (alert.peak_severity or alert.severity).value,
        "started_ms": round(alert.started_at * 1000), "at_ms": round(alert.at * 1000),
        "usd": round(alert.usd, 2), "total_usd": round(alert.total_usd, 2),
        "reason": alert.reason,
        "venues": [[s.name, round(s.share, 4)] for s in alert.venues],
        "coins": [[s.name, round(s.share, 4)] for s in alert.coins],
        "transitions": transitions,
    }


def whale_record(alert: WhaleAlert) -> dict[str, Any]:
    liq = alert.liquidation
    return {"id": alert.id, "at_ms": liq.exchange_ts_ms, "venue": liq.venue,
            "instrument": liq.instrument, "coin": liq.coin, "side": liq.position_side.value,
            "usd": round(liq.notional_usd, 2), "price": liq.price,
            "severity": alert.severity.value, "reason": alert.reason}


class LiveView:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        detector: Detector | None,
        clock: Clock,
        feeds: Callable[[], Mapping[str, float]],
        *,
        interval: float = UPDATE_SECONDS,
        tape_size: int = TAPE_SIZE,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._detector = detector
        self._clock = clock
        self._feeds = feeds  # venue → silence limit (s), for the venues running now
        self.interval = interval
        self.hub = Hub()
        self._pending: deque[Liquidation] = deque(maxlen=tape_size)
        self._tape: deque[list[Any]] = deque(maxlen=tape_size)  # oldest first
        self._cascades: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._whales: deque[dict[str, Any]] = deque(maxlen=WHALES_KEPT)
        self._bars = MinuteBars()
        self._health = FeedHealth()
        self._watch: DataWatch | None = None
        self._next_full_read = 0.0
        self._recent_ticks: deque[tuple[float, int]] = deque()  # (monotonic, minute)
        self.seq = 0
        self._totals: dict[str, list[dict[str, Any]]] = {}
        now_ms = int(clock.wall() * 1000)
        # Until the first tick, a page gets an empty state of the right shape.
        self._state: dict[str, Any] = {
            "seq": 0, "now_ms": now_ms, "minute": now_ms // 60_000, "interval_s": interval,
            "tape_size": tape_size, "totals": {}, "store_error": None, "cascades": [],
            "active": [], "whales": [], "feeds": [], "coins": []}
        self._full: tuple[int, bytes] | None = None
        self._coin_cache: dict[str, tuple[int, bytes]] = {}

    # -- fed by the daemon (synchronous, never waits) --------------------------------------
    def on_liquidation(self, event: Liquidation) -> None:
        self._pending.append(event)

    def on_liquidations(self, events: list[Liquidation]) -> None:
        """A frame's counted liquidations at once (ingest's ``on_liquidations``)."""
        self._pending.extend(events)

    def on_alert(self, alert: CascadeAlert | WhaleAlert) -> None:
        if isinstance(alert, WhaleAlert):
            self._whales.append(whale_record(alert))
            return
        record = cascade_record(alert, self._cascades.pop(alert.id, None))
        self._cascades[alert.id] = record
        while len(self._cascades) > CASCADES_KEPT:
            self._cascades.popitem(last=False)

    def watch(self, sink: EventSink) -> EventSink:
        """The sink the feeds should hand events to: ``sink``, noting which venue delivers."""
        if self._watch is None:
            self._watch = DataWatch(sink, self._clock)
        return self._watch

    # -- the update loop ----------------------------------------------------------------------
    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval)

    async def tick(self) -> None:
        """Read what changed, publish one update to every page, keep the state for new ones."""
        now_ms = int(self._clock.wall() * 1000)
        minute = now_ms // 60_000
        store_error = None
        try:
            start, reset = await self._read_bars(minute)
            self._totals = {name: totals_rows(await self._store.totals(
                minutes, by=("venue", "position_side"), now_ms=now_ms))
                for name, minutes in TOTAL_WINDOWS.items()}
        except StoreError as exc:
            # The page says so and keeps the last figures; the tape and alerts go on.
            store_error = f"the store cannot be read: {exc}"
            start, reset = minute, False
        new_rows = [tape_row(e) for e in self._pending]
        self._pending.clear()
        self._tape.extend(new_rows)
        self.seq += 1
        self._state = {
            "seq": self.seq, "now_ms": now_ms, "minute": minute,
            "interval_s": self.interval, "tape_size": self._tape.maxlen,
            "totals": self._totals, "store_error": store_error,
            "cascades": list(reversed(self._cascades.values())),
            "active": self._active(),
            "whales": list(reversed(self._whales)),
            "feeds": self._feed_rows(),
            "coins": self._bars.coins(),
        }
        update = {**self._state, "tape": new_rows[::-1], "bars": {
            "start": start, "end": minute, "reset": reset,
            "venues": self._bars.by_venue(start, minute)}}
        if not reset:
            update["cells"] = self._bars.cells(start, minute)
        self.hub.publish(sse_message("update", orjson.dumps(update)))

    async def _read_bars(self, minute: int) -> tuple[int, bool]:
        """Reread minutes from the store; return the first one reread and whether all were."""
        bars = self._bars
        now = self._clock.monotonic()
        reset = bars.end is None or minute - bars.end >= bars.span or now >= self._next_full_read
        if reset:
            start = minute - bars.span + 1
            self._next_full_read = now + FULL_READ_SECONDS
        else:
            assert bars.end is not None
            start = min(bars.end, minute, *(m for _t, m in self._recent_ticks)) - LATE_MINUTES
        ticks = self._recent_ticks
        ticks.append((now, minute))
        while len(ticks) > 1 and ticks[1][0] <= now - LATE_SECONDS:
            ticks.popleft()
        for first in range(start, minute + 1, CHUNK_MINUTES):
            last = min(first + CHUNK_MINUTES - 1, minute)
            cells = cells_of(await self._store.minute_series(first, last, by=CELL_KEYS))
            for m in range(first, last + 1):
                bars.replace(m, cells.get(m, {}))
            if last < minute:
                await asyncio.sleep(0)
        bars.trim(minute)
        return start, reset

    def _active(self) -> list[dict[str, Any]]:
        if self._detector is None:
            return []
        return [{"scope": s.scope, "side": s.position_side.value, "state": s.state.value,
                 "severity": s.severity.value if s.severity is not None else None,
                 "alert_id": s.alert_id, "since_ms": round(s.since * 1000),
                 "usd": round(s.usd, 2)} for s in self._detector.states()]

    def _feed_rows(self) -> list[dict[str, Any]]:
        samples = self._metrics.feed_samples()
        data_at = self._watch.data_at if self._watch is not None else {}
        return self._health.update(feed_samples(samples), data_at, self._feeds(),
                                   self._clock.monotonic(), self._clock.wall())

    # -- what a page reads ------------------------------------------------------------------
    def full(self) -> bytes:
        """The whole state as of the last tick, as JSON (built once per tick)."""
        if self._full is not None and self._full[0] == self.seq:
            return self._full[1]
        minute = self._state["minute"]
        start = minute - self._bars.span + 1
        doc = {**self._state, "seq": self.seq, "tape_fields": TAPE_FIELDS,
               "tape": list(reversed(self._tape)),
               "bars": {"start": start, "end": minute, "reset": True,
                        "venues": self._bars.by_venue(start, minute)}}
        body = orjson.dumps(doc)
        self._full = (self.seq, body)
        return body

    def coin_bars(self, coin: str) -> bytes | None:
        """24 h of one coin's bars by venue, or None for a coin without liquidations."""
        cached = self._coin_cache.get(coin)
        if cached is not None and cached[0] == self.seq:
            return cached[1]
        if coin not in self._state["coins"]:
            return None
        minute = self._state["minute"]
        start = minute - self._bars.span + 1
        body = orjson.dumps({"seq": self.seq, "coin": coin, "start": start, "end": minute,
                             "venues": self._bars.by_venue(start, minute, coin)})
        self._coin_cache = {k: v for k, v in self._coin_cache.items() if v[0] == self.seq}
        self._coin_cache[coin] = (self.seq, body)
        return body
