"""Scenarios: what happens in the simulated market, in market time, with its ground truth.

``model`` holds the event types and the helpers every scenario uses; ``calm`` is a quiet
market and ``feb2026`` the night of 1 February 2026. ``build_scenario`` picks one by name.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Sequence

from monitor.simulator.catalogue import listings
from monitor.simulator.scenarios import disk_cache
from monitor.simulator.scenarios.calm import build_calm
from monitor.simulator.scenarios.feb2026 import build_feb_2026
from monitor.simulator.scenarios.model import Scenario, default_venues

SCENARIOS: tuple[str, ...] = ("calm", "feb-2026")


def build_scenario(
    name: str,
    *,
    seed: int = 0,
    venues: Sequence[str] | None = None,
    duration_seconds: float | None = None,
) -> Scenario:
    """Build a scenario by name (one of ``SCENARIOS``); the same seed gives the same events.

    ``venues`` limits the venues that have liquidations (default: every venue with a
    catalogue); ``duration_seconds`` shortens or stretches it (``feb-2026`` scales its whole
    timeline, so the crash keeps its shape and its totals).
    """
    chosen = tuple(venues) if venues is not None else default_venues()
    for venue in chosen:
        listings(venue)  # KeyError for a venue the simulator does not know
    if duration_seconds is not None and duration_seconds <= 0:
        raise ValueError(f"duration_seconds must be positive, got {duration_seconds}")
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
    built = _cached(name, seed, chosen, duration_seconds)
    # The events are immutable and shared; the ground truth is a dict, each caller's own.
    return dataclasses.replace(built, ground_truth=copy.deepcopy(built.ground_truth))


@functools.lru_cache(maxsize=4, typed=True)
def _cached(name: str, seed: int, chosen: tuple[str, ...], duration_seconds: float | None
            ) -> Scenario:
    """A scenario is a pure function of its arguments: one process (the tests, a demo and
    its backtests) builds each once."""
    if name == "calm":
        return build_calm(seed=seed, venues=chosen, duration_seconds=duration_seconds)
    if name == "feb-2026":
        # Tens of thousands of events built one at a time: kept on disk for the next process.
        return disk_cache.load_or_build(name, seed, chosen, duration_seconds, lambda: (
            build_feb_2026(seed=seed, venues=chosen, duration_seconds=duration_seconds)))
    raise AssertionError(name)  # build_scenario checked it


def clear_cache() -> None:
    """Forget the scenarios built so far in this process (not the disk cache: the
    benchmark times cold builds with it turned off)."""
    _cached.cache_clear()
