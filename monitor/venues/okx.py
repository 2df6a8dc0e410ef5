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
typed decoders of ``monitor/venues/fast.py`` into the fields they read; anything else, or
anything unusual, goes to :meth:`OkxSession.parse_generic`, which gives every item, reason
and notice as it always has.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from hashlib import blake2b
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.fast as _fast
from monitor.errors import FrameError, UnknownInstrument
from monitor.events import (
    Completeness,
    Liquidation,
    MarkPrice,
    PositionSide,
    event_id_from_fields,
    new_liquidation,
)
from monitor.venues.dialect import (
    Ack,
    ConnectionPlan,
    DialectDefaults,
    DialectSession,
    Info,
    Invalid,
    Item,
    Pong,
    Rejection,
    RestRequest,
    TopicRequest,
    Unrecognised,
    VenueSettings,
    chunks,
    read_document,
    read_specs,
)
from monitor.venues.instruments import (
    USD_LIKE,
    ContractKind,
    InstrumentBook,
    InstrumentSpec,
    normalise_coin,
)

VENUE = "okx"
LIQUIDATION_CHANNEL = "liquidation-orders"
MARK_CHANNEL = "mark-price"
INST_TYPES = ("SWAP", "FUTURES")
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
_LONG = PositionSide.LONG
_SHORT = PositionSide.SHORT
_THROTTLED = Completeness.THROTTLED
_INF = math.inf
_ID_HEAD = VENUE + ":"
_FAST_TERMS_LIMIT = 4096  # instIds of garbage frames must not grow it unbounded
# (inverse, contract size, coin, unit multiplier, event-id hash state)
_FastTerms = tuple[bool, float, str, float, blake2b]
# float() of a string that is no number raises ValueError: such a frame is the generic path's.
_FAST_REFUSED = (*_fast.DECODE_ERRORS, ValueError)


def _ts_ms(value: object, what: str) -> int:
    # Bound the digits first: int() refuses strings past 4300 digits with a ValueError.
    if isinstance(value, str) and len(value) > 16:
        raise FrameError(_json.BAD_VALUE, f"{what}: not a millisecond timestamp: {value:.40}")
    return _json.to_int(value, what)


def _family(row: dict[str, Any], inst_id: str) -> tuple[str, str]:
    """Base and quote of an instrument: instFamily (or the older uly), else the instId."""
    family = row.get("instFamily") or row.get("uly") or inst_id
    # str() of a deeply nested value raises RecursionError: only text is read.
    parts = family.split("-") if isinstance(family, str) else []
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise FrameError(_json.BAD_VALUE,
                         f"instrument family of {inst_id!r}: {_json.describe(family)}")
    return parts[0], parts[1]


def _instrument_rows(document: object) -> list[Any]:
    doc = _json.obj(document, "instruments document")
    if str(doc.get("code", "0")) != "0":
        raise FrameError("venue_error", f"code {_json.describe(doc.get('code'))}: "
                                        f"{_json.describe(doc.get('msg'))}")
    return _json.arr(_json.req(doc, "data"), "data")


def spec_from_instrument(row: dict[str, Any]) -> InstrumentSpec | None:
    """One row of ``/api/v5/public/instruments`` as a spec; None when it cannot be valued.

    Raises FrameError for a row that is not a readable SWAP/FUTURES instrument.
    """
    inst_id = _json.req_str(row, "instId")
    inst_type = _json.req_str(row, "instType")
    if inst_type not in INST_TYPES:
        return None
    ct_val = _json.positive(_json.req_float(row, "ctVal"), "ctVal")
    ct_mult = _json.positive(_json.opt_float(row, "ctMult", 1.0), "ctMult")
    ct_val_ccy = _json.req_str(row, "ctValCcy").upper()
    base, quote = _family(row, inst_id)
    coin, multiplier = normalise_coin(base)
    ct_type = row.get("ctType")
    if ct_type == "linear" and ct_val_ccy == base.upper():
        kind = ContractKind.LINEAR
    elif ct_type == "inverse" and ct_val_ccy in USD_LIKE:
        kind, quote = ContractKind.INVERSE, "USD"
    else:
        # A contract valued in something else (quanto-like); its USD value is not derivable.
        return None
    return InstrumentSpec(
        venue=VENUE,
        instrument=inst_id,
        coin=coin,
        kind=kind,
        contract_size=ct_val * ct_mult,
        quote=quote.upper(),
        base_multiplier=multiplier,
        category=inst_type,
    )


