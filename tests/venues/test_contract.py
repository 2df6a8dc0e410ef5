"""What every dialect of the registry satisfies: golden frames, malformed frames, notices,
fuzzing, registry and plans.

Each test runs once per venue id of ``monitor.venues`` (a new venue is covered by adding it
to the registry and its golden files). What only one venue does lives in test_<venue>.py.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, strategies as st

from monitor.errors import FrameError, InstrumentFetchError
from monitor.events import Completeness
from monitor.simulator.venues import SIMULATORS
from monitor.venues import VENUES, WEBSOCKET_VENUES, dialect_class, make_dialect
from monitor.venues.dialect import (
    Ack,
    DialectDefaults,
    DialectSession,
    Info,
    Invalid,
    Notice,
    Pong,
    Rejection,
    Reply,
    Unrecognised,
)
from monitor.venues.instruments import InstrumentBook
from tests.support.fuzz import (
    FUZZ,
    check_items,
    deep_variants,
    mutated_text,
    parse_only_frame_errors,
)
from tests.support.golden import (
    REST_BASE,
    frame_cases,
    golden_files,
    load_case,
    run_golden,
    seed_frames,
    table_book,
    venue_book,
)

GOLDEN = [path for venue in WEBSOCKET_VENUES for path in golden_files(venue)]
# The golden cases this suite has had; the number may grow, never shrink.
GOLDEN_CASES_AT_LEAST = 63
MALFORMED = [(venue, name, case) for venue in WEBSOCKET_VENUES
             for name, case in frame_cases("malformed", venue).items()]
NOTICES = [(venue, name, case) for venue in WEBSOCKET_VENUES
           for name, case in frame_cases("notices", venue).items()]
# The malformed and notice cases this suite has had; the numbers may grow, never shrink.
MALFORMED_CASES_AT_LEAST = 238
NOTICE_CASES_AT_LEAST = 91
NOTICE_TYPES: dict[str, type[Notice]] = {
    t.__name__: t for t in (Ack, Rejection, Pong, Reply, Info, Invalid, Unrecognised)}
SIM_BASE = "ws://127.0.0.1:9"
RECEIVED_AT = 1_769_904_000.0  # 2026-02-01, when the golden and malformed frames are set


@functools.cache
def book(venue: str) -> InstrumentBook:
    return venue_book(venue)


def sessions(venue: str) -> list[DialectSession]:
    """Fresh sessions: one outside any connection, one per endpoint the plans connect to."""
    dialect = make_dialect(venue)
    found = [dialect.session(book(venue))]
    urls: set[str] = set()
    for plan in dialect.plans(f"{SIM_BASE}/{venue}", book(venue)):
        if plan.url not in urls:
            urls.add(plan.url)
            found.append(dialect.session(book(venue), plan))
    return found


# -- golden frames --------------------------------------------------------------------------


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_golden(path: Path) -> None:
    run_golden(path)


def test_golden_cases_cover_every_venue() -> None:
    assert len(GOLDEN) >= GOLDEN_CASES_AT_LEAST
    for venue in WEBSOCKET_VENUES:
        cases = [load_case(path) for path in golden_files(venue)]
        assert len(cases) >= 3, venue
        # Each venue shows at least one liquidation valued from a real frame shape.
        assert any("notional_usd" in e for case in cases for e in case["expected"]), venue
        assert all(case.get("note") for case in cases), venue


# -- malformed frames -----------------------------------------------------------------------


@pytest.mark.parametrize(("venue", "name", "case"), MALFORMED,
                         ids=[f"{venue}/{name}" for venue, name, _ in MALFORMED])
def test_malformed_frames_raise_frame_error(venue: str, name: str, case: dict[str, str]) -> None:
    session = make_dialect(venue).session(table_book("malformed", venue))
    if "invalid" in case:
        (item,) = session.parse(case["frame"], RECEIVED_AT)
        assert isinstance(item, Invalid) and item.reason == case["invalid"]
        return
    with pytest.raises(FrameError) as excinfo:
        session.parse(case["frame"], RECEIVED_AT)
    assert excinfo.value.reason == case["reason"]


def test_malformed_cases_never_shrink() -> None:
    assert len(MALFORMED) >= MALFORMED_CASES_AT_LEAST
    for venue in {venue for venue, _, _ in MALFORMED}:
        assert len(frame_cases("malformed", venue)) >= 10, venue


# -- notices --------------------------------------------------------------------------------


@pytest.mark.parametrize(("venue", "name", "case"), NOTICES,
                         ids=[f"{venue}/{name}" for venue, name, _ in NOTICES])
def test_notices(venue: str, name: str, case: dict[str, Any]) -> None:
    fields = dict(case["notice"])
    notice = NOTICE_TYPES[fields.pop("type")](**fields)
    session = make_dialect(venue).session(table_book("notices", venue))
    assert session.parse(case["frame"], RECEIVED_AT) == [notice]


def test_notice_cases_never_shrink() -> None:
    assert len(NOTICES) >= NOTICE_CASES_AT_LEAST
    for venue in {venue for venue, _, _ in NOTICES}:
        assert any(c["notice"]["type"] == "Ack" for c in frame_cases("notices", venue).values())
        assert any(c["notice"]["type"] == "Rejection"
                   for c in frame_cases("notices", venue).values())


# -- only FrameError escapes ----------------------------------------------------------------


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
@FUZZ
@given(data=st.data())
def test_mutated_frames_raise_only_frame_error(venue: str, data: st.DataObject) -> None:
    # Several frames on one session: state left by one bent frame must not break the next.
    texts = [mutated_text(data, seed_frames(venue)) for _ in range(data.draw(st.integers(1, 3)))]
    for session in sessions(venue):
        for text in texts:
            parse_only_frame_errors(session, text)


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
@FUZZ
@given(data=st.data())
def test_arbitrary_text_raises_only_frame_error(venue: str, data: st.DataObject) -> None:
    frames = seed_frames(venue)
    text = data.draw(st.text(max_size=200) | st.sampled_from(frames).flatmap(
        lambda f: st.integers(0, len(f)).map(lambda n: f[:n])))
    for session in sessions(venue):
        parse_only_frame_errors(session, text)


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
@FUZZ
@given(data=st.binary(max_size=200))
def test_arbitrary_binary_frames_raise_only_frame_error(venue: str, data: bytes) -> None:
    dialect = make_dialect(venue)
    try:
        text = dialect.decode_binary(data)
    except FrameError:
        return
    parse_only_frame_errors(dialect.session(book(venue)), text)


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
def test_deeply_nested_values_raise_only_frame_error(venue: str) -> None:
    variants = [v for frame in seed_frames(venue) for v in deep_variants(frame)]
    assert variants
    for text in variants:
        try:
            items = make_dialect(venue).session(book(venue)).parse(text, 1.0)
        except FrameError:
            continue
        check_items(items)


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
def test_binary_frames_are_utf8_text(venue: str) -> None:
    dialect = make_dialect(venue)
    for path in golden_files(venue):
        frame = load_case(path)["frame"]
        assert dialect.decode_binary(frame.encode()) == frame
    with pytest.raises(FrameError):
        dialect.decode_binary(b"\xff\xfe")


# -- registry, plans, instrument documents --------------------------------------------------


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
def test_registry_builds_the_dialect(venue: str) -> None:
    dialect = make_dialect(venue)
    assert type(dialect) is dialect_class(venue)
    assert isinstance(dialect, DialectDefaults)  # what venues share has one home
    assert dialect.venue == venue
    assert dialect.completeness in tuple(Completeness)
    # A venue that needs application pings says what to send and how often.
    assert (dialect.ping_interval_seconds is None) == (dialect.ping_frame(1.0) is None)
    if dialect.ping_interval_seconds is not None:
        assert 0 < dialect.ping_interval_seconds <= 60
    if dialect.max_lifetime_seconds is not None:
        assert 3600 <= dialect.max_lifetime_seconds < 24 * 3600
    assert isinstance(dialect.needs_instruments, bool)
    entry = VENUES[venue]
    assert entry.ws_base_url.startswith("wss://") and entry.rest_base_url.startswith("https://")


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
def test_plans_stay_under_the_base_url(venue: str) -> None:
    dialect = make_dialect(venue)
    base = f"{SIM_BASE}/{venue}"
    plans = dialect.plans(base, book(venue))
    assert plans
    assert dialect.plans(base + "/", book(venue)) == plans
    assert len({plan.name for plan in plans}) == len(plans)
    for plan in plans:
        assert plan.url.startswith(base + "/")
        assert plan.subscribe_frames and all(plan.subscribe_frames)
        assert plan.expected_acks >= 1
        assert 0 <= plan.subscribe_interval_seconds < math.inf
        assert dialect.session(book(venue), plan) is not None


@pytest.mark.parametrize("venue", WEBSOCKET_VENUES)
def test_instrument_requests_and_unreadable_documents(venue: str) -> None:
    dialect = make_dialect(venue)
    requests = dialect.instrument_requests(REST_BASE + "/")
    assert len({request.key for request in requests}) == len(requests)
    assert dialect.needs_instruments <= bool(requests)
    for request in requests:
        assert request.url.startswith(REST_BASE + "/")
        with pytest.raises(InstrumentFetchError):
            dialect.parse_instruments(request, b"<html>")


def test_parser_and_simulator_registries_list_the_same_venues() -> None:
    assert set(WEBSOCKET_VENUES) == set(SIMULATORS)
