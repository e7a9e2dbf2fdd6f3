"""Working through many items in two processes at once: this one and a forked child.

Theory of operation. Reading or removing a session is mostly system calls and a little
parsing, so on a machine with two cores a second process nearly halves a run over tens of
thousands. :func:`in_two` cuts the items into chunks, writes the chunks' numbers into a pipe
(the *queue*) and closes its writing end, then forks. Each process takes the next number from
the queue, works that chunk, and takes another until the queue is empty. A pipe holding only
whole 4-byte numbers gives each 4-byte read exactly one of them (reads of a pipe do not
interleave), so no chunk is taken twice; and neither process waits while work is left: one
slowed down (by the copy-on-write faults that follow a fork, or by another program on its
core) simply takes fewer chunks.

The child inherits everything (nothing is sent to it). It sends back the results of its
chunks through a second pipe (:mod:`marshal`), its progress through a third (a byte an item),
and leaves with ``os._exit``. This process works every chunk it did not get back: when the
fork fails, or the child fails in any way (dies part way, sends something malformed), the
rest is done here, so the work must be repeatable. When this process fails (an exception, an
interrupt), the child is stopped and reaped before the error goes on.

No fork while another thread runs (a terminal's progress bar refreshes from one): the child
would hold a copy of this thread only.
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")
R = TypeVar("R")

CHUNKS_AT_MOST = 1024
"""The queue holds at most this many chunk numbers: 4 KiB, which one write puts in any pipe
at once (a pipe holds at least a page)."""
CHUNK_AT_LEAST = 32
"""Items a chunk holds at least: taking a chunk costs a system call."""
_NUMBER_BYTES = 4
"""Bytes of one chunk number in the queue."""


def in_two(
    items: Sequence[T],
    work: Callable[[T], R],
    *,
    parallel_from: int,
    send: Callable[[R], Any] | None = None,
    receive: Callable[[Any], R] | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[R]:
    """``work(item)`` for every item, in their order; two processes share a long list.

    Args:
        items: what to work through.
        work: what to do with one item; must be repeatable (see the module).
        parallel_from: fewer items than this are worked through here alone.
        send: turns a result of the child's into values :mod:`marshal` carries (default:
            the result itself).
        receive: turns them back; raises ``ValueError`` or ``TypeError`` on values of the
            wrong shape (this process then does that work itself).
        progress: called with a number of items done, as they are done; they add up to
            ``len(items)``.
    """
    if len(items) < parallel_from or not _may_fork():
        return _serially(items, work, progress)
    size = max(CHUNK_AT_LEAST, -(-len(items) // CHUNKS_AT_MOST))
    chunks = [items[start : start + size] for start in range(0, len(items), size)]
    queue, queue_in = os.pipe()
    numbers = b"".join(n.to_bytes(_NUMBER_BYTES, "little") for n in range(len(chunks)))
    os.set_blocking(queue_in, False)  # a pipe smaller than that: no waiting for a reader
    try:
        written = os.write(queue_in, numbers)
    except BlockingIOError:
        written = 0
    os.close(queue_in)
    if written != len(numbers):
        os.close(queue)
        return _serially(items, work, progress)
    results, results_in = os.pipe()
    ticks, ticks_in = os.pipe() if progress else (-1, -1)
    try:
        pid = os.fork()
    except OSError:
        _close(queue, results, results_in, ticks, ticks_in)
        return _serially(items, work, progress)
    if pid == 0:
        _close(results, ticks)
        _child(chunks, work, send, queue, results_in, ticks_in)
    _close(results_in, ticks_in)
    done: list[list[R] | None] = [None] * len(chunks)
    told = 0  # items reported to ``progress``, ours and the child's
    try:
        if ticks >= 0:
            os.set_blocking(ticks, False)
        for number in _taken(queue, len(chunks)):
            done[number] = [work(item) for item in chunks[number]]
            if progress:
                progress(len(chunks[number]))
                told += len(chunks[number]) + _forward(ticks, progress)
        if progress:
            os.set_blocking(ticks, True)
            while count := _forward(ticks, progress):
                told += count
        with os.fdopen(results, "rb", closefd=False) as pipe:
            data = pipe.read()
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    finally:
        _close(queue, results, ticks)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) == 0:
        _take_back(data, chunks, done, receive)
    out: list[R] = []
    for number, chunk in enumerate(chunks):
        got = done[number]
        out.extend([work(item) for item in chunk] if got is None else got)
    if progress and told < len(items):
        progress(len(items) - told)
    return out


def _serially(
    items: Sequence[T], work: Callable[[T], R], progress: Callable[[int], None] | None
) -> list[R]:
    if progress is None:
        return [work(item) for item in items]
    out = []
    for item in items:
        out.append(work(item))
        progress(1)
    return out


def _may_fork() -> bool:
    if not hasattr(os, "fork") or (os.cpu_count() or 1) < 2:
        return False
    threading = sys.modules.get("threading")  # not imported: no other thread was started
    return threading is None or threading.active_count() == 1


def _taken(queue: int, count: int) -> Iterator[int]:
    """The numbers of the chunks this process takes from the queue, until it is empty."""
    while True:
        raw = os.read(queue, _NUMBER_BYTES)
        if len(raw) != _NUMBER_BYTES:
            return  # the end (b""); anything else: stop taking, the rest is done in the end
        number = int.from_bytes(raw, "little")
        if number >= count:
            return
        yield number


def _child(
    chunks: list[Sequence[T]],
    work: Callable[[T], R],
    send: Callable[[R], Any] | None,
    queue: int,
    results: int,
    ticks: int,
) -> NoReturn:
    """Work the chunks taken from the queue, send their results, leave without clean-up."""
    code = 1
    try:
        done = []
        for number in _taken(queue, len(chunks)):
            values = [work(item) for item in chunks[number]]
            done.append((number, values if send is None else [send(value) for value in values]))
            if ticks >= 0:
                os.write(ticks, b"." * len(values))
        if ticks >= 0:
            os.close(ticks)  # before the results: the parent reads this pipe to its end first
        with os.fdopen(results, "wb") as pipe:
            pipe.write(marshal.dumps(done))
        code = 0
    finally:
        os._exit(code)


def _take_back(
    data: bytes,
    chunks: list[Sequence[T]],
    done: list[list[R] | None],
    receive: Callable[[Any], R] | None,
) -> None:
    """Fill ``done`` with the child's results; nothing at all when any of them is malformed."""
    try:
        sent = marshal.loads(data)  # noqa: S302 - our own child's
        theirs = {}
        for number, values in sent:
            if not 0 <= number < len(chunks) or done[number] is not None or number in theirs:
                raise ValueError(f"chunk {number} is not the child's")
            if len(values) != len(chunks[number]):
                raise ValueError(f"chunk {number}: {len(values)} results")
            theirs[number] = values if receive is None else [receive(value) for value in values]
    except (EOFError, ValueError, TypeError):
        return
    for number, values in theirs.items():
        done[number] = values


def _forward(fd: int, progress: Callable[[int], None]) -> int:
    """Pass the child's progress on; how many items it told of (0 at the pipe's end, or when
    nothing is there yet)."""
    try:
        ticks = os.read(fd, 4096)
    except BlockingIOError:
        return 0
    if ticks:
        progress(len(ticks))
    return len(ticks)


def _close(*fds: int) -> None:
    for fd in fds:
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)
