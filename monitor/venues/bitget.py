"""Bitget (UTA, v3 WebSocket): the public ``liquidation`` topic per product type.

Facts (reference/exchanges.md §9, Bitget's UTA docs, and the real frame in
``shared/realdata/bitget_liquidation.tardis.jsonl``):

* ``{ws}/v3/ws/public``; ``{"op":"subscribe","args":[{"instType":...,"topic":"liquidation"}, ...]}``
  for ``usdt-futures``, ``coin-futures`` and ``usdc-futures`` (no symbol: every pair).
  Each arg is acknowledged by ``{"event":"subscribe","arg":{...}}``; refusals come as
  ``{"event":"error","code":...,"msg":...}``.
* Pushes come once a second and hold, per pair, only the LARGEST long and the largest short
  liquidation of the previous second: completeness ``aggregated``, totals are lower bounds.
* ``side`` is the POSITION side: ``buy`` means a long position was liquidated.
* ``amount`` is the liquidation's QUOTE value (USDT for usdt-futures), not its size:
  notional_usd = amount, qty_base = amount / price. Settled on the real frame: APEUSDT
  ``price 0.1649, amount 13.70319`` gives amount / price = 83.1 APE, and IPUSDT
  ``price 0.500280739469, amount 143.330431857868`` gives 286.5 IP (to 1e-12): whole
  multiples of the pairs' 0.1 size step, while the amounts themselves (13.70319 APE,
  143.330431857868 IP) fit no size step. The 12-decimal price is an average fill price, and
  the 12-decimal amount its product with a round size. aggr and two other monitors read it
  the same way; tardis passes ``amount`` through as a size, which this contradicts. For
  coin-futures the same field is read as a USD value (UNCONFIRMED: no coin-futures frame was
  seen).
* ``ts`` (ms, a string) is the liquidation's time; the event id hashes instType, symbol,
  ts, side, amount and price (Bitget publishes no id).
* Text ``ping`` every 30 s, answered by ``pong``; Bitget cuts connections at 24 h, so they
  are rotated at 23 h (v2 rules, assumed for v3).
* Price stream and canary: the v3 ``ticker`` topic per symbol (``markPrice``). With no
  symbols configured, BTCUSDT and ETHUSDT (usdt-futures) are subscribed; configured symbols
  get a ticker each, their product type read from the quote (``USDT``, ``USDC``/``PERP``,
  else coin-futures). Instrument metadata is not needed: the amount is already USD.
"""

from __future__ import annotations

from typing import Any

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import (
    Completeness,
    Liquidation,
    MarkPrice,
    PositionSide,
    event_id_from_text,
)

VENUE = "bitget"
INST_TYPES = ("usdt-futures", "coin-futures", "usdc-futures")
LIQUIDATION_TOPIC = "liquidation"
TICKER_TOPIC = "ticker"
DEFAULT_PRICE_SYMBOLS = ("BTCUSDT", "ETHUSDT")
PING_TEXT = "ping"
PONG_TEXT = "pong"
PING_INTERVAL_SECONDS = 30.0
MAX_LIFETIME_SECONDS = 23 * 3600.0  # Bitget cuts connections at 24 h
_SIDE = {"buy": PositionSide.LONG, "sell": PositionSide.SHORT}


def symbol_coin(symbol: str) -> tuple[str, float]:
    """Coin and unit multiplier of a Bitget symbol: ``BTCUSDT``, ``BTCUSD``, ``BTCPERP``,
    ``BTCUSD_CM``. Raises FrameError for a symbol with no known quote."""
    core = symbol.upper().split("_", 1)[0]
    if core.endswith("PERP") and len(core) > 4:
        return instr.normalise_coin(core[:-4])  # USDC futures in the classic naming
    try:
        return instr.coin_of_symbol(core)
    except ValueError:
        raise FrameError(_json.BAD_VALUE, f"symbol: no known quote in {symbol!r:.40}") from None


def inst_type_of(symbol: str) -> str:
    """The product type of a configured symbol, read from its quote."""
    core = symbol.upper().split("_", 1)[0]
    if core.endswith("USDT"):
        return "usdt-futures"
    if core.endswith(("USDC", "PERP")):
        return "usdc-futures"
    return "coin-futures"


