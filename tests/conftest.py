"""Shared pytest configuration. Service fixtures live in tests/fixtures/, one module each."""

from __future__ import annotations

pytest_plugins: list[str] = [
    "tests.fixtures.redis",
    "tests.fixtures.prometheus",
    "tests.fixtures.mosquitto",
    "tests.fixtures.webhook",
]
