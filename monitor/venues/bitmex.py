"""BitMEX: the ``liquidation`` table for liquidations, the ``instrument`` table for mark prices.

Facts (reference/exchanges.md §6):

* ``{ws}/realtime``; one ``{"op":"subscribe","args":[...]}`` frame, one
  ``{"success":true,"subscribe":<arg>}`` per arg. Errors come as
  ``{"status":400,"error":"..."}`` and read as a :class:`Rejection`. The server answers the
  text ``ping`` with the text ``pong``.
* ``instrument`` is subscribed before ``liquidation`` so that its partial (every
  instrument's ``markPrice``, XBTUSD's among them) arrives before the first liquidation that
  needs the XBT/USD price to be valued.
* Only ``insert`` rows of the liquidation table count, with the ``leavesQty`` they carry: a
  ``partial`` lists orders already resting when we subscribed, ``update`` shrinks
  ``leavesQty`` as the order fills and ``delete`` removes it; counting those would double
  count (cryptofeed, tardis and aggr count inserts only). This measures liquidation orders
  placed, not necessarily filled. ``side`` is the side of the liquidation ORDER: ``Sell``
  means a long position was liquidated. ``orderID`` is the dedupe key.
* The rows carry no timestamp: ``exchange_ts_ms`` is the frame's arrival time in ms.
* Valuation needs ``/api/v1/instrument/active`` (``needs_instruments``), read into specs as:

  - inverse (``isInverse``, XBTUSD): ``contract_size`` USD per contract
    (``|multiplier| / |underlyingToSettleMultiplier|``, 1 for XBTUSD):
    notional = leavesQty x size, qty_base = notional / price;
  - linear (XBTUSDT, ETHUSDT): ``contract_size = 1 / underlyingToPositionMultiplier`` base
    units: qty_base = leavesQty x size, notional = qty_base x price. Futures quoted in XBT
    (``quote == "XBT"``) are converted with the XBT/USD price;
  - quanto (``isQuanto``, ETHUSD settled in XBT): ``contract_size = |multiplier| / scale``
    settlement units per contract per price unit (``XBt`` is satoshi, scale 1e8; ``USDt``
    is micro-USDT, scale 1e6); ``category`` holds the settlement currency. Value =
    leavesQty x size x price in that currency, x the XBT/USD price for XBT
    (aggr's method); qty_base = notional / price.

  Instruments quoted in anything but USD, a stablecoin or XBT, and quantos settled in
  anything but XBt/USDt, are left out of the book: their liquidations raise
  :class:`UnknownInstrument` rather than being valued in the wrong currency.
* The XBT/USD price comes from the mark price of XBTUSD (or XBTUSDT) in the instrument
  table. Until one has arrived, a liquidation that needs it raises
  ``FrameError("unknown_price")``: it is counted as invalid, never valued with a guess.
* Mark prices: each instrument-table row that carries ``markPrice`` becomes a
  :class:`MarkPrice` for instruments quoted in USD or a stablecoin; rows of indices
  (``.BXBT``) and of XBT-quoted futures are skipped. Rows are merged by symbol: updates
  carry only changed fields, so the coin and quote come from the book or from the partial.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, UnknownInstrument
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide

VENUE = "bitmex"
INSTRUMENTS_PATH = "/api/v1/instrument/active"
PING_TEXT = "ping"
PONG_TEXT = "pong"
# BitMEX asks for a ping whenever nothing arrived for a few seconds; the instrument table
# keeps frames flowing, so a ping every 15 s only proves the socket to the server.
PING_INTERVAL_SECONDS = 15.0
UNKNOWN_PRICE = "unknown_price"
XBT = "XBT"
# Mark prices that give the XBT/USD rate used for quanto and XBT-quoted contracts.
XBT_REFERENCES = ("XBTUSD", "XBTUSDT")
# Settlement currencies of quanto contracts: our name and the venue's unit scale.
_SETTLE_SCALE = {"XBt": (XBT, 1e8), "XBT": (XBT, 1.0), "USDt": ("USDT", 1e6), "USDT": ("USDT", 1.0)}
_SIDE = {"Sell": PositionSide.LONG, "Buy": PositionSide.SHORT}
_SYMBOL_TERMS_LIMIT = 4096  # garbage symbols in malformed frames must not grow it unbounded


def _currency(raw: object) -> str:
    """A BitMEX currency code in our spelling: ``XBt``/``XBT`` is XBT, ``USDt`` is USDT."""
    if not isinstance(raw, str) or not raw:
        return ""
    return raw.upper()


def timestamp_ms(raw: object, fallback_ms: int) -> int:
    """Milliseconds of a BitMEX ISO timestamp (``2019-06-01T00:00:19.163Z``), else the fallback."""
    if isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)  # BitMEX times are UTC; never local time
            return int(moment.timestamp() * 1000)
        except (ValueError, OverflowError):
            pass
    return fallback_ms


class BitmexSession(dialect.SessionDefaults):
    """Parse state of one BitMEX connection: instrument terms seen in the partial, XBT/USD."""

    pong_text = PONG_TEXT

    def __init__(self, book: instr.InstrumentBook, wanted: frozenset[str] | None) -> None:
        super().__init__(book, wanted)
        # symbol -> (coin, unit multiplier, quote) for instruments the book does not hold.
        self._terms: dict[str, tuple[str, float, str]] = {}
        self.xbt_usd: float | None = None

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        table = msg.get("table")
        if table == "liquidation":
            return self._liquidation_table(msg, received_at)
        if table == "instrument":
            return self._instrument_table(msg, received_at)
        if msg.get("success") is True and "subscribe" in msg:
            return [dialect.Ack(_json.compact(msg["subscribe"]))]
        if "error" in msg:
            return [dialect.Rejection(_json.compact(msg["error"]))]
        if "info" in msg:
            return [dialect.Info("welcome")]
        if "unsubscribe" in msg:
            return [dialect.Info("unsubscribed")]
        return dialect.unknown("table", table)

    # -- liquidations ---------------------------------------------------------------------

    def _liquidation_table(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        action = _json.req(msg, "action")
        rows = _json.arr(_json.req(msg, "data"), "data")
        if action != "insert":
            if action in ("partial", "update", "delete"):
                return [dialect.Info(f"liquidation {action}")]
            return [dialect.Unrecognised("unknown_action")]
        received_ms = int(received_at * 1000)
        return dialect.read_rows(rows, lambda element: self._liquidation(
            _json.obj(element, "data[]"), received_at, received_ms))

    def _liquidation(
        self, row: dict[str, Any], received_at: float, received_ms: int
    ) -> Liquidation | None:
        order_id = _json.req_str(row, "orderID")
        symbol = _json.req_str(row, "symbol")
        _raw_side, side = _json.req_choice(row, "side", _SIDE)
        price = _json.positive(_json.req_float(row, "price"), "price")
        contracts = _json.positive(_json.req_float(row, "leavesQty"), "leavesQty")
        if not self.is_wanted(symbol):
            return None
        spec = self._book.get(symbol)
        if spec is None:
            raise UnknownInstrument(VENUE, symbol)
        qty_base, notional = self._value(spec, contracts, price)
        mult = spec.base_multiplier
        _json.in_range(symbol, price / mult, qty_base * mult, notional)
        return Liquidation(
            venue=VENUE, instrument=symbol, coin=spec.coin, position_side=side,
            price=price / mult, qty_base=qty_base * mult, notional_usd=notional,
            exchange_ts_ms=received_ms, received_at=received_at,
            completeness=Completeness.FULL, event_id=f"{VENUE}:{order_id}")

    def _value(
        self, spec: instr.InstrumentSpec, contracts: float, price: float
    ) -> tuple[float, float]:
        """(qty_base, notional_usd) of ``contracts`` at ``price``."""
        if spec.kind is instr.ContractKind.INVERSE:
            notional = contracts * spec.contract_size
            return notional / price, notional
        if spec.kind is instr.ContractKind.LINEAR:
            qty_base = contracts * spec.contract_size
            notional = qty_base * price
            if spec.quote == XBT:
                notional *= self._xbt_price(spec.instrument)
            return qty_base, notional
        notional = contracts * spec.contract_size * price  # in the settlement currency
        if spec.category == XBT:
            notional *= self._xbt_price(spec.instrument)
        return notional / price, notional

    def _xbt_price(self, symbol: str) -> float:
        if self.xbt_usd is None:
            raise FrameError(UNKNOWN_PRICE, f"{symbol}: no XBT/USD mark price received yet")
        return self.xbt_usd

    # -- mark prices ----------------------------------------------------------------------

    def _instrument_table(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        action = _json.req(msg, "action")
        rows = _json.arr(_json.req(msg, "data"), "data")
        if action == "delete":
            return [dialect.Info("instrument delete")]
        if action not in ("partial", "insert", "update"):
            return [dialect.Unrecognised("unknown_action")]
        received_ms = int(received_at * 1000)
        return dialect.read_rows(rows, lambda element: self._mark_price(
            _json.obj(element, "data[]"), received_at, received_ms), raise_when=dialect.NEVER)

    def _mark_price(
        self, row: dict[str, Any], received_at: float, received_ms: int
    ) -> MarkPrice | None:
        symbol = _json.req_str(row, "symbol")
        if symbol.startswith("."):
            return None  # an index, not a tradable instrument
        terms = self._terms_of(symbol, row)
        raw_price = row.get("markPrice")
        if raw_price is None or terms is None:
            return None
        coin, mult, quote = terms
        if quote not in instr.USD_LIKE:
            return None  # priced in XBT: not a USD price of the coin
        price = _json.positive(_json.to_float(raw_price, "markPrice"), "markPrice")
        _json.in_range(symbol, price / mult)
        if symbol in XBT_REFERENCES:
            self.xbt_usd = price
        if not self.is_wanted(symbol):
            return None
        ts = timestamp_ms(row.get("timestamp"), received_ms)
        return MarkPrice(VENUE, symbol, coin, price / mult, ts, received_at)

    def _terms_of(self, symbol: str, row: dict[str, Any]) -> tuple[str, float, str] | None:
        spec = self._book.get(symbol)
        if spec is not None:
            return spec.coin, spec.base_multiplier, spec.quote
        terms = self._terms.get(symbol)
        if terms is not None:
            return terms
        root = row.get("rootSymbol") or row.get("underlying")
        quote = _currency(row.get("quoteCurrency"))
        if not isinstance(root, str) or not root or not quote:
            return None
        coin, mult = instr.normalise_coin(root)
        if len(self._terms) >= _SYMBOL_TERMS_LIMIT:
            self._terms.clear()
        self._terms[symbol] = (coin, mult, quote)
        return coin, mult, quote


def instrument_spec(row: dict[str, Any]) -> instr.InstrumentSpec | None:
    """The spec of one ``instrument/active`` row, or None for what is not valued here.

    Raises FrameError for a row of the wrong shape.
    """
    symbol = _json.req_str(row, "symbol")
    typ = row.get("typ")
    if not isinstance(typ, str) or not typ.startswith("FF"):
        return None  # spot pairs, indices, options: no liquidations
    root = row.get("rootSymbol") or row.get("underlying")
    if not isinstance(root, str) or not root:
        raise FrameError(_json.BAD_VALUE, f"{symbol}: no rootSymbol")
    coin, mult = instr.normalise_coin(root)
    quote = _currency(row.get("quoteCurrency"))
    settle = row.get("settlCurrency")
    multiplier = abs(_json.opt_float(row, "multiplier"))
    if row.get("isQuanto") is True:
        terms = _SETTLE_SCALE.get(settle) if isinstance(settle, str) else None
        if terms is None or quote not in instr.USD_LIKE or multiplier <= 0.0:
            return None
        settle_name, scale = terms
        return instr.InstrumentSpec(VENUE, symbol, coin, instr.ContractKind.QUANTO,
                                    multiplier / scale, quote,
                                    base_multiplier=mult, category=settle_name)
    category = _SETTLE_SCALE.get(settle, (_currency(settle), 1.0))[0] if isinstance(
        settle, str) else ""
    if row.get("isInverse") is True:
        if quote not in instr.USD_LIKE:
            return None  # XBTEUR and the like: contracts of a non-USD currency
        to_settle = abs(_json.opt_float(row, "underlyingToSettleMultiplier"))
        size = multiplier / to_settle if multiplier > 0.0 and to_settle > 0.0 else 1.0
        return instr.InstrumentSpec(VENUE, symbol, coin, instr.ContractKind.INVERSE, size, quote,
                                    base_multiplier=mult, category=category)
    if quote not in instr.USD_LIKE and quote != XBT:
        return None
    to_position = _json.opt_float(row, "underlyingToPositionMultiplier")
    if to_position <= 0.0:
        return None
    return instr.InstrumentSpec(VENUE, symbol, coin, instr.ContractKind.LINEAR, 1.0 / to_position,
                                quote,
                                base_multiplier=mult, category=category)


class Bitmex(dialect.DialectDefaults):
    venue = VENUE
    session_type = BitmexSession
    completeness = Completeness.FULL
    ping_interval_seconds = PING_INTERVAL_SECONDS
    ping_text = PING_TEXT
    # max_lifetime_seconds stays None: none documented.
    needs_instruments = True
    instrument_document = ("instrument/active", INSTRUMENTS_PATH)

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        rows = dialect.read_document(f"{VENUE} instrument/active", body,
                                     lambda doc: _json.arr(doc, "instrument/active"))
        return dialect.read_specs(
            rows, lambda row: instrument_spec(_json.obj(row, "instrument"))
        ), None

    def subscribe_args(self) -> list[str]:
        if self.wanted is None:
            return ["instrument", "liquidation"]
        symbols = sorted(self.wanted)
        # XBTUSD's mark price values quanto and XBT-quoted contracts, so it is always wanted.
        prices = sorted({*symbols, XBT_REFERENCES[0]})
        return [f"instrument:{s}" for s in prices] + [f"liquidation:{s}" for s in symbols]

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/realtime"
        return [dialect.subscribe_plan(VENUE, url, self.subscribe_args())]
