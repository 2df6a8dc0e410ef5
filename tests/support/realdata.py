"""Where the real frames recorded from the venues live (never copied into the project)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.paths import REPO

REALDATA_DIR = REPO.parent / "shared" / "realdata"

requires_realdata = pytest.mark.skipif(
    not REALDATA_DIR.is_dir(),
    reason=f"real venue frames are not present at {REALDATA_DIR} (CI has them beside the clone)",
)


def realdata_lines(name: str) -> Iterator[str]:
    """The non-empty lines of one ``shared/realdata`` file."""
    with open(REALDATA_DIR / name, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield line.rstrip("\n")
