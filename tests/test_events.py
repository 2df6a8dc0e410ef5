"""The event value types: Liquidation and MarkPrice as frozen Structs, and the event ids."""

from __future__ import annotations

import gc

import msgspec
import pytest

from monitor.events import (
    LIQUIDATION_KEYS,
    Completeness,
    Liquidation,
    MarkPrice,
    PositionSide,
    event_id_from_fields,
    event_id_from_text,
    new_liquidation,
)

ARGS = ("bybit", "BTCUSDT", "BTC", PositionSide.LONG, 95000.5, 0.5, 47500.25,
        1_769_904_000_123, 1_769_904_000.5, Completeness.FULL, "bybit:0123")


def test_a_liquidation_is_a_frozen_hashable_value() -> None:
    liq = new_liquidation(*ARGS)
    same = Liquidation(**dict(zip(LIQUIDATION_KEYS, ARGS, strict=True)))
    assert type(liq) is Liquidation and liq == same and hash(liq) == hash(same)
    assert msgspec.structs.astuple(liq) == ARGS
    with pytest.raises(AttributeError):
        liq.price = 1.0  # type: ignore[misc]
    cheaper = msgspec.structs.replace(liq, notional_usd=1.0)
    assert cheaper.notional_usd == 1.0 and cheaper != liq and liq.notional_usd == 47500.25


def test_liquidations_stay_out_of_the_cyclic_garbage_collector() -> None:
    assert not gc.is_tracked(new_liquidation(*ARGS))


def test_a_mark_price_is_a_frozen_hashable_value_as_the_dataclass_was() -> None:
    args = ("bybit", "BTCUSDT", "BTC", 95000.5, 1_769_904_000_123, 1_769_904_000.5)
    mark = MarkPrice(*args)
    same = MarkPrice(venue="bybit", instrument="BTCUSDT", coin="BTC", price=95000.5,
                     exchange_ts_ms=1_769_904_000_123, received_at=1_769_904_000.5)
    assert mark == same and hash(mark) == hash(same) and mark != MarkPrice(*args[:3], 1.0,
                                                                            *args[4:])
    assert msgspec.structs.astuple(mark) == args
    # The dataclass's repr, which logs and the replay tests' digests read.
    assert repr(mark) == ("MarkPrice(venue='bybit', instrument='BTCUSDT', coin='BTC', "
                          "price=95000.5, exchange_ts_ms=1769904000123, "
                          "received_at=1769904000.5)")
    with pytest.raises(AttributeError):
        mark.price = 1.0  # type: ignore[misc]
    assert not gc.is_tracked(mark)


def test_json_forms_and_minute_are_unchanged() -> None:
    liq = new_liquidation(*ARGS)
    data = liq.to_json_dict()
    assert list(data) == list(LIQUIDATION_KEYS)
    assert data["position_side"] == "long" and data["completeness"] == "full"
    assert Liquidation.from_json_dict(data) == liq
    assert msgspec.json.decode(liq.to_json()) == data
    assert liq.minute == 1_769_904_000_123 // 60_000


@pytest.mark.parametrize("fields", [
    ("BTCUSDT", 1_769_904_000_123, "Sell", "0.5", "95000.5"),
    ("BTC-USDT-SWAP", "1769904000123", None, 3, 95000.1),
    ("", True, -1, 1e-7, "x\x1fy"),
])
def test_event_id_from_text_is_event_id_from_fields_of_the_joined_text(
        fields: tuple[object, ...]) -> None:
    text = "\x1f".join(["okx", *(f"{field}" for field in fields)])
    assert event_id_from_text("okx", text) == event_id_from_fields("okx", *fields)


def test_event_ids_are_stable_and_keep_venues_apart() -> None:
    # The value of main's ids: redundant daemons of different versions dedupe each other.
    assert event_id_from_fields("bybit", "PIPPINUSDT", 1740480207110, "Sell", "2846",
                                "0.02456") == "bybit:e3390be0c4d4c562bc61ba67"
    assert event_id_from_fields("okx", "A", 1) != event_id_from_fields("bybit", "A", 1)
