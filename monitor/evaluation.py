"""The detector's evaluation loop: every interval, the cascades it raises, escalates or ends.

Each alert goes to the app's alert path (log line, notifier, live page) and into the
store's cascade history; the cascade metrics follow the detector's states. Largest
liquidations past their window leave the metrics on the same beat, detector or not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from monitor.alerts import CascadeAlert, WhaleAlert, alert_payload
from monitor.clock import Clock
from monitor.detector.engine import Detector
from monitor.errors import StoreError
from monitor.metrics import Metrics
from monitor.store.base import Store

# The app's logger: this loop ran in the app, and its lines were always logged as the app's.
log = logging.getLogger("monitor.app")


async def evaluate_loop(
    detector: Detector | None,
    metrics: Metrics,
    clock: Clock,
    interval: float,
    alert: Callable[[CascadeAlert | WhaleAlert], None],
    store: Store | None,
) -> None:
    """Run until cancelled, every ``interval`` seconds."""
    while True:
        await asyncio.sleep(interval)
        now = clock.wall()
        metrics.expire_largest(int(now * 1000))
        if detector is None:
            continue
        for cascade in detector.evaluate(now):
            if cascade.status.value == "firing":
                metrics.cascade_started(cascade.scope, cascade.position_side.value)
            alert(cascade)
            if store is not None:
                try:
                    await store.record_cascade(alert_payload(cascade))
                except StoreError as exc:
                    log.warning("cannot keep cascade history in the store: %s", exc)
        metrics.cascade_state(
            (s.scope, s.position_side.value, s.severity.value if s.severity else None)
            for s in detector.states()
        )
