"""OKX v5: the public ``liquidation-orders`` channel, valued with contract terms from REST.

One subscription per instrument type (``SWAP`` and ``FUTURES``) covers every instrument;
``mark-price`` is per instrument. Sizes are contracts: a linear contract is ``ctVal x ctMult``
base units, an inverse one ``ctVal x ctMult`` USD, so no liquidation is valued without its
instrument's terms (an unknown one raises :class:`UnknownInstrument`; never a guessed size).
``posSide`` long/short names the liquidated position; in net mode (``net`` or empty) the
order side decides: a forced sell closed a long.

The first push after subscribing replays recent orders. This dialect neither skips that push
whole nor leaves it all to dedupe: in the first ``liquidation-orders`` push of each
instrument type on a connection, a row older than ``replay_max_age_seconds`` (default 30)
before the frame's arrival is dropped as a replay; younger rows count. Why: skipping the
whole push would lose a liquidation that lands in it (nothing shows that the push is purely
a replay: tardis-node drops it whole, ccxt and cryptofeed keep it), while counting it all
would add, on every fresh start, old orders the 48 h dedupe has never seen, under their old
minutes. Rows inside the age limit are either new to us or, after a reconnect, already
counted and removed by dedupe (``event_id`` hashes instId, ts, side, sz and bkPx), which also
recovers what the reconnect gap would otherwise have lost. Later pushes are kept whatever
their age: OKX says they are not in time order. This needs the host clock within the age
limit of OKX's; a skewed clock only moves rows between "replayed" and "counted".

Refusals come one argument at a time (reference/exchanges.md §4.8a and §8.2; cryptofeed
issues 612/817): ``{"event":"error","code":"60018","msg":"Wrong URL or channel:mark-price,
instId:X doesn't exist..."}`` refuses that argument only, the others of the request are
acknowledged and flow. Such an error is read as a :class:`Rejection` of that one topic, so
a delisted mark-price instId is dropped without touching the connection. Topics are spelled
``channel:key`` (``mark-price:BTC-USDT-SWAP``) and unsubscribed live with
``op: unsubscribe``. Because any refused argument used to cost its whole connection, and
still costs a request round, the liquidation channel rides on its own connection with only
a few mark prices (its canary), never with the long price lists.

The channel shows "recent" orders, at most about one per contract per second: completeness
is ``throttled``.

Pushes of the usual shape (after an instrument type's first push) are first decoded by the
typed decoders of ``monitor/venues/okx_fast.py`` into the fields they read; anything else, or
anything unusual, goes to :meth:`OkxSession.parse_generic`, which gives every item, reason
and notice as it always has.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
import monitor.venues.okx_fast as okx_fast
import monitor.venues.okx_instruments as okx_instruments
from monitor.errors import FrameError, UnknownInstrument
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide, event_id_from_text

VENUE = okx_instruments.VENUE
INST_TYPES = okx_instruments.INST_TYPES
LIQUIDATION_CHANNEL = okx_fast.LIQUIDATION_CHANNEL
MARK_CHANNEL = okx_fast.MARK_CHANNEL
PING_TEXT = "ping"
# OKX drops a connection after 30 s without traffic; ping before that.
PING_INTERVAL_SECONDS = 25.0
# OKX caps the args of one request at 64 KB; stay well below.
MAX_ARGS_CHARS = 32_000
DEFAULT_MARK_TOPICS_PER_CONNECTION = 200
DEFAULT_REPLAY_MAX_AGE_SECONDS = 30.0
# Which SWAP gives a coin's price when no symbols are configured: one per coin is enough.
_QUOTE_PREFERENCE = ("USDT", "USDC", "USD")
# Mark prices on the liquidation connection: enough to prove it flows, too few to matter.
LIQUIDATION_CANARY_MARKS = 3
_CANARY_COINS = ("BTC", "ETH", "SOL")
_REFUSED_ARG = re.compile(r"channel:([\w-]+),\w+:([\w.-]+)")


def _ts_ms(value: object, what: str) -> int:
    # Bound the digits first: int() refuses strings past 4300 digits with a ValueError.
    if isinstance(value, str) and len(value) > 16:
        raise FrameError(_json.BAD_VALUE, f"{what}: not a millisecond timestamp: {value:.40}")
    return _json.to_int(value, what)


def topic_arg(topic: str) -> dict[str, str]:
    """``mark-price:BTC-USDT-SWAP`` as OKX's subscription argument."""
    channel, _, key = topic.partition(":")
    return {"channel": channel, "instType" if channel == LIQUIDATION_CHANNEL else "instId": key}


