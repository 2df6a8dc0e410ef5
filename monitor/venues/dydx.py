"""dYdX v4 (indexer): liquidations from ``v4_trades``, oracle prices from ``v4_markets``.

Facts (reference/exchanges.md §12; dydxprotocol/v4-chain ``indexer/services/socks``):

* ``{ws}/v4/ws``; the server greets with ``{"type":"connected",...}``. One subscription per
  market: ``{"type":"subscribe","channel":"v4_trades","id":"BTC-USD","batched":true}``.
  Each is answered by ``{"type":"subscribed",...}`` whose ``contents`` is a snapshot of
  recent trades (one probe saw 78 old liquidations in it): skipped, it is history.
* Updates are ``channel_data`` (``contents`` an object) or, batched,
  ``channel_batch_data`` (``contents`` an array of such objects).
* The socks server allows 32 subscriptions per channel per connection
  (``V4_TRADES_CHANNEL_LIMIT``) and 2 subscribe messages a second
  (``RATE_LIMIT_SUBSCRIBE_POINTS``; its limiter is keyed by connection and channel+id, and
  a breach closes the connection): markets are sharded 32 to a connection and subscribe
  frames spaced 0.5 s apart, which keeps within the limit however it is keyed. Refusals
  come as ``{"type":"error","message":...}``.
* Trade ``type`` ``LIQUIDATED`` is a liquidation. ``side`` is the taker's, and the
  protocol's liquidation order is the taker, so ``SELL`` means a long was liquidated.
  Every trade is published: completeness ``full``.
* ``DELEVERAGED`` is auto-deleveraging, not a liquidation: it never becomes a Liquidation.
  Each one is reported as ``Info("deleveraged")`` (:data:`DELEVERAGED_INFO`) so that it can
  be counted separately.
* ``size`` is base units, ``price`` USD: notional = size × price. No REST is needed to value
  it; ``/v4/perpetualMarkets`` lists the markets to subscribe.
* The server pings every 30 s at the protocol level (websockets answers): no application
  ping. Every connection also subscribes ``v4_markets``, whose ``oraclePrices`` updates are
  the price stream and the liveness canary.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide

VENUE = "dydx"
MARKETS_PATH = "/v4/perpetualMarkets"
MAX_TRADES_SUBSCRIPTIONS_PER_CONNECTION = 32
SUBSCRIBE_INTERVAL_SECONDS = 0.5
DELEVERAGED_INFO = "deleveraged"
FALLBACK_MARKETS = ("BTC-USD",)
_SIDE = {"SELL": PositionSide.LONG, "BUY": PositionSide.SHORT}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
# Markets that can no longer trade; everything else may still see liquidations.
_CLOSED_STATUSES = ("FINAL",)


def iso_to_ms(value: object, what: str) -> int:
    """Epoch milliseconds of an ISO-8601 time (``2024-08-23T00:00:57.627Z``)."""
    if not isinstance(value, str):
        raise FrameError(_json.BAD_VALUE, f"{what}: expected an ISO-8601 string, got "
                                          f"{_json.describe(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise FrameError(_json.BAD_VALUE, f"{what}: not an ISO-8601 time: "
                                          f"{_json.describe(value)}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def market_coin(ticker: str) -> tuple[str, float]:
    """Coin and unit multiplier of a market ticker (``BTC-USD``, ``1000PEPE-USD``)."""
    base, sep, _quote = ticker.rpartition("-")
    if not sep or not base:
        raise FrameError(_json.BAD_VALUE, f"id: not a market ticker: {ticker!r:.40}")
    return instr.normalise_coin(base)


def _market_spec(pair: tuple[str, object]) -> instr.InstrumentSpec | None:
    """A listed market of ``/v4/perpetualMarkets``; None for one that can no longer trade."""
    ticker, row = pair
    if not isinstance(row, dict) or row.get("status") in _CLOSED_STATUSES:
        return None
    coin, mult = market_coin(ticker)
    return instr.InstrumentSpec(VENUE, ticker, coin, instr.ContractKind.LINEAR, 1.0, "USD",
                                base_multiplier=mult, category="perpetual")


class DydxSession(dialect.SessionDefaults):
    """Parse state of one dYdX connection (none beyond the wanted-market filter)."""

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        kind = msg.get("type")
        channel = msg.get("channel")
        if kind in ("channel_data", "channel_batch_data"):
            contents = _json.req(msg, "contents")
            batches = _json.arr(contents, "contents") if kind == "channel_batch_data" else [
                contents]
            if channel == "v4_trades":
                return self._trades(_json.req_str(msg, "id"), batches, received_at)
            if channel == "v4_markets":
                return self._oracle_prices(batches, received_at)
            return [dialect.Unrecognised("unknown_channel")]
        if kind == "subscribed":
            if channel == "v4_markets":
                return [dialect.Ack("v4_markets"), *self._market_snapshot(msg, received_at)]
            return [dialect.Ack(f"{_json.describe(channel)}:{_json.describe(msg.get('id'))}")]
        if kind == "error":
            message = msg.get("message")
            return [dialect.Rejection(
                message if isinstance(message, str) else _json.compact(msg, 500)
            )]
        if kind in ("connected", "unsubscribed"):
            return [dialect.Info(str(kind))]
        if kind == "pong":
            return [dialect.Pong()]
        return dialect.unknown("type", kind)

    # -- trades ---------------------------------------------------------------------------

    def _trades(self, market: str, batches: list[Any], received_at: float) -> list[dialect.Item]:
        if not self.is_wanted(market):
            return []
        rows: list[Any] = []
        for batch in batches:
            rows.extend(_json.arr(_json.req(_json.obj(batch, "contents"), "trades"), "trades"))
        return dialect.read_rows(
            rows, lambda row: self._trade(market, _json.obj(row, "trade"), received_at),
            raise_when=dialect.LONE_ROW)

    def _trade(self, market: str, row: dict[str, Any], received_at: float) -> dialect.Item | None:
        kind = row.get("type")
        if kind == "DELEVERAGED":
            return dialect.Info(DELEVERAGED_INFO)
        if kind != "LIQUIDATED":
            return None
        _raw_side, side = _json.req_choice(row, "side", _SIDE)
        size = _json.positive(_json.req_float(row, "size"), "size")
        price = _json.positive(_json.req_float(row, "price"), "price")
        ts = iso_to_ms(_json.req(row, "createdAt"), "createdAt")
        trade_id = _json.req_str(row, "id")
        coin, mult = self._coin(market)
        _json.in_range(market, size * price, size)
        return Liquidation(
            venue=VENUE, instrument=market, coin=coin, position_side=side, price=price / mult,
            qty_base=size * mult, notional_usd=size * price, exchange_ts_ms=ts,
            received_at=received_at, completeness=Completeness.FULL,
            event_id=f"{VENUE}:{trade_id}")

    def _coin(self, market: str) -> tuple[str, float]:
        spec = self._book.get(market)
        if spec is not None:
            return spec.coin, spec.base_multiplier
        return market_coin(market)

    # -- prices ---------------------------------------------------------------------------

    def _oracle_prices(self, batches: list[Any], received_at: float) -> list[dialect.Item]:
        items: list[dialect.Item] = []
        for batch in batches:
            prices = _json.obj(batch, "contents").get("oraclePrices")
            if prices is None:
                continue  # "trading" updates: funding, volume, status
            items += dialect.read_rows(
                list(_json.obj(prices, "oraclePrices").items()),
                lambda pair: self._oracle_price(pair[0], _json.obj(pair[1], "oraclePrice"),
                                                received_at), raise_when=dialect.NEVER)
        return items

    def _oracle_price(self, market: str, row: dict[str, Any], received_at: float
                      ) -> MarkPrice | None:
        if not self.is_wanted(market):
            return None
        price = _json.positive(_json.req_float(row, "price"), "price")
        effective = row.get("effectiveAt")
        ts = (iso_to_ms(effective, "effectiveAt") if effective is not None
              else int(received_at * 1000))
        coin, mult = self._coin(market)
        return MarkPrice(VENUE, market, coin, price / mult, ts, received_at)

    def _market_snapshot(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        """The current oracle prices in the ``v4_markets`` subscription answer.

        They carry no time of their own, so they are stamped with the arrival time.
        """
        contents = msg.get("contents")
        markets = contents.get("markets") if isinstance(contents, dict) else None
        if not isinstance(markets, dict):
            return []
        quoted = [(market, row["oraclePrice"]) for market, row in markets.items()
                  if isinstance(row, dict) and row.get("oraclePrice") not in (None, "")]
        return dialect.read_rows(quoted, lambda pair: self._oracle_price(
            pair[0], {"price": pair[1]}, received_at), raise_when=dialect.NEVER)


class Dydx(dialect.DialectDefaults):
    """No application ping (the server's protocol pings suffice), and no instruments needed
    to value a trade: size × price needs no contract terms."""

    venue = VENUE
    session_type = DydxSession
    completeness = Completeness.FULL
    instrument_document = ("perpetualMarkets", MARKETS_PATH)

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        markets = dialect.read_document(
            f"{VENUE} perpetualMarkets", body, lambda doc: list(_json.obj(
                _json.req(_json.obj(doc, "perpetualMarkets"), "markets"), "markets").items()))
        return dialect.read_specs(markets, _market_spec), None

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/v4/ws"
        if self.wanted is not None:
            markets = sorted(self.wanted)
        else:
            markets = sorted(s.instrument for s in instruments) or list(FALLBACK_MARKETS)
        markets_frame = orjson.dumps(
            {"type": "subscribe", "channel": "v4_markets", "batched": True}).decode()
        plans = []
        for n, shard in enumerate(dialect.chunks(markets, MAX_TRADES_SUBSCRIPTIONS_PER_CONNECTION)):
            frames = (markets_frame, *(
                orjson.dumps({"type": "subscribe", "channel": "v4_trades", "id": market,
                              "batched": True}).decode()
                for market in shard))
            plans.append(dialect.ConnectionPlan(
                dialect.plan_name(VENUE, n), url, frames, expected_acks=len(frames),
                subscribe_interval_seconds=SUBSCRIBE_INTERVAL_SECONDS))
        return plans
