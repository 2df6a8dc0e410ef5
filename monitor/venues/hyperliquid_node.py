"""Hyperliquid from a node: liquidations in the node's ``node_fills_by_block`` lines.

A non-validating node run with ``--write-fills --batch-by-block`` writes one JSON object a
line per block to ``~/hl/data/node_fills_by_block/hourly/{YYYYMMDD}/{hour}``::

    {"local_time": "2025-07-27T08:50:10.334741319",
     "block_time": "2025-07-27T08:50:10.273720809",
     "block_number": 676607012,
     "events": [["0x<user>", {"coin": "SOL", "px": "72.153", "sz": "0.58", "side": "A",
                 "time": 1782636233257, "startPosition": "-162.6", "dir": "Open Short",
                 "tid": 340554939716632, "liquidation": {"liquidatedUser": "0x<user>",
                 "markPx": "72.149", "method": "market"}, ...}], ...]}

(Field names from hyperliquid-dex/order_book_server ``Batch`` and public parsers of the
files.) Every fill of a liquidation carries the ``liquidation`` object, on both legs; only
the liquidated user's own fill (``user == liquidatedUser``) is counted, so each liquidated
quantity is counted once. Its ``dir`` says what was closed (``Close Long``, ``Liquidated
Cross Long``, ``Liquidated Isolated Short``); where it names neither side (auto-deleveraging,
position flips) the sign of ``startPosition`` decides, then the fill's side (a sell closes a
long). Notional is px × sz in the quote collateral (USDC), taken as USD. The node writes
every fill, so completeness is ``full``.

``method`` (``market`` or ``backstop``) has no place in :class:`Liquidation`; it is kept on
:class:`NodeLiquidation`, returned by :func:`parse_block`, for the caller to count or log.
``dir`` values other than the liquidated user's own fill (the liquidator's, the
counterparty's, an auto-deleveraged profitable user's) never become events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, PositionSide, event_id_from_text

VENUE = "hyperliquid-node"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class NodeLiquidation:
    liquidation: Liquidation
    method: str  # "market" (orders sent to the book) or "backstop" (the liquidator vault)
    mark_price: float  # the mark price that triggered it; 0.0 when absent
    liquidated_user: str


@dataclass(frozen=True, slots=True)
class NodeBlock:
    block_number: int
    block_time_ms: int
    liquidations: list[NodeLiquidation] = field(default_factory=list)
    invalid: list[dialect.Invalid] = field(default_factory=list)


def parse_block_line(text: str, received_at: float) -> list[Liquidation]:
    """The liquidations of one block line. Raises FrameError on a malformed line.

    A malformed liquidation fill among others is left out here; :func:`parse_block` reports
    it as an :class:`Invalid` and also keeps each liquidation's ``method``.
    """
    return [n.liquidation for n in parse_block(text, received_at).liquidations]


def parse_block(text: str, received_at: float) -> NodeBlock:
    """One ``node_fills_by_block`` line. Raises FrameError on a malformed line."""
    block = _json.obj(_json.loads(text), "block")
    number = _json.req_int(block, "block_number")
    block_time_ms = naive_utc_to_ms(_json.req(block, "block_time"), "block_time")
    events = _json.arr(_json.req(block, "events"), "events")
    liquidations: list[NodeLiquidation] = []
    invalid: list[dialect.Invalid] = []
    for event in events:
        # Most fills carry no liquidation: a cheap look before any checking.
        fill = event[1] if isinstance(event, list) and len(event) == 2 else None
        if isinstance(fill, dict) and fill.get("liquidation") is None:
            continue
        try:
            found = _liquidation(event, received_at)
        except FrameError as exc:
            if len(events) == 1:
                raise
            invalid.append(dialect.Invalid(exc.reason, exc.detail))
            continue
        if found is not None:
            liquidations.append(found)
    return NodeBlock(number, block_time_ms, liquidations, invalid)


def naive_utc_to_ms(value: object, what: str) -> int:
    """Epoch milliseconds of the node's naive UTC times (``2025-07-27T08:50:10.273720809``).

    Python reads at most microseconds, so the nanosecond digits are cut first.
    """
    if not isinstance(value, str):
        raise FrameError(
            _json.BAD_VALUE, f"{what}: expected a time string, got {_json.describe(value)}"
        )
    head, dot, fraction = value.partition(".")
    digits = fraction.rstrip("Z")
    if dot and not (digits.isascii() and digits.isdigit()):
        raise FrameError(_json.BAD_VALUE, f"{what}: not a time: {_json.describe(value)}")
    try:
        moment = datetime.fromisoformat(head + (dot + digits[:6] if dot else ""))
    except ValueError:
        raise FrameError(_json.BAD_VALUE, f"{what}: not a time: {_json.describe(value)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def _liquidation(event: object, received_at: float) -> NodeLiquidation | None:
    pair = _json.arr(event, "event")
    if len(pair) != 2:
        raise FrameError(_json.BAD_VALUE, f"event: expected [user, fill], got {len(pair)} items")
    user = pair[0]
    if not isinstance(user, str):
        raise FrameError(
            _json.BAD_VALUE, f"event user: expected a string, got {_json.describe(user)}"
        )
    fill = _json.obj(pair[1], "fill")
    info = _json.obj(_json.req(fill, "liquidation"), "liquidation")
    liquidated = _json.req_str(info, "liquidatedUser")
    if liquidated.lower() != user.lower():
        return None  # the liquidator's or the counterparty's leg of the same fill
    coin_raw = _json.req_str(fill, "coin")
    price = _json.positive(_json.req_float(fill, "px"), "px")
    size = _json.positive(_json.req_float(fill, "sz"), "sz")
    ts = _json.req_int(fill, "time")
    tid = _json.req(fill, "tid")
    if not isinstance(tid, int | str) or isinstance(tid, bool):
        raise FrameError(_json.BAD_VALUE, f"tid: expected an id, got {_json.describe(tid)}")
    side = _position_side(fill)
    method = info.get("method")
    # HIP-3 markets are "dex:COIN"; the coin is the part after the dex name.
    coin, mult = instr.normalise_coin(coin_raw.rpartition(":")[2])
    _json.in_range(coin_raw, price * size, size)
    liquidation = Liquidation(
        venue=VENUE, instrument=coin_raw, coin=coin, position_side=side, price=price / mult,
        qty_base=size * mult, notional_usd=price * size, exchange_ts_ms=ts,
        received_at=received_at, completeness=Completeness.FULL,
        event_id=event_id_from_text(VENUE, f"{VENUE}\x1f{tid}\x1f{user.lower()}"))
    return NodeLiquidation(
        liquidation, method if isinstance(method, str) else "",
        _json.opt_float(info, "markPx"), liquidated)


def _position_side(fill: dict[str, Any]) -> PositionSide:
    direction = fill.get("dir")
    # "Open ..." and flips ("Long > Short") do not name the closed position.
    if isinstance(direction, str) and ">" not in direction and not direction.startswith("Open"):
        if direction.endswith("Long"):
            return PositionSide.LONG
        if direction.endswith("Short"):
            return PositionSide.SHORT
    start = _json.opt_float(fill, "startPosition")
    if start > 0.0:
        return PositionSide.LONG
    if start < 0.0:
        return PositionSide.SHORT
    side = fill.get("side")
    if side == "A":
        return PositionSide.LONG  # a forced sell closes a long
    if side == "B":
        return PositionSide.SHORT
    raise FrameError(
        _json.BAD_VALUE, f"cannot tell the position side: dir {_json.describe(direction)}"
    )
