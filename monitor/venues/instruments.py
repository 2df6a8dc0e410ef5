"""Instrument terms and coin normalisation: pure tables and rules, no I/O.

Every dialect values a liquidation through an :class:`InstrumentSpec`: linear contracts
count base units, inverse contracts count USD, quanto contracts need a multiplier.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum


class ContractKind(StrEnum):
    LINEAR = "linear"  # contract_size is base units per contract; quote is a stablecoin
    INVERSE = "inverse"  # contract_size is USD per contract
    QUANTO = "quanto"  # contract_size is the venue's multiplier; valued in settle currency


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    venue: str
    instrument: str
    coin: str  # canonical base asset, upper case (BTC for XBT, PEPE for 1000PEPE)
    kind: ContractKind
    contract_size: float
    quote: str  # USDT, USDC, USD, ...
    # Units of the coin per unit the venue quotes (1000 for 1000PEPEUSDT): qty_base is
    # quantity x base_multiplier and the per-coin price is price / base_multiplier.
    base_multiplier: float = 1.0
    category: str = ""  # the venue's own grouping: linear/inverse, SWAP/FUTURES, usdt/btc


@dataclass(frozen=True, slots=True)
class BookChange:
    """What a refresh changed: new listings and delisted instruments."""

    added: tuple[InstrumentSpec, ...]
    removed: tuple[InstrumentSpec, ...]


class InstrumentBook:
    """The known instruments of one venue: replaced wholesale on each refresh
    (:meth:`replace`), so a delisted instrument leaves it; merged (:meth:`update`) only
    where several sources build one book (``liqmon parse``, replay)."""

    def __init__(self, venue: str, specs: Iterable[InstrumentSpec] = ()) -> None:
        self.venue = venue
        self._specs: dict[str, InstrumentSpec] = {}
        self.version = 0
        self.update(specs)

    def get(self, instrument: str) -> InstrumentSpec | None:
        return self._specs.get(instrument)

    def replace(self, specs: Iterable[InstrumentSpec]) -> BookChange:
        """Make ``specs`` the whole book; say what was listed and what was delisted."""
        new = {spec.instrument: spec for spec in specs}
        added = tuple(s for name, s in new.items() if name not in self._specs)
        removed = tuple(s for name, s in self._specs.items() if name not in new)
        self._specs = new
        self.version += 1
        return BookChange(added, removed)

    def update(self, specs: Iterable[InstrumentSpec]) -> list[InstrumentSpec]:
        """Add or replace specs; return the ones that were not known before (new listings)."""
        added = []
        for spec in specs:
            if spec.instrument not in self._specs:
                added.append(spec)
            self._specs[spec.instrument] = spec
        self.version += 1
        return added

    def __iter__(self) -> Iterator[InstrumentSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    def __contains__(self, instrument: object) -> bool:
        return instrument in self._specs

    def in_category(self, category: str) -> list[InstrumentSpec]:
        return [s for s in self._specs.values() if s.category == category]


# Venues spell some coins their own way.
COIN_ALIASES = {"XBT": "BTC"}
STABLE_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "USDE", "USD")
USD_LIKE = frozenset({"USD", "USDT", "USDC", "BUSD", "FDUSD", "USDE", "DAI", "TUSD", "USD1"})

# 1000PEPE, 1000000MOG, 10000SATS, 1MBABYDOGE (Binance), kPEPE (Hyperliquid).
_MULTIPLIER_PREFIX = re.compile(r"^(1000000|100000|10000|1000|100|10)(?=[A-Z])|^1M(?=[A-Z]{3,})")


def normalise_coin(raw: str) -> tuple[str, float]:
    """Canonical coin and unit multiplier of a venue's base asset name.

    ``1000PEPE`` is ``("PEPE", 1000.0)``: one quoted unit is 1000 PEPE. ``XBT`` is ``BTC``.
    Hyperliquid's ``kPEPE`` is ``("PEPE", 1000.0)``.
    """
    name = raw.strip()
    if name.startswith("k") and len(name) > 1 and name[1:].isupper():
        name, multiplier = name[1:], 1000.0
    else:
        name = name.upper()
        multiplier = 1.0
        match = _MULTIPLIER_PREFIX.match(name)
        if match:
            prefix = match.group(0)
            multiplier = 1_000_000.0 if prefix == "1M" else float(prefix)
            name = name[len(prefix) :]
        elif name.endswith("1000") and name[:-4].isalpha():
            # Bybit puts the multiplier last: SHIB1000USDT, baseCoin SHIB1000.
            name, multiplier = name[:-4], 1000.0
    return COIN_ALIASES.get(name, name), multiplier


def split_concatenated_symbol(symbol: str) -> tuple[str, str]:
    """Base and quote of a symbol like ``BTCUSDT`` or ``ETHUSD_PERP`` (no separator).

    Raises ValueError when no known quote ends the symbol.
    """
    core = symbol.upper().split("_", 1)[0]
    for quote in STABLE_QUOTES:
        if core.endswith(quote) and len(core) > len(quote):
            return core[: -len(quote)], quote
    raise ValueError(f"no known quote currency at the end of {symbol!r}")


def coin_of_symbol(symbol: str) -> tuple[str, float]:
    """Canonical coin and multiplier of a concatenated symbol (``1000PEPEUSDT``)."""
    base, _quote = split_concatenated_symbol(symbol)
    return normalise_coin(base)
