"""The shipped Grafana dashboards, loaded, and every PromQL query in them with its place.

:data:`QUERIES` lists (file, where, expression) for each panel target, annotation and
variable; :func:`substitute` fills in Grafana's template variables so that Prometheus can
evaluate an expression.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from tests.support.paths import REPO

DASHBOARD_DIR = REPO / "grafana" / "dashboards"
UIDS = {"liqmon-overview.json": "liqmon-overview",
        "liqmon-feed-health.json": "liqmon-feed-health"}


def dashboards() -> dict[str, dict[str, Any]]:
    """Each shipped dashboard by file name, as parsed JSON."""
    return {name: json.loads((DASHBOARD_DIR / name).read_text()) for name in UIDS}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every target, annotation and variable query."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"{panel['title']}/{target['refId']}", target["expr"]
    for annotation in dashboard["annotations"]["list"]:
        yield f"annotation {annotation['name']}", annotation["expr"]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", var["query"])
            assert match, f"variable {var['name']}: not label_values(selector, label)"
            yield f"variable {var['name']}", f"count by ({match[2]}) ({match[1]})"


QUERIES = [(name, where, expr) for name, dash in dashboards().items()
           for where, expr in dashboard_queries(dash)]


def substitute(expr: str, values: dict[str, str]) -> str:
    """``expr`` with each $var, ${var[:format]} and [[var]] replaced from ``values``."""
    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[3]
        if name not in values:
            raise AssertionError(f"no test value for variable {name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", replace, expr)
