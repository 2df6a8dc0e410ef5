"""Scenarios: what happens in the simulated market, in market time, with its ground truth.

``model`` holds the event types and the helpers every scenario uses; ``calm`` is a quiet
market and ``feb2026`` the night of 1 February 2026. ``build_scenario`` picks one by name.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.simulator.catalogue import listings
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
    if name == "calm":
        return build_calm(seed=seed, venues=chosen, duration_seconds=duration_seconds)
    if name == "feb-2026":
        return build_feb_2026(seed=seed, venues=chosen, duration_seconds=duration_seconds)
    raise ValueError(f"unknown scenario {name!r}; expected one of {', '.join(SCENARIOS)}")
