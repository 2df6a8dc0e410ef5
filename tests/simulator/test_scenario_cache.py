"""The scenario disk cache: the same scenario back, bit for bit; never a stale or broken one."""

from __future__ import annotations

import dataclasses
import math
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from monitor.simulator.scenarios import build_scenario, clear_cache, disk_cache
from monitor.simulator.scenarios.model import Scenario, ScenarioEvent

VENUES = ("bybit", "okx")  # a smaller scenario: the cache does not care which venues


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "scenarios"
    monkeypatch.setenv(disk_cache.ENV, str(directory))
    clear_cache()
    yield directory
    clear_cache()


def built(**kwargs: Any) -> Scenario:
    """A fresh build, the disk cache off."""
    previous = os.environ[disk_cache.ENV]
    os.environ[disk_cache.ENV] = "off"
    clear_cache()
    try:
        return build_scenario("feb-2026", venues=VENUES, **kwargs)
    finally:
        os.environ[disk_cache.ENV] = previous
        clear_cache()


def bits(scenario: Scenario) -> list[tuple[object, ...]]:
    """Every field of every event, floats as their bytes (== would hide -0.0 or a NaN)."""
    return [tuple(struct.pack("<d", v) if isinstance(v, float) else v
                  for v in (getattr(e, f) for f in ScenarioEvent.__slots__))
            for e in scenario.iter_events()]


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*" + disk_cache.SUFFIX))


def load(**kwargs: Any) -> Scenario:
    clear_cache()  # not this process's lru cache: the file
    return build_scenario("feb-2026", venues=VENUES, **kwargs)


def test_a_cached_scenario_is_the_built_one_bit_for_bit(cache: Path) -> None:
    fresh = built()
    first = load()  # built and written
    (path,) = files(cache)
    second = load()  # read back
    assert files(cache) == [path]
    for scenario in (first, second):
        assert bits(scenario) == bits(fresh)
        assert scenario.ground_truth == fresh.ground_truth
        assert (scenario.name, scenario.duration_seconds) == (fresh.name, fresh.duration_seconds)
        assert all(type(e) is ScenarioEvent for e in scenario.iter_events())
    assert second.events is not first.events


def test_the_second_process_reads_the_file_instead_of_building(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = bits(built())
    load()

    def no_build(**_: Any) -> Scenario:
        raise AssertionError("built again although the cache holds it")

    monkeypatch.setattr("monitor.simulator.scenarios.build_feb_2026", no_build)
    assert bits(load()) == expected


def test_each_argument_has_its_own_file(cache: Path) -> None:
    load()
    load(seed=1)
    load(duration_seconds=600.0)
    clear_cache()
    build_scenario("feb-2026", venues=("okx",))
    assert len(files(cache)) == 4
    keys = {disk_cache.cache_key("feb-2026", 0, VENUES, None),
            disk_cache.cache_key("feb-2026", 1, VENUES, None),
            disk_cache.cache_key("feb-2026", 0, VENUES, 600.0),
            disk_cache.cache_key("feb-2026", 0, ("okx",), None)}
    assert {p.name.removesuffix(disk_cache.SUFFIX) for p in files(cache)} == keys


def test_a_changed_generator_never_serves_an_old_file(monkeypatch: pytest.MonkeyPatch) -> None:
    before = disk_cache.cache_key("feb-2026", 0, VENUES, None)
    monkeypatch.setattr(disk_cache, "_source_digest", lambda: b"another generator")
    assert disk_cache.cache_key("feb-2026", 0, VENUES, None) != before


def test_the_key_covers_every_module_the_build_runs() -> None:
    digest_sources = disk_cache._source_digest.__wrapped__  # type: ignore[attr-defined]
    assert digest_sources() == disk_cache._source_digest()
    package = Path(disk_cache.__file__).parent
    names = {p.name for p in package.glob("*.py")}
    assert {"feb2026.py", "model.py", "calm.py", "__init__.py", "disk_cache.py"} <= names


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other key"])
def test_a_broken_file_is_built_again_and_replaced(cache: Path, damage: str) -> None:
    load()
    (path,) = files(cache)
    good = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x93\x01\x02" + os.urandom(64))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a file of another key under this name (a copied cache directory)
        other = disk_cache.encode("feb-2026-another", built(seed=3))
        path.write_bytes(other)
    assert bits(load()) == bits(built())
    assert path.read_bytes() == good


def test_off_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("off", "", " OFF "):
        monkeypatch.setenv(disk_cache.ENV, value)
        assert disk_cache.cache_dir() is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("CACHE_DIRECTORY", raising=False)
    monkeypatch.setenv(disk_cache.ENV, "off")
    load()
    assert list(tmp_path.iterdir()) == []
    clear_cache()


def test_the_default_directory_follows_the_cache_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(disk_cache.ENV, raising=False)
    monkeypatch.delenv("CACHE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert disk_cache.cache_dir() == tmp_path / "liqmon" / "scenarios"
    monkeypatch.setenv("CACHE_DIRECTORY", f"{tmp_path}/systemd:{tmp_path}/other")
    assert disk_cache.cache_dir() == tmp_path / "systemd" / "scenarios"


def test_an_unwritable_directory_still_gives_the_scenario(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv(disk_cache.ENV, str(blocker / "scenarios"))
    clear_cache()
    assert bits(load()) == bits(built())
    assert blocker.read_text() == "not a directory"
    assert not list(tmp_path.glob("**/.tmp-*"))


def test_only_the_newest_files_are_kept(cache: Path) -> None:
    cache.mkdir(parents=True)
    for i in range(disk_cache.KEEP_FILES + 3):
        old = cache / f"old-{i}{disk_cache.SUFFIX}"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    load()
    kept = files(cache)
    assert len(kept) == disk_cache.KEEP_FILES
    assert disk_cache.cache_key("feb-2026", 0, VENUES, None) + disk_cache.SUFFIX in {
        p.name for p in kept}
    assert not (cache / f"old-0{disk_cache.SUFFIX}").exists()


def test_floats_survive_exactly() -> None:
    # The file stores doubles as msgpack float64: values a decimal text would round.
    scenario = built()
    odd = [math.nextafter(1.0, 2.0), 5e-324, 1.7976931348623157e308, -0.0, 0.1 + 0.2]
    events = list(scenario.iter_events())[: len(odd)]
    changed = tuple(dataclasses.replace(e, price=v) for e, v in zip(events, odd, strict=True))
    stored = Scenario("feb-2026", scenario.duration_seconds, changed, scenario.ground_truth)
    key = disk_cache.cache_key("feb-2026", 0, VENUES, None)
    decoded = disk_cache._decode(disk_cache.encode(key, stored))
    assert [struct.pack("<d", row[6]) for row in decoded.events] == [
        struct.pack("<d", v) for v in odd]
