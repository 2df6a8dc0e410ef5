"""The signals of one scope and side at one step, and the one-line reasons built from them.

The cheap figures (volume, multiple, acceleration, share, symbol-seconds) are read every
step a scope is hot; the breakdown (venues, coins, breadth, price move) only when a cascade
is about to fire or an alert is written, because it walks the scope's children.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

from monitor.alerts import Severity, Share, format_duration, format_usd
from monitor.detector.aggregates import (
    CNT,
    COIN,
    GLOBAL,
    LONG,
    PREV,
    RAW,
    SHORT,
    SYM,
    USD,
    VENUE,
    Agg,
)
from monitor.detector.config import DetectorConfig, ScopeThresholds
from monitor.detector.prices import PriceTracker
from monitor.detector.windows import Windows
from monitor.events import SIDE_NAMES


@dataclass(frozen=True, slots=True)
class Figures:
    usd: float  # capped, dominant side
    raw_usd: float  # uncapped, dominant side
    share: float  # of the side in both sides' capped USD
    long_share: float
    multiple: float
    acceleration: float
    count: int
    symbol_seconds: int
    symbol_multiple: float


def cheap_figures(agg: Agg, side: int, th: ScopeThresholds) -> Figures:
    # Read off the flat list (the Agg accessors' offsets, inlined): this runs for every
    # live machine at every step.
    v = agg.v
    usd = v[USD + side]
    long_usd = v[USD + LONG]
    total = long_usd + v[USD + SHORT]
    sym = int(v[SYM + side])
    return Figures(
        usd,
        v[RAW + side],
        usd / total if total > 0.0 else 0.0,
        long_usd / total if total > 0.0 else 0.0,
        usd / max(agg.base_usd[side], th.baseline_floor_usd),
        usd / max(v[PREV + side], th.baseline_floor_usd),
        int(v[CNT + side]),
        sym,
        sym / max(agg.base_sym[side], th.symbol_seconds_floor),
    )


@dataclass(frozen=True, slots=True)
class Breakdown:
    venues: tuple[Share, ...]  # by uncapped USD, largest first
    coins: tuple[Share, ...]
    breadth: int
    price_move: float | None  # signed fraction; for global and venue scopes, USD-weighted
    top_coin_share: float


def _ranked(parts: dict[str, Agg], side: int, top_n: int) -> list[tuple[str, float]]:
    """The parts with USD on ``side``, largest first (then by name), at most ``top_n``."""
    i = RAW + side
    items = [(name, usd) for name, agg in parts.items() if (usd := agg.v[i]) > 0.0]
    if len(items) > 1:
        # The order of the key (-usd, name) in two C-keyed sorts, with no Python call per
        # part: by name (each name is once in ``parts``), then by USD, largest first;
        # ``reverse`` keeps a sort stable, so equal USD stays in name order. No USD is
        # zero or NaN here (``> 0.0``), so negating it would order the same.
        items.sort()
        items.sort(key=_usd_of, reverse=True)
    return items[:top_n]


_usd_of = itemgetter(1)


def _children(parts: dict[str, Agg], side: int, total: float, top_n: int) -> list[Share]:
    return [Share(name, usd, usd / total if total > 0 else 0.0)
            for name, usd in _ranked(parts, side, top_n)]


def price_move(
    agg: Agg, side: int, windows: Windows, prices: PriceTracker, config: DetectorConfig, t: int
) -> float | None:
    """``breakdown(...).price_move`` without the rest of the breakdown: the same parts in
    the same order, so the same float. The firing test reads it before paying for the
    breakdown, which it fails on most often."""
    if agg.kind == COIN:
        parts = windows.pairs_by_coin.get(agg.name, _NONE)
        if len(parts) == 1:
            # A coin on one venue (the usual one): ``_ranked`` of one part is that part
            # when its USD is positive, and nothing otherwise; no list to sort.
            for name, pair in parts.items():
                usd = pair.v[RAW + side]
                return _weighted([(prices.move(agg.name, name, t), usd)]) if usd > 0.0 else None
        return _weighted([(prices.move(agg.name, name, t), usd) for name, usd in _ranked(
            parts, side, 1000)])
    if agg.kind == VENUE:
        return _weighted([(prices.move(name, agg.name, t), usd) for name, usd in _ranked(
            windows.pairs_by_venue.get(agg.name, {}), side, config.top_n)])
    return _weighted([
        (_coin_move(name, side, windows, prices, t), usd)
        for name, usd in _ranked(windows.coins, side, config.top_n)
    ])


def breakdown(
    agg: Agg, side: int, windows: Windows, prices: PriceTracker, config: DetectorConfig, t: int
) -> Breakdown:
    total = agg.raw(side)
    top_n = config.top_n
    if agg.kind == GLOBAL:
        venues = _children(windows.venues, side, total, 1000)
        coins = _children(windows.coins, side, total, top_n)
    elif agg.kind == COIN:
        venues = _children(windows.pairs_by_coin.get(agg.name, {}), side, total, 1000)
        coins = [Share(agg.name, total, 1.0)]
    else:
        venues = [Share(agg.name, total, 1.0)]
        coins = _children(windows.pairs_by_venue.get(agg.name, {}), side, total, top_n)
    if agg.kind == COIN:
        move = _weighted([(prices.move(agg.name, s.name, t), s.usd) for s in venues])
    elif agg.kind == VENUE:
        move = _weighted([(prices.move(s.name, agg.name, t), s.usd) for s in coins])
    else:
        move = _weighted([
            (_coin_move(s.name, side, windows, prices, t), s.usd) for s in coins
        ])
    listed = tuple(s for s in venues if s.share >= config.venue_involved_share)[:top_n]
    return Breakdown(
        venues=listed or tuple(venues[:1]),
        coins=tuple(coins),
        breadth=breadth(agg, side, windows, config),
        price_move=move,
        top_coin_share=coins[0].share if coins else 0.0,
    )


def breadth(agg: Agg, side: int, windows: Windows, config: DetectorConfig) -> int:
    """Global: venues above their own baselines; a coin: venues with a listed share of it."""
    if agg.kind == GLOBAL:
        return sum(1 for a in windows.venues.values() if _above_baseline(a, side, config))
    if agg.kind == COIN:
        i = RAW + side
        floor = config.venue_involved_share * agg.v[i]
        n = 0
        for a in windows.pairs_by_coin.get(agg.name, _NONE).values():
            usd = a.v[i]
            if usd > 0.0 and usd >= floor:
                n += 1
        return n
    return 1


_NONE: dict[str, Agg] = {}  # read only: the parts of a scope that has none


def top_child(agg: Agg, side: int, windows: Windows) -> tuple[str, float]:
    """The largest part of a window (a coin's venue, a venue's coin) and its share."""
    if agg.kind == COIN:
        parts = windows.pairs_by_coin.get(agg.name, {})
    elif agg.kind == VENUE:
        parts = windows.pairs_by_venue.get(agg.name, {})
    else:
        parts = windows.coins
    i = RAW + side
    total = agg.v[i]
    # ``max`` by USD written out (every second a scope could fire): the first of the
    # largest, as ``max`` keeps it, since only a strictly larger one replaces it.
    name, usd = "", 0.0
    first = True
    for n, a in parts.items():
        u = a.v[i]
        if first or u > usd:
            name, usd = n, u
            first = False
    return name, (usd / total if total > 0.0 else 0.0)


def _above_baseline(venue: Agg, side: int, config: DetectorConfig) -> bool:
    th = config.venue_scope
    k = config.breadth_multiple
    usd = venue.usd(side)
    if usd >= config.breadth_floor_usd and usd >= k * max(
        venue.base_usd[side], th.baseline_floor_usd
    ):
        return True
    # A throttled venue under-reports USD; its symbol-seconds still show the intensity.
    return venue.sym(side) >= k * max(venue.base_sym[side], th.symbol_seconds_floor)


def _coin_move(coin: str, side: int, windows: Windows, prices: PriceTracker, t: int
               ) -> float | None:
    pairs = windows.pairs_by_coin.get(coin, {})
    return _weighted([(prices.move(coin, venue, t), a.raw(side)) for venue, a in pairs.items()])


def _weighted(moves: list[tuple[float | None, float]]) -> float | None:
    """The USD-weighted mean of the known moves, None if none is known."""
    weight = 0.0
    acc = 0.0
    for move, usd in moves:
        if move is not None and usd > 0.0:
            acc += move * usd
            weight += usd
    return acc / weight if weight > 0.0 else None


def adverse(move: float | None, side: int) -> float | None:
    """The move in the direction that liquidates ``side``: falling for longs, rising for shorts."""
    if move is None:
        return None
    return -move if side == LONG else move


def scope_label(agg: Agg) -> str:
    if agg.kind == GLOBAL:
        return "Global"
    return agg.name if agg.kind in (COIN, VENUE) else agg.scope


def window_reason(
    agg: Agg, side: int, fig: Figures, bd: Breakdown, window_seconds: int
) -> str:
    """``ETH longs: $212M in 5m (3.1x prev), 8.4x baseline, 96% long, 4 venues, mark -6.1%``."""
    word = SIDE_NAMES[side]
    parts = [
        f"{scope_label(agg)} {word}s: {format_usd(fig.raw_usd)} in "
        f"{format_duration(window_seconds)} ({fig.acceleration:.1f}x prev)",
        f"{fig.multiple:.1f}x baseline",
        f"{fig.share:.0%} {word}",
    ]
    if agg.kind == GLOBAL:
        parts.append(f"{bd.breadth} venues above baseline")
        parts.append("top " + " ".join(f"{s.name} {s.share:.0%}" for s in bd.coins[:3]))
    elif agg.kind == COIN:
        n = len(bd.venues)
        parts.append(f"{n} venue{'s' if n != 1 else ''}")
    else:
        parts.append("top " + " ".join(f"{s.name} {s.share:.0%}" for s in bd.coins[:3]))
    if bd.price_move is not None:
        parts.append(f"mark {bd.price_move * 100:+.1f}%")
    return ", ".join(parts)


def resolved_reason(agg: Agg, side: int, seconds: float, total_usd: float, peak_usd: float,
                    window_seconds: int, max_severity: Severity, promoted_from: str | None
                    ) -> str:
    """``Global longs resolved after 2h32m (started on venue:hyperliquid): $2.39B ...``."""
    origin = f" (started on {promoted_from})" if promoted_from else ""
    return (
        f"{scope_label(agg)} {SIDE_NAMES[side]}s resolved after {format_duration(seconds)}"
        f"{origin}: {format_usd(total_usd)} liquidated, peak {format_usd(peak_usd)} in "
        f"{format_duration(window_seconds)}, max {max_severity.value}"
    )


def merged_reason(agg: Agg, side: int, seconds: float, total_usd: float,
                  max_severity: Severity, into_id: str) -> str:
    """A coin or venue cascade that ends because a market-wide one took the side over."""
    return (
        f"{scope_label(agg)} {SIDE_NAMES[side]}s merged into the market-wide cascade "
        f"{into_id} after {format_duration(seconds)}: {format_usd(total_usd)} liquidated, "
        f"max {max_severity.value}"
    )
