"""A minimal client of the simulator: subscribe to everything, count what arrives.

It is independent of the dialects on purpose: tests use it to check the simulator's own
frames and counts, and it shows in a few lines what each venue expects from a client.
``decode`` reads only the simulator's frame shapes, using the simulated catalogue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import websockets

from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, listings
from monitor.simulator.venues.hyperliquid import LIQUIDATOR_VAULTS


@dataclass(frozen=True, slots=True)
class Plan:
    path: str  # appended to the venue's ws base URL
    frames: tuple[str, ...]  # sent after connecting


def _dumps(obj: object) -> str:
    return orjson.dumps(obj).decode()


def plans(venue: str) -> list[Plan]:
    """The connections and subscribe frames that receive every liquidation of ``venue``."""
    items = listings(venue)
    if venue == "binance-usdm":
        params = ["!forceOrder@arr", "!markPrice@arr@1s"]
        return [Plan("/market/ws", (_dumps({"method": "SUBSCRIBE", "params": params, "id": 1}),))]
    if venue == "binance-coinm":
        params = ["!forceOrder@arr", "!markPrice@arr@1s"]
        return [Plan("/ws", (_dumps({"method": "SUBSCRIBE", "params": params, "id": 1}),))]
    if venue == "bybit":
        out = []
        for category in ("linear", "inverse"):
            symbols = [i.symbol for i in items if i.spec.category == category]
            topics = [f"allLiquidation.{s}" for s in symbols] + [f"tickers.{symbols[0]}"]
            frame = _dumps({"op": "subscribe", "args": topics, "req_id": category})
            out.append(Plan(f"/v5/public/{category}", (frame,)))
        return out
    if venue == "okx":
        args: list[dict[str, str]] = [
            {"channel": "liquidation-orders", "instType": t} for t in ("SWAP", "FUTURES")
        ]
        args.append({"channel": "mark-price", "instId": "BTC-USDT-SWAP"})
        return [Plan("/ws/v5/public", (_dumps({"op": "subscribe", "args": args, "id": "1"}),))]
    if venue == "hyperliquid":
        frames = [
            _dumps({"method": "subscribe", "subscription": {"type": "trades", "coin": i.symbol}})
            for i in items
        ]
        frames.append(_dumps({"method": "subscribe", "subscription": {"type": "allMids"}}))
        return [Plan("/ws", tuple(frames))]
    raise KeyError(f"no probe plan for {venue!r}")


@dataclass(frozen=True, slots=True)
class Seen:
    """One liquidation as the probe decoded it."""

    venue: str
    instrument: str
    side: PositionSide
    notional_usd: float
    key: tuple[Any, ...]  # identifies the liquidation across duplicates and replays


def _listing(venue: str, symbol: str) -> Listing:
    for item in listings(venue):
        if item.symbol == symbol:
            return item
    raise KeyError(symbol)


def decode(venue: str, text: str) -> list[Seen]:
    """Liquidations in one simulator frame; raises ValueError on a malformed frame."""
    try:
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"malformed frame: {text[:80]!r}") from exc
    if not isinstance(doc, dict):
        return []
    if venue.startswith("binance"):
        doc = doc.get("data", doc)
        if not isinstance(doc, dict) or doc.get("e") != "forceOrder":
            return []
        o = doc["o"]
        item = _listing(venue, o["s"])
        qty = float(o["z"])
        usd = qty * item.spec.contract_size if item.inverse else qty * float(o["ap"])
        side = PositionSide.LONG if o["S"] == "SELL" else PositionSide.SHORT
        return [Seen(venue, o["s"], side, usd, (o["s"], o["T"], o["S"], o["z"], o["ap"]))]
    if venue == "bybit":
        if not str(doc.get("topic", "")).startswith("allLiquidation."):
            return []
        out = []
        for row in doc["data"]:
            item = _listing(venue, row["s"])
            usd = float(row["v"]) * (1.0 if item.inverse else float(row["p"]))
            side = PositionSide.LONG if row["S"] == "Buy" else PositionSide.SHORT
            out.append(Seen(venue, row["s"], side, usd, (row["s"], row["T"], row["S"], row["v"])))
        return out
    if venue == "okx":
        if doc.get("arg", {}).get("channel") != "liquidation-orders" or "data" not in doc:
            return []
        out = []
        for element in doc["data"]:
            item = _listing(venue, element["instId"])
            for d in element["details"]:
                contracts = float(d["sz"])
                usd = contracts * item.spec.contract_size
                if not item.inverse:
                    usd *= float(d["bkPx"])
                if d["posSide"] in ("long", "short"):
                    side = PositionSide(d["posSide"])
                else:
                    side = PositionSide.LONG if d["side"] == "sell" else PositionSide.SHORT
                key = (element["instId"], d["ts"], d["side"], d["sz"], d["bkPx"])
                out.append(Seen(venue, element["instId"], side, usd, key))
        return out
    if venue == "hyperliquid":
        if doc.get("channel") != "trades":
            return []
        out = []
        for trade in doc["data"]:
            buyer, seller = trade["users"]
            if buyer in LIQUIDATOR_VAULTS:
                side = PositionSide.LONG
            elif seller in LIQUIDATOR_VAULTS:
                side = PositionSide.SHORT
            else:
                continue
            usd = float(trade["px"]) * float(trade["sz"])
            out.append(Seen(venue, trade["coin"], side, usd, (trade["tid"],)))
        return out
    raise KeyError(venue)


@dataclass
class Tally:
    """What a probe received: unique liquidations per venue and side, and frame counts."""

    seen: dict[tuple[Any, ...], Seen] = field(default_factory=dict)
    frames: int = 0
    malformed: int = 0
    duplicates: int = 0
    control: list[str] = field(default_factory=list)

    def add(self, venue: str, text: str) -> None:
        self.frames += 1
        try:
            items = decode(venue, text)
        except (ValueError, KeyError, TypeError):
            self.malformed += 1
            return
        if not items and len(self.control) < 50:
            self.control.append(text[:200])
        for item in items:
            key = (venue, *item.key)
            if key in self.seen:
                self.duplicates += 1
            else:
                self.seen[key] = item

    def totals(self) -> dict[str, dict[str, dict[str, float]]]:
        out: dict[str, dict[str, dict[str, float]]] = {}
        for item in self.seen.values():
            sides = out.setdefault(
                item.venue, {s.value: {"count": 0, "usd": 0.0} for s in PositionSide}
            )
            sides[item.side.value]["count"] += 1
            sides[item.side.value]["usd"] += item.notional_usd
        return out


async def run_probe(
    ws_base_urls: dict[str, str],
    tally: Tally,
    stop: asyncio.Event,
    venues: Sequence[str],
    quiet_seconds: float = 0.3,
) -> None:
    """Connect every plan of ``venues`` and feed ``tally``. Once ``stop`` is set, each
    connection ends when it has received nothing for ``quiet_seconds`` (or is closed)."""

    async def one(venue: str, plan: Plan) -> None:
        async with websockets.connect(ws_base_urls[venue] + plan.path, max_size=None) as ws:
            for frame in plan.frames:
                await ws.send(frame)
            while True:
                try:
                    message = await asyncio.wait_for(ws.recv(), quiet_seconds)
                except TimeoutError:
                    if stop.is_set():
                        return
                    continue
                except websockets.ConnectionClosed:
                    return
                tally.add(venue, message if isinstance(message, str) else message.decode())

    await asyncio.gather(*(one(v, p) for v in venues for p in plans(v)))