def topic_arg(topic: str) -> dict[str, str]:
    """``mark-price:BTC-USDT-SWAP`` as OKX's subscription argument."""
    channel, _, key = topic.partition(":")
    return {"channel": channel, "instType" if channel == LIQUIDATION_CHANNEL else "instId": key}


def okx_requests(op: str, topics: Sequence[str], tag: str = "") -> list[TopicRequest]:
    """Requests carrying ``topics``, each under OKX's per-request size limit."""
    requests: list[TopicRequest] = []
    batch: list[str] = []
    size = 0

    def close() -> None:
        request_id = f"{tag}{len(requests) + 1}"
        text = orjson.dumps({"id": request_id, "op": op,
                             "args": [topic_arg(t) for t in batch]}).decode()
        # OKX acknowledges each argument separately.
        requests.append(TopicRequest(request_id, text, tuple(batch),
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


class Okx(DialectDefaults):
    venue = VENUE
    completeness = Completeness.THROTTLED
    ping_interval_seconds = PING_INTERVAL_SECONDS
    ping_text = PING_TEXT
    needs_instruments = True

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self.replay_max_age_seconds = self.option_float(
            "replay_max_age_seconds", DEFAULT_REPLAY_MAX_AGE_SECONDS)
        self.mark_topics_per_connection = self.option_int(
            "mark_price_topics_per_connection", DEFAULT_MARK_TOPICS_PER_CONNECTION)

    def instrument_requests(self, rest_base_url: str) -> list[RestRequest]:
        base = rest_base_url.rstrip("/")
        return [
            RestRequest(key=f"okx-{t}", url=f"{base}/api/v5/public/instruments?instType={t}")
            for t in INST_TYPES
        ]

    def parse_instruments(
        self, request: RestRequest, body: bytes
    ) -> tuple[list[InstrumentSpec], RestRequest | None]:
        rows = read_document(request.key, body, _instrument_rows)
        # An unreadable row stays unknown. The endpoint returns every instrument of the type
        # at once: there is no next page.
        return read_specs(rows, lambda row: spec_from_instrument(
            _json.obj(row, "instrument"))), None

    def mark_price_instruments(self, instruments: InstrumentBook) -> list[str]:
        """The configured symbols, else one SWAP per coin (USDT, then USDC, then inverse)."""
        if self.settings.symbols is not None:
            return list(dict.fromkeys(self.settings.symbols))
        best: dict[str, InstrumentSpec] = {}
        for spec in instruments.in_category("SWAP"):
            if spec.quote not in _QUOTE_PREFERENCE:
                continue
            current = best.get(spec.coin)
            rank = _QUOTE_PREFERENCE.index(spec.quote)
            if current is None or rank < _QUOTE_PREFERENCE.index(current.quote):
                best[spec.coin] = spec
        return sorted(spec.instrument for spec in best.values())

    def plans(self, ws_base_url: str, instruments: InstrumentBook) -> list[ConnectionPlan]:
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
                   for shard in chunks(rest, self.mark_topics_per_connection)]
        plans = []
        for index, topics in enumerate(shards):
            requests = okx_requests("subscribe", topics)
            plans.append(ConnectionPlan(
                name=f"okx-{index}", url=url,
                subscribe_frames=tuple(r.text for r in requests),
                expected_acks=sum(r.acks for r in requests), topics=tuple(topics)))
        return plans

    def topic_requests(
        self, op: str, topics: Sequence[str], tag: str
    ) -> list[TopicRequest]:
        return okx_requests(op, topics, f"{tag}-")

    def session(
        self, instruments: InstrumentBook, plan: ConnectionPlan | None = None
    ) -> DialectSession:
        return OkxSession(
            instruments,
            watched=self.wanted or None,
            replay_max_age_seconds=self.replay_max_age_seconds,
        )


def _canary_rank(inst: str, instruments: InstrumentBook) -> int:
    spec = instruments.get(inst)
    coin = spec.coin if spec is not None else inst.split("-", 1)[0]
    return _CANARY_COINS.index(coin) if coin in _CANARY_COINS else len(_CANARY_COINS)


class OkxSession:
    """Parse state of one OKX connection: which instrument types have had their first push."""

    def __init__(
        self,
        instruments: InstrumentBook,
        watched: frozenset[str] | None = None,
        replay_max_age_seconds: float = DEFAULT_REPLAY_MAX_AGE_SECONDS,
    ) -> None:
        self.instruments = instruments
        self.watched = watched
        self.replay_max_age_ms = replay_max_age_seconds * 1000.0
        self._pushed: set[str] = set()
        self._fast_terms: dict[str, _FastTerms] = {}
        self._fast_version = instruments.version

    def parse(self, text: str, received_at: float) -> list[Item]:
        if text[:2] == '{"':
            try:
                got = self._parse_fast(_fast.okx_frame(text), received_at)
            except _FAST_REFUSED:
                got = None
            if got is not None:
                return got
        return self.parse_generic(text, received_at)

    def parse_generic(self, text: str, received_at: float) -> list[Item]:
        """Every frame, every shape, every check: what :meth:`parse` falls back to."""
        if text == "pong":
            return [Pong()]
        msg = _json.loads(text)
        if not isinstance(msg, dict):
            raise FrameError(_json.BAD_VALUE, f"expected an object, got {type(msg).__name__}")
        event = msg.get("event")
        if event is not None:
            return [_event_notice(msg, event)]
        arg = msg.get("arg")
        if arg is None or "data" not in msg:
            return [Unrecognised("unknown_shape")]
        channel = _json.obj(arg, "arg").get("channel")
        if channel == LIQUIDATION_CHANNEL:
            return self._liquidations(arg, _json.arr(msg["data"], "data"), received_at)
        if channel == MARK_CHANNEL:
            return self._marks(_json.arr(msg["data"], "data"), received_at)
        return [Unrecognised("unknown_channel")]

    # -- fast paths (monitor/venues/fast.py): None sends the frame to the generic path -----

    def _parse_fast(self, frame: _fast.OkxFrame, received_at: float) -> list[Item] | None:
        channel = frame.arg.channel
        if channel == LIQUIDATION_CHANNEL:
            # The first push of an instrument type is the generic path's (its replays).
            if frame.arg.instType not in self._pushed:
                return None
            return self._fast_liquidations(frame.data, received_at)
        if channel == MARK_CHANNEL:
            return self._fast_marks(frame.data, received_at)
        return None

    def _fast_liquidations(self, rows: list[_fast.OkxRow], received_at: float
                           ) -> list[Item] | None:
        watched = self.watched
        if self.instruments.version != self._fast_version:
            self._fast_terms.clear()
            self._fast_version = self.instruments.version
        cache = self._fast_terms
        items: list[Item] = []
        for row in rows:
            inst_id = row.instId
            details = row.details
            if details is None or not inst_id:
                return None
            if watched is not None and inst_id not in watched:
                continue
            terms = cache.get(inst_id)
            if terms is None:
                terms = self._fast_terms_of(inst_id)
                if terms is None:
                    return None
            inverse, size, coin, mult, id_state = terms
            for d in details:
                ts_raw = d.ts
                pos_side = d.posSide
                side = d.side
                if pos_side == "long":
                    position_side = _LONG
                elif pos_side == "short":
                    position_side = _SHORT
                elif pos_side in (None, "", "net") and side in ("sell", "buy"):
                    position_side = _LONG if side == "sell" else _SHORT
                else:
                    return None
                sz_raw = d.sz
                px_raw = d.bkPx
                contracts = float(sz_raw)
                bk_px = float(px_raw)
                if not (len(ts_raw) <= 16 and ts_raw.isascii() and ts_raw.isdigit()
                        and 0.0 < contracts < _INF and 0.0 < bk_px < _INF):
                    return None
                if inverse:
                    notional = contracts * size
                    qty_quoted = notional / bk_px
                else:
                    qty_quoted = contracts * size
                    notional = qty_quoted * bk_px
                qty_base = qty_quoted * mult
                if not (notional < _INF and qty_base < _INF):
                    return None
                digest = id_state.copy()
                digest.update(f"{ts_raw}\x1f{side}\x1f{sz_raw}\x1f{px_raw}".encode())
                items.append(new_liquidation(
                    VENUE, inst_id, coin, position_side, bk_px / mult, qty_base, notional,
                    int(ts_raw), received_at, _THROTTLED, _ID_HEAD + digest.hexdigest()))
        return items

    def _fast_terms_of(self, inst_id: str) -> _FastTerms | None:
        """What the fast path needs of an instrument; None for what only the generic path
        values or refuses (unknown, or linear in a quote that is not USD-like)."""
        spec = self.instruments.get(inst_id)
        if spec is None or not (spec.kind is ContractKind.INVERSE or (
                spec.kind is ContractKind.LINEAR and spec.quote in USD_LIKE)):
            return None
        # The hash state has read "okx␟instId␟": each order copies it and feeds only its
        # own fields, which gives the digest event_id_from_fields gives for the whole text.
        terms = (spec.kind is ContractKind.INVERSE, spec.contract_size, spec.coin,
                 spec.base_multiplier, blake2b(f"{VENUE}\x1f{inst_id}\x1f".encode(),
                                               digest_size=12))
        if len(self._fast_terms) >= _FAST_TERMS_LIMIT:
            self._fast_terms.clear()
        self._fast_terms[inst_id] = terms
        return terms

    def _fast_marks(self, rows: list[_fast.OkxRow], received_at: float) -> list[Item] | None:
        get = self.instruments.get
        items: list[Item] = []
        for row in rows:
            inst_id = row.instId
            ts_raw = row.ts
            raw = row.markPx
            if raw is None or ts_raw is None or not inst_id:
                return None
            price = float(raw)
            spec = get(inst_id)
            if (spec is None or not 0.0 < price < _INF
                    or not (len(ts_raw) <= 16 and ts_raw.isascii() and ts_raw.isdigit())):
                return None
            items.append(MarkPrice(VENUE, inst_id, spec.coin, price / spec.base_multiplier,
                                   int(ts_raw), received_at))
        return items or None

    # -- the generic path -----------------------------------------------------------------

    def _liquidations(
        self, arg: dict[str, Any], data: list[Any], received_at: float
    ) -> list[Item]:
        inst_type = arg.get("instType")
        first_push = isinstance(inst_type, str) and inst_type not in self._pushed
        oldest_ms = received_at * 1000.0 - self.replay_max_age_ms if first_push else None
        items: list[Item] = []
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
        items.extend(Invalid(e.reason, e.detail) for e in errors)
        if replayed:
            items.append(Info(f"{replayed} replayed {inst_type} orders older than the limit"))
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
        if spec.kind is ContractKind.INVERSE:
            notional = contracts * spec.contract_size
            qty_quoted = notional / bk_px
        elif spec.kind is ContractKind.LINEAR and spec.quote in USD_LIKE:
            qty_quoted = contracts * spec.contract_size
            notional = qty_quoted * bk_px
        else:
            raise FrameError("unsupported_instrument", f"{inst_id}: {spec.kind} in {spec.quote}")
        qty_base = qty_quoted * spec.base_multiplier
        if not (math.isfinite(notional) and math.isfinite(qty_base)):
            raise FrameError(_json.BAD_VALUE, f"{inst_id}: sz {sz_raw!r:.30} x bkPx out of range")
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
            # A side that is not text takes part as its short rendering: str() of a deeply
            # nested value raises RecursionError.
            event_id=event_id_from_fields(
                VENUE, inst_id, ts_raw, side if isinstance(side, str | None)
                else _json.describe(side), sz_raw, px_raw),
        )

    def _marks(self, data: list[Any], received_at: float) -> list[Item]:
        items: list[Item] = []
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
        items.extend(Invalid(e.reason, e.detail) for e in errors)
        return items or [Info("no futures or swap price in the frame")]

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
            base, quote = _family({}, inst_id)
            if quote.upper() not in USD_LIKE:
                return None
            coin, multiplier = normalise_coin(base)
        return MarkPrice(VENUE, inst_id, coin, price / multiplier, ts_ms, received_at)


def _event_notice(msg: dict[str, Any], event: object) -> Item:
    if event == "subscribe":
        arg = msg.get("arg")
        pairs = arg.items() if isinstance(arg, dict) else ()
        return Ack(",".join(f"{k}={_json.compact(v)}" for k, v in pairs)[:200])
    # Venue values are rendered by _json.compact: str() of a deeply nested one raises.
    if event == "error":
        code, text = _json.compact(msg.get("code", "")), _json.compact(msg.get("msg", ""))
        found = _REFUSED_ARG.search(text) if code == "60018" else None
        topic = None if found is None else f"{found.group(1)}:{found.group(2)}"
        return Rejection(f"{code}: {text}".strip(": "), topic)
    if event in ("unsubscribe", "notice", "channel-conn-count"):
        return Info(f"{event}: {_json.compact(msg.get('msg') or msg.get('arg') or '')}"[:200])
    return Unrecognised("unknown_event")