def okx_requests(op: str, topics: Sequence[str], tag: str = "") -> list[dialect.TopicRequest]:
    """Requests carrying ``topics``, each under OKX's per-request size limit."""
    requests: list[dialect.TopicRequest] = []
    batch: list[str] = []
    size = 0

    def close() -> None:
        request_id = f"{tag}{len(requests) + 1}"
        text = orjson.dumps({"id": request_id, "op": op,
                             "args": [topic_arg(t) for t in batch]}).decode()
        # OKX acknowledges each argument separately.
        requests.append(dialect.TopicRequest(request_id, text, tuple(batch),
                                     len(batch) if op == "subscribe" else 0))

    for topic in topics:
        arg_size = len(orjson.dumps(topic_arg(topic))) + 1
        if batch and size + arg_size > MAX_ARGS_CHARS:
            close()
            batch, size = [], 0
        batch.append(topic)
        size += arg_size
    if batch:
        close()
    return requests


class Okx(dialect.DialectDefaults):
    venue = VENUE
    completeness = Completeness.THROTTLED
    ping_interval_seconds = PING_INTERVAL_SECONDS
    ping_text = PING_TEXT
    needs_instruments = True

    def __init__(self, settings: dialect.VenueSettings) -> None:
        super().__init__(settings)
        self.replay_max_age_seconds = self.option_float(
            "replay_max_age_seconds", DEFAULT_REPLAY_MAX_AGE_SECONDS)
        self.mark_topics_per_connection = self.option_int(
            "mark_price_topics_per_connection", DEFAULT_MARK_TOPICS_PER_CONNECTION)

    def instrument_requests(self, rest_base_url: str) -> list[dialect.RestRequest]:
        base = rest_base_url.rstrip("/")
        return [
            dialect.RestRequest(key=f"okx-{t}",
                                url=f"{base}/api/v5/public/instruments?instType={t}")
            for t in INST_TYPES
        ]

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        rows = dialect.read_document(request.key, body, okx_instruments.instrument_rows)
        # An unreadable row stays unknown. The endpoint returns every instrument of the type
        # at once: there is no next page.
        return dialect.read_specs(rows, lambda row: okx_instruments.spec_from_instrument(
            _json.obj(row, "instrument"))), None

    def mark_price_instruments(self, instruments: instr.InstrumentBook) -> list[str]:
        """The configured symbols, else one SWAP per coin (USDT, then USDC, then inverse)."""
        if self.settings.symbols is not None:
            return list(dict.fromkeys(self.settings.symbols))
        best: dict[str, instr.InstrumentSpec] = {}
        for spec in instruments.in_category("SWAP"):
            if spec.quote not in _QUOTE_PREFERENCE:
                continue
            current = best.get(spec.coin)
            rank = _QUOTE_PREFERENCE.index(spec.quote)
            if current is None or rank < _QUOTE_PREFERENCE.index(current.quote):
                best[spec.coin] = spec
        return sorted(spec.instrument for spec in best.values())

    def plans(self, ws_base_url: str, instruments: instr.InstrumentBook
              ) -> list[dialect.ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/ws/v5/public"
        marks = self.mark_price_instruments(instruments)
        # okx-0 carries the liquidation channel and a few mark prices as its canary; the
        # other mark prices go on their own connections (see the module docstring).
        ranked = sorted(marks, key=lambda inst: (_canary_rank(inst, instruments), inst))
        chosen = set(ranked[:LIQUIDATION_CANARY_MARKS])
        canary = [inst for inst in marks if inst in chosen]
        rest = [inst for inst in marks if inst not in chosen]
        shards = [[f"{LIQUIDATION_CHANNEL}:{t}" for t in INST_TYPES]
                  + [f"{MARK_CHANNEL}:{inst}" for inst in canary]]
        shards += [[f"{MARK_CHANNEL}:{inst}" for inst in shard]
                   for shard in dialect.chunks(rest, self.mark_topics_per_connection)]
        plans = []
        for index, topics in enumerate(shards):
            requests = okx_requests("subscribe", topics)
            plans.append(dialect.ConnectionPlan(
                name=f"okx-{index}", url=url,
                subscribe_frames=tuple(r.text for r in requests),
                expected_acks=sum(r.acks for r in requests), topics=tuple(topics)))
        return plans

    def topic_requests(
        self, op: str, topics: Sequence[str], tag: str
    ) -> list[dialect.TopicRequest]:
        return okx_requests(op, topics, f"{tag}-")

    def session(
        self, instruments: instr.InstrumentBook, plan: dialect.ConnectionPlan | None = None
    ) -> dialect.DialectSession:
        return OkxSession(
            instruments,
            watched=self.wanted or None,
            replay_max_age_seconds=self.replay_max_age_seconds,
        )


def _canary_rank(inst: str, instruments: instr.InstrumentBook) -> int:
    spec = instruments.get(inst)
    coin = spec.coin if spec is not None else inst.split("-", 1)[0]
    return _CANARY_COINS.index(coin) if coin in _CANARY_COINS else len(_CANARY_COINS)


class OkxSession(okx_fast.OkxFastPaths):
    """Parse state of one OKX connection: which instrument types have had their first push."""

    def __init__(
        self,
        instruments: instr.InstrumentBook,
        watched: frozenset[str] | None = None,
        replay_max_age_seconds: float = DEFAULT_REPLAY_MAX_AGE_SECONDS,
    ) -> None:
        self.instruments = instruments
        self.watched = watched
        self.replay_max_age_ms = replay_max_age_seconds * 1000.0
        self._pushed: set[str] = set()
        self._fast_terms: dict[str, okx_fast.FastTerms] = {}
        self._fast_version = instruments.version

    def parse_generic(self, text: str, received_at: float) -> list[dialect.Item]:
        """Every frame, every shape, every check: what :meth:`parse` falls back to."""
        if text == "pong":
            return [dialect.Pong()]
        msg = _json.loads(text)
        if not isinstance(msg, dict):
            raise FrameError(_json.BAD_VALUE, f"expected an object, got {type(msg).__name__}")
        event = msg.get("event")
        if event is not None:
            return [_event_notice(msg, event)]
        arg = msg.get("arg")
        if arg is None or "data" not in msg:
            return [dialect.Unrecognised("unknown_shape")]
        channel = _json.obj(arg, "arg").get("channel")
        if channel == LIQUIDATION_CHANNEL:
            return self._liquidations(arg, _json.arr(msg["data"], "data"), received_at)
        if channel == MARK_CHANNEL:
            return self._marks(_json.arr(msg["data"], "data"), received_at)
        return [dialect.Unrecognised("unknown_channel")]

    # -- the generic path -----------------------------------------------------------------

    def _liquidations(
        self, arg: dict[str, Any], data: list[Any], received_at: float
    ) -> list[dialect.Item]:
        inst_type = arg.get("instType")
        first_push = isinstance(inst_type, str) and inst_type not in self._pushed
        oldest_ms = received_at * 1000.0 - self.replay_max_age_ms if first_push else None
        items: list[dialect.Item] = []
        errors: list[FrameError] = []
        replayed = rows = 0
        for element in data:
            rows += 1
            try:
                row = _json.obj(element, "data[]")
                inst_id = _json.req_str(row, "instId")
                details = _json.arr(_json.req(row, "details"), "details")
            except FrameError as exc:
                errors.append(exc)
                continue
            if self.watched is not None and inst_id not in self.watched:
                continue
            rows += len(details) - 1
            for detail in details:
                try:
                    liq = self._liquidation(inst_id, detail, received_at, oldest_ms)
                except UnknownInstrument:
                    raise  # the whole frame waits for an instrument refresh
                except FrameError as exc:
                    errors.append(exc)
                    continue
                if liq is None:
                    replayed += 1
                else:
                    items.append(liq)
        if errors and len(errors) == rows:
            raise errors[0]  # nothing in the frame was readable
        if first_push and isinstance(inst_type, str):
            self._pushed.add(inst_type)
        items.extend(dialect.Invalid(e.reason, e.detail) for e in errors)
        if replayed:
            items.append(dialect.Info(
                f"{replayed} replayed {inst_type} orders older than the limit"))
        return items

    def _liquidation(
        self, inst_id: str, element: object, received_at: float, oldest_ms: float | None
    ) -> Liquidation | None:
        detail = _json.obj(element, "details[]")
        ts_raw = _json.req(detail, "ts")
        ts_ms = _ts_ms(ts_raw, "ts")
        if oldest_ms is not None and ts_ms < oldest_ms:
            return None
        side = detail.get("side")
        pos_side = detail.get("posSide")
        if pos_side in ("long", "short"):
            position_side = PositionSide(pos_side)
        elif pos_side in (None, "", "net") and side in ("sell", "buy"):
            # Net mode: the forced order's side; a forced sell closed a long.
            position_side = PositionSide.LONG if side == "sell" else PositionSide.SHORT
        else:
            raise FrameError(_json.BAD_VALUE, f"side {_json.describe(side)} / "
                                              f"posSide {_json.describe(pos_side)}")
        sz_raw = _json.req(detail, "sz")
        px_raw = _json.req(detail, "bkPx")
        contracts = _json.positive(_json.to_float(sz_raw, "sz"), "sz")
        bk_px = _json.positive(_json.to_float(px_raw, "bkPx"), "bkPx")
        spec = self.instruments.get(inst_id)
        if spec is None:
            raise UnknownInstrument(VENUE, inst_id)
        if spec.kind is instr.ContractKind.INVERSE:
            notional = contracts * spec.contract_size
            qty_quoted = notional / bk_px
        elif spec.kind is instr.ContractKind.LINEAR and spec.quote in instr.USD_LIKE:
            qty_quoted = contracts * spec.contract_size
            notional = qty_quoted * bk_px
        else:
            raise FrameError("unsupported_instrument", f"{inst_id}: {spec.kind} in {spec.quote}")
        qty_base = qty_quoted * spec.base_multiplier
        if not (math.isfinite(notional) and math.isfinite(qty_base)):
            raise FrameError(_json.BAD_VALUE, f"{inst_id}: sz {sz_raw!r:.30} x bkPx out of range")
        # A side that is not text takes part as its short rendering: str() of a deeply
        # nested value raises RecursionError.
        side_text = side if isinstance(side, str | None) else _json.describe(side)
        return Liquidation(
            venue=VENUE,
            instrument=inst_id,
            coin=spec.coin,
            position_side=position_side,
            price=bk_px / spec.base_multiplier,
            qty_base=qty_base,
            notional_usd=notional,
            exchange_ts_ms=ts_ms,
            received_at=received_at,
            completeness=Completeness.THROTTLED,
            event_id=event_id_from_text(
                VENUE, f"{VENUE}\x1f{inst_id}\x1f{ts_raw}\x1f{side_text}\x1f{sz_raw}\x1f{px_raw}"),
        )

    def _marks(self, data: list[Any], received_at: float) -> list[dialect.Item]:
        items: list[dialect.Item] = []
        errors: list[FrameError] = []
        for element in data:
            try:
                mark = self._mark(_json.obj(element, "data[]"), received_at)
            except FrameError as exc:
                errors.append(exc)
                continue
            if mark is not None:
                items.append(mark)
        if errors and not items:
            raise errors[0]
        items.extend(dialect.Invalid(e.reason, e.detail) for e in errors)
        return items or [dialect.Info("no futures or swap price in the frame")]

    def _mark(self, row: dict[str, Any], received_at: float) -> MarkPrice | None:
        inst_id = _json.req_str(row, "instId")
        ts_ms = _ts_ms(_json.req(row, "ts"), "ts")
        price = _json.positive(_json.req_float(row, "markPx"), "markPx")
        spec = self.instruments.get(inst_id)
        if spec is not None:
            coin, multiplier = spec.coin, spec.base_multiplier
        else:
            # Options quote in coin, and a price needs a USD-like quote to be a USD price.
            if row.get("instType") not in (*INST_TYPES, None):
                return None
            base, quote = okx_instruments.family({}, inst_id)
            if quote.upper() not in instr.USD_LIKE:
                return None
            coin, multiplier = instr.normalise_coin(base)
        return MarkPrice(VENUE, inst_id, coin, price / multiplier, ts_ms, received_at)


def _event_notice(msg: dict[str, Any], event: object) -> dialect.Item:
    if event == "subscribe":
        arg = msg.get("arg")
        pairs = arg.items() if isinstance(arg, dict) else ()
        return dialect.Ack(",".join(f"{k}={_json.compact(v)}" for k, v in pairs)[:200])
    # Venue values are rendered by _json.compact: str() of a deeply nested one raises.
    if event == "error":
        code, text = _json.compact(msg.get("code", "")), _json.compact(msg.get("msg", ""))
        found = _REFUSED_ARG.search(text) if code == "60018" else None
        topic = None if found is None else f"{found.group(1)}:{found.group(2)}"
        return dialect.Rejection(f"{code}: {text}".strip(": "), topic)
    if event in ("unsubscribe", "notice", "channel-conn-count"):
        detail = _json.compact(msg.get("msg") or msg.get("arg") or "")
        return dialect.Info(f"{event}: {detail}"[:200])
    return dialect.Unrecognised("unknown_event")
