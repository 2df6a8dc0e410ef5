"""Deribit: liquidations flagged on public futures trades, mark prices from perpetual tickers.

Facts (reference/exchanges.md §7):

* JSON-RPC 2.0 on ``{ws}/ws/api/v2``. Two requests are sent after connecting, each
  answered by a result that counts as an :class:`Ack`: ``public/set_heartbeat`` (interval
  10 s, result ``"ok"``) with id 1, then ``public/subscribe`` with id 2 (result: the list
  of channels subscribed; a requested channel missing from it is a :class:`Rejection`).
  An ``error`` answer to either is a Rejection with Deribit's message.
* Channels: ``trades.future.{BTC,ETH,USDC}.100ms`` (every future of each currency;
  unauthenticated clients may not use ``raw``), and ``ticker.{BTC,ETH}-PERPETUAL.100ms`` as
  the price stream and canary (the perpetual's ``mark_price``; ``deribit_price_index`` would
  give an index, not a mark). With configured symbols, ``trades.<instrument>.100ms`` and
  the tickers of those instruments are subscribed instead.
* Heartbeat: the server sends ``{"method":"heartbeat","params":{"type":...}}``. A
  ``test_request`` must be answered with ``public/test`` or the server closes the
  connection: the session returns that answer as a :class:`Reply` (ids from 100 up, whose
  results read as :class:`Pong`). A plain ``heartbeat`` is :class:`Info`.
* Only trades with a ``liquidation`` field count. ``direction`` is the TAKER's direction:

  - ``"T"``: the taker was liquidated; ``sell`` means a long was;
  - ``"M"``: the maker was liquidated: the opposite of ``direction`` (``buy`` = long);
  - ``"MT"``: both were: two events, one long and one short, each for the full amount,
    with ids ``deribit:<instrument>:<trade_id>:T`` and ``...:M``.

  ``trade_id`` is unique per currency, so the event id also names the instrument.
* Amounts: inverse futures (``BTC-PERPETUAL``, ``ETH-27DEC25``) count USD:
  notional = amount, qty_base = amount / price. Linear ones (``BTC_USDC-PERPETUAL``: a
  ``_USDC``/``_USDT`` quote in the name) count base units: notional = amount x price. The
  instrument book from ``public/get_instruments`` (``instrument_type`` ``reversed`` or
  ``linear``) decides where it holds the instrument; otherwise the name does, so no REST is
  needed to value a liquidation (``needs_instruments`` is False). Options, spot and combos
  are not valued (their prices are not USD per coin): such a row is a ``bad_value``.
* ``exchange_ts_ms`` is the trade's ``timestamp``. Every liquidation is published:
  completeness ``full``.
"""

from __future__ import annotations

import re
from itertools import count
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide

VENUE = "deribit"
CURRENCIES = ("BTC", "ETH", "USDC")
PRICE_INSTRUMENTS = ("BTC-PERPETUAL", "ETH-PERPETUAL")
HEARTBEAT_INTERVAL_SECONDS = 10  # Deribit's minimum
HEARTBEAT_ID = 1
SUBSCRIBE_ID = 2
FIRST_TEST_ID = 100  # ids of our public/test answers; their results are pongs
INSTRUMENTS_PATH = "/api/v2/public/get_instruments"
# BTC-PERPETUAL, BTC-27DEC25, BTC_USDC-PERPETUAL, ETH_USDC-27JUN25, 1000PEPE_USDC-PERPETUAL.
_FUTURE = re.compile(r"^([A-Za-z0-9]+?)(?:_(USDC|USDT))?-(PERPETUAL|\d{1,2}[A-Z]{3}\d{2})$")
_TAKER_SIDE = {"sell": PositionSide.LONG, "buy": PositionSide.SHORT}
_OTHER = {PositionSide.LONG: PositionSide.SHORT, PositionSide.SHORT: PositionSide.LONG}


def future_terms(instrument: str) -> tuple[str, float, bool]:
    """Coin, unit multiplier and inverse-ness of a Deribit future's name.

    Raises FrameError for a name that is not a future (an option, a spot pair, a combo).
    """
    match = _FUTURE.match(instrument)
    if match is None:
        raise FrameError(_json.BAD_VALUE, f"instrument_name: not a future: {instrument!r:.60}")
    coin, mult = instr.normalise_coin(match.group(1))
    return coin, mult, match.group(2) is None


