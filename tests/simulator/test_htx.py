"""The HTX simulator: gzip frames, server pings that must be echoed, delivery futures by symbol.

Its round trip and supervised play are in test_roundtrip.py with every other venue's.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Sequence

import orjson
import pytest

from monitor.errors import FrameError
from monitor.events import Liquidation
from monitor.simulator.venue_sim import Close, Frame, Liq, Out, SimNow
from monitor.simulator.venues import htx as htx_sim
from monitor.simulator.venues.htx import HtxSession, HtxSim
from monitor.venues import make_dialect
from monitor.venues.dialect import Ack, DialectSession, Item, Rejection, Reply
from monitor.venues.instruments import InstrumentBook
from tests.support.simroundtrip import (
    START_MS,
    Keeping,
    book_from_sim,
    liqs_of,
    opened,
    read_frames,
    scenario_events,
    sim_of,
    through_supervisor,
)

VENUE = "htx"
DIALECT = make_dialect(VENUE)
SUB = '{"op":"sub","cid":"t","topic":"public.*.liquidation_orders"}'


sim = functools.partial(sim_of, VENUE, HtxSim)


def session(venue_sim: HtxSim, path: str = "/linear-swap-notification",
            reject: bool = False) -> HtxSession:
    made = opened(venue_sim, path, HtxSession, reject=reject)
    made.on_open(SimNow(START_MS, 0.0))
    return made


def read(outs: Sequence[Out], reader: DialectSession | None = None) -> list[Item]:
    """Every frame must be gzip binary; decoded and parsed as the supervisor does."""
    assert all(isinstance(out, Frame) and out.data[:2] == b"\x1f\x8b" for out in outs)
    return read_frames(DIALECT, reader or DIALECT.session(InstrumentBook(VENUE)), outs,
                       binary=True)


def test_subscription_ack_and_refusals() -> None:
    venue_sim = sim()
    (ack,) = read(session(venue_sim).on_text(SUB, SimNow(START_MS, 1.0)))
    assert ack == Ack("public.*.liquidation_orders")
    (refused,) = read(session(venue_sim, reject=True).on_text(SUB, SimNow(START_MS, 1.0)))
    assert isinstance(refused, Rejection) and refused.message.startswith("4002")
    wrong_host = session(venue_sim, "/swap-notification")
    (unknown,) = read(wrong_host.on_text(
        '{"op":"sub","cid":"t","topic":"public.BTC-USDT.liquidation_orders"}',
        SimNow(START_MS, 1.0)))
    assert isinstance(unknown, Rejection)
    (garbage,) = read(wrong_host.on_text("{nope", SimNow(START_MS, 1.0)))
    assert isinstance(garbage, Rejection)
    assert venue_sim.open("/ws", "", reject=False) is None


def test_delivery_futures_are_subscribed_by_symbol() -> None:
    venue_sim = sim()
    futures = session(venue_sim, "/notification")
    (ack,) = read(futures.on_text('{"op":"sub","cid":"t","topic":"public.BTC.liquidation_orders"}',
                                  SimNow(START_MS, 1.0)))
    assert isinstance(ack, Ack)
    book = book_from_sim(venue_sim, DIALECT)
    events = [e for e in scenario_events(VENUE) if e.instrument == "BTC260327"]
    for liq in liqs_of(events):
        venue_sim.on_liquidation(liq)
    (pub,) = venue_sim.flush(SimNow(START_MS + 1000, 2.0))
    data = futures.render(pub)
    assert isinstance(data, bytes)
    text = DIALECT.decode_binary(data)
    assert orjson.loads(text)["topic"] == "public.BTC.liquidation_orders"
    got = [i for i in DIALECT.session(book).parse(text, 1.0) if isinstance(i, Liquidation)]
    assert [g.notional_usd for g in got] == [e.notional_usd for e in events]
    assert session(venue_sim).render(pub) is None  # the USDT host never sees it


def test_server_pings_are_echoed_by_the_dialect() -> None:
    venue_sim = sim()
    conn = session(venue_sim)
    reader = DIALECT.session(InstrumentBook(VENUE))
    assert conn.tick(SimNow(START_MS, 1.0)) == ()  # not due yet
    for n in range(1, 10):
        outs = conn.tick(SimNow(START_MS + n, 5.0 * n))
        (reply,) = read(outs, reader)
        assert isinstance(reply, Reply)
        assert orjson.loads(reply.text) == {"op": "pong", "ts": str(START_MS + n)}
        assert conn.on_text(reply.text, SimNow(START_MS, 5.0 * n)) == ()


def test_unanswered_or_wrong_pongs_close_the_connection() -> None:
    venue_sim = sim()
    conn = session(venue_sim)
    outs: Sequence[Out] = ()
    for n in range(1, htx_sim.MAX_UNANSWERED + 2):
        outs = conn.tick(SimNow(START_MS + n, 5.0 * n))
        conn.on_text('{"op":"pong","ts":"1"}', SimNow(START_MS, 5.0 * n))  # the wrong ts
    assert len(outs) == 1 and isinstance(outs[0], Close)


def test_twins_are_moved_apart_by_a_millisecond() -> None:
    venue_sim = sim()
    (event,) = [e for e in scenario_events(VENUE) if e.instrument == "BTC-USDT"][:1]
    twins = [Liq(seq, event, START_MS) for seq in (1, 2)]
    rows = [venue_sim.row(liq) for liq in twins]
    assert [r["created_at"] for r in rows] == [START_MS, START_MS + 1]


def test_bad_frames_from_the_simulator_are_frame_errors() -> None:
    # The core's "malformed" fault cuts binary frames in half: an unreadable gzip stream.
    data = gzip.compress(b'{"op":"ping","ts":"1"}')
    with pytest.raises(FrameError):
        DIALECT.decode_binary(data[: len(data) // 2])


async def test_a_client_that_does_not_answer_pings_is_dropped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(htx_sim, "PING_INTERVAL_SECONDS", 0.1)
    deaf = Keeping(Reply, drop=True)  # never answers the server's pings
    played = await through_supervisor(VENUE, duration_seconds=600.0, linger_seconds=0.5,
                                      session_factory=deaf)
    assert deaf.kept
    assert "closed" in played.observer.reconnects
