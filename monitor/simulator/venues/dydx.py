"""dYdX v4 indexer (socks) websocket and markets, as the simulator serves them.

* Websocket path ``/v4/ws``; the server greets with ``{"type":"connected",...}``.
  ``{"type":"subscribe","channel":"v4_trades","id":"BTC-USD","batched":true}`` is answered by
  ``{"type":"subscribed",...,"contents":{"trades":[...]}}``, a snapshot of recent trades
  (liquidations already sent elsewhere included: history the client must skip).
  ``v4_markets`` (no id) answers with every market's current ``oraclePrice``.
* Updates: ``channel_batch_data`` (``contents`` an array of ``{"trades":[...]}``) for batched
  subscriptions, ``channel_data`` otherwise; oracle prices as ``{"oraclePrices":{...}}``.
  A liquidation is a trade of ``type`` ``LIQUIDATED`` whose ``side`` is the taker's (the
  liquidation order): ``SELL`` closes a long. Every tenth liquidation is followed by a
  ``DELEVERAGED`` trade, which is not a liquidation and carries none.
* Limits as socks enforces them: at most 32 ids per channel per connection, and at most 2
  subscribe messages per second per connection (the real limiter is keyed per channel and
  id; one per connection is the stricter reading, with 50 ms allowed for timer jitter).
  Breaking the rate limit gets an error and the connection closed with 1008, like socks;
  an unknown market or the limit of ids gets an error only. Error texts follow socks where
  its source shows them; the text of the per-channel limit is the simulator's own.
* The server's 30 s heartbeat is a WebSocket protocol ping, answered by the client's
  library; the core's server does the same, so nothing is sent here for it.
* REST ``/v4/perpetualMarkets``: ``{"markets":{ticker:{...,"status","oraclePrice"}}}``.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

import monitor.simulator.venue_sim as venue_sim
import monitor.simulator.venues.common as common
from monitor.events import PositionSide
from monitor.simulator.catalogue import Listing, fmt, venue_price, venue_quantity

VENUE = "dydx"
ORACLE_MS = 1000
CHANNEL_LIMIT = 32
SUBSCRIBES_PER_SECOND = 2
RATE_WINDOW_SECONDS = 0.95  # one second, less an allowance for timer jitter
POLICY_VIOLATION = 1008
MARKETS_ID = "v4_markets"
_connection_ids = itertools.count(1)


def iso_ms(ts_ms: int) -> str:
    """``2026-02-01T00:00:00.123Z``, the indexer's time format."""
    moment = datetime.fromtimestamp(ts_ms // 1000, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ts_ms % 1000:03d}Z"


class DydxSim(common.VenueSimBase):
    venue = VENUE
    price_interval_ms = ORACLE_MS

    def __init__(self, ctx: venue_sim.SimContext) -> None:
        super().__init__(ctx)
        self.recent = common.RecentLiquidations()
        self._pending: dict[str, list[venue_sim.Liq]] = {}
        self.height = 1_000_000

    # --- REST ------------------------------------------------------------------------------

    def rest(self, request: venue_sim.RestRequest) -> venue_sim.RestReply | None:
        if request.path != "/v4/perpetualMarkets":
            return None
        return common.json_reply(
            {"markets": {m: self._market(i) for m, i in self.listings.items()}})

    def _market(self, item: Listing) -> dict[str, Any]:
        return {
            "clobPairId": str(list(self.listings).index(item.symbol)), "ticker": item.symbol,
            "status": "ACTIVE", "oraclePrice": self._oracle(item), "priceChange24H": "0",
            "volume24H": "1000000", "trades24H": 1000, "nextFundingRate": "0",
            "initialMarginFraction": "0.05", "maintenanceMarginFraction": "0.03",
            "openInterest": "1000", "atomicResolution": -10, "quantumConversionExponent": -9,
            "tickSize": fmt(10.0**-item.price_decimals, item.price_decimals),
            "stepSize": fmt(10.0**-item.qty_decimals, item.qty_decimals),
            "stepBaseQuantums": 1000000, "subticksPerTick": 100000, "marketType": "CROSS",
        }  # fmt: skip

    def _oracle(self, item: Listing) -> str:
        return fmt(venue_price(item, self.prices.get(item.coin)), item.price_decimals)

    # --- websocket -------------------------------------------------------------------------

    def open(self, path: str, query: str, *, reject: bool) -> DydxSession | None:
        return DydxSession(self, reject) if path == "/v4/ws" else None

    def on_liquidation(self, liq: venue_sim.Liq) -> None:
        self._pending.setdefault(liq.event.instrument, []).append(liq)

    def flush(self, now: venue_sim.SimNow, final: bool = False) -> list[venue_sim.Publication]:
        out = []
        for market, batch in self._pending.items():
            self.height += 1
            trades: list[dict[str, Any]] = []
            for liq in batch:
                trades.append(self.trade(liq, self.height))
                if liq.seq % 10 == 0:
                    trades.append(self._deleveraged(liq, self.height))
            topic = f"v4_trades:{market}"
            out.append(venue_sim.Publication((topic,), orjson.dumps({"trades": trades}).decode(),
                                             tuple(batch)))
            self.recent.add(topic, batch)
        self._pending = {}
        if self.prices.due(now.exchange_ms) and MARKETS_ID in self.ctx.subscribed:
            self.height += 1
            prices = {
                market: {"oraclePrice": self._oracle(item), "price": self._oracle(item),
                         "effectiveAt": iso_ms(now.exchange_ms),
                         "effectiveAtHeight": str(self.height), "marketId": n}
                for n, (market, item) in enumerate(self.listings.items())
            }  # fmt: skip
            text = orjson.dumps({"oraclePrices": prices}).decode()
            out.append(venue_sim.Publication((MARKETS_ID,), text))
        return out

    def trade(self, liq: venue_sim.Liq, height: int) -> dict[str, Any]:
        event = liq.event
        item = self.listings[event.instrument]
        size = venue_quantity(item, event.qty_base, event.notional_usd)
        return {
            "id": f"{liq.seq:024x}", "side": "SELL" if event.position_side is PositionSide.LONG
            else "BUY", "size": fmt(size, item.qty_decimals),
            "price": fmt(venue_price(item, event.price), item.price_decimals), "type": "LIQUIDATED",
            "createdAt": iso_ms(liq.ts_ms), "createdAtHeight": str(height),
        }  # fmt: skip

    def _deleveraged(self, liq: venue_sim.Liq, height: int) -> dict[str, Any]:
        row = self.trade(liq, height)
        # An id no liquidation uses: the top bit is never set by a sequence number.
        row.update(id=f"8{liq.seq:023x}", type="DELEVERAGED")
        return row

    def markets_snapshot(self) -> dict[str, Any]:
        return {"markets": {m: self._market(i) for m, i in self.listings.items()}}


class DydxSession(common.SessionBase[DydxSim]):
    def __init__(self, sim: DydxSim, reject: bool) -> None:
        super().__init__(sim, reject)
        self.connection_id = f"sim-dydx-{next(_connection_ids):08d}"
        self.message_id = 0
        self.batched: set[str] = set()
        self._subscribes: deque[float] = deque()

    def _message(self, body: dict[str, Any], is_data: bool = False,
                 liquidations: tuple[venue_sim.Liq, ...] = ()) -> venue_sim.Frame:  # fmt: skip
        self.message_id += 1
        head = {"type": body.pop("type"), "connection_id": self.connection_id,
                "message_id": self.message_id}
        return venue_sim.Frame(orjson.dumps({**head, **body}).decode(), is_data, liquidations)

    def _error(self, message: str) -> venue_sim.Frame:
        return self._message({"type": "error", "message": message})

    def on_open(self, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        self.message_id = 0
        return [venue_sim.Frame(orjson.dumps(
            {"type": "connected", "connection_id": self.connection_id, "message_id": 0}).decode())]

    def on_text(self, text: str, now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:
        try:
            request = orjson.loads(text)
        except orjson.JSONDecodeError:
            return [self._error("Invalid message: could not parse")]
        if not isinstance(request, dict) or "type" not in request:
            return [self._error("Invalid message: type is required")]
        kind, channel, market = request["type"], request.get("channel"), request.get("id")
        if kind == "ping":
            return ()
        if kind not in ("subscribe", "unsubscribe"):
            return [self._error(f"Invalid message type: {kind}")]
        if channel not in ("v4_trades", MARKETS_ID):
            return [self._error(f"Invalid channel: {channel}")]
        topic = MARKETS_ID if channel == MARKETS_ID else f"v4_trades:{market}"
        if kind == "unsubscribe":
            self.release([topic])
            body = {"type": "unsubscribed", "channel": channel}
            return [self._message(body if channel == MARKETS_ID else {**body, "id": market})]
        return self._subscribe(channel, market, topic, request.get("batched") is True, now)

    def _subscribe(self, channel: str, market: object, topic: str, batched: bool,
                   now: venue_sim.SimNow) -> Sequence[venue_sim.Out]:  # fmt: skip
        window = self._subscribes
        while window and now.wall - window[0] >= RATE_WINDOW_SECONDS:
            window.popleft()
        window.append(now.wall)
        if len(window) > SUBSCRIBES_PER_SECOND:
            return [self._error(f"Too many subscribe attempts for channel {channel}-{market}. "
                                "Please  reconnect and try again."),
                    venue_sim.Close(POLICY_VIOLATION, '{"message":"Rate limited"}')]  # fmt: skip
        if channel == "v4_trades" and (self.reject or market not in self.sim.listings):
            return [self._error(f"Invalid subscription id for channel: ({channel}-{market})")]
        if topic in self.held:
            return [self._error(f"Invalid subscribe message: already subscribed "
                                f"({channel}-{market if channel != MARKETS_ID else channel})")]
        if channel == "v4_trades" and sum(t.startswith("v4_trades:") for t in self.held) >= (
                CHANNEL_LIMIT):
            return [self._error(f"Subscription limit reached for channel {channel}")]
        self.hold([topic])
        if batched:
            self.batched.add(topic)
        if channel == MARKETS_ID:
            return [self._message({"type": "subscribed", "channel": channel,
                                   "contents": self.sim.markets_snapshot()}, is_data=True)]
        # History: only trades some connection already received.
        replayed = [liq for liq in self.sim.recent.get(topic) if self.sim.ctx.was_sent(liq.seq)]
        trades = [self.sim.trade(liq, self.sim.height) for liq in reversed(replayed)]
        body = {"type": "subscribed", "channel": channel, "id": market,
                "contents": {"trades": trades}}
        return [self._message(body, is_data=True, liquidations=tuple(replayed))]

    def render(self, pub: venue_sim.Publication) -> str | None:
        topic = pub.topics[0]
        if topic not in self.held:
            return None
        self.message_id += 1
        contents = f"[{pub.payload}]" if topic in self.batched else pub.payload
        market = "" if topic == MARKETS_ID else f',"id":"{topic.partition(":")[2]}"'
        channel = topic.partition(":")[0]
        kind = "channel_batch_data" if topic in self.batched else "channel_data"
        return (f'{{"type":"{kind}","connection_id":"{self.connection_id}",'
                f'"message_id":{self.message_id}{market},"channel":"{channel}",'
                f'"version":"2.1.0","contents":{contents}}}')


def make(ctx: venue_sim.SimContext) -> DydxSim:
    return DydxSim(ctx)
