"""HTX (Huobi) derivatives: ``public.*.liquidation_orders`` on the notification hosts.

Facts (reference/exchanges.md §13):

* Three notification hosts, one connection each: ``{ws}/linear-swap-notification``
  (USDT-margined), ``{ws}/swap-notification`` (coin-margined swaps) and
  ``{ws}/notification`` (coin-margined delivery futures, whose topics name the symbol:
  ``public.BTC.liquidation_orders`` carries ``BTC200703`` rows).
* ``{"op":"sub","cid":..,"topic":"public.*.liquidation_orders"}`` subscribes every contract,
  unauthenticated; the answer is ``{"op":"sub",..,"err-code":0}``, a refusal has a non-zero
  ``err-code`` and an ``err-msg``.
* Every server frame is gzip-compressed binary: :meth:`Htx.decode_binary` inflates it, so
  parsing and recording see text.
* The server sends ``{"op":"ping","ts":..}`` about every 5 s and drops the connection after
  a few unanswered ones: each is answered with a :class:`Reply` ``{"op":"pong","ts":..}``
  echoing the same ts. These pings are also the liveness canary: the notification hosts
  carry no price topic (the mark-price topics live on other hosts, UNCONFIRMED), so HTX
  has no price stream here.
* ``direction`` is the side of the liquidation ORDER: ``sell`` means a long was liquidated.
* USDT-margined: notional = ``trade_turnover`` (USDT), qty = ``amount`` (base units); when
  they are missing, volume × contract_size (base units per contract) × price.
  Coin-margined: ``volume`` counts contracts of ``contract_size`` USD (100 for BTC, 10 for
  others, from the contract_info endpoints): notional = volume × contract_size. A contract
  whose size is not known raises UnknownInstrument, never a guess.
* No id is published: the event id hashes (contract_code, created_at, direction, volume,
  price). The publishing rate is low (about one event every four minutes on a quiet day)
  and completeness is not documented; every published order counts (``full``, UNCONFIRMED).
* Configured symbols filter the wildcard subscription in the session (by contract code or
  by symbol), so one subscription per host serves every setting.
"""

from __future__ import annotations

import zlib
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError, InstrumentFetchError, UnknownInstrument
from monitor.events import Completeness, Liquidation, PositionSide, event_id_from_text

VENUE = "htx"
TOPIC = "public.*.liquidation_orders"
BAD_GZIP = "bad_gzip"
MAX_FRAME_BYTES = 16 * 1024 * 1024  # a decompressed frame larger than this is refused
_GZIP_MAGIC = b"\x1f\x8b"
_SIDE = {"sell": PositionSide.LONG, "buy": PositionSide.SHORT}

# (category, notification path, REST contract_info path)
CATEGORIES = (
    ("usdt", "/linear-swap-notification",
     "/linear-swap-api/v1/swap_contract_info?business_type=all"),
    ("coin-swap", "/swap-notification", "/swap-api/v1/swap_contract_info"),
    ("coin-futures", "/notification", "/api/v1/contract_contract_info"),
)


def gunzip(data: bytes) -> str:
    """An HTX binary frame (gzip; plain UTF-8 is tolerated) as text. Raises FrameError."""
    if not data.startswith(_GZIP_MAGIC):
        return _json.decode_utf8(data)
    inflater = zlib.decompressobj(wbits=31)
    try:
        raw = inflater.decompress(data, MAX_FRAME_BYTES)
    except zlib.error as exc:
        raise FrameError(BAD_GZIP, f"cannot inflate: {exc}") from None
    if inflater.unconsumed_tail:
        raise FrameError(BAD_GZIP, f"inflates to more than {MAX_FRAME_BYTES} bytes")
    if not inflater.eof:
        raise FrameError(BAD_GZIP, "truncated gzip stream")
    return _json.decode_utf8(raw)


def _pong(body: dict[str, Any]) -> dialect.Reply:
    """The answer to a server ping, echoing its ts (which must be JSON orjson can write)."""
    try:
        return dialect.Reply(orjson.dumps(body).decode())
    except orjson.JSONEncodeError:
        raise FrameError(_json.BAD_VALUE, "ping: ts nested too deep to echo") from None


def _refusal(msg: dict[str, Any]) -> dialect.Rejection:
    # _json.compact, not str(): str() of a deeply nested value raises RecursionError.
    code, text = _json.compact(msg.get("err-code", "")), _json.compact(msg.get("err-msg", ""))
    return dialect.Rejection(f"{code}: {text}")


def sub_frame(category: str) -> str:
    return orjson.dumps({"op": "sub", "cid": f"liqmon-{category}", "topic": TOPIC}).decode()


def is_linear_code(contract_code: str) -> bool:
    """USDT/USDC-margined contract codes (``BTC-USDT``, ``BTC-USDT-250926``)."""
    parts = contract_code.upper().split("-")
    return len(parts) >= 2 and parts[1] in instr.USD_LIKE and parts[1] != "USD"


