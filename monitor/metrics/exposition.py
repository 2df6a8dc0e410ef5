"""The /metrics text: the registry's families, the per-event ones already rendered.

prometheus_client formats every sample of every scrape (label escaping, sorting,
``floatToGoString``): about 20 ms for the ~3,300 samples of 12 venues, most of them the
per-event families of ``monitor.metrics``. While :func:`collect_for_exposition` collects,
that collector gives them as text made from :class:`FamilyLines` (each label set's escaped
prefix built once, a line formatted again only when its value changed), and :func:`render`
joins it with prometheus_client's text of the other families. The bytes are those of
``generate_latest`` for the same registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from math import copysign
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

# Set while the endpoint collects for its own renderer: a collector that renders itself
# (the per-event one of monitor.metrics) then gives its text, not its families; any other
# reader of the registry still gets families.
_PRE_RENDER: ContextVar[bool] = ContextVar("liqmon_pre_render", default=False)


class PreRendered(Metric):
    """Families already in the text exposition format: :func:`render` copies the text."""

    def __init__(self, text: str) -> None:
        super().__init__("liqmon_pre_rendered", "", "unknown")
        self.text = text


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> list[Metric]:
        return self._families


def pre_rendering() -> bool:
    """Whether the caller collects for :func:`render` (a collector may then give text)."""
    return _PRE_RENDER.get()


def collect_for_exposition(registry: CollectorRegistry) -> list[Metric]:
    """The registry's families as :func:`render` takes them: the per-event metrics already
    as text. Reads live values, so it runs where they are updated (the event loop)."""
    token = _PRE_RENDER.set(True)
    try:
        return list(registry.collect())
    finally:
        _PRE_RENDER.reset(token)


def render(families: Sequence[Metric]) -> bytes:
    """The text exposition of ``families`` (as :func:`collect_for_exposition` returns them),
    byte for byte what ``generate_latest`` gives for the registry."""
    parts: list[bytes] = []
    rest: list[Metric] = []
    for family in families:
        if isinstance(family, PreRendered):
            if rest:
                parts.append(generate_latest(_Families(rest)))
                rest = []
            parts.append(family.text.encode())
        else:
            rest.append(family)
    if rest:
        parts.append(generate_latest(_Families(rest)))
    return b"".join(parts)


def _escape_value(value: str) -> str:
    # prometheus_client's escaping of label values.
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


def _label_text(pairs: Iterable[tuple[str, str]]) -> str:
    return ",".join(f'{name}="{_escape_value(value)}"' for name, value in sorted(pairs))


class FamilyLines:
    """The text of one per-event family: its header, and per label set the prefix of each
    sample line (escaped and sorted as prometheus_client writes them) with the last line
    made, reused while the value is the same."""

    def __init__(self, family: Metric, le: Sequence[str] = ()) -> None:
        name, kind = family.name, family.type
        self.sample = name + "_total" if kind == "counter" else name
        self.name = name
        self.labelnames: tuple[str, ...] = tuple(family._labelnames)  # type: ignore[attr-defined]
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        self._head = f"# HELP {self.sample} {doc}\n# TYPE {self.sample} {kind}\n"
        # label values → [prefix, value, line]
        self._cache: dict[tuple[str, ...], list[Any]] = {}
        # label values → prefixes of the bucket lines, then _count and _sum
        self._histograms: dict[tuple[str, ...], list[list[Any]]] = {}
        # A histogram's ``le`` labels, as prometheus_client writes its bounds.
        self._le = tuple(le)

    def head(self, out: list[str]) -> None:
        out.append(self._head)

    def _prefix(self, sample: str, labels: tuple[str, ...],
                extra: tuple[tuple[str, str], ...] = ()) -> str:
        pairs = (*zip(self.labelnames, labels, strict=True), *extra)
        return f"{sample}{{{_label_text(pairs)}}} "

    def line(self, labels: tuple[str, ...], value: float) -> str:
        cached = self._cache.get(labels)
        if cached is None:
            cached = self._cache[labels] = [self._prefix(self.sample, labels), None, ""]
        elif cached[1] == value and value != 0.0:
            return cached[2]  # type: ignore[no-any-return]
        return _cached_line(cached, value)

    def values(self, out: list[str], series: Mapping[Any, float]) -> None:
        """One line per entry of a dict from label values to a number."""
        line = self.line
        for labels, value in series.items():
            out.append(line(labels, value))

    def counts(self, out: list[str], series: Mapping[Any, list[float]]) -> None:
        """One line per entry of a dict from label values to a one-number list."""
        line = self.line
        for labels, (value,) in series.items():
            out.append(line(labels, value))

    def venue_values(self, out: list[str], series: Mapping[str, Any]) -> None:
        """One line per entry of a dict from a venue to a number or a one-number list."""
        line = self.line
        for venue, value in series.items():
            out.append(line((venue,), value[0] if value.__class__ is list else value))

    def histogram(self, out: list[str], labels: tuple[str, ...], buckets: Sequence[float]) -> None:
        cached = self._histograms.get(labels)
        if cached is None:
            prefixes = [self._prefix(self.name + "_bucket", labels, (("le", le),))
                        for le in self._le]
            prefixes.append(self._prefix(self.name + "_count", labels))
            prefixes.append(self._prefix(self.name + "_sum", labels))
            cached = self._histograms[labels] = [[prefix, None, ""] for prefix in prefixes]
        running = 0.0
        for entry, count in zip(cached[:-2], buckets, strict=False):
            running += count
            out.append(_cached_line(entry, running))
        out.append(_cached_line(cached[-2], running))
        out.append(_cached_line(cached[-1], buckets[-1]))


def _cached_line(cached: list[Any], value: float) -> str:
    # 0.0 == -0.0, but they are written differently: a zero is compared by its sign too.
    old = cached[1]
    if old is None or old != value or (value == 0.0 and copysign(1.0, value) != copysign(1.0, old)):
        cached[1] = value
        text = repr(value)
        # floatToGoString writes repr() unless the value is not finite or has more than six
        # digits before the point (then Go's exponent form): only those take the call.
        if not 0 <= text.find(".") <= 6:
            text = floatToGoString(value)  # type: ignore[no-untyped-call]
        cached[2] = cached[0] + text + "\n"
    return cached[2]  # type: ignore[no-any-return]
