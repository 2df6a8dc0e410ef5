"""One time scale for every test timeout: raise it on a slow machine."""

from __future__ import annotations

import os

T = float(os.environ.get("LIQMON_TEST_TIME_SCALE", "1.0"))
