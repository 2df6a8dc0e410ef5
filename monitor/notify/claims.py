"""Which store keys a daemon claims before it sends a transition, so that redundant daemons
sharing one Redis send each transition once per channel.

A whale alert's id comes from the liquidation's event id, the same in every daemon: the
claim is the id. A cascade transition claims two things, and is sent only when it wins all:

- its id, scope, status and severity (``resolved``: no severity, as two detectors may have
  escalated differently);
- what it is, whatever the id: channel, scope, position side, status and severity of a
  cascade that started at ``started_at`` give or take ``window_seconds``. A cascade's id comes
  from the second its detector fired, and two detectors evaluating on their own clocks can
  fire the same cascade a second or more apart, with different ids; later, they can decide
  it escalated or cooled down minutes apart. The start is what they agree on best, so every
  transition of a cascade is keyed by it. The time axis is cut in buckets of
  ``2 * window_seconds``; a transition claims every bucket that ``[started_at - window,
  started_at + window]`` touches (one or two). Starts less than ``window`` apart share a
  bucket; starts four windows or more apart never do, and two cascades of one scope and side
  start at least ``min_hold + cooling`` apart (12 minutes by default).

Every daemon claims its keys in one global (sorted) order and stops at the first it loses
(SET NX, never released): of two daemons whose keys overlap, exactly one wins all of its.

Pure: no I/O.
"""

from __future__ import annotations

import math

from monitor.alerts import AlertState, CascadeAlert, WhaleAlert
from monitor.notify.feed_notice import FeedNotice


def claim_keys(
    alert: CascadeAlert | WhaleAlert | FeedNotice, channel: str, window_seconds: float
) -> list[str]:
    """The keys to claim, in the order to claim them; all must be won to send."""
    if isinstance(alert, WhaleAlert | FeedNotice):
        return [f"notify:{channel}:{alert.id}"]
    status = alert.status.value
    severity = "" if alert.status is AlertState.RESOLVED else alert.severity.value
    keys = [f"notify:{channel}:{alert.id}:{alert.scope}:{status}:{severity}"]
    if window_seconds > 0:
        identity = (
            f"notify:{channel}:{alert.scope}:{alert.position_side.value}:{status}:{severity}"
        )
        width = 2.0 * window_seconds
        first = math.floor((alert.started_at - window_seconds) / width)
        last = math.floor((alert.started_at + window_seconds) / width)
        keys.extend(f"{identity}:{bucket}" for bucket in range(first, last + 1))
    return sorted(keys)
