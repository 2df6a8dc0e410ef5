"""How the command line writes numbers and times for people: short, and the same everywhere.

``$1.94M`` rather than ``$1936798966``: a tape, ``top`` at 80 columns and the demo all read
USD at a glance, and a fixed number of significant digits keeps columns narrow.
"""

from __future__ import annotations

import time

SIDE_STYLE = {"long": "red", "short": "green"}  # longs liquidated = price fell, as on aggr


def usd(value: float) -> str:
    """``$950``, ``$12.3k``, ``$1.94M``, ``$2.07B``: three significant digits from 1,000."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale * 0.9995:
            scaled = value / scale
            digits = 2 if scaled < 10 else 1 if scaled < 100 else 0
            return f"{sign}${scaled:.{digits}f}{unit}"
    return f"{sign}${value:.0f}"


def price(value: float) -> str:
    """Enough digits to tell prices apart: ``97,312.5``, ``3,412.07``, ``0.2143``."""
    if value >= 10_000:
        return f"{value:,.1f}"
    if value >= 1:
        return f"{value:,.2f}"
    return f"{value:.6g}"


def clock(seconds: float) -> str:
    """``HH:MM:SS`` in UTC (the time every venue and the store use)."""
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


def elapsed(seconds: float) -> str:
    """A market clock: ``1:07:30`` into a scenario."""
    whole = int(max(0.0, seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def parse_usd(text: str) -> float:
    """``250000``, ``250k``, ``1.5M``, ``$2m`` → dollars. Raises ValueError on anything else."""
    cleaned = text.strip().lstrip("$").replace(",", "").replace("_", "")
    scale = {"k": 1e3, "m": 1e6, "b": 1e9}.get(cleaned[-1:].lower(), 1.0)
    if scale != 1.0:
        cleaned = cleaned[:-1]
    value = float(cleaned) * scale
    if not value >= 0:
        raise ValueError(f"{text!r} is not a USD amount >= 0")
    return value