class HtxSession(dialect.SessionDefaults):
    """Parse state of one HTX notification connection."""

    def parse_object(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        op = msg.get("op")
        if op == "notify":
            return self._notify(msg, received_at)
        if op == "ping":
            return [_pong({"op": "pong", "ts": _json.req(msg, "ts")})]
        if "ping" in msg and op is None:  # the market-data hosts' form, for robustness
            return [_pong({"pong": msg["ping"]})]
        if op == "sub":
            code = msg.get("err-code", 0)
            if code in (0, "0"):
                return [dialect.Ack(_json.compact(msg.get("topic", "")))]
            return [_refusal(msg)]
        if op == "error" or (op is None and "err-code" in msg):
            return [_refusal(msg)]
        if op in ("pong", "unsub", "close"):
            return [dialect.Pong()] if op == "pong" else [dialect.Info(str(op))]
        return dialect.unknown("op", op)

    def _notify(self, msg: dict[str, Any], received_at: float) -> list[dialect.Item]:
        topic = msg.get("topic")
        if not (isinstance(topic, str) and topic.endswith(".liquidation_orders")):
            return [dialect.Unrecognised("unknown_topic")]
        rows = _json.arr(_json.req(msg, "data"), "data")
        return dialect.read_rows(rows, lambda row: self._liquidation(
            _json.obj(row, "liquidation order"), received_at),
            raise_when=dialect.LONE_ROW, unknown_holds_frame=True)

    def _liquidation(self, row: dict[str, Any], received_at: float) -> Liquidation | None:
        code = _json.req_str(row, "contract_code")
        symbol = row.get("symbol")
        if self._wanted is not None and code not in self._wanted and not (
                isinstance(symbol, str) and symbol in self._wanted):
            return None
        raw_side, side = _json.req_choice(row, "direction", _SIDE)
        volume = _json.positive(_json.req_float(row, "volume"), "volume")
        price = _json.positive(_json.req_float(row, "price"), "price")
        ts = _json.req_int(row, "created_at")
        spec = self._book.get(code)
        linear = (spec.kind is instr.ContractKind.LINEAR if spec is not None
                  else is_linear_code(code))
        if linear:
            notional = _json.opt_float(row, "trade_turnover")
            qty = _json.opt_float(row, "amount")
            if notional <= 0.0 or qty <= 0.0:
                if spec is None:
                    raise UnknownInstrument(VENUE, code)
                qty = volume * spec.contract_size
                notional = qty * price
        else:
            if spec is None:
                raise UnknownInstrument(VENUE, code)
            notional = volume * spec.contract_size
            qty = notional / price
        _json.in_range(code, notional, qty)
        if spec is not None:
            coin, mult = spec.coin, spec.base_multiplier
        else:
            coin, mult = instr.normalise_coin(symbol if isinstance(symbol, str) and symbol
                                              else code.split("-", 1)[0])
        return Liquidation(
            venue=VENUE, instrument=code, coin=coin, position_side=side, price=price / mult,
            qty_base=qty * mult, notional_usd=notional, exchange_ts_ms=ts,
            received_at=received_at, completeness=Completeness.FULL,
            event_id=event_id_from_text(VENUE, f"{VENUE}\x1f{code}\x1f{ts}\x1f{raw_side}"
                                        f"\x1f{_raw(row['volume'])}\x1f{_raw(row['price'])}"))


def _raw(value: object) -> str:
    """A number as it takes part in the event id: the same text however JSON spelled it."""
    return repr(float(value)) if isinstance(value, int | float) else str(value)


class Htx(dialect.DialectDefaults):
    """No application ping: the server pings and we answer (Reply). Binary frames are gzip."""

    venue = VENUE
    session_type = HtxSession
    completeness = Completeness.FULL
    needs_instruments = True  # coin-margined contracts are valued by contract size

    def decode_binary(self, data: bytes) -> str:
        return gunzip(data)

    def instrument_requests(self, rest_base_url: str) -> list[dialect.RestRequest]:
        base = rest_base_url.rstrip("/")
        return [dialect.RestRequest(key=category, url=base + rest)
                for category, _ws, rest in CATEGORIES]

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        context = f"{VENUE} {request.key}"

        def rows(document: object) -> list[Any]:
            doc = _json.obj(document, "contract_info")
            if doc.get("status") != "ok":
                raise InstrumentFetchError(f"{context}: {_json.describe(doc.get('err-code'))}: "
                                           f"{_json.describe(doc.get('err-msg'))}")
            return _json.arr(_json.req(doc, "data"), "data")

        found = dialect.read_document(context, body, rows)
        return dialect.read_specs(found, lambda row: self._spec(_json.obj(row, "contract"))), None

    def _spec(self, row: dict[str, Any]) -> instr.InstrumentSpec:
        # The contract code, not the request, tells the margin kind: the three documents
        # have the same row shape, and ``liqmon parse --instruments`` cannot say which it got.
        code = _json.req_str(row, "contract_code")
        coin, mult = instr.normalise_coin(_json.req_str(row, "symbol"))
        size = _json.positive(_json.req_float(row, "contract_size"), "contract_size")
        if is_linear_code(code):
            partition = row.get("trade_partition")
            quote = partition if isinstance(partition, str) and partition else code.split("-")[1]
            kind, category = instr.ContractKind.LINEAR, "usdt"
        else:
            quote = "USD"
            kind = instr.ContractKind.INVERSE
            category = "coin-swap" if "-" in code else "coin-futures"
        return instr.InstrumentSpec(VENUE, code, coin, kind, size, quote, base_multiplier=mult,
                                    category=category)

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        base = ws_base_url.rstrip("/")
        return [
            dialect.ConnectionPlan(f"{VENUE}-{category}", base + ws_path, (sub_frame(category),),
                                   expected_acks=1)
            for category, ws_path, _rest in CATEGORIES
        ]
