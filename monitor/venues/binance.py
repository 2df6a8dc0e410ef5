"""Binance USD-M and COIN-M futures: the ``forceOrder`` liquidation and mark-price dialects.

Facts (reference/exchanges.md §2–3):

* USD-M connects to the routed ``{ws}/market/ws``: the legacy root paths were retired on
  2026-04-23 and still complete the handshake, then deliver nothing. COIN-M stays on
  ``{ws}/ws``. Both subscribe with a JSON ``SUBSCRIBE`` frame acked by ``{"result":null}``.
* ``o.S`` is the side of the forced ORDER: SELL means a long position was liquidated.
* Only the latest liquidation per symbol per second is pushed: completeness ``throttled``.
* USD-M quantities are base units: notional = z × ap, falling back to q × p.
* COIN-M quantities are contracts of a fixed USD face value (``contractSize`` from
  exchangeInfo, 100 for BTC, 10 for others): notional = z × contractSize. An instrument
  whose size is not known raises UnknownInstrument, never a guess.
* Mark prices: USD-M ``!markPrice@arr@1s`` (every symbol, 1 Hz, doubles as the liveness
  canary). For COIN-M no all-market mark stream is documented (only ``<pair>@markPrice@1s``,
  an array per pair), so one is subscribed per pair from the instrument book.
* No application ping: the server pings every 3 minutes and websockets answers.
  Connections are cut at 24 h, so they are rotated at 23 h.

The forceOrder path is the hot one (hundreds of thousands of frames a second in replays and
benchmarks), the mark-price array the busiest price frame (600 rows a second): both are
first decoded by the typed decoders of ``monitor/venues/binance_fast.py`` into the fields
they read, for a symbol already in the session's cache. Anything else, or anything unusual,
goes to the generic path (:meth:`BinanceSession.parse_generic`), which either values the
frame or names what is wrong, as it always has.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable
from hashlib import blake2b
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.binance_fast as binance_fast
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, UnknownInstrument
from monitor.events import Completeness, MarkPrice, event_id_from_text, new_liquidation

_SIDE = binance_fast.SIDE
_THROTTLED = Completeness.THROTTLED
_INF = math.inf
_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError

MAX_STREAMS_PER_CONNECTION = 200  # docs say 1024; ccxt and nautilus keep to 200
MAX_PARAMS_PER_FRAME = 50
SYMBOL_CACHE_LIMIT = 4096  # garbage symbols in malformed frames must not grow it unbounded


class BinanceSession(binance_fast.BinanceFastPaths):
    """Parse state of one Binance connection: a per-symbol cache of coin and contract terms."""

    def __init__(self, venue: str, book: instr.InstrumentBook, wanted: frozenset[str] | None,
                 inverse: bool) -> None:
        self._venue = venue
        self._id_head = venue + ":"
        self._book = book
        self._book_version = book.version
        self._wanted = wanted
        self._inverse = inverse
        self._cache: dict[str, binance_fast.SymbolInfo] = {}

    def parse_generic(self, text: str, received_at: float) -> list[dialect.Item]:
        """Every frame, every shape, every check: what :meth:`parse` falls back to."""
        try:
            msg = _loads(text)
        except _JSONDecodeError as exc:
            raise FrameError(_json.MALFORMED_JSON, str(exc)) from None
        if msg.__class__ is not dict:
            if msg.__class__ is list:
                return self._mark_prices(msg, received_at)
            return [dialect.Unrecognised("not_an_object")]
        if msg.get("e") != "forceOrder":
            return self._other(msg, received_at)
        return self._force_order(msg, received_at)

    # -- liquidations ---------------------------------------------------------------------

    def _force_order(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        """Every field checked; also the fallbacks for missing or zero z and ap. The usual
        frame of a cached symbol is valued by the fast path before it gets here."""
        o = _json.obj(_json.req(msg, "o"), "o")
        symbol = _json.req_str(o, "s")
        order_side, side = _json.req_choice(o, "S", _SIDE)
        ts = _json.req_int(o, "T")
        z = _json.opt_float(o, "z")
        ap = _json.opt_float(o, "ap")
        if z < 0.0 or ap < 0.0:
            raise FrameError(_json.BAD_VALUE, f"negative z or ap: {z!r}, {ap!r}")
        price = ap if ap > 0.0 else _json.positive(_json.req_float(o, "p"), "p")
        filled = z > 0.0 and ap > 0.0
        coin, mult, size, _id_state, wanted = self._lookup(symbol)
        if self._inverse:
            contracts = z if z > 0.0 else _json.positive(_json.req_float(o, "q"), "q")
            if size <= 0.0:
                raise UnknownInstrument(self._venue, symbol)
            notional = contracts * size
            qty = notional / price
        else:
            qty = z if filled else _json.positive(_json.req_float(o, "q"), "q")
            notional = z * ap if filled else qty * _json.positive(_json.req_float(o, "p"), "p")
        if not (0.0 < notional < _INF and 0.0 < qty < _INF):
            raise FrameError(_json.BAD_VALUE, f"{symbol}: notional {notional!r} out of range")
        if not wanted:
            return []
        venue = self._venue
        event_id = event_id_from_text(venue, f"{venue}\x1f{symbol}\x1f{ts}\x1f{order_side}"
                                             f"\x1f{_raw(o.get('z'))}\x1f{_raw(o.get('ap'))}")
        return [new_liquidation(self._venue, symbol, coin, side, price / mult, qty * mult,
                                notional, ts, received_at, _THROTTLED, event_id)]

    # -- mark prices, acks, everything else -----------------------------------------------

    def _mark_prices(self, rows: list[Any], received_at: float) -> list[dialect.Item]:
        if rows and not (isinstance(rows[0], dict) and rows[0].get("e") == "markPriceUpdate"):
            return [dialect.Unrecognised("unknown_array")]
        return dialect.read_rows(rows, lambda row: self._mark_price(
            _json.obj(row, "markPriceUpdate"), received_at), raise_when=dialect.NEVER)

    def _mark_price(self, row: dict[str, Any], received_at: float) -> MarkPrice | None:
        symbol = _json.req_str(row, "s")
        price = _json.positive(_json.req_float(row, "p"), "p")
        ts = _json.req_int(row, "E")
        coin, mult, _size, _id_state, wanted = self._lookup(symbol)
        if not wanted:
            return None
        return MarkPrice(self._venue, symbol, coin, price / mult, ts, received_at)

    def _other(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        event = msg.get("e")
        if event == "markPriceUpdate":
            mark = self._mark_price(msg, received_at)
            return [] if mark is None else [mark]
        if "stream" in msg and "data" in msg:  # combined-stream wrapping
            data = msg["data"]
            if isinstance(data, dict):
                if data.get("e") == "forceOrder":
                    return self._force_order(data, received_at)
                if "stream" not in data:
                    return self._other(data, received_at)
            elif isinstance(data, list):
                return self._mark_prices(data, received_at)
            return [dialect.Unrecognised("unknown_stream_data")]
        if "id" in msg and "error" in msg:
            error = msg["error"]
            text = error.get("msg") if isinstance(error, dict) else None
            return [dialect.Rejection(text if isinstance(text, str) else _json.compact(error))]
        if "id" in msg and "result" in msg:
            # The answer to SUBSCRIBE is a null result; other requests answer with data.
            if msg["result"] is None:
                return [dialect.Ack(_json.describe(msg["id"]))]
            return [dialect.Info("reply")]
        if "code" in msg and "msg" in msg:
            return [dialect.Rejection(_json.compact(msg["msg"]))]
        return dialect.unknown("event", event)

    # -- symbol terms ---------------------------------------------------------------------

    def _reset(self) -> None:
        self._cache.clear()
        self._book_version = self._book.version

    def _lookup(self, symbol: str) -> binance_fast.SymbolInfo:
        if self._book.version != self._book_version:
            self._reset()
        info = self._cache.get(symbol)
        if info is not None:
            return info
        spec = self._book.get(symbol)
        if spec is not None:
            coin, mult = spec.coin, spec.base_multiplier
            size = spec.contract_size if spec.kind is instr.ContractKind.INVERSE else 0.0
        else:
            try:
                coin, mult = instr.coin_of_symbol(symbol)
            except ValueError:
                raise UnknownInstrument(self._venue, symbol) from None
            size = 0.0
        wanted = self._wanted is None or symbol in self._wanted
        id_state = blake2b(f"{self._venue}\x1f{symbol}\x1f".encode(), digest_size=12)
        info = (coin, mult, size, id_state, wanted)
        if size > 0.0 or not self._inverse:  # an unknown COIN-M size is looked up again
            if len(self._cache) >= SYMBOL_CACHE_LIMIT:
                self._cache.clear()
            self._cache[symbol] = info
        return info


def _opt_str(row: dict[str, Any], key: str, default: str) -> str:
    value = row.get(key)
    return value if isinstance(value, str) and value else default


def _raw(value: object) -> object:
    """A field as it takes part in the event id: the venue's own text, "" when absent."""
    return "" if value is None else value


