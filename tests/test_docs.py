"""The README stays short and the documentation stays connected to the code it describes."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from monitor.cli import build_parser
from monitor.venues import VENUES

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)")


def test_the_readme_reads_in_five_minutes() -> None:
    assert (REPO / "README.md").stat().st_size < 15 * 1024


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_points_at_a_file(doc: Path) -> None:
    targets = [t for t in LINK.findall(doc.read_text()) if "://" not in t]
    missing = [t for t in targets if not (doc.parent / t).exists()]
    assert not missing, f"{doc.name} links to {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_command_named_in_the_docs_exists(doc: Path) -> None:
    commands = {name for action in build_parser()._actions
                if isinstance(action, argparse._SubParsersAction) for name in action.choices}
    named = set(re.findall(r"`liqmon ([a-z][a-z-]+)", doc.read_text()))
    assert named <= commands, f"{doc.name} names {sorted(named - commands)}"


def test_the_venue_options_table_lists_exactly_the_options_the_registry_takes() -> None:
    text = (REPO / "docs" / "venues.md").read_text()
    section = text.split("## Venue options", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z-]+)` \| `([a-z_]+)` \|", section, re.MULTILINE))
    registered = {(venue, option) for venue, entry in VENUES.items() for option in entry.options}
    assert documented == registered
