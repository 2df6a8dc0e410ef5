"""Thread CPU of the daemon's event loop by task, for ``benchmarks/e2e.py --task-cpu``.

Loaded by the daemon's interpreter at start-up (``benchmarks/e2e.py`` puts this directory
on its ``PYTHONPATH`` and names the output file in ``LIQMON_BENCH_TASK_CPU``): every loop
callback is timed with ``time.thread_time`` and charged to its task's name, or to the
callback's name when it is not a task step (a transport's ``_read_ready`` is the
websockets library reading and framing). Written at exit, whole process life (start-up
included), largest first, with the number of loop steps (task wake-ups and yields). Not
part of the daemon: a measuring aid only.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import time
from asyncio import events
from typing import Any

_OUT = os.environ.get("LIQMON_BENCH_TASK_CPU")
_spent: dict[str, float] = {}
_calls: dict[str, int] = {}


def _install(path: str) -> None:
    original = events.Handle._run
    clock = time.thread_time

    def timed(self: Any) -> None:
        started = clock()
        try:
            original(self)
        finally:
            callback = self._callback
            owner = getattr(callback, "__self__", None)
            if isinstance(owner, asyncio.Task):
                key = "task " + owner.get_name()
            else:
                key = getattr(callback, "__qualname__", repr(callback))
            _spent[key] = _spent.get(key, 0.0) + (clock() - started)
            _calls[key] = _calls.get(key, 0) + 1

    events.Handle._run = timed  # type: ignore[method-assign]

    def dump() -> None:
        with open(path, "w") as out:
            out.write(f"{time.process_time():9.3f} process CPU s; CPU s, loop steps, task\n")
            for key, spent in sorted(_spent.items(), key=lambda kv: -kv[1])[:15]:
                out.write(f"{spent:9.3f} {_calls[key]:8d} {key[:70]}\n")

    atexit.register(dump)


if _OUT:
    _install(_OUT)
