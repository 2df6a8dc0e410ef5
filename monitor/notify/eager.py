"""Run a coroutine's first step now, in the caller's step, and the rest when awaited.

Python 3.11 has no eager tasks: ``create_task`` runs a coroutine's first step on the next
turn of the event loop, behind everything already scheduled. Under load that turn carries a
reader slice per feed and an ingest slice, so a publish started as a task reaches the socket
milliseconds late. :class:`Started` runs the coroutine up to its first suspension at once
(for a publish: the packet built and written), and resumes it, like ``yield from``, in
whichever task awaits it later.

Only for coroutines whose first step does not depend on the task it runs in (no
``asyncio.timeout``, no ``current_task``): the first step runs in the caller's task.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Started(Generic[T]):
    """``coro`` run up to its first suspension; await this (once) for the rest."""

    __slots__ = ("_awaited", "_coro", "_error", "_finished", "_next", "_result")

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._next: Any = None
        self._result: Any = None
        self._error: Exception | None = None
        self._finished = False
        self._awaited = False
        try:
            self._next = coro.send(None)
        except StopIteration as stop:
            self._finished, self._result = True, stop.value
        except Exception as exc:
            # Raised where the caller awaits, as if the coroutine had run in its task.
            self._finished, self._error = True, exc

    @property
    def finished(self) -> bool:
        """Whether the coroutine already returned or raised in its first step."""
        return self._finished

    def close(self) -> None:
        """Abandon it (never awaited): close the coroutine where it stopped."""
        if not self._finished and not self._awaited:
            self._awaited = True
            self._coro.close()

    def __await__(self) -> Generator[Any, Any, T]:
        if self._awaited:
            raise RuntimeError("a Started coroutine can be awaited only once")
        self._awaited = True
        if self._finished:
            if self._error is not None:
                raise self._error
            result: T = self._result
            return result
        coro, out = self._coro, self._next
        self._next = None
        while True:
            try:
                sent = yield out
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # cancellation included: the coroutine handles it
                try:
                    out = coro.throw(exc)
                except StopIteration as stop:
                    value: T = stop.value
                    return value
            else:
                try:
                    out = coro.send(sent)
                except StopIteration as stop:
                    value = stop.value
                    return value
