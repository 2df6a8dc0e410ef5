"""Side commands that read the venues themselves (``record``, ``tail``) without disturbing a
daemon running on the same host.

They run the same App as ``liqmon run`` (one supervisor, one ingest), but with nothing that is
shared with the live daemon: the embedded memory store instead of its Redis, no detector (no
alerts), no notification channels (no MQTT client id to clash, no retained status), no
recorder of the config's own, and no metrics port unless one is asked for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path

from monitor.app import App
from monitor.config import Config
from monitor.events import Liquidation
from monitor.feed.ports import FrameTap
from monitor.feed.recorder import Recorder
from monitor.notify.config import NotifyConfig
from monitor.signals import exit_code, signal_handlers
from monitor.store.config import StoreConfig


def side_config(config: Config, metrics_port: int | None) -> Config:
    """``config`` with everything that reaches beyond this process switched off."""
    metrics = (dataclasses.replace(config.metrics, enabled=False) if metrics_port is None
               else dataclasses.replace(config.metrics, enabled=True, port=metrics_port))
    return dataclasses.replace(
        config,
        store=StoreConfig(backend="memory"),
        detector=dataclasses.replace(config.detector, enabled=False),
        notify=NotifyConfig(),
        record=dataclasses.replace(config.record, enabled=False),
        metrics=metrics,
    )


async def run_side_app(
    config: Config,
    metrics_port: int | None,
    *,
    tap: FrameTap | None = None,
    on_liquidation: Callable[[Liquidation], None] | None = None,
    duration: float | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run the venues' feeds until Ctrl-C, ``duration`` seconds, or ``stop`` is set."""
    app = App(side_config(config, metrics_port), tap=tap)
    if on_liquidation is not None:
        app.on_liquidation.append(on_liquidation)
    stop = stop or asyncio.Event()
    if duration is not None:
        asyncio.get_running_loop().call_later(duration, stop.set)
    with signal_handlers(stop) as received:
        return exit_code(await app.run(stop), received)


async def run_record(
    config: Config, out: Path, duration: float | None, metrics_port: int | None
) -> int:
    """``liqmon record``: every raw frame of the enabled venues into one file."""
    recorder = Recorder(path=out, gzip_files=out.suffix == ".gz")
    try:
        return await run_side_app(config, metrics_port, tap=recorder, duration=duration)
    finally:
        recorder.close()
        print(f"{recorder.frames_written} frames recorded to {out}", file=sys.stderr)
