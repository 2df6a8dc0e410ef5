"""The simulated instrument lists: what each simulated venue lists, and how it sizes an order.

Each :class:`Listing` is an :class:`~monitor.venues.instruments.InstrumentSpec` (the same terms
the dialects read from the REST documents) plus the tick and lot the venue formats numbers
with. Scenario events are sized here so that the venue's own formula gives back their USD
notional exactly: a liquidation on a contract venue is a whole number of lots.

The list is small (a few dozen instruments) but covers what the dialects must handle:
stablecoin and USDC quotes, ``1000PEPE`` and ``kPEPE`` multipliers, inverse contracts of 1,
10 and 100 USD, dated futures, and Bybit's ``...PERP`` USDC names whose coin is not in the
symbol. Prices are the approximate marks at the start of the night of 1 February 2026.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from monitor.venues.instruments import ContractKind, InstrumentSpec

# USD per coin at scenario start (the evening of 31 January 2026, approximately).
COIN_PRICES_USD: dict[str, float] = {
    "BTC": 84_000.0, "ETH": 2_700.0, "SOL": 118.0, "XRP": 1.78, "DOGE": 0.115,
    "BNB": 820.0, "HYPE": 28.0, "PEPE": 0.0000052, "LINK": 12.5, "AVAX": 13.8,
    "SUI": 1.55, "ADA": 0.36, "LTC": 72.0, "TRX": 0.29, "WIF": 0.42,
}  # fmt: skip

# Quarterly expiry used by the dated futures below (27 March 2026, 08:00 UTC).
QUARTER_EXPIRY_MS = 1_774_598_400_000


@dataclass(frozen=True, slots=True)
class Listing:
    spec: InstrumentSpec
    price_decimals: int  # tick = 10**-price_decimals, in the venue's quote units
    qty_decimals: int  # lot = 10**-qty_decimals, in the venue's quantity units
    contract_type: str = "perpetual"  # "perpetual" or "future"

    @property
    def symbol(self) -> str:
        return self.spec.instrument

    @property
    def coin(self) -> str:
        return self.spec.coin

    @property
    def inverse(self) -> bool:
        return self.spec.kind is ContractKind.INVERSE


class Sized(NamedTuple):
    """A liquidation sized on a listing: the normalised figures a dialect must give back.

    A named tuple, not a frozen dataclass: built once per scenario liquidation, and a frozen
    dataclass's ``__init__`` (an ``object.__setattr__`` per field) was a tenth of building
    ``feb-2026``."""

    price: float  # USD per coin
    qty_base: float  # coin units
    notional_usd: float


def venue_price(listing: Listing, coin_price: float) -> float:
    """The venue's quoted price for a coin price, on the tick (``1000PEPE`` quotes 1000 PEPE)."""
    multiplier = 1.0 if listing.inverse else listing.spec.base_multiplier
    return round(coin_price * multiplier, listing.price_decimals)


def size_liquidation(listing: Listing, coin_price: float, target_usd: float) -> Sized:
    """Size a liquidation of about ``target_usd`` as a whole number of lots at a tick price."""
    spec = listing.spec
    vp = max(venue_price(listing, coin_price), 10.0**-listing.price_decimals)
    lot = 10.0**-listing.qty_decimals
    if listing.inverse:
        # Inverse contracts are USD: the quantity is contracts of contract_size USD.
        contracts = max(lot, round(target_usd / spec.contract_size, listing.qty_decimals))
        notional = contracts * spec.contract_size
        return Sized(price=vp, qty_base=notional / vp, notional_usd=notional)
    units = max(lot, round(target_usd / (vp * spec.contract_size), listing.qty_decimals))
    return Sized(
        price=vp / spec.base_multiplier,
        qty_base=units * spec.contract_size * spec.base_multiplier,
        notional_usd=units * spec.contract_size * vp,
    )


def venue_quantity(listing: Listing, qty_base: float, notional_usd: float) -> float:
    """The quantity the venue reports: contracts, USD contracts or venue base units."""
    spec = listing.spec
    if listing.inverse:
        return round(notional_usd / spec.contract_size, listing.qty_decimals)
    return round(qty_base / (spec.contract_size * spec.base_multiplier), listing.qty_decimals)


def fmt(value: float, decimals: int) -> str:
    return f"{value:.{max(decimals, 0)}f}"


def _spec(venue: str, symbol: str, coin: str, kind: ContractKind, size: float, quote: str,
          multiplier: float = 1.0, category: str = "") -> InstrumentSpec:  # fmt: skip
    return InstrumentSpec(venue, symbol, coin, kind, size, quote, multiplier, category)


