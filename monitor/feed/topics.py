"""Which topics a live connection holds, and the requests that change them (no I/O).

A venue that can (un)subscribe topics on a live connection (``ConnectionPlan.topics`` set,
``Dialect.topic_requests`` implemented) is never reconnected for a listing, a delisting or a
refused topic: :class:`LiveTopics` turns the difference between what the plan wants and
what the connection holds into requests, and a refusal into "drop this topic, resubscribe
the rest of its request". Refused topics are shared by every connection of a venue and
forgotten at the next instrument refresh, when they are tried again.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.venues.dialect import Dialect, Rejection, TopicRequest


class LiveTopics:
    """The topics of one connection: wanted (plan), held (requested on this socket)."""

    def __init__(self, dialect: Dialect, name: str, refused: set[str]) -> None:
        self._dialect = dialect
        self._name = name
        self.refused = refused  # shared by the venue's connections
        self.held: set[str] = set()
        self._requests: dict[str, tuple[str, ...]] = {}
        self._count = 0

    def start(self, wanted: Iterable[str]) -> list[TopicRequest]:
        """A fresh connection: subscribe every wanted topic that was not refused."""
        self.held.clear()
        self._requests.clear()
        return self._subscribe([t for t in wanted if t not in self.refused])

    def sync(self, wanted: Iterable[str]) -> list[TopicRequest]:
        """Requests that bring the held topics to ``wanted`` (unsubscribe first)."""
        want = [t for t in dict.fromkeys(wanted) if t not in self.refused]
        gone = sorted(self.held.difference(want))
        self.held.difference_update(gone)
        requests = self._requests_for("unsubscribe", gone) if gone else []
        return requests + self._subscribe([t for t in want if t not in self.held])

    def refuse(self, rejection: Rejection) -> list[TopicRequest]:
        """Drop a refused topic; when the venue refused its whole request, resubscribe the
        rest of that request (again until one is accepted: the venue names one at a time)."""
        topic = rejection.topic
        if topic is None:
            return []
        self.refused.add(topic)
        self.held.discard(topic)
        if rejection.request is None:
            return []
        rest = [t for t in self._requests.pop(rejection.request, ()) if t != topic]
        self.held.difference_update(rest)
        return self._subscribe([t for t in rest if t not in self.refused])

    def _subscribe(self, topics: list[str]) -> list[TopicRequest]:
        if not topics:
            return []
        requests = self._requests_for("subscribe", topics)
        for request in requests:
            if request.request_id:
                self._requests[request.request_id] = request.topics
        self.held.update(topics)
        return requests

    def _requests_for(self, op: str, topics: list[str]) -> list[TopicRequest]:
        self._count += 1
        return self._dialect.topic_requests(op, topics, f"{self._name}-{self._count}")