class DeribitSession(dialect.SessionDefaults):
    """Parse state of one Deribit connection: the ids of our heartbeat answers."""

    def __init__(self, book: instr.InstrumentBook, wanted: frozenset[str] | None,
                 channels: tuple[str, ...]) -> None:
        super().__init__(book, wanted)
        self._channels = channels
        self._test_ids = count(FIRST_TEST_ID)

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        method = msg.get("method")
        if method == "subscription":
            return self._subscription(_json.obj(_json.req(msg, "params"), "params"), received_at)
        if method == "heartbeat":
            return self._heartbeat(_json.obj(_json.req(msg, "params"), "params"))
        if "id" in msg:
            return self._response(msg)
        return dialect.unknown("method", method)

    def _heartbeat(self, params: dict[str, Any]) -> list[dialect.Item]:
        kind = params.get("type")
        if kind == "test_request":
            answer = {"jsonrpc": "2.0", "id": next(self._test_ids), "method": "public/test",
                      "params": {}}
            return [dialect.Reply(orjson.dumps(answer).decode())]
        if kind == "heartbeat":
            return [dialect.Info("heartbeat")]
        return [dialect.Unrecognised("unknown_heartbeat")]

    def _response(self, msg: dict[str, Any]) -> list[dialect.Item]:
        request_id = msg.get("id")
        ours = request_id in (HEARTBEAT_ID, SUBSCRIBE_ID)
        if "error" in msg:
            error = msg["error"]
            text = error.get("message") if isinstance(error, dict) else None
            message = text if isinstance(text, str) else _json.compact(error)
            return [dialect.Rejection(message)] if ours else [dialect.Unrecognised("error_reply")]
        if "result" not in msg:
            return [dialect.Unrecognised("unknown_shape")]
        if request_id == HEARTBEAT_ID:
            return [dialect.Ack("public/set_heartbeat")]
        if request_id == SUBSCRIBE_ID:
            result = msg["result"]
            listed = result if isinstance(result, list) else []
            granted = {c for c in listed if isinstance(c, str)}
            missing = [c for c in self._channels if c not in granted]
            if missing:
                return [dialect.Rejection(f"channels not subscribed: {', '.join(missing)}")]
            return [dialect.Ack("public/subscribe")]
        return [dialect.Pong()]  # the result of one of our public/test answers

    # -- subscriptions --------------------------------------------------------------------

    def _subscription(self, params: dict[str, Any], received_at: float) -> list[dialect.Item]:
        channel = _json.req_str(params, "channel")
        data = _json.req(params, "data")
        if channel.startswith("trades."):
            return self._trades(_json.arr(data, "data"), received_at)
        if channel.startswith("ticker."):
            mark = self._ticker(_json.obj(data, "data"), received_at)
            return [] if mark is None else [mark]
        return [dialect.Unrecognised("unknown_channel")]

    def _trades(self, rows: list[Any], received_at: float) -> list[dialect.Item]:
        return dialect.read_rows(rows, lambda element: self._liquidations(element, received_at))

    def _liquidations(self, element: object, received_at: float) -> list[dialect.Item]:
        """The liquidations a trade row flags: none for a plain trade, two for ``MT``."""
        row = _json.obj(element, "data[]")
        flag = row.get("liquidation")
        if flag is None:
            return []
        if flag not in ("T", "M", "MT"):
            raise FrameError(
                _json.BAD_VALUE, f"liquidation: expected T, M or MT, got {_json.describe(flag)}")
        instrument = _json.req_str(row, "instrument_name")
        trade_id = _json.req(row, "trade_id")
        if not isinstance(trade_id, str | int) or isinstance(trade_id, bool) or trade_id == "":
            raise FrameError(
                _json.BAD_VALUE, f"trade_id: expected an id, got {_json.describe(trade_id)}")
        _direction, taker = _json.req_choice(row, "direction", _TAKER_SIDE)
        price = _json.positive(_json.req_float(row, "price"), "price")
        amount = _json.positive(_json.req_float(row, "amount"), "amount")
        ts = _json.req_int(row, "timestamp")
        coin, mult, inverse = future_terms(instrument)
        if not self.is_wanted(instrument):
            return []
        spec = self._book.get(instrument)
        if spec is not None:
            coin, mult = spec.coin, spec.base_multiplier
            inverse = spec.kind is instr.ContractKind.INVERSE
        if inverse:
            notional, qty_base = amount, amount / price
        else:
            notional, qty_base = amount * price, amount
        _json.in_range(instrument, price / mult, qty_base * mult, notional)
        head = f"{VENUE}:{instrument}:{trade_id}"
        if flag == "T":
            parties = [(taker, head)]
        elif flag == "M":
            parties = [(_OTHER[taker], head)]
        else:
            parties = [(taker, head + ":T"), (_OTHER[taker], head + ":M")]
        return [
            Liquidation(
                venue=VENUE, instrument=instrument, coin=coin, position_side=side,
                price=price / mult, qty_base=qty_base * mult, notional_usd=notional,
                exchange_ts_ms=ts, received_at=received_at, completeness=Completeness.FULL,
                event_id=event_id)
            for side, event_id in parties
        ]

    def _ticker(self, data: dict[str, Any], received_at: float) -> MarkPrice | None:
        instrument = _json.req_str(data, "instrument_name")
        try:
            coin, mult, _inverse = future_terms(instrument)
        except FrameError:
            return None  # option tickers: premiums in the coin, not a USD price
        if not self.is_wanted(instrument):
            return None
        spec = self._book.get(instrument)
        if spec is not None:
            coin, mult = spec.coin, spec.base_multiplier
        price = _json.positive(_json.req_float(data, "mark_price"), "mark_price")
        _json.in_range(instrument, price / mult)
        ts = _json.req_int(data, "timestamp")
        return MarkPrice(VENUE, instrument, coin, price / mult, ts, received_at)


