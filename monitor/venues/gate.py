"""Gate futures: ``futures.public_liquidates`` on the USDT-, BTC- and USD1-settled hosts.

Facts (reference/exchanges.md §10 and Gate's futures WebSocket docs with their changelog,
https://www.gate.com/docs/developers/futures/ws/en#changelog):

* Three connections, ``{ws}/v4/ws/usdt``, ``{ws}/v4/ws/btc`` and, since Gate added the
  USD1-settled contracts on 2026-08-19, ``{ws}/v4/ws/usd1`` (contracts ``BTC_USD1``; REST
  ``/api/v4/futures/usd1/contracts``; valued like the USDT host, USD1 being a USD
  stablecoin), each subscribing
  ``{"time":..,"channel":"futures.public_liquidates","event":"subscribe","payload":["!all"]}``
  and ``futures.tickers`` for a few contracts (the price stream and canary; ``!all`` is not
  confirmed to work for tickers, so contracts are listed: BTC_USDT and ETH_USDT, BTC_USD,
  or the configured symbols). Acks are ``{"event":"subscribe","result":{"status":"success"}}``;
  an ``error`` object or another status is a :class:`Rejection`.
* The ``time`` of a subscribe frame is fixed: plans are built without a clock, Gate's own
  examples send arbitrary values (``123456``) for public channels, and only signed requests
  are checked against the server's time. The application ping
  ``{"time":<now>,"channel":"futures.ping"}`` carries the current time; Gate answers
  ``futures.pong``. Gate's client pings every 10 s.
* ``size`` is a signed contract count (an integer, or a decimal string when the client sends
  ``X-Gate-Size-Decimal``): NEGATIVE means a forced sell, so a LONG was liquidated.
  ``result`` may be an array or a single object, and a batch may mix contracts.
* USDT-settled (linear): qty_base = |size| x ``quanto_multiplier`` (base units per contract,
  from ``/api/v4/futures/usdt/contracts``), notional = qty_base x price; a contract the book
  does not hold raises :class:`UnknownInstrument`, never a guessed size. BTC-settled inverse
  (``BTC_USD``): one contract is one USD, notional = |size|, qty_base = notional / price;
  without the book, a ``_USD`` contract is read as such. BTC-settled quanto contracts are
  not valued (``unsupported_contract``).
* The row's time is ``time_ms``, or ``time`` (milliseconds since Gate's 2026-08 change,
  seconds before it), else the frame's ``time_ms``. The event id hashes contract, time,
  size and price (Gate publishes no id).
* Completeness ``full``: until 2026-08-20 at most one liquidation per contract per second
  was pushed (``throttled``); since then, Gate's changelog says, the channel delivers every
  liquidation of the aggregation period in one batch (``result`` an array, contracts
  mixed) instead of dropping all but one.
"""

from __future__ import annotations

from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, UnknownInstrument
from monitor.events import (
    Completeness,
    Liquidation,
    MarkPrice,
    PositionSide,
    event_id_from_text,
)

VENUE = "gate"
SETTLES = ("usdt", "btc", "usd1")
LIQUIDATES = "futures.public_liquidates"
TICKERS = "futures.tickers"
PING = "futures.ping"
PONG = "futures.pong"
PING_INTERVAL_SECONDS = 10.0
SUBSCRIBE_TIME = 1739950000  # see the module docstring: public subscriptions are not timed
DEFAULT_PRICE_CONTRACTS = {"usdt": ("BTC_USDT", "ETH_USDT"), "btc": ("BTC_USD",),
                           "usd1": ("BTC_USD1",)}
CONTRACTS_PATH = "/api/v4/futures/{settle}/contracts"
PAGE_LIMIT = 1000
# Continue paging while a page holds at least this many rows (Gate may cap pages at 100),
# and never past MAX_OFFSET, should a server ignore ``offset``.
MIN_FULL_PAGE = 100
MAX_OFFSET = 20_000
UNSUPPORTED_CONTRACT = "unsupported_contract"
_SECONDS_BEFORE = 10_000_000_000  # a Unix time below this is in seconds (until 2286)


def settle_of(contract: str) -> str:
    """The settle host of a contract name: ``_USD`` contracts are BTC-settled, ``_USD1``
    ones USD1-settled, the others USDT-settled."""
    name = contract.upper()
    if name.endswith("_USD"):
        return "btc"
    return "usd1" if name.endswith("_USD1") else "usdt"


