"""Hyperliquid node fills and block lines in the node's own format, for the node tests."""

from __future__ import annotations

from typing import Any

import orjson

LIQUIDATED = "0x5ef843ccf26810073ee689a954f6d05f5b48fccb"
MAKER = "0xa775d1bd91ee2cc4cae6113e5fd9c0c17b355277"
VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"


def fill(coin: str = "SOL", px: str = "72.153", sz: str = "0.58", side: str = "A",
         start: str = "162.6", direction: str = "Close Long", tid: int = 340554939716632,
         liquidated: str | None = LIQUIDATED, method: str = "market", **extra: Any
         ) -> dict[str, Any]:
    """A fill in the node's format (hyperliquid API fill fields plus the liquidation object)."""
    row: dict[str, Any] = {
        "coin": coin, "px": px, "sz": sz, "side": side, "time": 1782636233257,
        "startPosition": start, "dir": direction, "closedPnl": "-12.5",
        "hash": "0xdc25d330b40799afdd9f043ebc4c38000060eb164f0ab8817fee7e83730b739a",
        "oid": 481702553903, "crossed": True, "fee": "0.0125", "tid": tid, "feeToken": "USDC",
        "twapId": None, **extra}
    if liquidated is not None:
        row["liquidation"] = {"liquidatedUser": liquidated, "markPx": "72.149", "method": method}
    return row


def block(*events: Any, number: int = 1052527672,
          block_time: str = "2026-06-28T08:43:53.257028820") -> str:
    """One line of a fills file: a block holding ``events`` (each a [user, fill] pair)."""
    return orjson.dumps({"local_time": "2026-06-28T08:43:53.687645997", "block_time": block_time,
                         "block_number": number, "events": list(events)}).decode()
