"""Feed-down and feed-up notices: a venue delivered no data for a while, or again.

The fast path of the feed-silent signal (``LiqmonFeedSilent`` is the durable one, on
Prometheus): the daemon's feed watch raises a :class:`FeedNotice` when a venue's feed goes
quiet and when it delivers again. MQTT keeps the latest per venue retained under
``<root>/v1/state/feed/<venue>`` (and sends each on ``<root>/v1/alerts/feed/<venue>``);
webhooks post it in their format. Its payload has the fields every format reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitor.alerts import SCHEMA, format_duration, rfc3339

FEED_ALERT_NAME = "LiqmonFeedSilent"


@dataclass(frozen=True, slots=True)
class FeedNotice:
    venue: str
    up: bool  # False: the feed went quiet; True: it delivers again
    at: float  # wall time of the change
    silent_seconds: float  # how long it had delivered nothing

    @property
    def id(self) -> str:
        return f"feed-{self.venue}-{'up' if self.up else 'down'}-{round(self.at * 1000)}"

    @property
    def state(self) -> str:
        return "up" if self.up else "down"

    def reason(self) -> str:
        quiet = format_duration(self.silent_seconds)
        if self.up:
            return f"{self.venue} delivers data again after {quiet} without"
        return f"{self.venue} has delivered no price or liquidation for {quiet}"

    def payload(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "id": self.id,
            "kind": "feed",
            "alertname": FEED_ALERT_NAME,
            "status": "resolved" if self.up else "firing",
            "severity": "warning",
            "venue": self.venue,
            "feed": self.state,
            "silent_seconds": round(self.silent_seconds, 1),
            "reason": self.reason(),
            "time": rfc3339(self.at),
            "time_ms": round(self.at * 1000),
        }