class BitgetSession(dialect.SessionDefaults):
    """Parse state of one Bitget connection (none beyond the configured symbols)."""

    pong_text = PONG_TEXT

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        if "event" in msg:
            return self._event(msg)
        arg = msg.get("arg")
        if isinstance(arg, dict) and "data" in msg:
            topic = arg.get("topic")
            if topic == LIQUIDATION_TOPIC:
                return self._liquidations(msg, arg, received_at)
            if topic == TICKER_TOPIC:
                return self._tickers(msg, arg, received_at)
            return [dialect.Unrecognised("unknown_topic")]
        return [dialect.Unrecognised("unknown_shape")]

    def _event(self, msg: dict[str, Any]) -> list[dialect.Item]:
        event = msg.get("event")
        if event == "subscribe":
            return [dialect.Ack(_json.compact(msg.get("arg")))]
        if event == "error":
            text = msg.get("msg")
            return [dialect.Rejection(text if isinstance(text, str) else _json.compact(msg))]
        if event in ("unsubscribe", "login"):
            return [dialect.Info(str(event))]
        return [dialect.Unrecognised("unknown_event")]

    def _liquidations(
        self, msg: dict[str, Any], arg: dict[str, Any], received_at: float
    ) -> list[dialect.Item]:
        rows = _json.arr(msg["data"], "data")
        action = msg.get("action")
        if action == "snapshot":
            return [dialect.Info("liquidation snapshot")]  # history on subscribe, if it ever comes
        if action != "update":
            return [dialect.Unrecognised("unknown_action")]
        inst_type = arg.get("instType")
        if not isinstance(inst_type, str):
            inst_type = ""
        return dialect.read_rows(rows, lambda element: self._liquidation(
            _json.obj(element, "data[]"), inst_type, received_at))

    def _liquidation(
        self, row: dict[str, Any], inst_type: str, received_at: float
    ) -> Liquidation | None:
        symbol = _json.req_str(row, "symbol")
        raw_side, side = _json.req_choice(row, "side", _SIDE)
        raw_price = _json.req(row, "price")
        raw_amount = _json.req(row, "amount")
        price = _json.positive(_json.to_float(raw_price, "price"), "price")
        notional = _json.positive(_json.to_float(raw_amount, "amount"), "amount")
        ts = _json.req_int(row, "ts")
        coin, mult = self._coin(symbol)
        if not self.is_wanted(symbol):
            return None
        _json.in_range(symbol, price / mult, notional / price * mult)
        return Liquidation(
            venue=VENUE, instrument=symbol, coin=coin, position_side=side,
            price=price / mult, qty_base=notional / price * mult, notional_usd=notional,
            exchange_ts_ms=ts, received_at=received_at, completeness=Completeness.AGGREGATED,
            event_id=event_id_from_text(VENUE, f"{VENUE}\x1f{inst_type}\x1f{symbol}\x1f{ts}"
                                        f"\x1f{raw_side}\x1f{raw_amount}\x1f{raw_price}"))

    def _tickers(
        self, msg: dict[str, Any], arg: dict[str, Any], received_at: float
    ) -> list[dialect.Item]:
        rows = _json.arr(msg["data"], "data")
        symbol = arg.get("symbol")
        frame_ts = msg.get("ts")

        def ticker(element: object) -> MarkPrice:
            row = _json.obj(element, "data[]")
            name = row.get("symbol", symbol)
            if not isinstance(name, str) or not name:
                raise FrameError(_json.BAD_VALUE, "ticker without a symbol")
            coin, mult = self._coin(name)
            price = _json.positive(_json.req_float(row, "markPrice"), "markPrice")
            ts = _json.to_int(row.get("ts", frame_ts), "ts")
            _json.in_range(name, price / mult)
            return MarkPrice(VENUE, name, coin, price / mult, ts, received_at)

        return dialect.read_rows(rows, ticker, raise_when=dialect.LONE_ROW)

    def _coin(self, symbol: str) -> tuple[str, float]:
        spec = self._book.get(symbol)
        if spec is not None:
            return spec.coin, spec.base_multiplier
        return symbol_coin(symbol)


class Bitget(dialect.DialectDefaults):
    venue = VENUE
    session_type = BitgetSession
    completeness = Completeness.AGGREGATED
    ping_interval_seconds = PING_INTERVAL_SECONDS
    ping_text = PING_TEXT
    max_lifetime_seconds = MAX_LIFETIME_SECONDS
    # needs_instruments stays False: amount is the quote value.

    def subscribe_args(self) -> list[dict[str, str]]:
        args = [{"instType": t, "topic": LIQUIDATION_TOPIC} for t in INST_TYPES]
        symbols = DEFAULT_PRICE_SYMBOLS if self.wanted is None else sorted(self.wanted)
        args += [{"instType": inst_type_of(s), "topic": TICKER_TOPIC, "symbol": s}
                 for s in symbols]
        return args

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/v3/ws/public"
        return [dialect.subscribe_plan(VENUE, url, self.subscribe_args())]