def contract_coin(contract: str) -> tuple[str, float]:
    base = contract.split("_", 1)[0]
    if not base:
        raise FrameError(_json.BAD_VALUE, f"contract: no base in {contract!r:.40}")
    return instr.normalise_coin(base)


def _time_ms(row: dict[str, Any], msg: dict[str, Any]) -> int:
    if "time_ms" in row:
        return _json.to_int(row["time_ms"], "time_ms")
    if "time" in row:
        ts = _json.to_int(row["time"], "time")
        return ts * 1000 if ts < _SECONDS_BEFORE else ts
    if "time_ms" in msg:
        return _json.to_int(msg["time_ms"], "time_ms")
    return _json.req_int(msg, "time") * 1000


class GateSession(dialect.SessionDefaults):
    """Parse state of one Gate connection (none beyond the contract book)."""

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        channel = msg.get("channel")
        event = msg.get("event")
        if channel == PONG:
            return [dialect.Pong()]
        if event == "subscribe":
            return [self._subscribed(msg, channel)]
        if event in ("update", "all"):
            if channel == LIQUIDATES:
                return self._liquidations(msg, received_at)
            if channel == TICKERS:
                return self._tickers(msg, received_at)
            return [dialect.Unrecognised("unknown_channel")]
        if event == "unsubscribe":
            return [dialect.Info("unsubscribed")]
        return dialect.unknown("event", event)

    @staticmethod
    def _subscribed(msg: dict[str, Any], channel: object) -> dialect.Item:
        error = msg.get("error")
        if error is not None:
            text = error.get("message") if isinstance(error, dict) else None
            return dialect.Rejection(text if isinstance(text, str) else _json.compact(error))
        result = msg.get("result")
        if isinstance(result, dict) and result.get("status") == "success":
            return dialect.Ack(_json.compact(channel))
        return dialect.Rejection(f"{_json.compact(channel)}: {_json.compact(result)}"[:200])

    @staticmethod
    def _rows(msg: dict[str, Any]) -> list[Any]:
        result = _json.req(msg, "result")
        return [result] if isinstance(result, dict) else _json.arr(result, "result")

    def _liquidations(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        return dialect.read_rows(self._rows(msg), lambda element: self._liquidation(
            _json.obj(element, "result[]"), msg, received_at))

    def _liquidation(
        self, row: dict[str, Any], msg: dict[str, Any], received_at: float
    ) -> Liquidation | None:
        contract = _json.req_str(row, "contract")
        raw_size = _json.req(row, "size")
        raw_price = _json.req(row, "price")
        size = _json.to_float(raw_size, "size")
        if size == 0.0:
            raise FrameError(_json.BAD_VALUE, "size: zero")
        price = _json.positive(_json.to_float(raw_price, "price"), "price")
        ts = _time_ms(row, msg)
        if not self.is_wanted(contract):
            return None
        contracts = abs(size)
        spec = self._book.get(contract)
        if spec is None:
            if settle_of(contract) != "btc":
                raise UnknownInstrument(VENUE, contract)
            coin, mult = contract_coin(contract)
            notional = contracts  # BTC_USD: one USD per contract
            qty_base = notional / price
        elif spec.kind is instr.ContractKind.LINEAR:
            coin, mult = spec.coin, spec.base_multiplier
            qty_base = contracts * spec.contract_size
            notional = qty_base * price
        elif spec.kind is instr.ContractKind.INVERSE:
            coin, mult = spec.coin, spec.base_multiplier
            notional = contracts * spec.contract_size
            qty_base = notional / price
        else:
            raise FrameError(UNSUPPORTED_CONTRACT, f"{contract}: BTC-settled quanto")
        _json.in_range(contract, price / mult, qty_base * mult, notional)
        side = PositionSide.LONG if size < 0.0 else PositionSide.SHORT
        return Liquidation(
            venue=VENUE, instrument=contract, coin=coin, position_side=side,
            price=price / mult, qty_base=qty_base * mult, notional_usd=notional,
            exchange_ts_ms=ts, received_at=received_at, completeness=Completeness.FULL,
            event_id=event_id_from_text(
                VENUE, f"{VENUE}\x1f{contract}\x1f{ts}\x1f{raw_size}\x1f{raw_price}"))

    def _tickers(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        return dialect.read_rows(self._rows(msg), lambda element: self._ticker(
            _json.obj(element, "result[]"), msg, received_at), raise_when=dialect.LONE_ROW)

    def _ticker(
        self, row: dict[str, Any], msg: dict[str, Any], received_at: float
    ) -> MarkPrice | None:
        contract = _json.req_str(row, "contract")
        price = _json.positive(_json.req_float(row, "mark_price"), "mark_price")
        ts = _time_ms({}, msg)
        if not self.is_wanted(contract):
            return None
        spec = self._book.get(contract)
        coin, mult = (spec.coin, spec.base_multiplier) if spec else contract_coin(contract)
        _json.in_range(contract, price / mult)
        return MarkPrice(VENUE, contract, coin, price / mult, ts, received_at)


def contract_spec(settle: str, row: dict[str, Any]) -> instr.InstrumentSpec:
    """The spec of one row of ``/futures/{settle}/contracts``.

    Contracts being delisted are kept: they trade, and liquidate, until they are gone.
    """
    name = _json.req_str(row, "name")
    coin, mult = contract_coin(name)
    kind = row.get("type")
    if kind == "inverse":
        return instr.InstrumentSpec(VENUE, name, coin, instr.ContractKind.INVERSE, 1.0, "USD",
                                    base_multiplier=mult, category=settle)
    size = _json.positive(_json.req_float(row, "quanto_multiplier"), "quanto_multiplier")
    if settle == "btc":  # a BTC-settled "direct" contract is a quanto: value in BTC
        return instr.InstrumentSpec(VENUE, name, coin, instr.ContractKind.QUANTO, size, "USD",
                                    base_multiplier=mult, category=settle)
    quote = name.split("_", 1)[1] if "_" in name else "USDT"
    return instr.InstrumentSpec(VENUE, name, coin, instr.ContractKind.LINEAR, size, quote,
                                base_multiplier=mult, category=settle)


class Gate(dialect.DialectDefaults):
    venue = VENUE
    session_type = GateSession
    completeness = Completeness.FULL
    ping_interval_seconds = PING_INTERVAL_SECONDS
    # max_lifetime_seconds stays None: none documented.
    needs_instruments = True  # quanto_multiplier values USDT-settled contracts

    def ping_frame(self, now_wall: float) -> str | None:
        return orjson.dumps({"time": int(now_wall), "channel": PING}).decode()

    def instrument_requests(self, rest_base_url: str) -> list[dialect.RestRequest]:
        return [self._contracts_request(rest_base_url.rstrip("/"), settle, 0)
                for settle in SETTLES]

    @staticmethod
    def _contracts_request(base: str, settle: str, offset: int) -> dialect.RestRequest:
        url = base + CONTRACTS_PATH.format(settle=settle)
        return dialect.RestRequest(key=settle, url=f"{url}?limit={PAGE_LIMIT}&offset={offset}")

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        settle = request.key
        rows = dialect.read_document(f"{VENUE} {settle} contracts", body,
                                     lambda doc: _json.arr(doc, f"{settle} contracts"))
        specs = dialect.read_specs(
            rows, lambda row: contract_spec(settle, _json.obj(row, "contract")))
        base, _, query = request.url.partition("?")
        offset = 0
        for part in query.split("&"):
            if part.startswith("offset=") and part[7:].isdigit():
                offset = int(part[7:])
        following = offset + len(rows)
        if len(rows) < MIN_FULL_PAGE or following >= MAX_OFFSET:
            return specs, None
        return specs, dialect.RestRequest(
            key=settle, url=f"{base}?limit={PAGE_LIMIT}&offset={following}")

    def _contracts(self, settle: str) -> tuple[list[str], list[str]]:
        """(liquidation payload, ticker contracts) of one settle host; empty if none wanted."""
        if self.wanted is None:
            return ["!all"], list(DEFAULT_PRICE_CONTRACTS[settle])
        mine = sorted(c for c in self.wanted if settle_of(c) == settle)
        return mine, mine

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        base = ws_base_url.rstrip("/")
        plans = []
        for settle in SETTLES:
            liquidates, tickers = self._contracts(settle)
            if not liquidates:
                continue
            frames = tuple(
                orjson.dumps({"time": SUBSCRIBE_TIME, "channel": channel, "event": "subscribe",
                              "payload": payload}).decode()
                for channel, payload in ((LIQUIDATES, liquidates), (TICKERS, tickers)))
            plans.append(dialect.ConnectionPlan(f"{VENUE}-{settle}", f"{base}/v4/ws/{settle}",
                                                frames, expected_acks=len(frames)))
        return plans