def _binance_usdm() -> tuple[Listing, ...]:
    rows = [  # symbol, coin, quote, price decimals, qty decimals, multiplier
        ("BTCUSDT", "BTC", "USDT", 1, 3, 1.0), ("ETHUSDT", "ETH", "USDT", 2, 3, 1.0),
        ("SOLUSDT", "SOL", "USDT", 2, 2, 1.0), ("XRPUSDT", "XRP", "USDT", 4, 1, 1.0),
        ("DOGEUSDT", "DOGE", "USDT", 5, 0, 1.0), ("BNBUSDT", "BNB", "USDT", 2, 2, 1.0),
        ("1000PEPEUSDT", "PEPE", "USDT", 7, 0, 1000.0), ("LINKUSDT", "LINK", "USDT", 3, 2, 1.0),
        ("AVAXUSDT", "AVAX", "USDT", 3, 0, 1.0), ("SUIUSDT", "SUI", "USDT", 4, 1, 1.0),
        ("ADAUSDT", "ADA", "USDT", 4, 0, 1.0), ("WIFUSDT", "WIF", "USDT", 4, 1, 1.0),
        ("BTCUSDC", "BTC", "USDC", 1, 3, 1.0), ("ETHUSDC", "ETH", "USDC", 2, 3, 1.0),
    ]  # fmt: skip
    return tuple(
        Listing(_spec("binance-usdm", s, c, ContractKind.LINEAR, 1.0, q, m), pd, qd)
        for s, c, q, pd, qd, m in rows
    )


def _binance_coinm() -> tuple[Listing, ...]:
    rows = [  # symbol, coin, contract size USD, price decimals, contract type
        ("BTCUSD_PERP", "BTC", 100.0, 1, "perpetual"), ("ETHUSD_PERP", "ETH", 10.0, 2, "perpetual"),
        ("SOLUSD_PERP", "SOL", 10.0, 3, "perpetual"), ("XRPUSD_PERP", "XRP", 10.0, 4, "perpetual"),
        ("DOGEUSD_PERP", "DOGE", 10.0, 6, "perpetual"),
        ("BTCUSD_260327", "BTC", 100.0, 1, "future"), ("ETHUSD_260327", "ETH", 10.0, 2, "future"),
    ]  # fmt: skip
    return tuple(
        Listing(_spec("binance-coinm", s, c, ContractKind.INVERSE, size, "USD"), pd, 0, kind)
        for s, c, size, pd, kind in rows
    )


def _bybit() -> tuple[Listing, ...]:
    linear = [  # symbol, coin, quote, price decimals, qty decimals, multiplier
        ("BTCUSDT", "BTC", "USDT", 1, 3, 1.0), ("ETHUSDT", "ETH", "USDT", 2, 2, 1.0),
        ("SOLUSDT", "SOL", "USDT", 3, 1, 1.0), ("XRPUSDT", "XRP", "USDT", 4, 0, 1.0),
        ("DOGEUSDT", "DOGE", "USDT", 5, 0, 1.0), ("BNBUSDT", "BNB", "USDT", 1, 2, 1.0),
        ("1000PEPEUSDT", "PEPE", "USDT", 7, 0, 1000.0), ("LINKUSDT", "LINK", "USDT", 3, 1, 1.0),
        ("AVAXUSDT", "AVAX", "USDT", 3, 1, 1.0), ("SUIUSDT", "SUI", "USDT", 5, 1, 1.0),
        ("ADAUSDT", "ADA", "USDT", 4, 0, 1.0), ("WIFUSDT", "WIF", "USDT", 4, 0, 1.0),
        ("HYPEUSDT", "HYPE", "USDT", 3, 2, 1.0), ("LTCUSDT", "LTC", "USDT", 2, 1, 1.0),
        ("TRXUSDT", "TRX", "USDT", 5, 0, 1.0), ("BTCPERP", "BTC", "USDC", 1, 3, 1.0),
        ("ETHPERP", "ETH", "USDC", 2, 2, 1.0), ("SOLPERP", "SOL", "USDC", 3, 1, 1.0),
    ]  # fmt: skip
    inverse = [  # symbol, coin, price decimals, contract type
        ("BTCUSD", "BTC", 1, "perpetual"), ("ETHUSD", "ETH", 2, "perpetual"),
        ("XRPUSD", "XRP", 4, "perpetual"), ("SOLUSD", "SOL", 3, "perpetual"),
        ("BTCUSDH26", "BTC", 1, "future"),
    ]  # fmt: skip
    out = [
        Listing(_spec("bybit", s, c, ContractKind.LINEAR, 1.0, q, m, "linear"), pd, qd)
        for s, c, q, pd, qd, m in linear
    ]
    out += [
        Listing(_spec("bybit", s, c, ContractKind.INVERSE, 1.0, "USD", 1.0, "inverse"), pd, 0, k)
        for s, c, pd, k in inverse
    ]
    return tuple(out)


