"""Faults the simulator can inject, per connection, into chosen venues (or all of them).

``Faults.parse`` reads a CLI-friendly string of comma-separated items:

========================  =================================================================
``drop=5``                close each connection abruptly 5 s (wall time) after it opened
``silent``                answer subscriptions and pings, then send no data at all (the
                          retired Binance route); ``silent=false`` turns it off
``stall_after=10``        after 10 s of a connection, stop sending anything ...
``stall=30``              ... for 30 s, keeping the socket open (no ``stall``: for good)
``malformed=0.01``        after 1% of data frames, also send a malformed frame (truncated
                          JSON, or JSON of no known shape); never counted as a liquidation
``duplicate=0.05``        send 5% of data frames twice; the liquidations count once
``reject``                refuse every subscription with the venue's own error frame
``venues=bybit+okx``      apply to these venue ids only (``+`` or ``|`` between ids);
                          default: every venue
``seed=7``                seed of the random choices (malformed, duplicate)
========================  =================================================================

Several rule sets, each for its own venues, are separated by ``;``:
``"silent,venues=binance-usdm;drop=5,venues=bybit"`` (see :func:`parse_faults`). For a venue,
the first rule set that names it (or names no venue) applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Faults:
    drop_every_seconds: float | None = None
    silent_after_ack: bool = False
    stall_after_seconds: float | None = None
    stall_seconds: float | None = None  # None with stall_after_seconds: stalled for good
    malformed_ratio: float = 0.0
    duplicate_ratio: float = 0.0
    reject_subscription: bool = False
    venues: frozenset[str] | None = None  # None: every venue
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("malformed_ratio", "duplicate_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("drop_every_seconds", "stall_after_seconds", "stall_seconds"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")

    def applies_to(self, venue: str) -> bool:
        return self.venues is None or venue in self.venues

    @property
    def active(self) -> bool:
        """Whether any fault is switched on."""
        return any(
            getattr(self, f.name) not in (None, False, 0, 0.0)
            for f in fields(self)
            if f.name not in ("venues", "seed")
        )

    def stalled(self, age_seconds: float) -> bool:
        """Whether a connection of this age is inside its stall."""
        if self.stall_after_seconds is None or age_seconds < self.stall_after_seconds:
            return False
        return (
            self.stall_seconds is None
            or age_seconds < self.stall_after_seconds + self.stall_seconds
        )

    @classmethod
    def parse(cls, text: str) -> Faults:
        """One rule set from ``"drop=5,malformed=0.01,venues=bybit"`` (see the module doc)."""
        values: dict[str, object] = {}
        venues: set[str] = set()
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            key, has_value, value = (part.strip() for part in item.partition("="))
            if key not in _KEYS:
                raise ValueError(f"unknown fault {key!r}; expected one of {', '.join(_KEYS)}")
            field_name, kind = _KEYS[key]
            if key == "venues":
                if not value:
                    raise ValueError("venues= needs at least one venue id")
                venues.update(v for v in value.replace("|", "+").split("+") if v)
                continue
            if kind is bool:
                values[field_name] = _parse_bool(key, value) if has_value else True
            elif not has_value or not value:
                raise ValueError(f"fault {key!r} needs a value, as in {key}=5")
            else:
                values[field_name] = _parse_number(key, value, kind)
        return cls(venues=frozenset(venues) or None, **values)  # type: ignore[arg-type]


_KEYS: dict[str, tuple[str, type]] = {
    "drop": ("drop_every_seconds", float),
    "silent": ("silent_after_ack", bool),
    "stall_after": ("stall_after_seconds", float),
    "stall": ("stall_seconds", float),
    "malformed": ("malformed_ratio", float),
    "duplicate": ("duplicate_ratio", float),
    "reject": ("reject_subscription", bool),
    "venues": ("venues", frozenset),
    "seed": ("seed", int),
}


def _parse_bool(key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"fault {key!r}: expected true or false, got {value!r}")


def _parse_number(key: str, value: str, kind: type) -> float | int:
    try:
        return int(value) if kind is int else float(value)
    except ValueError:
        raise ValueError(f"fault {key!r}: expected a number, got {value!r}") from None


def parse_faults(text: str) -> tuple[Faults, ...]:
    """Rule sets separated by ``;`` (each as :meth:`Faults.parse`)."""
    return tuple(Faults.parse(part) for part in text.split(";") if part.strip())


def faults_for(venue: str, rules: Faults | Sequence[Faults] | None) -> Faults:
    """The rule set that applies to ``venue`` (none switched on if no rule names it)."""
    if rules is None:
        return NO_FAULTS
    for rule in (rules,) if isinstance(rules, Faults) else rules:
        if rule.applies_to(venue):
            return rule
    return NO_FAULTS


NO_FAULTS = Faults()
