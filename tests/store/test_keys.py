"""The store's pure parts: key names and their slot, windows, roll-up cover, rows, records."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st
from redis.crc import key_slot

from monitor.events import Completeness, Liquidation, PositionSide
from monitor.store.aggregate import RowBuilder, cover, top_events, window_range
from monitor.store.base import (
    COMPLETENESS_BITS,
    WINDOWS,
    check_by,
    completeness_label,
    parse_window,
)
from monitor.store.keys import Keys, group_field, parse_group_field
from monitor.store.records import decode_record, encode_record


def all_keys(keys: Keys, minute: int, event_id: str) -> list[str]:
    return [
        keys.minute(minute), keys.minute_largest(minute), keys.minute_top(minute),
        keys.hour(minute // 60), keys.hour_largest(minute // 60), keys.hour_top(minute // 60),
        keys.minute_ids(minute), keys.claim(event_id), keys.cascades, keys.cascade_order,
        keys.cascade_seq,
    ]


@given(
    minute=st.integers(min_value=0, max_value=2**40),
    event_id=st.text(min_size=1, max_size=80),
)
def test_every_key_shares_the_hash_tag_slot(minute: int, event_id: str) -> None:
    keys = Keys("liqmon")
    slot = key_slot(b"liqmon")
    for key in all_keys(keys, minute, event_id):
        assert key.startswith("{liqmon}:")
        # Braces inside an event id come after the first }, so they cannot move the tag.
        assert key_slot(key.encode()) == slot, key


def test_key_layout_is_readable() -> None:
    keys = Keys("prod-eu")
    assert keys.minute(29498400) == "{prod-eu}:m:29498400"
    assert keys.hour(491640) == "{prod-eu}:h:491640"
    assert keys.minute_ids(29498400) == "{prod-eu}:ids:29498400"
    assert keys.claim("cascade-7") == "{prod-eu}:claim:cascade-7"
    assert keys.pattern() == "{prod-eu}:*"
    assert len({*all_keys(keys, 29498400, "x")}) == 11


@pytest.mark.parametrize("prefix", ["", "a{b", "a}b", "with space", "ünï"])
def test_a_prefix_that_would_break_the_tag_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="key prefix"):
        Keys(prefix)


def test_group_fields_round_trip() -> None:
    assert group_field("binance-usdm", "1000PEPE", "short") == "binance-usdm|1000PEPE|short"
    assert parse_group_field("bybit|BTC|long") == ("bybit", "BTC", "long")
    with pytest.raises(ValueError):
        parse_group_field("bybit|BTC")


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("1m", 1), ("5m", 5), ("90m", 90), ("1h", 60), ("2h", 120), ("4H", 240), (" 24h ", 1440),
     ("1d", 1440)],
)
def test_parse_window(text: str, minutes: int) -> None:
    assert parse_window(text) == minutes


@pytest.mark.parametrize("text", ["", "5", "m", "0m", "-5m", "5s", "1.5h", "5 minutes", "h1"])
def test_parse_window_refuses_with_the_text_and_the_form(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))) as info:
        parse_window(text)
    assert "5m" in str(info.value)


def test_named_windows() -> None:
    assert WINDOWS == {"1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "24h": 1440}
    assert all(parse_window(name) == minutes for name, minutes in WINDOWS.items())


def test_window_range() -> None:
    assert window_range(1, 120_000) == (2, 2)
    assert window_range(5, 120_000 + 59_999) == (-2, 2)
    with pytest.raises(ValueError):
        window_range(0, 120_000)


@given(start=st.integers(min_value=0, max_value=10**7), length=st.integers(1, 3000))
def test_cover_is_exact_and_small(start: int, length: int) -> None:
    end = start + length - 1
    hours, minutes = cover(start, end)
    covered = [m for h in hours for m in range(h * 60, h * 60 + 60)] + minutes
    assert sorted(covered) == list(range(start, end + 1))  # every minute exactly once
    assert len(minutes) <= 118
    assert len(hours) <= length // 60


def test_cover_of_a_24h_window() -> None:
    hours, minutes = cover(1000 * 60 + 30, 1024 * 60 + 29)
    assert hours == list(range(1001, 1024))
    assert len(minutes) == 60
    assert cover(5, 4) == ([], [])


def test_completeness_labels() -> None:
    bits = COMPLETENESS_BITS
    assert completeness_label(0) == "full"
    assert completeness_label(bits[Completeness.FULL]) == "full"
    assert completeness_label(bits[Completeness.FULL] | bits[Completeness.THROTTLED]) == (
        "throttled"
    )
    assert completeness_label(sum(bits.values())) == "aggregated,backstop,inferred,throttled"


def test_check_by() -> None:
    assert check_by(["coin", "venue"]) == ("coin", "venue")
    with pytest.raises(ValueError, match="instrument"):
        check_by(["instrument"])
    with pytest.raises(ValueError, match="repeat"):
        check_by(["coin", "coin"])


def event(usd: float, event_id: str, **fields: object) -> Liquidation:
    values: dict[str, object] = {
        "venue": "okx", "instrument": "BTC-USDT-SWAP", "coin": "BTC",
        "position_side": PositionSide.SHORT, "price": 60_000.5, "qty_base": 0.1,
        "notional_usd": usd, "exchange_ts_ms": 1_769_904_000_123, "received_at": 1_769_904_000.5,
        "completeness": Completeness.FULL, "event_id": event_id,
    }
    values.update(fields)
    return Liquidation(**values)  # type: ignore[arg-type]


def test_row_builder_sums_ties_and_order() -> None:
    a, b, c = event(5.0, "a"), event(5.0, "b"), event(9.0, "c", venue="bybit")
    builder: RowBuilder[Liquidation] = RowBuilder(["venue"])
    builder.add(("okx", "BTC", "short"), 5.0, 1, 0.1, 5.0, 1, a)
    builder.add(("okx", "ETH", "long"), 5.0, 2, 0.2, 5.0, 2, b)  # a tie: the first keeps it
    builder.add(("bybit", "BTC", "short"), 9.0, 1, 0.3, 9.0, 1, c)
    rows = builder.rows(lambda e: e)
    assert [(r.venue, r.usd, r.count, r.largest) for r in rows] == [
        ("okx", 10.0, 3, a), ("bybit", 9.0, 1, c),
    ]
    assert rows[0].completeness == "throttled"
    assert rows[0].coin is None and rows[0].position_side is None


def test_top_events_orders_by_size_then_id() -> None:
    a, b, c = event(5.0, "b"), event(5.0, "a"), event(7.0, "c")
    assert top_events([(5.0, a), (5.0, b), (7.0, c), (7.0, c)], 10) == [c, b, a]
    assert top_events([(5.0, a), (7.0, c)], 1) == [c]


@given(
    usd=st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False),
    qty=st.floats(min_value=0, max_value=1e15, allow_nan=False, allow_infinity=False),
    text=st.text(max_size=40),
)
def test_records_round_trip_and_start_with_usd_and_qty(usd: float, qty: float, text: str) -> None:
    e = event(usd, "okx:" + text, qty_base=qty, instrument=text or "X")
    data = encode_record(e)
    assert decode_record(data) == e
    # What the write script reads off the head of a record, with a Lua pattern.
    head = re.match(rb"^\[([^,]+),([^,]+),", data)
    assert head is not None
    assert float(head.group(1)) == usd and float(head.group(2)) == qty
