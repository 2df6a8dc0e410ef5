"""Fuzzing venue frames: what every dialect must survive, and how frames are bent.

The property: whatever text (or binary frame) arrives, a session yields items or raises
FrameError, never anything else, and every event it yields is a valid one. Frames are
bent from real ones (golden frames and seeds): a node deleted, replaced by any JSON value
or itself bent, the text truncated, or a few characters spliced in.
"""

from __future__ import annotations

import math
from typing import Any

import orjson
from hypothesis import HealthCheck, settings, strategies as st

from monitor.errors import FrameError
from monitor.events import Liquidation, MarkPrice, PositionSide
from monitor.venues.dialect import DialectSession, Item, Rejection

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Deeper than repr() and orjson.dumps can go: a dialect must not render such a value.
DEEP = "[" * 1000 + "]" * 1000
# The longest venue message a notice may carry.
MESSAGE_LIMIT = 500

_LEAF = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["", "0", "-1", "nan", "inf", "1e400", "1_0", "BUY", "SELL", "Buy", "Sell",
                       "buy", "sell", "long", "short", "net", "T", "M", "MT", "2.5", "BTCUSDT",
                       "BTCUSD", "BTC-PERPETUAL", "BTC-USDT-SWAP", "PF_XBTUSD", "forceOrder",
                       "markPriceUpdate", "snapshot", "delta", "update", "insert", "partial",
                       "subscribe", "pong", "LIQUIDATED", "liquidation"])
)
JSON_VALUES = st.recursive(
    _LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                      max_size=3),
    max_leaves=6)


def check_items(items: list[Item]) -> None:
    """Events are valid whatever the input; notices carry bounded venue text."""
    for item in items:
        if isinstance(item, Liquidation):
            assert 0 < item.notional_usd < math.inf and 0 < item.qty_base < math.inf
            assert 0 < item.price < math.inf
            assert item.position_side in (PositionSide.LONG, PositionSide.SHORT)
        elif isinstance(item, MarkPrice):
            assert 0 < item.price < math.inf
        elif isinstance(item, Rejection):
            assert len(item.message) <= MESSAGE_LIMIT


def parse_only_frame_errors(session: DialectSession, text: str) -> None:
    """Any input yields valid items or a FrameError, never a crash."""
    try:
        items = session.parse(text, 1_769_904_000.0)
    except FrameError:
        return
    check_items(items)


def mutate(data: st.DataObject, value: Any) -> Any:
    """``value`` with one node deleted, replaced or (recursively) mutated."""
    if isinstance(value, dict | list) and value:
        keys = sorted(value) if isinstance(value, dict) else list(range(len(value)))
        key = data.draw(st.sampled_from(keys))
        action = data.draw(st.sampled_from(["delete", "replace", "descend"]))
        copy: Any = dict(value) if isinstance(value, dict) else list(value)
        if action == "delete":
            del copy[key]
        else:
            copy[key] = (data.draw(JSON_VALUES) if action == "replace"
                         else mutate(data, value[key]))
        return copy
    return data.draw(JSON_VALUES)


def mutated_text(data: st.DataObject, frames: list[str]) -> str:
    """One of ``frames``, bent: JSON mutated one to three times, truncated, or spliced."""
    frame = data.draw(st.sampled_from(frames))
    how = data.draw(st.sampled_from(["json", "json", "json", "truncate", "splice"]))
    if how == "truncate":
        return frame[: data.draw(st.integers(0, len(frame)))]
    if how == "splice":
        at = data.draw(st.integers(0, len(frame)))
        return frame[:at] + data.draw(st.text(max_size=3)) + frame[at:]
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError:  # a text frame such as "pong"
        return frame[: data.draw(st.integers(0, len(frame)))]
    for _ in range(data.draw(st.integers(1, 3))):
        value = mutate(data, value)
    return orjson.dumps(value).decode()


def deep_variants(frame: str, limit: int = 40) -> list[str]:
    """``frame`` with each of its first ``limit`` leaves replaced by :data:`DEEP`."""
    try:
        value = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return []
    marker = "\x00deep\x00"
    variants: list[str] = []

    def walk(node: Any, replace: Any) -> None:
        if len(variants) >= limit:
            return
        if isinstance(node, dict | list) and node:
            for key in (list(node) if isinstance(node, dict) else range(len(node))):
                walk(node[key], lambda new, k=key, n=node: _set(n, k, new, replace))
        else:
            variants.append(orjson.dumps(replace(marker)).decode().replace(
                orjson.dumps(marker).decode(), DEEP))

    walk(value, lambda new: new)
    return variants


def _set(node: Any, key: Any, new: Any, replace: Any) -> Any:
    copy: Any = dict(node) if isinstance(node, dict) else list(node)
    copy[key] = new
    return replace(copy)
