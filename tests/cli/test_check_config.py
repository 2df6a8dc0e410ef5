"""`liqmon check-config` accepts exactly what `liqmon run` accepts: venue options included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.timing import T


def liqmon(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitor", *argv], capture_output=True,
                          text=True, timeout=30 * T, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


def test_a_bad_venue_option_fails_check_config_with_key_value_and_expectation(
    tmp_path: Path,
) -> None:
    config = tmp_path / "liqmon.toml"
    config.write_text('[venues.okx]\nenabled = true\noptions = { replay_max_age_seconds = -5 }\n')
    done = liqmon("check-config", str(config))
    assert done.returncode == 2, done.stderr
    assert "venues.okx.options.replay_max_age_seconds" in done.stderr
    assert "-5" in done.stderr and "a number >= 0" in done.stderr
    # `run` refuses it the same way, before connecting anywhere.
    ran = liqmon("run", "--config", str(config), env={"LIQMON_METRICS__PORT": "0"})
    assert ran.returncode == 2 and ran.stderr.strip().splitlines()[-1] == \
        done.stderr.strip().splitlines()[-1]


def test_a_node_venue_without_a_path_fails_check_config() -> None:
    done = liqmon("check-config", env={"LIQMON_VENUES__HYPERLIQUID_NODE__ENABLED": "true"})
    assert done.returncode == 2
    assert "venues.hyperliquid-node.options.path" in done.stderr
