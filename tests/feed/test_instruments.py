"""Coin normalisation and the instrument book (monitor/venues/instruments.py)."""

from __future__ import annotations

import pytest

from monitor.venues.instruments import (
    ContractKind,
    InstrumentBook,
    InstrumentSpec,
    coin_of_symbol,
    normalise_coin,
    split_concatenated_symbol,
)


@pytest.mark.parametrize(
    ("raw", "coin", "multiplier"),
    [
        ("BTC", "BTC", 1.0),
        ("btc", "BTC", 1.0),
        (" eth ", "ETH", 1.0),
        ("XBT", "BTC", 1.0),  # BitMEX's spelling
        ("1000PEPE", "PEPE", 1000.0),  # Binance and Bybit
        ("10000SATS", "SATS", 10_000.0),
        ("1000000MOG", "MOG", 1_000_000.0),
        ("100000LADYS", "LADYS", 100_000.0),
        ("1MBABYDOGE", "BABYDOGE", 1_000_000.0),
        ("kPEPE", "PEPE", 1000.0),  # Hyperliquid
        ("kBONK", "BONK", 1000.0),
        ("SHIB1000", "SHIB", 1000.0),  # Bybit's suffix form (SHIB1000USDT)
        ("kas", "KAS", 1.0),  # a lower-case k that is part of the name
        ("1INCH", "1INCH", 1.0),  # digits that are the name, not a multiplier
        ("HPOS10I", "HPOS10I", 1.0),
        ("ETH1000X", "ETH1000X", 1.0),
    ],
)
def test_normalise_coin(raw: str, coin: str, multiplier: float) -> None:
    assert normalise_coin(raw) == (coin, multiplier)


@pytest.mark.parametrize(
    ("symbol", "coin", "multiplier"),
    [
        ("BTCUSDT", "BTC", 1.0),
        ("ETHUSDC", "ETH", 1.0),
        ("1000PEPEUSDT", "PEPE", 1000.0),
        ("SHIB1000USDT", "SHIB", 1000.0),
        ("USDCUSDT", "USDC", 1.0),
        ("BTCUSD_PERP", "BTC", 1.0),  # Binance COIN-M
        ("BTCUSD_250926", "BTC", 1.0),
        ("BTCUSDT_250926", "BTC", 1.0),  # Binance USD-M quarterly
        ("XBTUSD", "BTC", 1.0),  # BitMEX
        ("ETHBUSD", "ETH", 1.0),
        ("BTCFDUSD", "BTC", 1.0),
        ("btcusdt", "BTC", 1.0),
    ],
)
def test_coin_of_symbol(symbol: str, coin: str, multiplier: float) -> None:
    assert coin_of_symbol(symbol) == (coin, multiplier)


@pytest.mark.parametrize("symbol", ["BTCEUR", "USDT", "USD", "", "BTC-USDT-SWAP"])
def test_coin_of_symbol_without_known_quote(symbol: str) -> None:
    with pytest.raises(ValueError):
        coin_of_symbol(symbol)


def test_split_keeps_the_quote() -> None:
    assert split_concatenated_symbol("ETHUSD_PERP") == ("ETH", "USD")
    assert split_concatenated_symbol("SOLUSDC") == ("SOL", "USDC")


def _spec(instrument: str, category: str = "linear") -> InstrumentSpec:
    return InstrumentSpec("bybit", instrument, instrument[:3], ContractKind.LINEAR, 1.0, "USDT",
                          category=category)


def test_book_reports_new_listings_and_bumps_version() -> None:
    book = InstrumentBook("bybit", [_spec("BTCUSDT")])
    assert book.version == 1
    added = book.update([_spec("BTCUSDT"), _spec("ETHUSDT")])
    assert [s.instrument for s in added] == ["ETHUSDT"]
    assert book.version == 2
    assert "ETHUSDT" in book and len(book) == 2
    assert book.get("SOLUSDT") is None


def test_a_refresh_replaces_the_book_wholesale_so_delistings_leave_it() -> None:
    book = InstrumentBook("bybit", [_spec("BTCUSDT"), _spec("LUNAUSDT")])
    change = book.replace([_spec("BTCUSDT"), _spec("ETHUSDT")])
    assert [s.instrument for s in change.added] == ["ETHUSDT"]
    assert [s.instrument for s in change.removed] == ["LUNAUSDT"]
    assert "LUNAUSDT" not in book and sorted(s.instrument for s in book) == ["BTCUSDT", "ETHUSDT"]
    assert book.version == 2


def test_book_categories() -> None:
    book = InstrumentBook("bybit", [_spec("BTCUSDT"), _spec("BTCUSD", "inverse")])
    assert [s.instrument for s in book.in_category("inverse")] == ["BTCUSD"]
    assert sorted(s.instrument for s in book) == ["BTCUSD", "BTCUSDT"]
