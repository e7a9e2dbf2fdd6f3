"""Two processes sharing a list of items: the results are the serial results, whatever happens."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from airlock.sessions import parallel
from airlock.sessions.parallel import in_two


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of one item, and a fork whatever the machine: both processes take several."""
    monkeypatch.setattr(parallel, "CHUNK_AT_LEAST", 1)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)


def _square(item: int) -> tuple[int, int]:
    return os.getpid(), item * item


@pytest.mark.parametrize("count", [0, 1, 2, 3, 50, 1024, 3001])
def test_results_come_back_in_order(count: int) -> None:
    """Every item is worked once, and the results are in the items' order."""
    got = in_two(list(range(count)), lambda n: n * n, parallel_from=2)
    assert got == [n * n for n in range(count)]


def test_both_processes_take_chunks() -> None:
    """On a long list the child works part of it (a slow item lets the other process take
    the next chunks)."""
    import time

    def slow(item: int) -> tuple[int, int]:
        time.sleep(0.001)
        return _square(item)

    got = in_two(list(range(200)), slow, parallel_from=2)
    assert [value for _, value in got] == [n * n for n in range(200)]
    assert len({pid for pid, _ in got}) == 2


def test_a_short_list_stays_in_this_process() -> None:
    """Below ``parallel_from`` nothing is forked."""
    got = in_two(list(range(10)), _square, parallel_from=11)
    assert {pid for pid, _ in got} == {os.getpid()}


def test_progress_adds_up_to_the_items() -> None:
    """Progress is told as items are done, this process's and the child's, to the total."""
    told: list[int] = []
    in_two(list(range(500)), _square, parallel_from=2, progress=told.append)
    assert sum(told) == 500
    assert all(step > 0 for step in told)


def _dies_in_the_child(after: int) -> Callable[[int], tuple[int, int]]:
    parent = os.getpid()
    done: list[int] = []

    def work(item: int) -> tuple[int, int]:
        if os.getpid() != parent:
            done.append(item)
            if len(done) > after:
                os._exit(3)
        return _square(item)

    return work


@pytest.mark.parametrize("after", [0, 5])
def test_what_a_dying_child_left_is_done_here(after: int) -> None:
    """A child that dies part way (before or after some items) loses nothing: this process
    works every chunk it did not get back, and progress still adds up."""
    told: list[int] = []
    got = in_two(list(range(300)), _dies_in_the_child(after), parallel_from=2, progress=told.append)
    assert [value for _, value in got] == [n * n for n in range(300)]
    assert {pid for pid, _ in got} == {os.getpid()}
    assert sum(told) == 300


def test_a_failed_fork_works_everything_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the fork fails, this process works through the whole list."""

    def no_fork() -> int:
        raise OSError("no more processes")

    monkeypatch.setattr(os, "fork", no_fork)
    got = in_two(list(range(100)), _square, parallel_from=2)
    assert got == [(os.getpid(), n * n) for n in range(100)]


def test_results_of_the_wrong_shape_are_refused() -> None:
    """When ``receive`` refuses what the child sent, none of it is taken: this process does
    the child's share itself."""
    parent = os.getpid()

    def receive(value: Any) -> tuple[int, int]:
        raise ValueError(f"malformed: {value!r}")

    got = in_two(list(range(100)), _square, parallel_from=2, receive=receive)
    assert got == [(parent, n * n) for n in range(100)]


def test_send_and_receive_carry_what_marshal_cannot() -> None:
    """Results that :mod:`marshal` cannot carry go through ``send`` and ``receive``."""

    class Box:
        def __init__(self, value: int) -> None:
            self.value = value

    got = in_two(
        list(range(100)),
        Box,
        parallel_from=2,
        send=lambda box: box.value,
        receive=Box,
    )
    assert [box.value for box in got] == list(range(100))


def test_a_failure_here_stops_and_reaps_the_child() -> None:
    """When this process's work raises, the child is stopped and reaped, and the error goes
    on."""
    parent = os.getpid()

    def work(item: int) -> int:
        if os.getpid() == parent and item >= 10:
            raise KeyboardInterrupt
        return item

    with pytest.raises(KeyboardInterrupt):
        in_two(list(range(1000)), work, parallel_from=2)
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)  # no child left, not even a zombie


def test_no_fork_while_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With another thread running, the list is worked here alone: a child would hold a copy
    of this thread only."""
    import threading

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        got = in_two(list(range(100)), _square, parallel_from=2)
    finally:
        stop.set()
        other.join()
    assert {pid for pid, _ in got} == {os.getpid()}


def test_a_queue_that_does_not_take_every_number_works_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the pipe cannot take every chunk number at once (a full pipe), nothing waits:
    the list is worked here alone."""
    real_write = os.write
    calls: list[int] = []

    def full_pipe(fd: int, data: bytes) -> int:
        calls.append(len(data))
        if len(calls) == 1:  # the queue's numbers
            raise BlockingIOError
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_pipe)
    got = in_two(list(range(100)), _square, parallel_from=2)
    assert got == [(os.getpid(), n * n) for n in range(100)]
    assert calls == [400]