def _okx() -> tuple[Listing, ...]:
    rows = [  # instId, coin, linear?, ctVal, price decimals, lot decimals
        ("BTC-USDT-SWAP", "BTC", True, 0.01, 1, 2), ("ETH-USDT-SWAP", "ETH", True, 0.1, 2, 2),
        ("SOL-USDT-SWAP", "SOL", True, 1.0, 2, 2), ("XRP-USDT-SWAP", "XRP", True, 100.0, 4, 2),
        ("DOGE-USDT-SWAP", "DOGE", True, 1000.0, 5, 2),
        ("PEPE-USDT-SWAP", "PEPE", True, 1e7, 10, 1),
        ("HYPE-USDT-SWAP", "HYPE", True, 0.1, 3, 2), ("BTC-USDC-SWAP", "BTC", True, 0.0001, 1, 2),
        ("BTC-USD-SWAP", "BTC", False, 100.0, 1, 0), ("ETH-USD-SWAP", "ETH", False, 10.0, 2, 0),
        ("BTC-USDT-260327", "BTC", True, 0.01, 1, 2), ("BTC-USD-260327", "BTC", False, 100.0, 1, 0),
        ("ETH-USD-260327", "ETH", False, 10.0, 2, 0),
    ]  # fmt: skip
    out = []
    for inst, coin, linear, ct_val, pd, qd in rows:
        parts = inst.split("-")
        category = "SWAP" if parts[-1] == "SWAP" else "FUTURES"
        kind = ContractKind.LINEAR if linear else ContractKind.INVERSE
        spec = _spec("okx", inst, coin, kind, ct_val, parts[1], 1.0, category)
        out.append(Listing(spec, pd, qd, "perpetual" if category == "SWAP" else "future"))
    return tuple(out)


def _hyperliquid() -> tuple[Listing, ...]:
    rows = [  # name, coin, szDecimals, multiplier
        ("BTC", "BTC", 5, 1.0), ("ETH", "ETH", 4, 1.0), ("SOL", "SOL", 2, 1.0),
        ("XRP", "XRP", 0, 1.0), ("DOGE", "DOGE", 0, 1.0), ("HYPE", "HYPE", 2, 1.0),
        ("kPEPE", "PEPE", 0, 1000.0), ("LINK", "LINK", 1, 1.0), ("AVAX", "AVAX", 2, 1.0),
        ("SUI", "SUI", 1, 1.0), ("WIF", "WIF", 0, 1.0),
    ]  # fmt: skip
    out = []
    for name, coin, sz_decimals, multiplier in rows:
        # Hyperliquid prices have at most 5 significant figures and 6 - szDecimals decimals.
        price = COIN_PRICES_USD[coin] * multiplier
        significant = 5 - len(str(int(price))) if price >= 1 else 6 - sz_decimals
        decimals = max(0, min(6 - sz_decimals, significant))
        spec = _spec("hyperliquid", name, coin, ContractKind.LINEAR, 1.0, "USDC", multiplier)
        out.append(Listing(spec, decimals, sz_decimals))
    return tuple(out)


def _kraken_futures() -> tuple[Listing, ...]:
    linear = [  # symbol, coin, price decimals, qty decimals (PF_: base units, USD quote)
        ("PF_XBTUSD", "BTC", 0, 4), ("PF_ETHUSD", "ETH", 1, 3), ("PF_SOLUSD", "SOL", 2, 2),
        ("PF_XRPUSD", "XRP", 4, 1), ("PF_DOGEUSD", "DOGE", 5, 0),
    ]  # fmt: skip
    inverse = [  # symbol, coin, price decimals, contract type (PI_/FI_: 1 USD contracts)
        ("PI_XBTUSD", "BTC", 1, "perpetual"), ("PI_ETHUSD", "ETH", 2, "perpetual"),
        ("FI_XBTUSD_260327", "BTC", 1, "future"),
    ]  # fmt: skip
    venue = "kraken-futures"
    out = [
        Listing(_spec(venue, s, c, ContractKind.LINEAR, 1.0, "USD", 1.0, "flexible_futures"),
                pd, qd)
        for s, c, pd, qd in linear
    ]  # fmt: skip
    out += [
        Listing(_spec(venue, s, c, ContractKind.INVERSE, 1.0, "USD", 1.0, "futures_inverse"),
                pd, 0, k)
        for s, c, pd, k in inverse
    ]  # fmt: skip
    return tuple(out)


