"""Hyperliquid: backstop liquidations from the liquidator vaults' ``userFills``; mid prices
from ``allMids``.

Facts (reference/exchanges.md §5.1-5.3 and §5.2a; Hyperliquid's websocket docs for
``userFills``/``WsUserFills``; the ``WsFill`` and ``FillLiquidation`` types of
nktkas/hyperliquid and of the Python SDK):

* There is no public market-wide liquidation feed. A liquidation first goes to the book as
  market orders (a "market" liquidation, invisible without a node); when that fails the
  liquidator vault takes the position over (a "backstop" liquidation).
* ``{"method":"subscribe","subscription":{"type":"userFills","user":"0x…"}}`` works for ANY
  address; at most 10 distinct users per IP. Its first push is a snapshot of recent fills,
  flagged ``"isSnapshot": true``: skipped whole, it is history. Later pushes are
  ``{"channel":"userFills","data":{"user":..,"fills":[WsFill,...]}}``.
* A fill of a liquidation carries ``liquidation``: ``{"liquidatedUser","markPx","method"}``
  (``method`` ``market`` or ``backstop``). Exactly those fills of a vault are counted; its
  other fills (unwinding what it absorbed) are ignored. The fill's ``side`` is the vault's:
  ``B`` (the vault bought) means it took over a LONG, ``A`` a SHORT. Notional is px x sz in
  USDC; ``tid`` is the trade id and the dedupe key.
* What this sees is the backstop liquidations of the watched vaults only: completeness
  ``backstop``. Full coverage needs a node (venue ``hyperliquid-node``).

Vault addresses come from ``options.vault_addresses`` (compared case-insensitively), by
default HLP's liquidator vaults 1-4 and the standalone Liquidator vault.
``options.infer_from_trades`` (off by default) adds the doubtful counterparty inference of
:mod:`monitor.venues.hyperliquid_trades`.

Prices are ``allMids``: the book MID of each coin, not a mark price (Hyperliquid's mark is
only per coin, in ``activeAssetCtx``). A mid is emitted when it changes; ``allMids`` has no
venue time, so its prices carry the arrival time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.hyperliquid_trades as hl_trades
import monitor.venues.instruments as instr
from monitor.errors import ConfigError, FrameError, InstrumentFetchError
from monitor.events import Completeness, MarkPrice, PositionSide

VENUE = "hyperliquid"
# HLP's liquidator child vaults 1-4 and the standalone Liquidator vault (reference §5.2a,
# §5.3; verify against vaultDetails of HLP 0xdfc24b077bc1425ad1dea75bcb6f8158e10df303).
DEFAULT_VAULT_ADDRESSES = (
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",
    "0x5e177e5e39c0f4e421f5865a6d8beed8d921cb70",
    "0x2ed5c4484ea3ff8b57d5f2fb152a40d9f2b68308",
    "0x63c621a33714ec48660e32f2374895c8026a3a00",
)
# Hyperliquid allows user-specific subscriptions for at most 10 distinct users per IP.
MAX_USERS = 10
PING_FRAME = '{"method":"ping"}'
# The server closes a connection after 60 s without a message from the client.
PING_INTERVAL_SECONDS = 50.0
# Bursts of subscribe frames get a connection reset; the venue allows 2000 messages a minute
# and 1000 subscriptions per IP. 50 coins a connection at 0.25 s is 12.5 s to subscribe.
DEFAULT_SUBSCRIBE_INTERVAL_SECONDS = 0.25
DEFAULT_COINS_PER_CONNECTION = 50
DEFAULT_REPLAY_MAX_AGE_SECONDS = 30.0
WELCOME_TEXT = "Websocket connection established."
# The vault's side of its fill: buying takes over a long.
_TAKEN_OVER = {"B": PositionSide.LONG, "A": PositionSide.SHORT}


def _vault_addresses(options: Mapping[str, object]) -> tuple[str, ...]:
    value = options.get("vault_addresses", DEFAULT_VAULT_ADDRESSES)
    if (
        isinstance(value, list | tuple)
        and 0 < len(value) <= MAX_USERS
        and all(isinstance(a, str) and a.startswith("0x") for a in value)
    ):
        return tuple(dict.fromkeys(a.lower() for a in value))
    raise ConfigError(f"venues.{VENUE}.options.vault_addresses", value,
                      f"a list of 1 to {MAX_USERS} 0x addresses")


def _subscribe(subscription: dict[str, str]) -> str:
    return orjson.dumps({"method": "subscribe", "subscription": subscription}).decode()


class Hyperliquid(dialect.DialectDefaults):
    venue = VENUE
    completeness = Completeness.BACKSTOP
    ping_interval_seconds = PING_INTERVAL_SECONDS
    ping_text = PING_FRAME
    # needs_instruments stays False: fills are valued as px x sz (USDC); only the coin list
    # of the optional trades inference needs meta.

    def __init__(self, settings: dialect.VenueSettings) -> None:
        super().__init__(settings)
        self.vault_addresses = _vault_addresses(settings.options)
        self.subscribe_interval_seconds = self.option_float(
            "subscribe_interval_seconds", DEFAULT_SUBSCRIBE_INTERVAL_SECONDS)
        self.coins_per_connection = self.option_int(
            "coins_per_connection", DEFAULT_COINS_PER_CONNECTION)
        self.replay_max_age_seconds = self.option_float(
            "replay_max_age_seconds", DEFAULT_REPLAY_MAX_AGE_SECONDS)
        infer = settings.options.get("infer_from_trades", False)
        if not isinstance(infer, bool):
            raise ConfigError(f"venues.{VENUE}.options.infer_from_trades", infer,
                              "true or false")
        self.infer_from_trades = infer

    def instrument_requests(self, rest_base_url: str) -> list[dialect.RestRequest]:
        url = rest_base_url.rstrip("/") + "/info"
        body = b'{"type":"meta"}'
        return [dialect.RestRequest(key="hyperliquid-meta", url=url, method="POST", body=body)]

    def parse_instruments(
        self, request: dialect.RestRequest, body: bytes
    ) -> tuple[list[instr.InstrumentSpec], dialect.RestRequest | None]:
        try:
            doc = _json.obj(_json.loads(body), "meta document")
            universe = _json.arr(_json.req(doc, "universe"), "universe")
        except FrameError as exc:
            raise InstrumentFetchError(f"{request.key}: {exc}") from exc
        specs = []
        for row in universe:
            if not isinstance(row, dict) or row.get("isDelisted") is True:
                continue
            name = row.get("name")
            if not isinstance(name, str) or not name:
                continue
            coin, multiplier = instr.normalise_coin(name)
            specs.append(instr.InstrumentSpec(
                venue=VENUE, instrument=name, coin=coin, kind=instr.ContractKind.LINEAR,
                contract_size=1.0, quote="USDC", base_multiplier=multiplier, category="perp"))
        return specs, None

    def coins(self, instruments: instr.InstrumentBook) -> list[str]:
        """The coins whose trades the inference watches: configured, else every perp."""
        if self.settings.symbols is not None:
            return list(dict.fromkeys(self.settings.symbols))
        return [spec.instrument for spec in instruments]

    def plans(
        self, ws_base_url: str, instruments: instr.InstrumentBook
    ) -> list[dialect.ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/ws"
        # allMids first on every connection: prices flow at once and keep it from looking
        # stale while the vaults are quiet.
        mids = _subscribe({"type": "allMids"})
        fills = [mids] + [_subscribe({"type": "userFills", "user": vault})
                          for vault in self.vault_addresses]
        plans = [dialect.ConnectionPlan(dialect.plan_name(VENUE, 0), url, tuple(fills), len(fills),
                                        self.subscribe_interval_seconds)]
        if self.infer_from_trades:
            for shard in dialect.chunks(self.coins(instruments), self.coins_per_connection):
                frames = [mids] + [_subscribe({"type": "trades", "coin": c}) for c in shard]
                plans.append(dialect.ConnectionPlan(dialect.plan_name(VENUE, len(plans)), url,
                                                    tuple(frames), len(frames),
                                                    self.subscribe_interval_seconds))
        return plans

    def session(
        self, instruments: instr.InstrumentBook, plan: dialect.ConnectionPlan | None = None
    ) -> dialect.DialectSession:
        # Offline (no plan: `liqmon parse`, replay) no wall-clock snapshot rule applies.
        return HyperliquidSession(
            instruments, vault_addresses=frozenset(self.vault_addresses),
            replay_max_age_seconds=None if plan is None else self.replay_max_age_seconds)


class HyperliquidSession:
    """Parse state of one connection: acknowledged coins, last mids, first trade pushes."""

    def __init__(
        self,
        instruments: instr.InstrumentBook,
        vault_addresses: frozenset[str] = frozenset(DEFAULT_VAULT_ADDRESSES),
        replay_max_age_seconds: float | None = None,
    ) -> None:
        self.instruments = instruments
        self.vault_addresses = frozenset(a.lower() for a in vault_addresses)
        self._trades = hl_trades.TradesInference(instruments, self.vault_addresses,
                                                 replay_max_age_seconds)
        # Coins whose trades this connection subscribed; until one is acknowledged (a
        # recording without acks, `liqmon parse`), every coin's mid is emitted.
        self._acked_coins: set[str] = set()
        self._last_mid: dict[str, str] = {}

    def parse(self, text: str, received_at: float) -> list[dialect.Item]:
        if text == WELCOME_TEXT:
            return [dialect.Info("welcome")]
        msg = _json.loads(text)
        if not isinstance(msg, dict):
            raise FrameError(_json.BAD_VALUE, f"expected an object, got {type(msg).__name__}")
        channel = msg.get("channel")
        if channel == "userFills":
            return self._user_fills(_json.obj(_json.req(msg, "data"), "data"), received_at)
        if channel == "trades":
            return self._trades.trades(_json.arr(_json.req(msg, "data"), "data"), received_at)
        if channel == "allMids":
            mids = _json.obj(_json.req(_json.obj(_json.req(msg, "data"), "data"), "mids"), "mids")
            return self._mids(mids, received_at)
        if channel == "subscriptionResponse":
            return [self._ack(msg.get("data"))]
        if channel == "pong":
            return [dialect.Pong()]
        if channel == "error":
            return [dialect.Rejection(_json.compact(msg.get("data", ""), 500))]
        return [dialect.Unrecognised("unknown_channel")]

    def _ack(self, data: object) -> dialect.Ack:
        subscription = data.get("subscription") if isinstance(data, dict) else None
        if not isinstance(subscription, dict):
            return dialect.Ack()
        coin = subscription.get("coin")
        if subscription.get("type") == "trades" and isinstance(coin, str):
            self._acked_coins.add(coin)
        return dialect.Ack(
            ",".join(f"{k}={_json.describe(v)}" for k, v in subscription.items())[:200]
        )

    def _user_fills(self, data: dict[str, Any], received_at: float) -> list[dialect.Item]:
        fills = _json.arr(_json.req(data, "fills"), "fills")
        if data.get("isSnapshot") is True:
            return [dialect.Info(f"userFills snapshot of {len(fills)} fills skipped")]
        user = data.get("user")
        if isinstance(user, str) and user.lower() not in self.vault_addresses:
            return [dialect.Unrecognised("fills_of_an_unwatched_user")]
        items: list[dialect.Item] = []
        errors: list[FrameError] = []
        for element in fills:
            try:
                fill = _json.obj(element, "fills[]")
                if fill.get("liquidation") is None:
                    continue  # the vault's own trading: unwinding what it took over
                _json.obj(fill["liquidation"], "liquidation")
                coin = _json.req_str(fill, "coin")
                _raw, side = _json.req_choice(fill, "side", _TAKEN_OVER)
                items.append(hl_trades.fill_liquidation(self.instruments, fill, coin, side,
                                                        received_at, Completeness.BACKSTOP))
            except FrameError as exc:
                errors.append(exc)
        if errors and not items and len(errors) == len(fills):
            raise errors[0]
        items.extend(dialect.Invalid(e.reason, e.detail) for e in errors)
        return items

    def _mids(self, mids: dict[str, Any], received_at: float) -> list[dialect.Item]:
        items: list[dialect.Item] = []
        errors: list[FrameError] = []
        wanted = self._acked_coins or None
        ts_ms = int(received_at * 1000)
        for name, raw in mids.items():
            # "@107" and "PURR/USDC" are spot pairs; only perps are watched here.
            if name.startswith("@") or "/" in name or (wanted is not None and name not in wanted):
                continue
            if self._last_mid.get(name) == raw:
                continue
            try:
                mid = _json.positive(_json.to_float(raw, name), name)
                coin, multiplier = hl_trades.coin_terms(self.instruments, name)
            except FrameError as exc:
                errors.append(exc)
                continue
            self._last_mid[name] = raw
            items.append(MarkPrice(VENUE, name, coin, mid / multiplier, ts_ms, received_at))
        if errors and not items and len(errors) == len(mids):
            raise errors[0]
        items.extend(dialect.Invalid(e.reason, e.detail) for e in errors)
        return items
