"""Where the repository is, for tests that read shipped files or run its commands."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
