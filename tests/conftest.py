"""Shared pytest configuration. Service fixtures live in tests/fixtures/, one module each."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from monitor.simulator.scenarios import disk_cache as scenario_disk_cache

pytest_plugins: list[str] = [
    "tests.fixtures.redis",
    "tests.fixtures.prometheus",
    "tests.fixtures.mosquitto",
    "tests.fixtures.webhook",
]


@pytest.fixture(scope="session", autouse=True)
def _no_scenario_disk_cache() -> Iterator[None]:
    """Tests build scenarios from their generators and never write to the user's cache;
    tests/simulator/test_scenario_cache.py turns the disk cache on in a tmp dir."""
    previous = os.environ.get(scenario_disk_cache.ENV)
    os.environ[scenario_disk_cache.ENV] = "off"
    yield
    if previous is None:
        os.environ.pop(scenario_disk_cache.ENV, None)
    else:
        os.environ[scenario_disk_cache.ENV] = previous
