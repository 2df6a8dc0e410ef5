"""Golden frames: a venue's frame, the instrument documents it needs, and what it must give.

A golden file ``tests/venues/golden/<venue>/<case>.json`` holds:

* ``frame``: one text frame as the venue sends it; ``received_at``: its arrival time;
* ``instruments`` (optional): REST documents by the key of the dialect's instrument request
  (``{"exchangeInfo": {...}}``, ``{"usdt": [...], "btc": [...]}``), each as the venue's
  endpoint returns it;
* ``prelude`` (optional): frames parsed first on the same session (BitMEX's XBT price);
* ``expected``: every item the frame gives, in order: a liquidation in its JSON form,
  ``{"mark_price": {...}}`` or ``{"notice": {"type": "Ack", ...}}``;
* ``note``: where the frame comes from and what it shows.

``tests/venues/seeds/<venue>.jsonl`` holds further frames (acks, errors, other channels)
that fuzzing starts from besides the golden ones.

``tests/venues/malformed/<venue>.json`` holds frames the dialect must refuse: ``cases`` maps
a name to its ``frame`` and the ``reason`` of the FrameError it raises on a fresh session
over the venue's golden instrument book, or, for one bad row of a table the venue reads row
by row, the reason of the one ``invalid`` notice it gives instead. Its ``instruments``
(optional, as in a golden file) adds to that book what some case needs.

``tests/venues/notices/<venue>.json`` holds, in the same shape, frames that give one
``notice`` (ack, rejection, pong, info, unrecognised): its ``type`` and the fields that
differ from their defaults.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from monitor.events import Liquidation, MarkPrice
from monitor.venues import make_dialect
from monitor.venues.dialect import Dialect, DialectSession, Item
from monitor.venues.instruments import InstrumentBook

VENUES_DIR = Path(__file__).resolve().parents[1] / "venues"
GOLDEN_DIR = VENUES_DIR / "golden"
SEEDS_DIR = VENUES_DIR / "seeds"
REST_BASE = "https://rest.invalid"


def golden_files(venue: str) -> list[Path]:
    return sorted((GOLDEN_DIR / venue).glob("*.json"))


def load_case(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def seed_frames(venue: str) -> list[str]:
    """The venue's golden frames and preludes, then its fuzz seeds."""
    frames = []
    for path in golden_files(venue):
        case = load_case(path)
        frames += [*case.get("prelude", []), case["frame"]]
    seeds = SEEDS_DIR / f"{venue}.jsonl"
    if seeds.exists():
        frames += [line for line in seeds.read_text().splitlines() if line]
    return frames


def frame_table(kind: str, venue: str) -> dict[str, Any]:
    """``tests/venues/<kind>/<venue>.json`` (kind: malformed, notices); no cases for a venue
    that has no such table yet."""
    path = VENUES_DIR / kind / f"{venue}.json"
    return load_case(path) if path.exists() else {"cases": {}}


def frame_cases(kind: str, venue: str) -> dict[str, dict[str, Any]]:
    """The venue's frames of that table by name."""
    cases: dict[str, dict[str, Any]] = frame_table(kind, venue)["cases"]
    return cases


def load_book(dialect: Dialect, documents: Mapping[str, object] | None) -> InstrumentBook:
    """An instrument book from REST documents, keyed by the dialect's request keys."""
    book = InstrumentBook(dialect.venue)
    requests = {request.key: request for request in dialect.instrument_requests(REST_BASE)}
    for key, document in (documents or {}).items():
        assert key in requests, f"{dialect.venue} requests no instrument document {key!r}"
        specs, following = dialect.parse_instruments(requests[key], orjson.dumps(document))
        assert following is None, f"{dialect.venue} {key}: a one-page document wants more"
        book.update(specs)
    return book


def venue_book(venue: str) -> InstrumentBook:
    """Every instrument the venue's golden files list, in one book."""
    dialect = make_dialect(venue)
    book = InstrumentBook(venue)
    for path in golden_files(venue):
        book.update(list(load_book(dialect, load_case(path).get("instruments"))))
    return book


def table_book(kind: str, venue: str) -> InstrumentBook:
    """The venue's golden book and what its table of that kind adds."""
    book = venue_book(venue)
    book.update(list(load_book(make_dialect(venue), frame_table(kind, venue).get("instruments"))))
    return book


def as_expected(item: Item) -> dict[str, Any]:
    """An item in the golden files' JSON shape."""
    if isinstance(item, Liquidation):
        return item.to_json_dict()
    if isinstance(item, MarkPrice):
        return {"mark_price": msgspec.structs.asdict(item)}
    return {"notice": {"type": type(item).__name__, **dataclasses.asdict(item)}}


def assert_items_match(items: list[Item], expected: list[dict[str, Any]]) -> None:
    """Every item as expected: liquidations with side exact, notional to the cent, price and
    quantity to 1e-9 relative; mark prices to 1e-12 relative; everything else exact."""
    actual = [as_expected(item) for item in items]
    assert len(actual) == len(expected), actual
    for got, want in zip(actual, expected, strict=True):
        if "notional_usd" in want:
            assert set(got) == set(want), (got, want)
            assert abs(got["notional_usd"] - want["notional_usd"]) < 0.005, (got, want)
            assert got["price"] == pytest.approx(want["price"], rel=1e-9)
            assert got["qty_base"] == pytest.approx(want["qty_base"], rel=1e-9)
            inexact = ("notional_usd", "price", "qty_base")
            assert {k: v for k, v in got.items() if k not in inexact} == {
                k: v for k, v in want.items() if k not in inexact}
        elif "mark_price" in want:
            assert got["mark_price"]["price"] == pytest.approx(want["mark_price"]["price"],
                                                               rel=1e-12)
            assert {**got["mark_price"], "price": 0} == {**want["mark_price"], "price": 0}
        else:
            assert got == want


def golden_session(path: Path) -> tuple[DialectSession, dict[str, Any]]:
    """A fresh session of the case's venue, its instruments loaded and its prelude parsed."""
    case = load_case(path)
    dialect = make_dialect(path.parent.name)
    session = dialect.session(load_book(dialect, case.get("instruments")))
    for frame in case.get("prelude", []):
        session.parse(frame, case["received_at"])
    return session, case


def run_golden(path: Path, repeat: int = 1) -> None:
    """Parse the case's frame ``repeat`` times on one session; every time as expected."""
    session, case = golden_session(path)
    for _ in range(repeat):
        assert_items_match(session.parse(case["frame"], case["received_at"]), case["expected"])


def events(items: list[Item]) -> list[Liquidation | MarkPrice]:
    return [i for i in items if isinstance(i, Liquidation | MarkPrice)]


def liquidations(items: list[Item]) -> list[Liquidation]:
    return [i for i in items if isinstance(i, Liquidation)]


def marks(items: list[Item]) -> list[MarkPrice]:
    return [i for i in items if isinstance(i, MarkPrice)]


def only(items: list[Item]) -> Item:
    assert len(items) == 1, items
    return items[0]


def only_liquidation(items: list[Item]) -> Liquidation:
    item = only(items)
    assert isinstance(item, Liquidation), item
    return item
