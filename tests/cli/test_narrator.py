"""The demo's narrator ends the story only once the daemon has counted what was sent.

Stand-ins for the app and the simulator: the point is when ``play_to_the_end`` returns
(``liqmon demo`` then stops the daemon, closing its feeds), measured against a daemon that
is still reading its backlog when the simulator has written its last frame, as on a loaded
machine.
"""

from __future__ import annotations

import asyncio
import io
import time
from types import SimpleNamespace

import pytest

import monitor.cli.narrator as narrator
from monitor.cli.narrator import Narrator
from tests.support.timing import T

SENT = 1_000
# The narrator gives up on a daemon that counted nothing new for this long; the backlog
# below takes twice as long to read, in steps of a twentieth of it: a step this late would
# take a loop stalled for a whole second.
SETTLE = 1.0 * T


class Backlog:
    """An ingest that counts ``per_step`` more every ``step`` seconds, up to ``upto``."""

    def __init__(self, upto: int, per_step: int = 25, step: float = 0.05 * T) -> None:
        self.counted_total = 0
        self._upto, self._per_step, self._step = upto, per_step, step

    async def read(self) -> None:
        while self.counted_total < self._upto:
            await asyncio.sleep(self._step)
            self.counted_total = min(self.counted_total + self._per_step, self._upto)


def stand_ins(ingest: Backlog) -> tuple[SimpleNamespace, SimpleNamespace]:
    state = SimpleNamespace(connected=2, feeds=2)
    app = SimpleNamespace(
        ingest=ingest, detector=None, clock=SimpleNamespace(wall=time.time),
        pipeline_state=lambda: state,
        config=SimpleNamespace(notify=SimpleNamespace(mqtt=SimpleNamespace(enabled=False))))
    sent = SimpleNamespace(count=lambda venue=None: SENT)
    sim = SimpleNamespace(finished=True, market_seconds=lambda: 1.0, sent=lambda: sent)
    return app, sim


async def test_the_story_waits_for_a_daemon_still_reading_what_was_sent(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The backlog takes about 2 s to read, steadily: longer than the settle limit, which is
    # how long the daemon may count nothing new, not how long it may take.
    monkeypatch.setattr(narrator, "SETTLE_SECONDS", SETTLE)
    backlog = Backlog(upto=SENT)
    app, sim = stand_ins(backlog)
    story = io.StringIO()
    reading = asyncio.create_task(backlog.read())
    try:
        await asyncio.wait_for(Narrator(app, sim, time.time(), story).play_to_the_end(),
                               30 * T)
        assert backlog.counted_total == SENT, story.getvalue()
    finally:
        reading.cancel()
    assert story.getvalue().rstrip().endswith("every cascade has resolved")


async def test_a_daemon_that_stops_counting_short_ends_the_story_after_the_settle_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Liquidations lost on the way (a --faults disconnect) never arrive: the story does not
    # wait for them beyond the settle limit.
    monkeypatch.setattr(narrator, "SETTLE_SECONDS", SETTLE)
    backlog = Backlog(upto=SENT - 100)
    app, sim = stand_ins(backlog)
    reading = asyncio.create_task(backlog.read())
    try:
        await asyncio.wait_for(
            Narrator(app, sim, time.time(), io.StringIO()).play_to_the_end(), 30 * T)
        assert backlog.counted_total == SENT - 100
    finally:
        reading.cancel()