def _dydx() -> tuple[Listing, ...]:
    rows = [  # market, coin, price decimals, size decimals
        ("BTC-USD", "BTC", 0, 4), ("ETH-USD", "ETH", 1, 3), ("SOL-USD", "SOL", 2, 1),
        ("XRP-USD", "XRP", 4, 0), ("DOGE-USD", "DOGE", 5, 0), ("LINK-USD", "LINK", 3, 1),
        ("AVAX-USD", "AVAX", 2, 1), ("SUI-USD", "SUI", 4, 0), ("WIF-USD", "WIF", 4, 0),
    ]  # fmt: skip
    return tuple(
        Listing(_spec("dydx", m, c, ContractKind.LINEAR, 1.0, "USD", 1.0, "perpetual"), pd, qd)
        for m, c, pd, qd in rows
    )


def _htx() -> tuple[Listing, ...]:
    rows = [  # contract code, coin, category, contract size, price decimals, contract type
        ("BTC-USDT", "BTC", "usdt", 0.001, 1, "perpetual"),
        ("ETH-USDT", "ETH", "usdt", 0.01, 2, "perpetual"),
        ("SOL-USDT", "SOL", "usdt", 1.0, 3, "perpetual"),
        ("XRP-USDT", "XRP", "usdt", 10.0, 4, "perpetual"),
        ("DOGE-USDT", "DOGE", "usdt", 100.0, 5, "perpetual"),
        ("BTC-USD", "BTC", "coin-swap", 100.0, 1, "perpetual"),
        ("ETH-USD", "ETH", "coin-swap", 10.0, 2, "perpetual"),
        ("XRP-USD", "XRP", "coin-swap", 10.0, 4, "perpetual"),
        ("BTC260327", "BTC", "coin-futures", 100.0, 2, "future"),
    ]  # fmt: skip
    out = []
    for code, coin, category, size, pd, kind in rows:
        linear = category == "usdt"
        spec = _spec("htx", code, coin, ContractKind.LINEAR if linear else ContractKind.INVERSE,
                     size, "USDT" if linear else "USD", 1.0, category)
        out.append(Listing(spec, pd, 0, kind))  # volumes are whole contracts
    return tuple(out)


def _bitmex() -> tuple[Listing, ...]:
    # XBTUSD and its future are inverse (1 USD contracts); the USDT pairs are linear with
    # contracts of 1 / underlyingToPositionMultiplier coin. Quanto and XBT-quoted contracts
    # are left out: their value needs the XBT price, which the scenario's sizing does not use.
    rows = [  # symbol, coin, kind, contract size, quote, price decimals, contract type
        ("XBTUSD", "BTC", ContractKind.INVERSE, 1.0, "USD", 1, "perpetual"),
        ("XBTH26", "BTC", ContractKind.INVERSE, 1.0, "USD", 1, "future"),
        ("XBTUSDT", "BTC", ContractKind.LINEAR, 1e-6, "USDT", 1, "perpetual"),
        ("ETHUSDT", "ETH", ContractKind.LINEAR, 1e-4, "USDT", 2, "perpetual"),
        ("SOLUSDT", "SOL", ContractKind.LINEAR, 1e-3, "USDT", 3, "perpetual"),
        ("XRPUSDT", "XRP", ContractKind.LINEAR, 1.0, "USDT", 4, "perpetual"),
        ("DOGEUSDT", "DOGE", ContractKind.LINEAR, 1.0, "USDT", 5, "perpetual"),
    ]  # fmt: skip
    return tuple(
        Listing(_spec("bitmex", s, c, kind, size, q, 1.0, "XBT" if q == "USD" else "USDT"),
                pd, 0, k)
        for s, c, kind, size, q, pd, k in rows
    )  # fmt: skip


