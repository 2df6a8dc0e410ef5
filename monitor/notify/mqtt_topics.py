"""The MQTT topic tree, and the messages an alert becomes on it.

Topics, under a configurable root (default ``liqmon``), lower case, one ``/`` level each::

    <root>/v1/status                                    online | offline, retained; the last will
    <root>/v1/alerts/cascade/<scope>/<position_side>    every cascade transition, QoS 1
    <root>/v1/state/cascade/<scope>/<position_side>     the cascade's current state, retained,
                                                        cleared (empty retained) when it resolves
    <root>/v1/alerts/whale/<coin>                       whale alerts, QoS 1
    <root>/v1/liquidations/<venue>/<coin>               optional, liquidations above a size, QoS 0

``<scope>`` is ``global``, ``coin/<coin>`` or ``venue/<venue>`` (the detector's ``coin:ETH``
with the colon as a topic level), so ``.../cascade/coin/#`` follows every coin. The position
side is a level of its own because a scope can have a long and a short cascade at once, each
with its own state. A cascade that goes market-wide keeps its id and continues under
``global`` (its payload's ``promoted_from`` names the scope it started in); the state of that
first scope is cleared then. Alert payloads are ``alerts.alert_payload`` as JSON;
liquidations are the normalised event's JSON.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from monitor.alerts import CascadeAlert, WhaleAlert, alert_payload
from monitor.notify.feed_notice import FeedNotice

# notify-test's sample alerts use this scope: they get an event but never a retained state.
TEST_SCOPE = "test"
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


def segment(text: str) -> str:
    """One topic level: lower case, nothing but ``[a-z0-9._-]`` (no ``+``, ``#``, ``/``)."""
    return _UNSAFE.sub("_", text.lower()) or "_"


def scope_path(scope: str) -> str:
    """``global`` → ``global``; ``coin:ETH`` → ``coin/eth``; ``venue:bybit`` → ``venue/bybit``."""
    kind, _, name = scope.partition(":")
    return f"{segment(kind)}/{segment(name)}" if name else segment(kind)


@dataclass(frozen=True, slots=True)
class Topics:
    root: str

    @property
    def base(self) -> str:
        return f"{self.root.strip('/')}/v1"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    def cascade(self, scope: str, side: str) -> str:
        return f"{self.base}/alerts/cascade/{scope_path(scope)}/{segment(side)}"

    def state(self, scope: str, side: str) -> str:
        return f"{self.base}/state/cascade/{scope_path(scope)}/{segment(side)}"

    def feed(self, venue: str) -> str:
        return f"{self.base}/alerts/feed/{segment(venue)}"

    def feed_state(self, venue: str) -> str:
        return f"{self.base}/state/feed/{segment(venue)}"

    def whale(self, coin: str) -> str:
        return f"{self.base}/alerts/whale/{segment(coin)}"

    def liquidation(self, venue: str, coin: str) -> str:
        return f"{self.base}/liquidations/{segment(venue)}/{segment(coin)}"


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One PUBLISH. ``state`` messages take their payload from the channel's current state
    when they are sent, so a late retry never puts back a state that has moved on."""

    topic: str
    payload: bytes = b""
    alert_id: str = ""
    retain: bool = False
    state: bool = False


def messages(topics: Topics, alert: CascadeAlert | WhaleAlert | FeedNotice
             ) -> Sequence[MqttMessage]:
    """What ``alert`` is published as: its event, and the retained states it changes."""
    if isinstance(alert, FeedNotice):
        return [MqttMessage(topics.feed(alert.venue), orjson.dumps(alert.payload()),
                            alert.id),
                MqttMessage(topics.feed_state(alert.venue), alert_id=alert.id,
                            retain=True, state=True)]
    payload = orjson.dumps(alert_payload(alert))
    if isinstance(alert, WhaleAlert):
        return [MqttMessage(topics.whale(alert.liquidation.coin), payload, alert.id)]
    side = alert.position_side.value
    event = MqttMessage(topics.cascade(alert.scope, side), payload, alert.id)
    if alert.scope == TEST_SCOPE:
        return [event]
    state = MqttMessage(topics.state(alert.scope, side), alert_id=alert.id,
                        retain=True, state=True)
    if alert.promoted_from is None:
        return [event, state]
    # The scope it started in no longer has a cascade of its own: clear its state.
    old = MqttMessage(topics.state(alert.promoted_from, side), alert_id=alert.id,
                      retain=True, state=True)
    return [event, state, old]