class _BinanceBase(dialect.DialectDefaults, abc.ABC):
    completeness = Completeness.THROTTLED
    max_lifetime_seconds = 23 * 3600.0  # Binance cuts connections at 24 h
    _inverse = False

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        rows = dialect.read_document(f"{self.venue} exchangeInfo", body, lambda doc: _json.arr(
            _json.req(_json.obj(doc, "exchangeInfo"), "symbols"), "symbols"))
        return dialect.read_specs(rows, lambda row: self._spec(_json.obj(row, "symbol"))), None

    @abc.abstractmethod
    def _spec(self, row: dict[str, Any]) -> instr.InstrumentSpec:
        """One exchangeInfo row as a spec (USD-M counts base units, COIN-M USD contracts)."""

    def session(
        self, instruments: instr.InstrumentBook, plan: dialect.ConnectionPlan | None = None
    ) -> BinanceSession:
        return BinanceSession(self.venue, instruments, self.wanted, self._inverse)


class BinanceUsdm(_BinanceBase):
    venue = "binance-usdm"
    instrument_document = ("exchangeInfo", "/fapi/v1/exchangeInfo")
    SUBSCRIBE = orjson.dumps(
        {"method": "SUBSCRIBE", "params": ["!forceOrder@arr", "!markPrice@arr@1s"], "id": 1}
    ).decode()

    def plans(self, ws_base_url: str, instruments: instr.InstrumentBook
              ) -> list[dialect.ConnectionPlan]:
        # Configured symbols filter the all-market streams in the session: the all-market
        # stream has the same per-symbol throttle and keeps the price canary on this socket.
        url = ws_base_url.rstrip("/") + "/market/ws"
        return [dialect.ConnectionPlan(self.venue, url, (self.SUBSCRIBE,), expected_acks=1)]

    def _spec(self, row: dict[str, Any]) -> instr.InstrumentSpec:
        symbol = _json.req_str(row, "symbol")
        coin, mult = instr.normalise_coin(_json.req_str(row, "baseAsset"))
        return instr.InstrumentSpec(
            self.venue, symbol, coin, instr.ContractKind.LINEAR, 1.0,
            _json.req_str(row, "quoteAsset"),
            base_multiplier=mult, category=_opt_str(row, "contractType", ""))