def _deribit() -> tuple[Listing, ...]:
    rows = [  # instrument, coin, kind, contract size, price decimals, contract type
        ("BTC-PERPETUAL", "BTC", ContractKind.INVERSE, 10.0, 1, "perpetual"),
        ("ETH-PERPETUAL", "ETH", ContractKind.INVERSE, 1.0, 2, "perpetual"),
        ("BTC-27MAR26", "BTC", ContractKind.INVERSE, 10.0, 1, "future"),
        ("BTC_USDC-PERPETUAL", "BTC", ContractKind.LINEAR, 0.001, 1, "perpetual"),
        ("ETH_USDC-PERPETUAL", "ETH", ContractKind.LINEAR, 0.01, 2, "perpetual"),
        ("SOL_USDC-PERPETUAL", "SOL", ContractKind.LINEAR, 0.1, 3, "perpetual"),
        ("XRP_USDC-PERPETUAL", "XRP", ContractKind.LINEAR, 1.0, 4, "perpetual"),
    ]  # fmt: skip
    out = []
    for name, coin, kind, size, pd, contract_type in rows:
        linear = kind is ContractKind.LINEAR
        spec = _spec("deribit", name, coin, kind, size, "USDC" if linear else "USD", 1.0,
                     "USDC" if linear else coin)
        out.append(Listing(spec, pd, 0, contract_type))
    return tuple(out)


def _bitget() -> tuple[Listing, ...]:
    rows = [  # symbol, coin, kind, quote, product type, price decimals, qty decimals
        ("BTCUSDT", "BTC", ContractKind.LINEAR, "USDT", "usdt-futures", 1, 4),
        ("ETHUSDT", "ETH", ContractKind.LINEAR, "USDT", "usdt-futures", 2, 2),
        ("SOLUSDT", "SOL", ContractKind.LINEAR, "USDT", "usdt-futures", 3, 1),
        ("XRPUSDT", "XRP", ContractKind.LINEAR, "USDT", "usdt-futures", 4, 0),
        ("DOGEUSDT", "DOGE", ContractKind.LINEAR, "USDT", "usdt-futures", 5, 0),
        ("PEPEUSDT", "PEPE", ContractKind.LINEAR, "USDT", "usdt-futures", 10, 0),
        ("BTCUSD", "BTC", ContractKind.INVERSE, "USD", "coin-futures", 1, 0),
        ("BTCPERP", "BTC", ContractKind.LINEAR, "USDC", "usdc-futures", 1, 4),
    ]  # fmt: skip
    return tuple(
        Listing(_spec("bitget", s, c, kind, 1.0, q, 1.0, t), pd, qd)
        for s, c, kind, q, t, pd, qd in rows
    )


def _gate() -> tuple[Listing, ...]:
    rows = [  # contract, coin, quanto_multiplier, price decimals (sizes: whole contracts)
        ("BTC_USDT", "BTC", 0.0001, 1), ("ETH_USDT", "ETH", 0.01, 2),
        ("SOL_USDT", "SOL", 1.0, 3), ("XRP_USDT", "XRP", 10.0, 4),
        ("DOGE_USDT", "DOGE", 10.0, 5), ("PEPE_USDT", "PEPE", 10_000_000.0, 10),
    ]  # fmt: skip
    out = [
        Listing(_spec("gate", c, coin, ContractKind.LINEAR, size, "USDT", 1.0, "usdt"), pd, 0)
        for c, coin, size, pd in rows
    ]
    out.append(Listing(_spec("gate", "BTC_USD", "BTC", ContractKind.INVERSE, 1.0, "USD", 1.0,
                             "btc"), 1, 0))  # fmt: skip
    out.append(Listing(_spec("gate", "BTC_USD1", "BTC", ContractKind.LINEAR, 0.0001, "USD1",
                             1.0, "usd1"), 1, 0))  # fmt: skip
    return tuple(out)


# venue id -> its listings. A new venue adds one entry.
CATALOGUE: dict[str, tuple[Listing, ...]] = {
    "binance-usdm": _binance_usdm(),
    "binance-coinm": _binance_coinm(),
    "bybit": _bybit(),
    "okx": _okx(),
    "hyperliquid": _hyperliquid(),
    "kraken-futures": _kraken_futures(),
    "dydx": _dydx(),
    "htx": _htx(),
    "bitmex": _bitmex(),
    "deribit": _deribit(),
    "bitget": _bitget(),
    "gate": _gate(),
}


def listings(venue: str) -> tuple[Listing, ...]:
    """The listings of ``venue``; KeyError names the venues that have a catalogue."""
    try:
        return CATALOGUE[venue]
    except KeyError:
        raise KeyError(f"no simulated listings for {venue!r}; known: {sorted(CATALOGUE)}") from None


def listing(venue: str, symbol: str) -> Listing:
    for item in listings(venue):
        if item.symbol == symbol:
            return item
    raise KeyError(f"{venue} lists no {symbol!r} in the simulator")
