"""``liqmon backtest --html FILE``: the backtest report as one self-contained HTML file.

Inline CSS and SVG drawn here, no script and nothing fetched: the file opens offline and
can be mailed. It draws from the ``--json`` document of the same report (every figure it
shows is a value of that document, marked with ``data-key`` for the tests) and from
:class:`ReportSeries`, what a backtest collects on the way: minute volumes by side, each
watched coin's mark price by minute, and the feed gaps of a recording. Every string is
escaped (instrument and coin names come from venues).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from monitor.alerts import format_duration, format_usd as _usd
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.feed.recorder import RawFrame

PRICE_COINS = 2  # price panels: the coins most liquidated that have a mark price
WIDTH, HEIGHT, LEFT = 960, 220, 64
SEVERITY_COLOURS = {"warning": "#f5a524", "critical": "#f76b15", "extreme": "#e5484d"}
LONG, SHORT = "#e5484d", "#30a46c"


class ReportSeries:
    """Minute volumes, mark prices and feed gaps, collected while a backtest runs."""

    def __init__(self, price_coins: Iterable[str], gap_limits: Mapping[str, float],
                 default_gap_seconds: float = 60.0) -> None:
        self._price_coins = frozenset(c.upper() for c in price_coins)
        self._gap_limits = gap_limits
        self._default_gap = default_gap_seconds
        self.minutes: dict[int, list[float]] = {}  # minute → [long usd, short usd]
        self.prices: dict[str, dict[int, float]] = {}  # coin → minute → last mark price
        self._last_frame: dict[str, float] = {}
        self.gaps: list[tuple[str, float, float]] = []  # (venue, last frame, next frame)

    def liquidation(self, event: Liquidation) -> None:
        pair = self.minutes.setdefault(event.minute, [0.0, 0.0])
        pair[0 if event.position_side is PositionSide.LONG else 1] += event.notional_usd

    def liquidations(self, events: Iterable[Liquidation]) -> None:
        """:meth:`liquidation` of each (a frame's or a run's, from ingest): the same
        additions in the same order, the minute's pair looked up once for a run of rows."""
        minutes = self.minutes
        long_side = PositionSide.LONG
        last_minute: int | None = None
        pair = [0.0, 0.0]
        for event in events:
            minute = event.exchange_ts_ms // 60_000
            if minute != last_minute:
                last_minute = minute
                pair = minutes.setdefault(minute, [0.0, 0.0])
            if event.position_side is long_side:
                pair[0] += event.notional_usd
            else:
                pair[1] += event.notional_usd

    def mark(self, price: MarkPrice) -> None:
        if price.coin in self._price_coins:
            self.prices.setdefault(price.coin, {})[price.exchange_ts_ms // 60_000] = price.price

    def event(self, event: Liquidation | MarkPrice) -> None:
        if isinstance(event, Liquidation):
            self.liquidation(event)
        else:
            self.mark(event)

    def frame(self, venue: str, received_at: float) -> None:
        """A recorded frame: a silence longer than the venue's limit is a feed gap."""
        last = self._last_frame.get(venue)
        if last is not None and received_at - last > self._gap_limits.get(venue,
                                                                          self._default_gap):
            self.gaps.append((venue, last, received_at))
        self._last_frame[venue] = received_at

    def frames(self, source: Iterable[RawFrame], minutes: dict[str, set[int]]
               ) -> Iterator[RawFrame]:
        """Each frame of ``source``, after :meth:`frame` of it; and into ``minutes``, per
        venue, the minutes it has a frame in (a backtest's coverage).

        A recording holds long stretches of one venue's frames: the venue's last frame, gap
        limit and current minute are read once for a stretch and kept in locals."""
        last_frame = self._last_frame
        gaps = self.gaps
        venue: str | None = None
        last: float | None = None
        limit = self._default_gap
        seen: set[int] = set()
        # The current minute m as the receipt times in [60 m, 60 m + 60): the same test as
        # int(at // 60) == m for every finite time (NaN and inf fail it and raise there).
        low = high = 0.0
        try:
            for raw in source:
                at = raw.received_at
                if raw.venue != venue:
                    if venue is not None and last is not None:
                        last_frame[venue] = last
                    venue = raw.venue
                    last = last_frame.get(venue)
                    limit = self._gap_limits.get(venue, self._default_gap)
                    seen = minutes.setdefault(venue, set())
                    low = high = 0.0
                if last is not None and at - last > limit:
                    gaps.append((venue, last, at))
                last = at
                if not low <= at < high:
                    minute = int(at // 60)
                    seen.add(minute)
                    low = minute * 60.0
                    high = low + 60.0
                yield raw
        finally:
            if venue is not None and last is not None:
                last_frame[venue] = last

    def minutes_json(self) -> list[list[float]]:
        return [[m * 60_000, round(v[0], 2), round(v[1], 2)]
                for m, v in sorted(self.minutes.items())]

    def gaps_json(self) -> list[dict[str, Any]]:
        return [{"venue": venue, "start": _iso(a), "end": _iso(b), "seconds": round(b - a, 3)}
                for venue, a, b in self.gaps]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _ms(text: str | None) -> float | None:
    if text is None:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000


def _clock(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S")


def _figure(key: str, value: object, shown: str) -> str:
    return f'<b data-key="{escape(key)}" data-value="{escape(str(value))}">{escape(shown)}</b>'


class _Axis:
    """Time to x over the report's span."""

    def __init__(self, start_ms: float, end_ms: float) -> None:
        self.start = start_ms
        self.span = max(end_ms - start_ms, 60_000.0)

    def x(self, ms: float) -> float:
        return LEFT + (ms - self.start) / self.span * (WIDTH - LEFT - 8)

    def ticks(self, height: float) -> str:
        step = next(s for s in (600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 1e12)
                    if self.span / s <= 10)
        first = -(-self.start // step) * step
        out = []
        t = first
        while t <= self.start + self.span:
            out.append(f'<text x="{self.x(t):.1f}" y="{height - 2}" class="tick">'
                       f"{_clock(t)[:5]}</text>")
            t += step
        return "".join(out)


def _bands(doc: Mapping[str, Any], axis: _Axis, top: float, height: float) -> str:
    out = []
    for c in doc["cascades"]:
        a = axis.x(c["start_ms"])
        b = axis.x(c["end_ms"] if c["end_ms"] is not None else axis.start + axis.span)
        colour = SEVERITY_COLOURS.get(c["max_severity"], "#888")
        out.append(f'<rect x="{a:.1f}" y="{top}" width="{max(b - a, 1):.1f}" height="{height}" '
                   f'fill="{colour}" opacity="0.14"><title>{escape(c["scope"])} '
                   f'{escape(c["position_side"])}s</title></rect>')
    return "".join(out)


def _volume_chart(doc: Mapping[str, Any], axis: _Axis) -> str:
    minutes = doc["minutes"]
    peak = max([max(l_, s) for _m, l_, s in minutes] or [0.0]) or 1.0
    mid, half = HEIGHT / 2, HEIGHT / 2 - 18
    bar = max((WIDTH - LEFT) / max(axis.span / 60_000, 1) - 0.5, 0.6)
    rects = []
    for m, longs, shorts in minutes:
        x = axis.x(m)
        if longs:
            h = longs / peak * half
            rects.append(f'<rect x="{x:.1f}" y="{mid - h:.1f}" width="{bar:.2f}" '
                         f'height="{h:.1f}" fill="{LONG}"/>')
        if shorts:
            h = shorts / peak * half
            rects.append(f'<rect x="{x:.1f}" y="{mid:.1f}" width="{bar:.2f}" height="{h:.1f}" '
                         f'fill="{SHORT}"/>')
    marks = []
    for key, label in (("onset_ms", "onset"), ("first_alert_ms", "first alert")):
        if doc.get(key) is not None:
            x = axis.x(doc[key])
            marks.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="4" y2="{HEIGHT - 14}" '
                         f'class="marker"/><text x="{x + 3:.1f}" y="12" class="tick">'
                         f"{escape(label)}</text>")
    return (f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" id="volumes">'
            + _bands(doc, axis, 4, HEIGHT - 18) + "".join(rects)
            + f'<line x1="{LEFT}" x2="{WIDTH}" y1="{mid}" y2="{mid}" class="axis"/>'
            + f'<text x="{LEFT - 4}" y="14" class="label">{_usd(peak)}</text>'
            + f'<text x="{LEFT - 4}" y="{HEIGHT - 18}" class="label">{_usd(peak)}</text>'
            + "".join(marks) + axis.ticks(HEIGHT) + "</svg>")


def _price_chart(coin: str, points: Sequence[tuple[int, float]], axis: _Axis) -> str:
    height = 120
    low, high = min(p for _m, p in points), max(p for _m, p in points)
    span = (high - low) or 1.0
    path = " ".join(f"{axis.x(m * 60_000):.1f},{8 + (high - p) / span * (height - 26):.1f}"
                    for m, p in points)
    return (f'<svg viewBox="0 0 {WIDTH} {height}" class="chart price">'
            f'<polyline points="{path}" fill="none" stroke="#8ab4f8" stroke-width="1.5"/>'
            f'<text x="{LEFT - 4}" y="14" class="label">{high:,.6g}</text>'
            f'<text x="{LEFT - 4}" y="{height - 18}" class="label">{low:,.6g}</text>'
            f'<text x="{LEFT + 4}" y="14" class="tick">{escape(coin)} mark</text>'
            + axis.ticks(height) + "</svg>")


def _lanes(doc: Mapping[str, Any], axis: _Axis) -> str:
    cascades = doc["cascades"]
    if not cascades:
        return ""
    row = 26
    height = row * len(cascades) + 20
    out = [f'<svg viewBox="0 0 {WIDTH} {height}" class="chart" id="lanes">']
    for i, c in enumerate(cascades):
        y = 6 + i * row
        a = axis.x(c["start_ms"])
        b = axis.x(c["end_ms"] if c["end_ms"] is not None else axis.start + axis.span)
        out.append(f'<text x="{LEFT - 4}" y="{y + 13}" class="label">'
                   f'{escape(c["scope"])} {escape(c["position_side"])}</text>'
                   f'<rect x="{a:.1f}" y="{y + 3}" width="{max(b - a, 2):.1f}" height="12" '
                   f'rx="3" fill="{SEVERITY_COLOURS.get(c["max_severity"], "#888")}" '
                   f'opacity="0.55"/>')
        for t in c.get("transitions", []):
            x = axis.x(t["at_ms"])
            out.append(f'<circle cx="{x:.1f}" cy="{y + 9}" r="4" '
                       f'fill="{SEVERITY_COLOURS.get(t["severity"], "#888")}" stroke="#111">'
                       f'<title>{escape(_clock(t["at_ms"]))} {escape(t["status"])} '
                       f'{escape(t["severity"])}: {escape(t["reason"])}</title></circle>')
    out.append(axis.ticks(height) + "</svg>")
    return "".join(out)


def render_html(doc: Mapping[str, Any], series: ReportSeries | None,
                transitions: Mapping[str, list[dict[str, Any]]] | None = None) -> str:
    """The report as one HTML document. ``doc`` is ``BacktestReport.to_json()``;
    ``transitions`` each cascade's alert transitions (id → [{at_ms, status, severity,
    reason}])."""
    doc = dict(doc)
    doc["cascades"] = [{**c, "transitions": (transitions or {}).get(c["id"], [])}
                       for c in doc["cascades"]]
    minutes = doc.get("minutes") or []
    starts = [m for m, _l, _s in minutes] + [c["start_ms"] for c in doc["cascades"]]
    ends = [m + 60_000 for m, _l, _s in minutes] + [c["end_ms"] or 0 for c in doc["cascades"]]
    axis = _Axis(min(starts or [0]), max(ends or [60_000]))
    first = min(doc["cascades"], key=lambda c: c["start_ms"], default=None)
    doc["first_alert_ms"] = first["start_ms"] if first else None
    onset = doc.get("ground_truth") or {}
    doc["onset_ms"] = None
    if doc.get("lead_seconds") is not None and first is not None:
        doc["onset_ms"] = first["start_ms"] - doc["lead_seconds"] * 1000
    prices = ""
    if series is not None:
        coins = [c for c in _coins_by_usd(doc) if len(series.prices.get(c, {})) > 1]
        prices = "".join(_price_chart(c, sorted(series.prices[c].items()), axis)
                         for c in coins[:PRICE_COINS])
    return _page(doc, axis, prices, onset)


def _coins_by_usd(doc: Mapping[str, Any]) -> list[str]:
    usd: dict[str, float] = {}
    for c in doc["cascades"]:
        for share in c["coins"]:
            usd[share["coin"]] = usd.get(share["coin"], 0.0) + share["usd"]
    for w in doc["whales"]:
        usd[w["coin"]] = usd.get(w["coin"], 0.0) + w["usd"]
    return list(dict.fromkeys([*sorted(usd, key=lambda c: -usd[c]), "BTC", "ETH"]))


def _page(doc: Mapping[str, Any], axis: _Axis, prices: str, truth: Mapping[str, Any]) -> str:
    lead, share = doc.get("lead_seconds"), doc.get("first_alert_share")
    rows = []
    for n, c in enumerate(doc["cascades"], 1):
        end = _clock(c["end_ms"]) if c["end_ms"] is not None else "still open"
        reasons = "".join(f"<li>{escape(r)}</li>" for r in c["reasons"])
        rows.append(
            f'<tr class="cascade" data-id="{escape(c["id"])}"><td>#{n}</td>'
            f'<td>{escape(c["scope"])}</td><td>{escape(c["position_side"])}s</td>'
            f'<td data-key="start_ms" data-value="{c["start_ms"]}">{_clock(c["start_ms"])}</td>'
            f'<td data-key="end_ms" data-value="{c["end_ms"]}">{end}</td>'
            f'<td><span class="sev sev-{escape(c["max_severity"])}" data-key="max_severity" '
            f'data-value="{escape(c["max_severity"])}">{escape(c["max_severity"])}</span></td>'
            f'<td class="num" data-key="usd" data-value="{c["usd"]}">{_usd(c["usd"])}</td>'
            f'<td><ul class="reasons">{reasons}</ul></td></tr>')
    whales = "".join(
        f'<tr class="whale"><td>{escape(w["at"][11:19])}</td><td>{escape(w["venue"])}</td>'
        f'<td>{escape(w["instrument"])}</td><td>{escape(w["position_side"])}</td>'
        f'<td class="num" data-value="{w["usd"]}">{_usd(w["usd"])}</td>'
        f'<td>{escape(w["severity"])}</td></tr>'
        for w in sorted(doc["whales"], key=lambda w: -w["usd"])[:10])
    gaps = "".join(
        f'<tr class="gap"><td>{escape(g["venue"])}</td><td>{escape(g["start"])}</td>'
        f'<td>{escape(g["end"])}</td><td class="num" data-value="{g["seconds"]}">'
        f'{g["seconds"]:.1f}s</td></tr>' for g in doc.get("feed_gaps", []))
    minutes_long = sum(l_ for _m, l_, _s in doc.get("minutes", []))
    minutes_short = sum(s for _m, _l, s in doc.get("minutes", []))
    lead_text = "no ground truth" if lead is None else (
        f"{format_duration(abs(lead))} {'after' if lead >= 0 else 'before'} the onset")
    share_text = "–" if share is None else f"{share:.1%}"
    onset_text = ""
    if truth.get("total_usd"):
        onset_text = f" · ground truth total {_usd(float(truth['total_usd']))}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>liqmon backtest · {escape(doc["source"])}</title>
<style>{_CSS}</style></head>
<body>
<h1>Backtest of {escape(doc["source"])}</h1>
<p class="muted">{escape(doc.get("start") or "–")} to {escape(doc.get("end") or "–")}
{onset_text}</p>
<section class="figures">
<div>liquidations {_figure("liquidations", doc["liquidations"], f"{doc['liquidations']:,}")}</div>
<div>total {_figure("total_usd", doc["total_usd"], _usd(doc["total_usd"]))}</div>
<div>cascades {_figure("cascades", len(doc["cascades"]), str(len(doc["cascades"])))}</div>
<div>lead time {_figure("lead_seconds", lead, lead_text)}</div>
<div>liquidated before the first alert {_figure("first_alert_share", share, share_text)}</div>
<div>feed gaps {_figure("feed_gaps", len(doc.get("feed_gaps", [])),
                         str(len(doc.get("feed_gaps", []))))}</div>
</section>
<h2>Liquidations per minute</h2>
<p class="legend"><span class="long">■ longs</span> <span class="short">■ shorts</span>
<span class="muted">shaded: cascades · lines: onset and first alert</span>
<span id="minute-sums" data-long="{minutes_long:.2f}" data-short="{minutes_short:.2f}"></span></p>
{_volume_chart(doc, axis)}
{("<h2>Price</h2>" + prices) if prices else ""}
<h2>Cascades by scope, with their alert transitions</h2>
{_lanes(doc, axis) or '<p class="muted">No cascade.</p>'}
<table><thead><tr><th></th><th>scope</th><th>side</th><th>start</th><th>end</th>
<th>max severity</th><th class="num">USD</th><th>reasons</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Whale liquidations ({len(doc["whales"])}{", the largest 10" if len(doc["whales"]) > 10
                                                else ""})</h2>
<table><tbody>{whales}</tbody></table>
<h2>Feed gaps</h2>
{f"<table><tbody>{gaps}</tbody></table>" if gaps else
 '<p class="muted">None: no venue was silent past its silence limit.</p>'}
<p class="muted">liqmon backtest --html · one file, no network.</p>
</body></html>
"""


_CSS = """
body { background: #111418; color: #e6e8eb; margin: 16px 24px; max-width: 1000px;
  font: 13px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 15px; margin: 20px 0 6px; }
.muted { color: #8b949e; } .long { color: #e5484d; } .short { color: #30a46c; }
.figures { display: flex; flex-wrap: wrap; gap: 8px 24px; background: #181c21;
  border: 1px solid #2a3038; border-radius: 6px; padding: 10px 14px; }
.figures b { display: block; font-size: 18px; }
.chart { width: 100%; height: auto; display: block; background: #181c21;
  border: 1px solid #2a3038; border-radius: 6px; margin: 4px 0; }
.chart .tick { fill: #8b949e; font-size: 10px; }
.chart .label { fill: #8b949e; font-size: 10px; text-anchor: end; }
.chart .axis { stroke: #2a3038; } .chart .marker { stroke: #8ab4f8; stroke-dasharray: 3 3; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #2a3038;
  vertical-align: top; }
th { color: #8b949e; font-weight: normal; } .num { text-align: right; }
.reasons { margin: 0; padding-left: 16px; color: #c9d1d9; }
.sev { border-radius: 3px; padding: 0 5px; color: #111; text-transform: uppercase;
  font-size: 11px; }
.sev-warning { background: #f5a524; } .sev-critical { background: #f76b15; }
.sev-extreme { background: #e5484d; color: #fff; }
"""
