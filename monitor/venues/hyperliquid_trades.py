"""Hyperliquid's optional trades inference: a liquidator vault as a public-trade counterparty.

OFF by default (``options.infer_from_trades``), and doubtful: the vault is a counterparty
both when it takes a position over (a backstop liquidation) and when it later unwinds it,
with opposite sides, and Hyperliquid's docs describe backstop liquidations as transfers
that may never appear as public trades (reference/exchanges.md §5.2a). Independent trackers
apply the opposite side mapping. What it reports is labelled ``inferred``: vault as buyer
is read as a LONG liquidated, vault as seller a SHORT.

Live, the first ``trades`` push of a coin is a snapshot of recent trades: rows of it older
than ``replay_max_age_seconds`` before arrival are dropped. Offline (``liqmon parse``,
replay) no such wall-clock rule applies: the recording's own order decides, and dedupe on
the trade id (``tid``) is exact.
"""

from __future__ import annotations

import math
from typing import Any

import monitor.venues._json as _json
import monitor.venues.dialect as dialect
import monitor.venues.instruments as instr
from monitor.errors import FrameError
from monitor.events import Completeness, Liquidation, PositionSide

VENUE = "hyperliquid"


def read_int(row: dict[str, Any], key: str) -> int:
    value = _json.req(row, key)
    # Bound the digits first: int() refuses strings past 4300 digits with a ValueError.
    if isinstance(value, str) and len(value) > 20:
        raise FrameError(_json.BAD_VALUE, f"{key}: not an integer id or time: {value:.40}")
    return _json.to_int(value, key)


def coin_terms(instruments: instr.InstrumentBook, coin: str) -> tuple[str, float]:
    spec = instruments.get(coin)
    canonical, multiplier = (
        (spec.coin, spec.base_multiplier) if spec is not None else instr.normalise_coin(coin))
    if not canonical:
        raise FrameError(_json.BAD_VALUE, f"coin: {coin!r:.40}")
    return canonical, multiplier


def fill_liquidation(instruments: instr.InstrumentBook, row: dict[str, Any], coin: str,
                     side: PositionSide, received_at: float,
                     completeness: Completeness) -> Liquidation:
    """A liquidation valued from a trade or fill row (px x sz in USDC; ``tid`` the id)."""
    time_ms = read_int(row, "time")
    tid = read_int(row, "tid")
    px = _json.positive(_json.req_float(row, "px"), "px")
    sz = _json.positive(_json.req_float(row, "sz"), "sz")
    canonical, multiplier = coin_terms(instruments, coin)
    if not (math.isfinite(px * sz) and math.isfinite(sz * multiplier)):
        raise FrameError(_json.BAD_VALUE, f"{coin}: px x sz out of range")
    return Liquidation(
        venue=VENUE, instrument=coin, coin=canonical, position_side=side,
        price=px / multiplier, qty_base=sz * multiplier, notional_usd=px * sz,
        exchange_ts_ms=time_ms, received_at=received_at, completeness=completeness,
        event_id=f"{VENUE}:{tid}")


class TradesInference:
    """Per-connection state of the inference: which coins have had their first push."""

    def __init__(self, instruments: instr.InstrumentBook, vault_addresses: frozenset[str],
                 replay_max_age_seconds: float | None) -> None:
        self.instruments = instruments
        self.vault_addresses = vault_addresses
        # None offline: no wall-clock rule.
        self.replay_max_age_ms = (None if replay_max_age_seconds is None
                                  else replay_max_age_seconds * 1000.0)
        self._pushed_coins: set[str] = set()

    def trades(self, data: list[Any], received_at: float) -> list[dialect.Item]:
        items: list[dialect.Item] = []
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
                oldest_ms = (received_at * 1000.0 - self.replay_max_age_ms
                             if first and self.replay_max_age_ms is not None else None)
                liq = self._liquidation(trade, coin, received_at, oldest_ms)
            except FrameError as exc:
                errors.append(exc)
                continue
            if liq == "replayed":
                replayed += 1
            elif isinstance(liq, Liquidation):
                items.append(liq)
        self._pushed_coins |= first_coins
        if errors and not items and len(errors) == len(data):
            raise errors[0]
        items.extend(dialect.Invalid(e.reason, e.detail) for e in errors)
        if replayed:
            items.append(dialect.Info(f"{replayed} snapshot trades older than the limit"))
        return items

    def _liquidation(self, trade: dict[str, Any], coin: str, received_at: float,
                     oldest_ms: float | None) -> Liquidation | str | None:
        users = _json.arr(_json.req(trade, "users"), "users")
        if len(users) != 2 or not all(isinstance(u, str) for u in users):
            raise FrameError(_json.BAD_VALUE, f"users: expected [buyer, seller], got "
                                              f"{_json.describe(users)}")
        buyer_is_vault = users[0].lower() in self.vault_addresses
        seller_is_vault = users[1].lower() in self.vault_addresses
        if buyer_is_vault == seller_is_vault:
            return None  # no vault, or vault against vault: no user was liquidated
        if oldest_ms is not None and read_int(trade, "time") < oldest_ms:
            return "replayed"
        side = PositionSide.LONG if buyer_is_vault else PositionSide.SHORT
        return fill_liquidation(self.instruments, trade, coin, side, received_at,
                                Completeness.INFERRED)