class Deribit(dialect.DialectDefaults):
    """No application ping (the server's heartbeats are answered in parse), no documented
    lifetime, and no instruments needed: the instrument name tells inverse from linear."""

    venue = VENUE
    completeness = Completeness.FULL

    def instrument_requests(self, rest_base_url: str) -> list[dialect.RestRequest]:
        base = rest_base_url.rstrip("/") + INSTRUMENTS_PATH
        return [dialect.RestRequest(key=currency, url=f"{base}?currency={currency}&kind=future")
                for currency in CURRENCIES]

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        rows = dialect.read_document(f"{VENUE} get_instruments", body, lambda doc: _json.arr(
            _json.req(_json.obj(doc, "get_instruments"), "result"), "result"))
        return dialect.read_specs(
            rows, lambda row: instrument_spec(_json.obj(row, "instrument"))
        ), None

    def channels(self) -> tuple[str, ...]:
        if self.wanted is None:
            trades = [f"trades.future.{currency}.100ms" for currency in CURRENCIES]
            prices = list(PRICE_INSTRUMENTS)
        else:
            trades = [f"trades.{name}.100ms" for name in sorted(self.wanted)]
            prices = [name for name in sorted(self.wanted) if _FUTURE.match(name)]
        return (*trades, *(f"ticker.{name}.100ms" for name in prices))

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        heartbeat = {"jsonrpc": "2.0", "id": HEARTBEAT_ID, "method": "public/set_heartbeat",
                     "params": {"interval": HEARTBEAT_INTERVAL_SECONDS}}
        subscribe = {"jsonrpc": "2.0", "id": SUBSCRIBE_ID, "method": "public/subscribe",
                     "params": {"channels": list(self.channels())}}
        frames = (orjson.dumps(heartbeat).decode(), orjson.dumps(subscribe).decode())
        url = ws_base_url.rstrip("/") + "/ws/api/v2"
        return [dialect.ConnectionPlan(VENUE, url, frames, expected_acks=len(frames))]

    def session(
        self, instruments: instr.InstrumentBook, plan: dialect.ConnectionPlan | None = None
    ) -> DeribitSession:
        return DeribitSession(instruments, self.wanted, self.channels())


def instrument_spec(row: dict[str, Any]) -> instr.InstrumentSpec | None:
    """The spec of one ``get_instruments`` row; None for anything but a future."""
    name = _json.req_str(row, "instrument_name")
    if row.get("kind") != "future" or _FUTURE.match(name) is None:
        return None
    base = row.get("base_currency")
    coin, mult = instr.normalise_coin(base) if isinstance(base, str) and base else future_terms(
        name)[:2]
    # ``future_type`` is the older name of ``instrument_type``.
    inverse = (row.get("instrument_type") or row.get("future_type")) == "reversed"
    quote = row.get("quote_currency")
    settle = row.get("settlement_currency")
    return instr.InstrumentSpec(
        VENUE, name, coin, instr.ContractKind.INVERSE if inverse else instr.ContractKind.LINEAR,
        _json.opt_float(row, "contract_size", 1.0) or 1.0,
        quote if isinstance(quote, str) and quote else "USD",
        base_multiplier=mult, category=settle if isinstance(settle, str) else "")
