"""SIGHUP: read the config again and apply what can change while running.

Applied at once, without losing any count (ingest, store, detector state and metrics live
on): the venue set (feeds started and stopped), a venue's own settings and the ``[feed]``
timings (that venue's feed, or every feed, is restarted: dedupe covers the overlap), the
detector's thresholds (``Detector.reconfigure`` keeps windows, baselines and cascades in
progress) and the log level. Kept until a restart, and said so in a WARNING: ``[store]``,
``[metrics]``, ``[record]``, ``[notify]``, ``feed.queue_size``, switching the detector on or
off, and the log format.

A config that does not load (bad TOML, a bad value, a missing file) is rejected with an
ERROR naming the key, the value and what was expected; the running config stays in force
and ``systemctl status`` shows the rejection until the next reload.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from monitor.config import Config, load_config
from monitor.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    """What a new config changes, decided without touching the running app (pure)."""

    config: Config  # the config to run with: the new one, minus what needs a restart
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    detector_changed: bool = False
    needs_restart: tuple[str, ...] = field(default=())


def plan_reload(old: Config, new: Config) -> ReloadPlan:
    needs_restart = []
    keep: dict[str, object] = {}
    for section in ("store", "metrics", "record", "notify"):
        if getattr(old, section) != getattr(new, section):
            needs_restart.append(f"[{section}]")
            keep[section] = getattr(old, section)
    feed = new.feed
    if feed.queue_size != old.feed.queue_size:
        needs_restart.append("feed.queue_size")
        feed = dataclasses.replace(feed, queue_size=old.feed.queue_size)
    detector = new.detector
    if detector.enabled != old.detector.enabled:
        needs_restart.append("detector.enabled")
        detector = old.detector
    if new.logging.format != old.logging.format:
        needs_restart.append("logging.format")
    config = dataclasses.replace(new, feed=feed, detector=detector,
                                 logging=dataclasses.replace(new.logging,
                                                             format=old.logging.format),
                                 **keep)  # type: ignore[arg-type]
    before, after = old.enabled_venues(), config.enabled_venues()
    feed_changed = old.feed != config.feed
    restarted = tuple(v for v in after
                      if v in before and (feed_changed or before[v] != after[v]))
    return ReloadPlan(
        config=config,
        added=tuple(v for v in after if v not in before),
        removed=tuple(v for v in before if v not in after),
        restarted=restarted,
        detector_changed=detector.enabled and detector != old.detector,
        needs_restart=tuple(needs_restart),
    )


class Reloadable(Protocol):
    """The running daemon as the reloader sees it."""

    @property
    def config(self) -> Config: ...

    def reload_refusal(self) -> str | None:
        """Why a reload cannot run now ("stopping", "still starting"), or None."""
        ...

    async def apply_reload(self, plan: ReloadPlan) -> None:
        """Run with ``plan.config`` from now on: feeds, detector thresholds, metrics."""
        ...


class ReloadNotes(Protocol):
    """Where a reload is announced (systemd's RELOADING=1, then READY=1 with a note)."""

    def reloading(self) -> None: ...

    def reloaded(self, note: str | None) -> None: ...


class Reloader:
    """Reloads ``path`` into a running daemon, one reload at a time."""

    def __init__(
        self,
        app: Reloadable,
        notes: ReloadNotes,
        path: str | None,
        *,
        env: Mapping[str, str] | None = None,
        log_level_override: str | None = None,
    ) -> None:
        self._app = app
        self._notes = notes
        self._path = path
        self._env = env
        self._log_level_override = log_level_override
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()
        self.reloads = 0

    def schedule(self) -> None:
        """The SIGHUP handler: start a reload (queued behind one in progress)."""
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self) -> bool:
        """True when the new config was applied, False when it was rejected."""
        async with self._lock:
            app, notes = self._app, self._notes
            refusal = app.reload_refusal()
            if refusal is not None:
                log.warning("reload ignored: the daemon is %s", refusal)
                return False
            notes.reloading()
            source = self._path or "embedded defaults"
            log.info("reloading the configuration from %s", source)
            try:
                new = load_config(self._path, env=os.environ if self._env is None else self._env)
            except (ConfigError, OSError) as exc:
                log.error("reload rejected, keeping the running configuration: %s: %s",
                          source, exc)
                notes.reloaded(f"last reload rejected: {exc}")
                return False
            plan = plan_reload(app.config, new)
            try:
                await app.apply_reload(plan)
            except Exception as exc:
                # Only found while building a feed (a node feed's path, say): what was applied
                # stays applied; systemd must still hear READY=1 or it waits in "reloading".
                log.exception("reload applied in part, then failed: %s", exc)
                notes.reloaded(f"last reload failed in part: {exc}")
                return False
            self._report(plan)
            self.reloads += 1
            note = ("reload kept until restart: " + ", ".join(plan.needs_restart)
                    if plan.needs_restart else None)
            notes.reloaded(note)
            return True

    def _report(self, plan: ReloadPlan) -> None:
        level = self._log_level_override or plan.config.logging.level
        logging.getLogger().setLevel(level)
        log.info("configuration reloaded: venues added %s, removed %s, restarted %s; "
                 "detector thresholds %s; log level %s",
                 _names(plan.added), _names(plan.removed), _names(plan.restarted),
                 "updated" if plan.detector_changed else "unchanged", level)
        if plan.needs_restart:
            log.warning("reload: %s changed but apply only after a restart; running with "
                        "the previous values", ", ".join(plan.needs_restart))


def _names(venues: tuple[str, ...]) -> str:
    return ", ".join(venues) if venues else "none"
