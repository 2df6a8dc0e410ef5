"""Lint of the shipped dashboards, provisioning, rules and runbook, and every dashboard query
evaluated by a real Prometheus.

The conventions are those of Grafana's dashboard linter and the monitoring-mixin style
guide: stable uid, one ``datasource`` variable and no hard-coded datasource uid, job and
instance variables, the job matcher on every selector, ``$__rate_interval`` in every
rate/increase, a unit and a description on every panel; CamelCase alert names with a
severity, a static summary sentence, a templated description and a runbook section. Every
metric a panel or rule names must be one liqmon exports (asked of monitor/metrics
itself), a recording rule of rules.yml, or a standard Prometheus series.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitor.metrics import Metrics
from tests.fixtures.exposition import ExpositionServer
from tests.fixtures.prometheus import PrometheusServer
from tests.support.dashboards import (
    DASHBOARD_DIR,
    QUERIES,
    UIDS,
    dashboard_queries,
    dashboards,
    panels,
    substitute,
)
from tests.support.paths import REPO
from tests.support.promql import rate_ranges, selectors

PROVISIONING = REPO / "grafana" / "provisioning"
PROM_DIR = REPO / "deploy" / "prometheus"
RUNBOOK = REPO / "deploy" / "runbook.md"
RUNBOOK_BASE = "https://github.com/liqmon/liqmon/blob/main/deploy/runbook.md#"

VARIABLES = {"liqmon-overview": ["datasource", "job", "instance", "venue", "coin"],
             "liqmon-feed-health": ["datasource", "job", "instance", "venue"]}
DS = {"type": "prometheus", "uid": "${datasource}"}
UNITS = {"currencyUSD", "percentunit", "s", "short", "none", "cps", "cpm", "bytes"}
STANDARD_SERIES = {"up", "ALERTS"}
ALERT_GROUPS = {"liqmon.market", "liqmon.feeds", "liqmon.sinks", "liqmon.meta"}
REQUIRED_ALERTS = {
    "LiqmonLiquidationCascade", "LiqmonLiquidationSurge", "LiqmonWhaleLiquidation",
    "LiqmonFeedDown", "LiqmonFeedSilent", "LiqmonFeedInvalidFrames", "LiqmonStoreDown",
    "LiqmonStoreBacklog", "LiqmonNotifierFailing", "LiqmonDown", "LiqmonWatchdog",
}
# Always firing by design: its "not firing" case is a dead pipeline, which only the
# dead man's switch outside Prometheus can observe.
ALWAYS_FIRING = {"LiqmonWatchdog"}


def test_scanner_finds_selectors_and_skips_label_lists() -> None:
    expr = ('sum by (venue, le) (rate(a_total{job=~"$job", x="}"}[$__rate_interval])) '
            '/ ignoring (reason) group_left max without (instance) (b) > 5e6 or vector(1) '
            'and on (job) c:d:increase5m offset 5m')
    assert selectors(expr) == [("a_total", '{job=~"$job", x="}"}'), ("b", ""),
                               ("c:d:increase5m", "")]
    assert rate_ranges(expr) == [("rate", "[$__rate_interval]")]
    assert rate_ranges("increase(x[5m]) + rate(y[1m])") == [("increase", "[5m]"),
                                                          ("rate", "[1m]")]


# --- loading ------------------------------------------------------------------------------
def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for name in ("rules.yml", "alerts.yml"):
        groups += yaml.safe_load((PROM_DIR / name).read_text())["groups"]
    return groups


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in rule_groups() for r in g["rules"] if "alert" in r]


def recorded_names() -> set[str]:
    return {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}


def exported_names() -> set[str]:
    """Every series name monitor/metrics can export, from its registry's families."""
    registry = CollectorRegistry()
    Metrics(registry, ["binance-usdm"], ["BTC"]).add_channel("mqtt")
    suffixes = {"counter": ["_total"], "gauge": [""], "histogram": ["_bucket", "_sum", "_count"],
                "summary": ["", "_sum", "_count"], "info": ["_info"]}
    return {family.name + s for family in registry.collect() for s in suffixes[family.type]}


# --- dashboards ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", UIDS)
def test_dashboard_identity(name: str) -> None:
    dash = dashboards()[name]
    assert dash["uid"] == UIDS[name] and len(dash["uid"]) <= 40
    assert dash["id"] is None
    assert "liqmon" in dash["tags"]
    assert dash["title"].startswith("liqmon / ")
    assert dash["description"]


