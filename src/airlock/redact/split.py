"""Redacting a large regular file with more than one process (the scan is CPU-bound).

Theory of operation
-------------------
The file is cut into parts of equal size. The calling process redacts it from the start as
usual, writing every byte of the output itself; each other part is scanned at the same time by a
forked process, which sends back only its hits (offsets and kind) and how far it has come, through
a pipe. When the writer reaches a part, it takes that part's hits instead of scanning it
(``Handoff``), so the output is the one the engine writes, in order, by one writer.

A part's scan starts with the bytes just before it as left context and reads on past its end as
lookahead, like any window of the engine, so a secret across a cut is found by the part it starts
in; a hit of the part before that runs into the next one wins, as it does between two windows.

Nothing is lost when a helper fails: its pipe ends without the closing record, and the writer
scans the rest of that part itself. Memory stays bounded: a helper that is far ahead blocks on its
pipe until the writer catches up.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import itertools
import os
import signal
import struct
from typing import BinaryIO, cast

from airlock.redact.engine import CONTEXT, HandoffLost, RedactionReport, Redactor

PART = 8 << 20
"""The smallest part worth a process of its own (bytes)."""
MAX_PROCESSES = 4
"""At most this many processes redact one file."""
WRITER_SHARE = 0.9
"""The writer's part, as a share of an equal part: it also writes the whole output."""
PIPE_BYTES = 1 << 20
"""The pipe buffer asked for: how far a helper may run ahead of the writer, in records."""

_HIT = 1
_REACHED = 2
_END = 3
_RECORD = struct.Struct("<Bqq")
"""A record: its tag and two offsets (a hit's start and end, or the offset reached)."""
_KIND = struct.Struct("<B")
"""The length of the kind name that follows a hit record."""


def processes_for(size: int, limit: int | None = None) -> int:
    """How many processes to redact a file of ``size`` bytes with."""
    available = limit if limit is not None else _cpus()
    return max(1, min(available, MAX_PROCESSES, size // PART))


def cuts(size: int, processes: int) -> list[int]:
    """Where the parts of a file of ``size`` bytes begin, and its end (``processes + 1`` offsets).

    The first part, the writer's, is ``WRITER_SHARE`` of an equal part; the others share the rest.
    """
    first = int(size / processes * WRITER_SHARE)
    helpers = processes - 1
    return [0] + [first + (size - first) * part // helpers for part in range(helpers + 1)]


def redact_file(
    redactor: Redactor,
    src: BinaryIO,
    dst: BinaryIO,
    *,
    report: RedactionReport,
    processes: int,
) -> RedactionReport:
    """Redact the regular file ``src`` (read from its current offset) into ``dst``.

    Args:
        redactor: The redactor (its rules are shared with the helpers by ``fork``).
        src: An open regular file, at offset 0.
        dst: Where the output goes.
        report: Filled in as the copy goes.
        processes: How many processes in all (1: no helper).

    Returns:
        The report.
    """
    size = os.fstat(src.fileno()).st_size
    if processes < 2 or not hasattr(os, "fork") or src.tell() != 0:
        return redactor.redact_stream(src, dst, report=report)
    helpers: list[_Helper] = []
    try:
        for start, stop in itertools.pairwise(cuts(size, processes)[1:]):
            try:
                helpers.append(_Helper.spawn(redactor, src.fileno(), start, stop))
            except OSError:  # no more processes or pipes: the writer scans the rest itself
                break
        handoff = _Chain(helpers) if helpers else None
        return redactor.redact_stream(src, dst, report=report, handoff=handoff)
    finally:
        for helper in helpers:
            helper.close()


class _Helper:
    """A forked process scanning ``[start, stop)`` of the file, and the pipe it reports on."""

    def __init__(self, pid: int, reader: BinaryIO, start: int, stop: int) -> None:
        self.pid = pid
        self.start = start
        self.stop = stop
        self._reader = reader
        self._waiting: list[tuple[int, int, str]] = []
        self._reached = start
        self._ended = False

    @classmethod
    def spawn(cls, redactor: Redactor, fd: int, start: int, stop: int) -> _Helper:
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError, AttributeError):  # Linux only; a smaller pipe works
            fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        pid = os.fork()
        if pid == 0:  # the helper: never returns into the caller's code
            status = 1
            try:
                os.close(read_end)
                _scan_part(redactor, fd, start, stop, write_end)
                status = 0
            finally:
                os._exit(status)
        os.close(write_end)
        return cls(pid, os.fdopen(read_end, "rb"), start, stop)

    def hits_before(self, offset: int) -> list[tuple[int, int, str]]:
        """The hits starting before ``offset``, waiting for the helper to get that far."""
        while not self._ended and self._reached < min(offset, self.stop):
            self._read_record()
        taken = [hit for hit in self._waiting if hit[0] < offset]
        self._waiting = self._waiting[len(taken) :]
        return taken

    def _read(self, size: int) -> bytes:
        data = self._reader.read(size)
        if len(data) < size:
            raise HandoffLost(f"the process scanning bytes {self.start}-{self.stop} ended early")
        return data

    def _read_record(self) -> None:
        tag, first, second = _RECORD.unpack(self._read(_RECORD.size))
        if tag == _HIT:
            (length,) = _KIND.unpack(self._read(_KIND.size))
            kind = self._read(length).decode()
            self._waiting.append((first, second, kind))
        elif tag == _REACHED:
            self._reached = first
        else:
            self._ended = True

    def close(self) -> None:
        """Stop the helper (if still running) and reap it."""
        self._reader.close()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


class _Chain:
    """The helpers' parts one after the other, as one ``Handoff`` from the first cut on."""

    def __init__(self, helpers: list[_Helper]) -> None:
        self._helpers = helpers
        self.start = helpers[0].start
        self.end = helpers[-1].stop

    def hits_before(self, offset: int) -> list[tuple[int, int, str]]:
        hits: list[tuple[int, int, str]] = []
        for helper in self._helpers:
            if helper.start >= offset:
                break
            hits.extend(helper.hits_before(offset))
        return hits


def _scan_part(redactor: Redactor, fd: int, start: int, stop: int, write_end: int) -> None:
    """In the helper: find the hits starting in ``[start, stop)`` and send them."""
    context = os.pread(fd, CONTEXT, max(0, start - CONTEXT)) if start else b""
    report = RedactionReport(lines=False)  # the writer counts lines
    with os.fdopen(write_end, "wb", buffering=1 << 16) as out:
        source = cast(BinaryIO, _FileFrom(fd, start))
        for _output, reached in redactor.windows(
            source, report, context=context, base=start, stop=stop
        ):
            for finding in report.findings:
                kind = finding.kind.encode()
                out.write(_RECORD.pack(_HIT, finding.start, finding.end))
                out.write(_KIND.pack(len(kind)) + kind)
            report.findings.clear()  # sent: the helper keeps none
            out.write(_RECORD.pack(_REACHED, reached, 0))
            out.flush()
        out.write(_RECORD.pack(_END, 0, 0))


class _FileFrom(io.RawIOBase):
    """The file from ``offset`` on, read with ``pread`` (the offset shared with the parent
    after ``fork`` is never moved)."""

    def __init__(self, fd: int, offset: int) -> None:
        self._fd = fd
        self._offset = offset

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = os.pread(self._fd, size if size >= 0 else 1 << 20, self._offset)
        self._offset += len(data)
        return data


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
