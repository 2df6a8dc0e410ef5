"""Alert value types and their renderings: the JSON payload (MQTT, webhooks) and the log line.

A cascade is one alert with a stable id through its life: one ``firing``, zero or more
``escalated`` (its severity went up, or a coin or venue cascade went market-wide: then the
transition's ``scope`` is ``global`` and ``promoted_from`` names the scope it started in),
one ``resolved``. A whale alert is one-shot.
Pure: no I/O, no clock reads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from monitor.events import Liquidation, PositionSide

SCHEMA = "liqmon.alert/v1"
CASCADE_ALERT_NAME = "LiqmonLiquidationCascade"
WHALE_ALERT_NAME = "LiqmonWhaleLiquidation"


class AlertState(StrEnum):
    """The status carried by an alert transition (the notifiers' ``status``)."""

    FIRING = "firing"
    ESCALATED = "escalated"
    RESOLVED = "resolved"


class Severity(StrEnum):
    """Ordered: warning < critical < extreme."""

    WARNING = "warning"
    CRITICAL = "critical"
    EXTREME = "extreme"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank < other.rank
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank <= other.rank
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank > other.rank
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if isinstance(other, Severity):
            return self.rank >= other.rank
        return NotImplemented


_SEVERITY_RANK = {Severity.WARNING: 1, Severity.CRITICAL: 2, Severity.EXTREME: 3}


@dataclass(frozen=True, slots=True)
class Share:
    """One venue's or coin's part of a window."""

    name: str
    usd: float
    share: float


@dataclass(frozen=True, slots=True)
class CascadeAlert:
    """One transition of one cascade, with the window figures at that moment.

    ``usd`` is the dominant side's uncapped USD in the window; ``baseline_multiple`` and
    ``acceleration`` are computed on capped USD (see ``signal_cap_usd``). ``total_usd`` is
    the side's USD liquidated in the scope from the window before the start to ``at``.
    """

    id: str
    status: AlertState
    scope: str
    position_side: PositionSide
    severity: Severity
    started_at: float
    at: float
    window_seconds: int
    usd: float
    usd_per_minute: float
    acceleration: float
    long_share: float
    baseline_multiple: float
    count: int
    symbol_seconds: int
    venues: tuple[Share, ...]
    coins: tuple[Share, ...]
    price_move: float | None
    peak_usd: float
    peak_at: float
    total_usd: float
    reason: str
    # The highest severity reached, announced or not (a coin or venue cascade kept beside a
    # global one by a reload escalates silently). None means the same as ``severity``.
    peak_severity: Severity | None = None
    # On the ``escalated`` transition that made a coin or venue cascade the global one: the
    # scope it had until then (a consumer keeping state per scope clears that one).
    promoted_from: str | None = None


@dataclass(frozen=True, slots=True)
class WhaleAlert:
    id: str
    liquidation: Liquidation
    severity: Severity
    at: float
    reason: str

    @property
    def scope(self) -> str:
        return coin_scope(self.liquidation.coin)


COIN_SCOPE_PREFIX = "coin:"
VENUE_SCOPE_PREFIX = "venue:"


def coin_scope(coin: str) -> str:
    return COIN_SCOPE_PREFIX + coin


def venue_scope(venue: str) -> str:
    return VENUE_SCOPE_PREFIX + venue


GLOBAL_SCOPE = "global"


def cascade_id(scope: str, side: PositionSide, started_at: float) -> str:
    """Stable for one cascade, unique across cascades, the same in a replay."""
    text = f"{scope}|{side.value}|{round(started_at * 1000)}"
    return "cas-" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def whale_id(liquidation: Liquidation) -> str:
    return "whl-" + hashlib.blake2b(liquidation.event_id.encode(), digest_size=8).hexdigest()


def rfc3339(seconds: float) -> str:
    text = datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _shares(items: tuple[Share, ...], key: str) -> list[dict[str, Any]]:
    return [{key: s.name, "usd": round(s.usd, 2), "share": round(s.share, 4)} for s in items]


def alert_payload(alert: CascadeAlert | WhaleAlert) -> dict[str, Any]:
    """THE JSON document of an alert, shared by MQTT and every webhook format.

    ``scope``, ``position_side`` and ``severity`` are named as the Prometheus alert labels,
    and ``alertname`` as the Prometheus alert, so native and bridged messages look alike.
    """
    if isinstance(alert, WhaleAlert):
        liq = alert.liquidation
        at_ms = liq.exchange_ts_ms
        return {
            "schema": SCHEMA,
            "id": alert.id,
            "kind": "whale",
            "alertname": WHALE_ALERT_NAME,
            "status": AlertState.FIRING.value,
            "severity": alert.severity.value,
            "scope": alert.scope,
            "position_side": liq.position_side.value,
            # venue and coin: the labels of the Prometheus LiqmonWhaleLiquidation alert.
            "venue": liq.venue,
            "coin": liq.coin,
            "venues": [{"venue": liq.venue, "usd": round(liq.notional_usd, 2), "share": 1.0}],
            "coins": [{"coin": liq.coin, "usd": round(liq.notional_usd, 2), "share": 1.0}],
            "usd": round(liq.notional_usd, 2),
            "price": liq.price,
            "liquidation": liq.to_json_dict(),
            "reason": alert.reason,
            "time": rfc3339(alert.at),
            "time_ms": round(alert.at * 1000),
            "started_at": rfc3339(at_ms / 1000),
            "started_at_ms": at_ms,
        }
    return {
        "schema": SCHEMA,
        "id": alert.id,
        "kind": "cascade",
        "alertname": CASCADE_ALERT_NAME,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "scope": alert.scope,
        "position_side": alert.position_side.value,
        "venues": _shares(alert.venues, "venue"),
        "coins": _shares(alert.coins, "coin"),
        "window_seconds": alert.window_seconds,
        "usd": round(alert.usd, 2),
        "usd_per_minute": round(alert.usd_per_minute, 2),
        "acceleration": round(alert.acceleration, 3),
        "long_share": round(alert.long_share, 4),
        "baseline_multiple": round(alert.baseline_multiple, 2),
        "count": alert.count,
        "symbol_seconds": alert.symbol_seconds,
        "price_move": None if alert.price_move is None else round(alert.price_move, 5),
        "peak_usd": round(alert.peak_usd, 2),
        "peak_at": rfc3339(alert.peak_at),
        "total_usd": round(alert.total_usd, 2),
        "peak_severity": (alert.peak_severity or alert.severity).value,
        "promoted_from": alert.promoted_from,
        "reason": alert.reason,
        "time": rfc3339(alert.at),
        "time_ms": round(alert.at * 1000),
        "started_at": rfc3339(alert.started_at),
        "started_at_ms": round(alert.started_at * 1000),
    }


def alert_log_line(alert: CascadeAlert | WhaleAlert) -> str:
    """One line for the WARNING log: kind, status, severity, scope, side, id, then the reason."""
    if isinstance(alert, WhaleAlert):
        liq = alert.liquidation
        return (
            f"whale {alert.severity.value} {alert.scope} {liq.position_side.value} "
            f"id={alert.id}: {alert.reason}"
        )
    return (
        f"cascade {alert.status.value} {alert.severity.value} {alert.scope} "
        f"{alert.position_side.value} id={alert.id}: {alert.reason}"
    )


def format_usd(usd: float) -> str:
    """$950, $12.3k, $212M, $2.57B: short enough for one-line reasons."""
    a = abs(usd)
    if a >= 1e9:
        return f"${usd / 1e9:.2f}B"
    if a >= 1e8:
        return f"${usd / 1e6:.0f}M"
    if a >= 1e6:
        return f"${usd / 1e6:.1f}M"
    if a >= 1e3:
        return f"${usd / 1e3:.1f}k"
    return f"${usd:.0f}"


def format_duration(seconds: float) -> str:
    s = round(seconds)
    if s % 3600 == 0 and s >= 3600:
        return f"{s // 3600}h"
    if s >= 3600:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    if s % 60 == 0 and s >= 60:
        return f"{s // 60}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"
