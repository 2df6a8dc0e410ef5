"""The shipped systemd unit: `systemd-analyze verify` passes on it (and with the example
drop-in), `systemd-analyze security` scores it at 2.0 or below, and it says what the
service needs (Type=notify, reload, watchdog, credentials, no hard dependency on Redis).

`verify` checks that ExecStart's binary exists, and /opt/liqmon is not installed here: the
test verifies a copy whose ExecStart names this checkout's own installed `liqmon` console
script (.venv/bin/liqmon, next to the running interpreter), every other line unchanged.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_config
from tests.support.paths import REPO

UNIT = REPO / "deploy" / "systemd" / "liqmon.service"
DROP_IN = REPO / "deploy" / "systemd" / "liqmon.service.d" / "override.conf.example"
SHIPPED_EXEC = "/opt/liqmon/bin/liqmon run --config /etc/liqmon/liqmon.toml"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (keys may repeat)."""
    section, out = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def values(text: str, section: str, key: str) -> list[str]:
    return [v for s, k, v in directives(text) if (s, k) == (section, key)]


def local_copy(tmp_path: Path, with_drop_in: bool = False) -> Path:
    liqmon = Path(sys.executable).parent / "liqmon"
    assert liqmon.is_file(), f"the console script {liqmon} is not installed"
    text = UNIT.read_text()
    assert text.count(f"ExecStart={SHIPPED_EXEC}\n") == 1
    copy = tmp_path / "liqmon.service"
    copy.write_text(text.replace("ExecStart=/opt/liqmon/bin/liqmon ", f"ExecStart={liqmon} "))
    if with_drop_in:
        (tmp_path / "liqmon.service.d").mkdir()
        shutil.copy(DROP_IN, tmp_path / "liqmon.service.d" / "override.conf")
    return copy


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SYSTEMD_ANALYZE, *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd)


@pytest.mark.parametrize("with_drop_in", [False, True], ids=["unit", "unit+drop-in"])
def test_systemd_analyze_verify_passes_cleanly(tmp_path: Path, with_drop_in: bool) -> None:
    copy = local_copy(tmp_path, with_drop_in)
    result = analyze("verify", str(copy), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Unknown keys and bad values are only warnings to verify: none are allowed here.
    assert result.stderr.strip() == "", result.stderr


def test_verify_would_catch_a_mistake(tmp_path: Path) -> None:
    copy = local_copy(tmp_path)
    copy.write_text(copy.read_text().replace("ProtectClock=yes", "ProtectClok=yes"))
    assert "Unknown key" in analyze("verify", str(copy), cwd=tmp_path).stderr


def test_security_exposure_is_at_most_two_and_is_the_one_documented(tmp_path: Path) -> None:
    copy = local_copy(tmp_path)
    result = analyze("security", "--offline=true", "--no-pager", str(copy), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for liqmon\.service: (\d+\.\d)", result.stdout)
    assert match, result.stdout[-2000:]
    score = float(match.group(1))
    assert score <= 2.0, result.stdout
    # The threshold option agrees (it counts in tenths).
    assert analyze("security", "--offline=true", "--threshold=20", str(copy),
                   cwd=tmp_path).returncode == 0
    assert f"exposure {match.group(1)} " in UNIT.read_text(), (
        f"the unit's header states another score than {score}")


def test_the_unit_says_what_the_service_needs() -> None:
    text = UNIT.read_text()
    one = {k: v for s, k, v in directives(text) if s == "Service"}
    assert one["Type"] == "notify"
    assert one["ExecStart"] == SHIPPED_EXEC
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["Restart"] == "on-failure"
    assert float(one["WatchdogSec"]) > 60 + 10 + 10  # the default silence limit + timeouts
    assert float(one["TimeoutStopSec"]) > 10  # the app's shutdown deadline, with room
    for key, value in [("DynamicUser", "yes"), ("StateDirectory", "liqmon"),
                       ("CacheDirectory", "liqmon"), ("ConfigurationDirectory", "liqmon"),
                       ("ProtectSystem", "strict"), ("CapabilityBoundingSet", ""),
                       ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
                       ("SystemCallArchitectures", "native"), ("UMask", "0077")]:
        assert one[key] == value, key
    assert "@system-service" in values(text, "Service", "SystemCallFilter")
    assert "LIQMON_RECORD__DIRECTORY=%S/liqmon/recordings" in values(text, "Service",
                                                                       "Environment")
    unit = {k: v for s, k, v in directives(text) if s == "Unit"}
    assert "redis-server.service" in unit["After"] and "network-online.target" in unit["After"]
    assert unit["Wants"] == "network-online.target"
    assert "StartLimitIntervalSec" in unit and "StartLimitBurst" in unit
    assert not any(k in ("Requires", "BindsTo", "Requisite") for s, k, _ in directives(text))
    # Secrets never in Environment= (visible in `systemctl show`).
    assert not any(re.search(r"PASSWORD=|SECRET=|TOKEN=", v, re.I)
                   for v in values(text, "Service", "Environment"))


def test_the_drop_in_credentials_name_real_config_keys() -> None:
    text = DROP_IN.read_text()
    creds = dict(v.split(":", 1) for v in values(text, "Service", "LoadCredential"))
    assert "redis-password" in creds
    env = dict(v.split("=", 1) for v in values(text, "Service", "Environment"))
    assert env["LIQMON_STORE__PASSWORD_FILE"] == "%d/redis-password"
    # The override names a key the config knows (load_config rejects unknown keys).
    config = load_config(None, env={"LIQMON_STORE__PASSWORD_FILE": "/run/credentials/x"})
    assert config.store.password_file == "/run/credentials/x"
