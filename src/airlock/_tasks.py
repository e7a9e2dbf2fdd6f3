"""Every asyncio task airlock starts is named and kept until it ends.

The event loop holds only a weak reference to a task, so a task nobody keeps can be
garbage-collected mid-flight; and an exception in a task nobody awaits is reported late or
never. :func:`create_task` keeps each task in a set until it is done and hands its exception,
if any, to ``on_error`` (by default the loop's exception handler). ruff's banned-api rule
(``pyproject.toml``) points every other ``asyncio.create_task`` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_KEPT: set[asyncio.Task[Any]] = set()


def create_task(
    coro: Coroutine[Any, Any, T],
    *,
    name: str,
    keep: set[asyncio.Task[Any]] | None = None,
    on_error: Callable[[BaseException], None] | None = None,
) -> asyncio.Task[T]:
    """Start ``coro`` as a task called ``name``, kept in ``keep`` (a module set by default).

    Args:
        coro: the coroutine to run.
        name: what the task is, for debugging and for the loop's error reports.
        keep: the set that holds the task until it ends (e.g. a server's open connections).
        on_error: called with the task's exception when it fails (not when it is cancelled).
    """
    task = asyncio.get_running_loop().create_task(coro, name=name)
    kept = _KEPT if keep is None else keep
    kept.add(task)

    def done(finished: asyncio.Task[Any]) -> None:
        kept.discard(finished)
        if finished.cancelled():
            return
        error = finished.exception()
        if error is None:
            return
        if on_error is not None:
            on_error(error)
        else:
            finished.get_loop().call_exception_handler(
                {"message": f"task {name} failed", "exception": error, "task": finished}
            )

    task.add_done_callback(done)
    return task