class BinanceCoinm(_BinanceBase):
    venue = "binance-coinm"
    needs_instruments = True
    _inverse = True
    instrument_document = ("exchangeInfo", "/dapi/v1/exchangeInfo")
    # Until the instrument list arrives, BTC alone keeps a price stream on the socket.
    FALLBACK_PAIRS = ("btcusd",)

    def plans(self, ws_base_url: str, instruments: instr.InstrumentBook
              ) -> list[dialect.ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/ws"
        names: Iterable[str] = (
            self.wanted if self.wanted is not None else (s.instrument for s in instruments))
        pairs = sorted({name.split("_", 1)[0].lower() for name in names}) or list(
            self.FALLBACK_PAIRS)
        streams = ["!forceOrder@arr"] + [f"{pair}@markPrice@1s" for pair in pairs]
        plans = []
        for n, shard in enumerate(dialect.chunks(streams, MAX_STREAMS_PER_CONNECTION)):
            frames = tuple(
                orjson.dumps({"method": "SUBSCRIBE", "params": list(params), "id": i + 1}).decode()
                for i, params in enumerate(dialect.chunks(shard, MAX_PARAMS_PER_FRAME)))
            # Binance drops clients sending more than 10 messages a second.
            plans.append(dialect.ConnectionPlan(dialect.plan_name(self.venue, n), url, frames,
                                        expected_acks=len(frames),
                                        subscribe_interval_seconds=0.2))
        return plans

    def _spec(self, row: dict[str, Any]) -> instr.InstrumentSpec:
        symbol = _json.req_str(row, "symbol")
        coin, mult = instr.normalise_coin(_json.req_str(row, "baseAsset"))
        size = _json.positive(_json.req_float(row, "contractSize"), "contractSize")
        pair = row.get("pair")
        return instr.InstrumentSpec(
            self.venue, symbol, coin, instr.ContractKind.INVERSE, size,
            _opt_str(row, "quoteAsset", "USD"), base_multiplier=mult,
            category=pair if isinstance(pair, str) else symbol.split("_", 1)[0])
