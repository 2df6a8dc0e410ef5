"""The shipped Prometheus rules and Alertmanager configuration, checked by the real tools.

promtool (Debian package prometheus) checks and unit-tests the rules and lints liqmon's
exposition; amtool (Debian package prometheus-alertmanager, which also ships the
``prometheus-alertmanager`` server) checks the Alertmanager configuration and its routing;
a real Alertmanager applies the inhibition rules; a real Prometheus loads the rules and
evaluates them against a stand-in liqmon target.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from monitor.metrics import Metrics
from tests.fixtures.prometheus import (
    AlertmanagerServer,
    PrometheusServer,
    require_binary,
)
from tests.support.paths import REPO
from tests.support.timing import T

PROM_DIR = REPO / "deploy" / "prometheus"
RULE_FILES = (PROM_DIR / "rules.yml", PROM_DIR / "alerts.yml")
RULE_TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))
AM_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def run(*args: str | Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True,
                          input=stdin, timeout=120 * T, check=False)


def alert_groups() -> list[dict[str, Any]]:
    return list(yaml.safe_load((PROM_DIR / "alerts.yml").read_text())["groups"])


def test_rule_files_pass_promtool_check() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run(promtool, "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_example_scrape_config_passes_promtool_check() -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run(promtool, "check", "config", PROM_DIR / "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    # The example loads both shipped rule files.
    assert "2 rule files found" in result.stdout


def test_rule_unit_tests_are_there() -> None:
    assert {p.stem for p in RULE_TESTS} >= {"market", "feeds", "sinks", "meta"}


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_rule_unit_tests_pass(test_file: Path) -> None:
    promtool = require_binary("promtool", "prometheus")
    result = run(promtool, "test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_catch_a_wrong_expectation(tmp_path: Path) -> None:
    """The promtool tests can fail: one changed figure in a rendered description is caught."""
    promtool = require_binary("promtool", "prometheus")
    text = (PROM_DIR / "tests" / "sinks.yml").read_text()
    changed = text.replace("57 alerts wait in its outbox", "56 alerts wait in its outbox", 1)
    assert changed != text
    for name in ("rules.yml", "alerts.yml"):
        changed = changed.replace(f"../{name}", str(PROM_DIR / name))
    (tmp_path / "sinks.yml").write_text(changed)
    result = run(promtool, "test", "rules", tmp_path / "sinks.yml")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "56 alerts wait" in output and "57 alerts wait" in output


def test_daemon_exposition_passes_promtool_check_metrics() -> None:
    promtool = require_binary("promtool", "prometheus")
    registry = CollectorRegistry()
    metrics = Metrics(registry, ["binance-usdm", "bybit"], ["BTC", "ETH"])
    metrics.add_channel("mqtt")
    exposition = generate_latest(registry).decode()
    result = run(promtool, "check", "metrics", stdin=exposition)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_alertmanager_config_passes_amtool_check() -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    result = run(amtool, "check-config", AM_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def expected_receiver(group: str, alertname: str) -> str:
    if alertname == "LiqmonWatchdog":
        return "liqmon-deadmansswitch"
    return "liqmon-market" if group == "liqmon.market" else "liqmon-plumbing"


ROUTED = sorted(
    {(g["name"], r["alert"], r["labels"]["severity"]) for g in alert_groups()
     for r in g["rules"]}
)


@pytest.mark.parametrize(("group", "alertname", "severity"), ROUTED,
                         ids=[f"{a}-{s}" for _, a, s in ROUTED])
def test_every_alert_routes_to_its_receiver(group: str, alertname: str, severity: str) -> None:
    amtool = require_binary("amtool", "prometheus-alertmanager")
    receiver = expected_receiver(group, alertname)
    result = run(amtool, "config", "routes", "test", f"--config.file={AM_CONFIG}",
                 f"--verify.receivers={receiver}", f"alertname={alertname}",
                 f"severity={severity}", "job=liqmon", "instance=a:10841")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def _alert(**labels: str) -> dict[str, Any]:
    return {"labels": labels, "annotations": {"summary": "test."}}


def test_alertmanager_inhibits_as_documented(alertmanager_server: Any) -> None:
    am: AlertmanagerServer = alertmanager_server(AM_CONFIG)
    cascade = {"alertname": "LiqmonLiquidationCascade", "job": "liqmon",
               "position_side": "long"}
    am.post_alerts([
        _alert(**cascade, scope="global", severity="critical"),
        _alert(**cascade, scope="global", severity="warning"),
        _alert(**cascade, scope="coin:ETH", severity="warning"),
        _alert(alertname="LiqmonDown", job="liqmon", instance="a:10841", severity="critical"),
        _alert(alertname="LiqmonFeedSilent", job="liqmon", instance="a:10841",
               venue="binance-usdm", severity="warning"),
        _alert(alertname="LiqmonStoreDown", job="liqmon", instance="a:10841",
               severity="warning"),
        _alert(alertname="LiqmonFeedSilent", job="liqmon", instance="b:10841",
               venue="binance-usdm", severity="warning"),
    ])
    expected = {
        ("LiqmonLiquidationCascade", "global", "", "critical"): "active",
        # warning hidden by the critical alert of the same name and labels...
        ("LiqmonLiquidationCascade", "global", "", "warning"): "suppressed",
        # ...but not by one for another scope.
        ("LiqmonLiquidationCascade", "coin:ETH", "", "warning"): "active",
        ("LiqmonDown", "", "a:10841", "critical"): "active",
        # an instance's feed and sink alerts are hidden while it is down...
        ("LiqmonFeedSilent", "", "a:10841", "warning"): "suppressed",
        ("LiqmonStoreDown", "", "a:10841", "warning"): "suppressed",
        # ...another instance's are not.
        ("LiqmonFeedSilent", "", "b:10841", "warning"): "active",
    }
    # The inhibitor learns of source alerts asynchronously: poll until the states settle.
    deadline = time.monotonic() + 10 * T
    while True:
        states = {
            (a["labels"]["alertname"], a["labels"].get("scope", ""),
             a["labels"].get("instance", ""), a["labels"]["severity"]): a["status"]["state"]
            for a in am.alerts()
        }
        if states == expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert states == expected


def test_shipped_rules_load_and_evaluate_ok(synthetic_prometheus: PrometheusServer) -> None:
    expected = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            expected[group["name"]] = len(group["rules"])

    def evaluated() -> list[dict[str, Any]] | None:
        groups = synthetic_prometheus.rules()
        rules = [r for g in groups for r in g["rules"]]
        if not rules or any(r["health"] == "unknown" for r in rules):
            return None
        return groups

    groups = synthetic_prometheus.wait_until(evaluated, "every rule evaluated once")
    assert {g["name"]: len(g["rules"]) for g in groups} == expected
    unhealthy = [(r["name"], r["health"], r.get("lastError")) for g in groups
                 for r in g["rules"] if r["health"] != "ok"]
    assert unhealthy == []


def test_cascade_alert_fires_from_a_scrape(synthetic_prometheus: PrometheusServer) -> None:
    """The stand-in target holds a critical global/long cascade: the alert fires at once."""

    def firing() -> list[dict[str, Any]]:
        return [a for a in synthetic_prometheus.alerts()
                if a["labels"]["alertname"] == "LiqmonLiquidationCascade"
                and a["state"] == "firing"]

    alerts = synthetic_prometheus.wait_until(firing, "LiqmonLiquidationCascade firing")
    assert [a["labels"] for a in alerts] == [{
        "alertname": "LiqmonLiquidationCascade", "job": "liqmon", "scope": "global",
        "position_side": "long", "severity": "critical",
    }]
    assert alerts[0]["annotations"]["description"] == (
        "Long positions are being liquidated in a cascade in scope global; detector "
        "severity 2 (2 critical, 3 extreme)."
    )
    # Nothing else in the stand-in target is unhealthy. (Pending alerts are left out: the
    # first seconds before the first scrape make LiqmonDown pending on absent(up). The
    # stand-in's USD counters grow with time, so the market-side Surge may fire too once
    # enough of them has been scraped: market alerts, not plumbing ones.)
    names = {a["labels"]["alertname"] for a in synthetic_prometheus.alerts()
             if a["state"] == "firing"}
    assert names <= {"LiqmonLiquidationCascade", "LiqmonLiquidationSurge",
                     "LiqmonWhaleLiquidation", "LiqmonWatchdog"}
