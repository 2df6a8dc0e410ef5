"""Enough of PromQL's lexer to find the vector selectors and rate windows of an expression.

Used by the dashboard and rule lint (test_dashboards.py). Strings, matcher lists and ranges
are single tokens; an identifier followed by "(" is a function; the label lists after
by/without/on/ignoring/group_left/group_right are skipped; aggregations are keywords.
Prometheus itself parses every expression in the tests that evaluate them.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<braces>\{(?:"(?:\\.|[^"\\])*"|[^{}"])*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:ms|[smhdwy])*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punct>[()\[\],@]|[-+*/%^=!<>~]+)
  | (?P<space>\s+)
""", re.VERBOSE)
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = AGGREGATIONS | GROUPING | {"and", "or", "unless", "offset", "bool", "atan2",
                                      "inf", "nan"}
RATE_FUNCTIONS = {"rate", "irate", "increase"}


def tokens(expr: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot scan {expr[pos:pos + 30]!r} in {expr!r}")
        if match.lastgroup != "space":
            out.append((str(match.lastgroup), match.group()))
        pos = match.end()
    return out


def _closing(toks: list[tuple[str, str]], open_index: int) -> int:
    depth = 0
    for i in range(open_index, len(toks)):
        depth += {"(": 1, ")": -1}.get(toks[i][1], 0)
        if depth == 0:
            return i
    raise ValueError("unbalanced parentheses")


def selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, matcher list) of every vector selector in ``expr``."""
    toks, found, i = tokens(expr), [], 0
    while i < len(toks):
        kind, text = toks[i]
        following = toks[i + 1][1] if i + 1 < len(toks) else ""
        if kind == "ident" and text.lower() in KEYWORDS:
            if text in GROUPING and following == "(":
                i = _closing(toks, i + 1)
        elif kind == "ident" and following != "(":
            found.append((text, following if following.startswith("{") else ""))
        i += 1
    return found


def rate_ranges(expr: str) -> list[tuple[str, str]]:
    """(function, range) of every range inside a rate/irate/increase call."""
    toks, found = tokens(expr), []
    for i, (kind, text) in enumerate(toks):
        if kind == "ident" and text in RATE_FUNCTIONS and i + 1 < len(toks) \
                and toks[i + 1][1] == "(":
            end = _closing(toks, i + 1)
            found += [(text, t) for k, t in toks[i + 1:end] if k == "range"]
    return found