@pytest.mark.parametrize("name", UIDS)
def test_dashboard_variables(name: str) -> None:
    dash = dashboards()[name]
    variables = dash["templating"]["list"]
    assert [v["name"] for v in variables] == VARIABLES[dash["uid"]]
    datasource_vars = [v for v in variables if v["type"] == "datasource"]
    assert len(datasource_vars) == 1
    assert datasource_vars[0]["name"] == "datasource"
    assert datasource_vars[0]["query"] == "prometheus"
    for var in variables[1:]:
        assert var["type"] == "query" and var["datasource"] == DS, var["name"]
        if var["name"] != "job":
            assert 'job=~"$job"' in var["query"], var["name"]
        if var.get("includeAll"):
            assert var["allValue"] == ".*", var["name"]


def _datasource_refs(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from _datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _datasource_refs(item)


@pytest.mark.parametrize("name", UIDS)
def test_no_hard_coded_datasource(name: str) -> None:
    dash = dashboards()[name]
    refs = list(_datasource_refs(dash))
    assert refs and all(ref == DS for ref in refs)
    assert "liqmon-prometheus" not in (DASHBOARD_DIR / name).read_text()


@pytest.mark.parametrize("name", UIDS)
def test_every_panel_has_description_unit_and_datasource(name: str) -> None:
    for panel in panels(dashboards()[name]):
        if panel["type"] == "row":
            assert not panel.get("targets"), panel["title"]
            continue
        assert panel.get("description", "").strip(), panel["title"]
        assert panel["fieldConfig"]["defaults"].get("unit") in UNITS, panel["title"]
        assert panel["datasource"] == DS, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        assert all(t["datasource"] == DS for t in panel["targets"]), panel["title"]


@pytest.mark.parametrize("name", UIDS)
def test_every_query_has_the_job_matcher_and_rate_interval(name: str) -> None:
    for where, expr in dashboard_queries(dashboards()[name]):
        if where == "variable job":
            continue
        found = selectors(expr)
        assert found, where
        for metric, matchers in found:
            assert 'job=~"$job"' in matchers, f"{where}: {metric} lacks the job matcher"
        for function, window in rate_ranges(expr):
            assert window == "[$__rate_interval]", f"{where}: {function}{window}"


@pytest.mark.parametrize("name", UIDS)
def test_panel_ids_unique_and_layout_without_overlap(name: str) -> None:
    seen: set[int] = set()
    cells: set[tuple[int, int]] = set()
    for panel in panels(dashboards()[name]):
        assert panel["id"] not in seen
        seen.add(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not area & cells, f"{panel['title']} overlaps another panel"
        cells |= area


def test_dashboards_show_what_the_issue_asks_for() -> None:
    overview, health = dashboards().values()
    overview_text = " ".join(e for _, e in dashboard_queries(overview))
    for needle in ("sum by (venue) (rate(liqmon_liquidated_usd_total",
                   "sum by (position_side) (rate(liqmon_liquidated_usd_total",
                   "sum by (coin) (rate(liqmon_liquidated_usd_total",
                   "liqmon_largest_liquidation_usd", "liqmon_cascade_severity",
                   "liqmon_mark_price_usd", 'ALERTS{alertname=~"Liqmon.*"'):
        assert needle in overview_text, needle
    assert any(p["type"] == "state-timeline" and "liqmon_cascade" in p["targets"][0]["expr"]
               for p in panels(overview))
    assert any(p.get("repeat") == "coin" for p in panels(overview))
    health_metrics = {m for _, e in dashboard_queries(health) for m, _ in selectors(e)}
    assert health_metrics >= {
        "liqmon_feed_connected", "liqmon_frames_total",
        "liqmon_feed_last_frame_timestamp_seconds", "liqmon_feed_reconnects_total",
        "liqmon_frames_invalid_total", "liqmon_event_lag_seconds_bucket", "liqmon_store_up",
        "liqmon_store_buffered_events", "liqmon_notify_up", "liqmon_notify_failures_total",
    }


# --- names ----------------------------------------------------------------------------------
def test_every_referenced_metric_exists() -> None:
    known = exported_names() | recorded_names() | STANDARD_SERIES
    references = [(f"{name}: {where}", expr) for name, dash in dashboards().items()
                  for where, expr in dashboard_queries(dash)]
    references += [(r.get("alert") or r["record"], r["expr"])
                   for g in rule_groups() for r in g["rules"]]
    unknown = [(where, metric) for where, expr in references
               for metric, _ in selectors(expr) if metric not in known]
    assert unknown == []


def test_the_name_check_can_fail() -> None:
    known = exported_names()
    assert "liqmon_liquidated_usd_total" in known
    assert "liqmon_event_lag_seconds_bucket" in known
    assert "liqmon_liquidated_notional_usd_total" not in known


# --- rules ----------------------------------------------------------------------------------
def test_alert_rule_conventions() -> None:
    groups = rule_groups()
    assert {g["name"] for g in groups if any("alert" in r for r in g["rules"])} == ALERT_GROUPS
    names = {r["alert"] for r in alert_rules()}
    assert names >= REQUIRED_ALERTS
    for rule in alert_rules():
        name, annotations = rule["alert"], rule["annotations"]
        assert re.fullmatch(r"Liqmon(?:[A-Z][a-z]+)+", name), name
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        summary = annotations["summary"]
        assert "{{" not in summary and summary[0].isupper() and summary.endswith("."), name
        assert "{{" in annotations["description"], name
        assert annotations["runbook_url"] == RUNBOOK_BASE + name.lower(), name


def test_recording_rule_conventions() -> None:
    for name in recorded_names():
        level, metric, operation = name.split(":")
        assert re.fullmatch(r"[a-z_]+", level) and metric.startswith("liqmon_"), name
        assert not metric.endswith("_total"), name
        assert re.fullmatch(r"increase(1m|5m|15m|1h)", operation), name
    for group in rule_groups():
        for rule in group["rules"]:
            if "record" in rule:
                # Aggregating with `without` keeps job and any target labels.
                assert " by " not in rule["expr"], rule["record"]


def test_every_rule_selector_names_the_job() -> None:
    for group in rule_groups():
        for rule in group["rules"]:
            name = rule.get("alert") or rule["record"]
            for metric, matchers in selectors(rule["expr"]):
                assert 'job="liqmon"' in matchers, f"{name}: {metric}"


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    exercised: set[str] = set()
    for path in sorted((PROM_DIR / "tests").glob("*.yml")):
        for case in yaml.safe_load(path.read_text())["tests"]:
            exercised |= {t["expr"] for t in case.get("promql_expr_test", [])}
            for test in case.get("alert_rule_test", []):
                (firing if test["exp_alerts"] else quiet).add(test["alertname"])
                for alert in test["exp_alerts"]:
                    assert "severity" in alert["exp_labels"], test["alertname"]
                    assert set(alert["exp_annotations"]) == {"summary", "description",
                                                             "runbook_url"}
    names = {r["alert"] for r in alert_rules()}
    assert names - firing == set()
    assert names - quiet == ALWAYS_FIRING
    assert recorded_names() - exercised == set()


# --- runbook and provisioning -------------------------------------------------------------
def github_anchor(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_runbook_has_a_complete_section_per_alert() -> None:
    sections = re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)[1:]
    by_name = {s.splitlines()[0].strip(): s for s in sections}
    names = {r["alert"] for r in alert_rules()}
    assert set(by_name) == names
    for name, body in by_name.items():
        subheadings = re.findall(r"^### (.+)$", body, flags=re.MULTILINE)
        assert subheadings == ["Meaning", "Impact", "Diagnosis", "Mitigation"], name
    anchors = {github_anchor(h) for h in re.findall(r"^#+ (.+)$", RUNBOOK.read_text(),
                                                     flags=re.MULTILINE)}
    for rule in alert_rules():
        assert rule["annotations"]["runbook_url"].split("#")[1] in anchors


def test_grafana_provisioning_files() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "liqmon.yml").read_text())
    assert provider["apiVersion"] == 1
    [entry] = provider["providers"]
    assert entry["type"] == "file" and entry["options"]["path"]
    assert entry["disableDeletion"] is True and entry["allowUiUpdates"] is False
    datasources = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert datasources["apiVersion"] == 1
    [source] = datasources["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "liqmon-prometheus"


# --- against a real Prometheus ------------------------------------------------------------
@pytest.mark.parametrize(("name", "where", "expr"), QUERIES,
                         ids=[f"{n.removesuffix('.json')}:{w}" for n, w, _ in QUERIES])
def test_dashboard_query_returns_data(
    name: str, where: str, expr: str,
    synthetic_prometheus: PrometheusServer, synthetic_target: ExpositionServer,
) -> None:
    values = {"job": "liqmon", "instance": synthetic_target.address.replace(".", "\\\\."),
              "venue": "(binance-usdm|bybit)", "coin": "BTC", "__rate_interval": "1m",
              "__interval": "15s", "__range": "1h"}
    query = substitute(expr, values)
    result = synthetic_prometheus.wait_until(lambda: synthetic_prometheus.query(query),
                                             f"data for {query}")
    assert all(r["value"][1] not in ("NaN", "") for r in result), (query, result)


def test_query_substitution_rejects_unknown_variables() -> None:
    with pytest.raises(AssertionError, match="no test value"):
        substitute('rate(x{job=~"$job"}[$__nope])', {"job": "liqmon"})
    assert substitute('x{a=~"$job",b="${coin:regex}"}[$__range]',
                      {"job": "j", "coin": "c", "__range": "1h"}) == 'x{a=~"j",b="c"}[1h]'
