"""Hyperliquid: backstop liquidations inferred from public trades; mid prices from ``allMids``.

Limitation, plainly: Hyperliquid has no public market-wide liquidation feed, and public trades
carry no liquidation flag. A liquidation first goes to the book as an ordinary market order
(a "market" liquidation); those look like any other trade and are invisible here. Only when
that fails does the liquidator vault take the position over (a "backstop" liquidation), and
then the vault is a counterparty in ``users`` = [buyer, seller]. This dialect reports exactly
those trades, with completeness ``inferred``: vault as buyer means a LONG was liquidated (the
vault bought the position), vault as seller a SHORT. The vault also trades to unwind what it
absorbed; such trades are indistinguishable here and count too. Totals from this venue are
therefore a partial, inferred view, not Hyperliquid's liquidation volume.

Vault addresses come from ``options.vault_addresses`` (compared case-insensitively), by
default the three HLP liquidator vaults. Coins come from the configured symbols or from the
``meta`` universe over REST; every coin needs its own ``trades`` subscription, so coins are
spread over connections and subscribed one frame at a time at a polite pace.

Prices are ``allMids``: the book MID of each coin, not a mark price (Hyperliquid's mark is
only per coin, in ``activeAssetCtx``). A mid is emitted when it changes, for the coins whose
trades this connection subscribed (every connection carries ``allMids`` so that none is
silent). ``allMids`` has no venue time, so its prices carry the arrival time.

The first ``trades`` push of a coin is a snapshot of recent trades. As for OKX's replay, rows
of that first push older than ``replay_max_age_seconds`` before arrival are dropped and the
rest count; the ``event_id`` is the venue's trade id (``tid``), so dedupe is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import Enum
from typing import Any

import orjson

from monitor.errors import ConfigError, FrameError, InstrumentFetchError
from monitor.events import Completeness, Liquidation, MarkPrice, PositionSide
from monitor.venues import _json
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
    Unrecognised,
    VenueSettings,
    chunks,
)
from monitor.venues.instruments import ContractKind, InstrumentBook, InstrumentSpec, normalise_coin

VENUE = "hyperliquid"
# HLP's liquidator child vaults (reference §5.3; verify against vaultDetails of HLP).
DEFAULT_VAULT_ADDRESSES = (
    "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",
    "0xb0a55f13d22f66e6d495ac98113841b2326e9540",
    "0x5e177e5e39c0f4e421f5865a6d8beed8d921cb70",
)
PING_FRAME = '{"method":"ping"}'
# The server closes a connection after 60 s without a message from the client.
PING_INTERVAL_SECONDS = 50.0
# Bursts of subscribe frames get a connection reset; the venue allows 2000 messages a minute
# and 1000 subscriptions per IP. 50 coins a connection at 0.25 s is 12.5 s to subscribe.
DEFAULT_SUBSCRIBE_INTERVAL_SECONDS = 0.25
DEFAULT_COINS_PER_CONNECTION = 50
DEFAULT_REPLAY_MAX_AGE_SECONDS = 30.0
WELCOME_TEXT = "Websocket connection established."


class _Skipped(Enum):
    REPLAYED = "replayed"  # a snapshot row older than the replay age limit


def _vault_addresses(options: Mapping[str, object]) -> frozenset[str]:
    value = options.get("vault_addresses", DEFAULT_VAULT_ADDRESSES)
    if (
        isinstance(value, list | tuple)
        and value
        and all(isinstance(a, str) and a.startswith("0x") for a in value)
    ):
        return frozenset(a.lower() for a in value)
    raise ConfigError(
        f"venues.{VENUE}.options.vault_addresses", value, "a non-empty list of 0x addresses"
    )


def _int(trade: dict[str, Any], key: str) -> int:
    value = _json.req(trade, key)
    # Bound the digits first: int() refuses strings past 4300 digits with a ValueError.
    if isinstance(value, str) and len(value) > 20:
        raise FrameError(_json.BAD_VALUE, f"{key}: not an integer id or time: {value:.40}")
    return _json.to_int(value, key)


def _subscribe(subscription: dict[str, str]) -> str:
    return orjson.dumps({"method": "subscribe", "subscription": subscription}).decode()


class Hyperliquid(DialectDefaults):
    venue = VENUE
    completeness = Completeness.INFERRED
    ping_interval_seconds = PING_INTERVAL_SECONDS
    ping_text = PING_FRAME
    # needs_instruments stays False: trades are valued as px x sz (USDC); the coin list,
    # not valuation, needs meta.

    def __init__(self, settings: VenueSettings) -> None:
        super().__init__(settings)
        self.vault_addresses = _vault_addresses(settings.options)
        self.subscribe_interval_seconds = self.option_float(
            "subscribe_interval_seconds", DEFAULT_SUBSCRIBE_INTERVAL_SECONDS)
        self.coins_per_connection = self.option_int(
            "coins_per_connection", DEFAULT_COINS_PER_CONNECTION)
        self.replay_max_age_seconds = self.option_float(
            "replay_max_age_seconds", DEFAULT_REPLAY_MAX_AGE_SECONDS)

    def instrument_requests(self, rest_base_url: str) -> list[RestRequest]:
        url = rest_base_url.rstrip("/") + "/info"
        body = b'{"type":"meta"}'
        return [RestRequest(key="hyperliquid-meta", url=url, method="POST", body=body)]

    def parse_instruments(
        self, request: RestRequest, body: bytes
    ) -> tuple[list[InstrumentSpec], RestRequest | None]:
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
            coin, multiplier = normalise_coin(name)
            specs.append(
                InstrumentSpec(
                    venue=VENUE,
                    instrument=name,
                    coin=coin,
                    kind=ContractKind.LINEAR,
                    contract_size=1.0,
                    quote="USDC",
                    base_multiplier=multiplier,
                    category="perp",
                )
            )
        return specs, None

    def coins(self, instruments: InstrumentBook) -> list[str]:
        """The coins to watch: the configured symbols, else every listed perp."""
        if self.settings.symbols is not None:
            return list(dict.fromkeys(self.settings.symbols))
        return [spec.instrument for spec in instruments]

    def plans(self, ws_base_url: str, instruments: InstrumentBook) -> list[ConnectionPlan]:
        url = ws_base_url.rstrip("/") + "/ws"
        coins = self.coins(instruments)
        per = self.coins_per_connection
        shards = chunks(coins, per) or [[]]
        plans = []
        for index, shard in enumerate(shards):
            # allMids first on every connection: prices flow at once and keep it from
            # looking stale while its coins are quiet.
            frames = [_subscribe({"type": "allMids"})]
            frames += [_subscribe({"type": "trades", "coin": coin}) for coin in shard]
            plans.append(
                ConnectionPlan(
                    name=f"hyperliquid-{index}",
                    url=url,
                    subscribe_frames=tuple(frames),
                    expected_acks=len(frames),
                    subscribe_interval_seconds=self.subscribe_interval_seconds,
                )
            )
        return plans

    def session(
        self, instruments: InstrumentBook, plan: ConnectionPlan | None = None
    ) -> DialectSession:
        return HyperliquidSession(
            instruments,
            vault_addresses=self.vault_addresses,
            replay_max_age_seconds=self.replay_max_age_seconds,
        )


class HyperliquidSession:
    """Parse state of one connection: acknowledged coins, last mids, first trade pushes."""

    def __init__(
        self,
        instruments: InstrumentBook,
        vault_addresses: frozenset[str] = frozenset(DEFAULT_VAULT_ADDRESSES),
        replay_max_age_seconds: float = DEFAULT_REPLAY_MAX_AGE_SECONDS,
    ) -> None:
        self.instruments = instruments
        self.vault_addresses = frozenset(a.lower() for a in vault_addresses)
        self.replay_max_age_ms = replay_max_age_seconds * 1000.0
        # Coins whose trades this connection subscribed; until one is acknowledged (a
        # recording without acks, `liqmon parse`), every coin's mid is emitted.
        self._acked_coins: set[str] = set()
        self._last_mid: dict[str, str] = {}
        self._pushed_coins: set[str] = set()

    def parse(self, text: str, received_at: float) -> list[Item]:
        if text == WELCOME_TEXT:
            return [Info("welcome")]
        msg = _json.loads(text)
        if not isinstance(msg, dict):
            raise FrameError(_json.BAD_VALUE, f"expected an object, got {type(msg).__name__}")
        channel = msg.get("channel")
        if channel == "trades":
            return self._trades(_json.arr(_json.req(msg, "data"), "data"), received_at)
        if channel == "allMids":
            mids = _json.obj(_json.req(_json.obj(_json.req(msg, "data"), "data"), "mids"), "mids")
            return self._mids(mids, received_at)
        if channel == "subscriptionResponse":
            return [self._ack(msg.get("data"))]
        if channel == "pong":
            return [Pong()]
        if channel == "error":
            return [Rejection(_json.compact(msg.get("data", ""), 500))]
        return [Unrecognised("unknown_channel")]

    def _ack(self, data: object) -> Ack:
        subscription = data.get("subscription") if isinstance(data, dict) else None
        if not isinstance(subscription, dict):
            return Ack()
        coin = subscription.get("coin")
        if subscription.get("type") == "trades" and isinstance(coin, str):
            self._acked_coins.add(coin)
        return Ack(",".join(f"{k}={_json.describe(v)}" for k, v in subscription.items())[:200])

    def _trades(self, data: list[Any], received_at: float) -> list[Item]:
        items: list[Item] = []
        errors: list[FrameError] = []
        first_coins: set[str] = set()
        replayed = 0
        for element in data:
            try:
                trade = _json.obj(element, "data[]")
                coin = _json.req_str(trade, "coin")
                first = coin not in self._pushed_coins
                if first:
                    first_coins.add(coin)
                oldest_ms = received_at * 1000.0 - self.replay_max_age_ms if first else None
                liq = self._liquidation(trade, coin, received_at, oldest_ms)
            except FrameError as exc:
                errors.append(exc)
                continue
            if liq is _Skipped.REPLAYED:
                replayed += 1
            elif liq is not None:
                items.append(liq)
        self._pushed_coins |= first_coins
        if errors and not items and len(errors) == len(data):
            raise errors[0]
        items.extend(Invalid(e.reason, e.detail) for e in errors)
        if replayed:
            items.append(Info(f"{replayed} snapshot trades older than the limit"))
        return items

    def _liquidation(
        self, trade: dict[str, Any], coin: str, received_at: float, oldest_ms: float | None
    ) -> Liquidation | _Skipped | None:
        """The backstop liquidation in ``trade``, or None for an ordinary trade."""
        users = _json.arr(_json.req(trade, "users"), "users")
        if len(users) != 2 or not all(isinstance(u, str) for u in users):
            raise FrameError(_json.BAD_VALUE, f"users: expected [buyer, seller], got "
                                              f"{_json.describe(users)}")
        buyer_is_vault = users[0].lower() in self.vault_addresses
        seller_is_vault = users[1].lower() in self.vault_addresses
        if buyer_is_vault == seller_is_vault:
            return None  # no vault, or vault against vault: no user was liquidated
        time_ms = _int(trade, "time")
        if oldest_ms is not None and time_ms < oldest_ms:
            return _Skipped.REPLAYED
        tid = _int(trade, "tid")
        px = _json.positive(_json.req_float(trade, "px"), "px")
        sz = _json.positive(_json.req_float(trade, "sz"), "sz")
        spec = self.instruments.get(coin)
        canonical, multiplier = (
            (spec.coin, spec.base_multiplier) if spec is not None else normalise_coin(coin)
        )
        if not canonical:
            raise FrameError(_json.BAD_VALUE, f"coin: {coin!r:.40}")
        if not (math.isfinite(px * sz) and math.isfinite(sz * multiplier)):
            raise FrameError(_json.BAD_VALUE, f"{coin}: px x sz out of range")
        return Liquidation(
            venue=VENUE,
            instrument=coin,
            coin=canonical,
            position_side=PositionSide.LONG if buyer_is_vault else PositionSide.SHORT,
            price=px / multiplier,
            qty_base=sz * multiplier,
            notional_usd=px * sz,
            exchange_ts_ms=time_ms,
            received_at=received_at,
            completeness=Completeness.INFERRED,
            event_id=f"{VENUE}:{tid}",
        )

    def _mids(self, mids: dict[str, Any], received_at: float) -> list[Item]:
        items: list[Item] = []
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
            except FrameError as exc:
                errors.append(exc)
                continue
            self._last_mid[name] = raw
            spec = self.instruments.get(name)
            coin, multiplier = (
                (spec.coin, spec.base_multiplier) if spec is not None else normalise_coin(name)
            )
            items.append(MarkPrice(VENUE, name, coin, mid / multiplier, ts_ms, received_at))
        if errors and not items and len(errors) == len(mids):
            raise errors[0]
        items.extend(Invalid(e.reason, e.detail) for e in errors)
        return items
