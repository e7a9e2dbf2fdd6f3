"""Reading a chained audit log back: listing its records, verifying it, moving it aside.

:mod:`airlock.egress.audit` writes the log (how it is chained and checkpointed, and what that
catches, is said there); this module is what ``airlock audit`` runs on it:
:class:`LogReader` and :func:`read_records` list the records, :func:`verify` checks the chain
and the heads file against each other, :func:`rotate` moves a log and its checkpoints to a
new place. A run never imports it (start-up time).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, BinaryIO, ClassVar

import orjson

from airlock._atomic import replace_file, sync_file
from airlock.egress.audit import (
    BAD_JSON,
    GENESIS,
    MAX_RECORD,
    Heads,
    Record,
    bounded_lines,
    check_not_emptied,
    check_vouched,
    first_line_hash,
    is_intent,
    line_hash,
    link_refused,
    load_line,
    lock_log,
    log_key,
    open_for_reading,
    opened_heads,
    others_may_write,
    pick_entry,
)
from airlock.errors import AirlockError, UsageError

_LATE_BATCH = 16384
"""Checkpoints :func:`verify` holds at once that name a record it has read past already (a
heads file whose counts go back): compared in a pass over the log each time they are that
many."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What :func:`verify` found: ``problem`` is ``None`` when the log is intact."""

    records: int
    runs: int
    problem: str | None = None
    bad_record: int | None = None
    notes: tuple[str, ...] = ()
    """What an intact log's reader should know (records a killed run declared but never
    checkpointed)."""
    unended: tuple[str, ...] = ()
    """The runs with a ``start`` record and no ``run`` record (each noted)."""
    final_hash_record: int | None = None
    """With a final hash to look for (:func:`verify`): the record whose line hashes to it,
    when one was read (``None`` when none does, or the log was found broken before it)."""

    @property
    def intact(self) -> bool:
        return self.problem is None


@dataclass(slots=True)
class Skipped:
    """The lines of a log that are no record, as a listing names them: how many, and the
    numbers (from 1) of the first :data:`SHOWN` (not every one: a file of blank lines)."""

    count: int = 0
    first: list[int] = field(default_factory=list)

    SHOWN: ClassVar[int] = 5

    def add(self, number: int) -> None:
        self.count += 1
        if len(self.first) < self.SHOWN:
            self.first.append(number)


def read_records(path: Path, skipped: Skipped | None = None) -> Iterator[Record]:
    """Each record of the log, decoded; a line that is not a JSON object (or is longer than
    any record) is skipped, and counted in ``skipped`` when given (``airlock audit`` names
    them).

    Raises:
        OSError: it cannot be read, or it is no regular file.
    """
    with open_for_reading(path) as handle:
        for number, (line, _, _) in enumerate(bounded_lines(handle), start=1):
            record = load_line(line)
            if isinstance(record, dict):
                yield record
            elif skipped is not None:
                skipped.add(number)


_SIZE_UNKNOWN = (
    "its size says 0 bytes, yet it holds some: a file the kernel makes as it is read (under "
    "/proc or /sys), not an audit log; name the log's file"
)
"""Why :func:`verify` and the listing's end check read no file whose size says nothing of
what it holds: a log is read up to the size it had under the lock (a run may append
meanwhile), so such a file would read as an empty log, intact."""


def _size_and_heads(
    fd: int, path: Path, heads: Path, stack: contextlib.ExitStack[Any]
) -> tuple[int, BinaryIO | None, int] | str:
    """The log's size and its heads file opened (kept open by ``stack``), taken together under
    a shared lock on the log, held a moment; or why the heads file cannot vouch for the log
    (:func:`_unsafe_heads`: asked first, so that one that is no regular file is named as the
    heads file, not opened), or the log is none (:data:`_SIZE_UNKNOWN`)."""
    unsafe = _unsafe_heads(heads, os.fstat(fd).st_uid)
    if unsafe is not None:
        return unsafe
    lock_log(fd, path)
    try:
        size = os.fstat(fd).st_size
        if size == 0 and os.pread(fd, 1, 0):  # under the lock: no run's write lands between
            return _SIZE_UNKNOWN
        source, heads_size = stack.enter_context(opened_heads(heads))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    return size, source, heads_size


def read_heads(heads: Path, log: Path) -> list[Record]:
    """The checkpoints of ``log`` in ``heads``, in order (none when the file is missing);
    declarations (``intent``) left out. All at once: :func:`verify` and the rest read them
    one at a time (two lines a batch: a heads file outgrows its log)."""
    with opened_heads(heads) as (source, size):
        return [head for head in Heads(source, size, heads, log).entries() if not is_intent(head)]


def holds_checkpoints(heads: Path, log: Path) -> bool:
    """Whether ``heads`` holds a checkpoint of records in ``log`` (its lines read one at a
    time).

    Raises:
        OSError: it cannot be read, or it is no regular file.
    """
    with opened_heads(heads) as (source, size):
        return any(
            head["records"] and not is_intent(head)
            for head in Heads(source, size, heads, log).entries()
        )


def rotate(log: Path, heads: Path, to: Path, to_heads: Path) -> Verdict:
    """Move an intact log to ``to`` with its checkpoints and declarations (into ``to_heads``,
    each naming ``to``), so that both verify: the log at its new path, and the new log the next
    run begins at the old one (a log moved by hand leaves its checkpoints behind, naming the
    old path: both fail). The verdict on the log moved.

    The heads file is copied one line at a time: what it held once the log was verified, then,
    under the log's lock, what runs added since (so the lock is held for moments, not for the
    copy of a file larger than the log); the log is moved only if no run wrote to it
    meanwhile. A run still going on stops at its next flush (its log is no longer at its
    path).

    Raises:
        AirlockError: the log is not intact.
        UsageError: a run wrote to it meanwhile, ``to`` or its heads file is there already,
            ``to``'s folder is not, the heads file holds checkpoints of another log, or ``to``
            is on another file system.
        OSError: a file cannot be read or written.
    """
    before = log.stat().st_size
    verdict = verify(log, heads)
    if not verdict.intact:
        raise AirlockError(f"{log} is not intact ({verdict.problem}): it was not moved")
    if os.path.lexists(to):
        raise UsageError(f"{to} is there already: name another with --to FILE")
    if not to.parent.is_dir():
        raise UsageError(
            f"{to}: its folder {to.parent} is not there: create it, or name another with --to FILE"
        )
    if to_heads.exists() and to_heads.stat().st_size:
        raise UsageError(f"{to_heads}, the heads file {to} would have, is there already")
    first = first_line_hash(log) if before else None
    with opened_heads(heads) as (source, size), open_for_reading(log) as handle:
        moving = Heads(source, size, heads, log)

        def fill(out: IO[bytes]) -> None:
            _copy_heads(moving, 0, size, to, first, out)
            sync_file(out)  # before the lock: what is left to sync under it is the lines since
            lock_log(handle.fileno(), log, fcntl.LOCK_EX)
            if os.fstat(handle.fileno()).st_size != before:
                raise UsageError(f"a run wrote to {log} meanwhile: rotate it when no run goes on")
            if source is not None:
                _copy_heads(moving, size, os.fstat(source.fileno()).st_size, to, first, out)

        to_heads.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        replace_file(to_heads, fill, mode=0o600)  # the log's lock is held from its end on
        try:
            log.rename(to)
        except OSError as error:
            to_heads.unlink(missing_ok=True)
            if error.errno == errno.EXDEV:
                raise UsageError(
                    f"{to} is on another file system than {log}: choose one beside it"
                ) from error
            raise
        heads.unlink(missing_ok=True)
    return verdict


def _copy_heads(
    heads: Heads, start: int, end: int, to: Path, first: str | None, out: IO[bytes]
) -> None:
    """Write the entries of the log between bytes ``start`` and ``end`` of ``heads`` to
    ``out``, each naming ``to``.

    Raises:
        UsageError: one is of another log once at the path (``first``: this log's first
            line's hash).
    """
    moved = log_key(to)
    for head in heads.entries(start, end):
        if head.get("first", first) != first and head["records"]:
            raise UsageError(
                f"{heads.path} holds checkpoints of another log once at {heads.log} (verify "
                "says which): move the log and the heads file aside by hand"
            )
        out.write(orjson.dumps({**head, "log": moved}) + b"\n")


class LogReader:
    """A log's records for a listing, read once, their chain checked as they are read: the
    listing reads every line anyway. :meth:`problem` then checks where the chain ends against
    the heads file, as a run does before it appends: the log holds the furthest checkpoint of
    its own, and records past it were declared. One pass over the log, and the heads file's
    tail (bounded memory and a moment under the log's lock), where :func:`verify` reads the
    whole heads file, two lines a batch (it outgrows the log), to compare every checkpoint: a
    chain intact up to a checkpoint that matches is the one its run wrote, so what this
    leaves to ``verify`` is checkpoints that disagree with each other (another log's once at
    its path, a heads file edited).

    Raises:
        OSError: the log cannot be read, or is no regular file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = open_for_reading(path)
        self._count = 0
        self._prev = GENESIS
        self._first = GENESIS
        """The hash of the log's first line (which log it is), once read."""
        self._end = 0
        """Where the lines checked end, in bytes."""
        self._read = 0
        """Where the lines listed end, in bytes (past :attr:`_end` once the check paused)."""
        self._problem: str | None = None
        self._paused = False
        """A line without its line break was read (a batch being written, or a write cut
        off): the chain is checked on from its start, under the lock."""

    def __enter__(self) -> LogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def records(self, skipped: Skipped | None = None) -> Iterator[Record]:
        """Each record of the log, decoded, as :func:`read_records` reads them."""
        for number, (line, ended, taken) in enumerate(bounded_lines(self._handle), start=1):
            self._read += taken
            record = load_line(line)
            if self._problem is None and not self._paused:
                self._check(line, ended, taken, record, last=False)
            if isinstance(record, dict):
                yield record
            elif skipped is not None:
                skipped.add(number)

    def problem(self, heads: Path) -> str | None:
        """What is wrong with the log, by the checks above; ``None``: nothing found. The log's
        size and the heads file are taken under a shared lock on the log (runs write a batch
        and its checkpoint under an exclusive one), and lines the listing did not read up to
        that size (written meanwhile) are checked too.

        Raises:
            OSError: the heads file cannot be read, or the log stays locked
                :data:`~airlock.egress.audit.LOCK_WAIT` seconds.
        """
        if self.path.is_symlink():
            return link_refused(self.path, "the log path")
        fd = self._handle.fileno()
        with contextlib.ExitStack() as stack:
            snapshot = _size_and_heads(fd, self.path, heads, stack)
            if isinstance(snapshot, str):
                return snapshot
            size, source, heads_size = snapshot
            if self._problem is None and size < self._read:
                # cut back since it was read (as a run's write that met a full disk is, lest
                # it leave half a line; or records were removed from its end): what was
                # listed past its end now was shown, and is checked by nothing
                self._problem = (
                    f"it was cut back while it was listed (to {size} bytes, {self._read} read): "
                    "records listed past its end are not in it (a run's write that failed is "
                    "cut back so; or they were removed)"
                )
            if self._problem is None:
                self._handle.seek(self._end)
                for line, ended, taken in bounded_lines(self._handle, size - self._end):
                    self._check(line, ended, taken, load_line(line), last=True)
                    if self._problem is not None:
                        break
            if self._problem is not None:
                return self._problem
            read = Heads(source, heads_size, heads, self.path)
            first = self._first
            try:
                if self._count:
                    own = _Tally(first).is_own
                    check_vouched(read, (self._count, self._prev), own)
                else:
                    check_not_emptied(read)
            except ValueError as error:
                return str(error)
        return None

    def _check(
        self, line: bytes | None, ended: bool, taken: int, record: object, last: bool
    ) -> None:
        """Check one line's place in the chain; one without a line break pauses the check,
        unless it is the ``last`` to be read (then it was cut short)."""
        if not ended and not last:
            self._paused = True
            return
        problem = _record_problem(line, record, self._count, self._prev)
        if problem is None and not ended:
            problem = "its line is cut short (no line break at the end: a write cut off)"
        if problem is not None or line is None:
            self._problem = f"{_place(self._count, record)}: {problem}"
            return
        self._prev = line_hash(line)
        if not self._count:
            self._first = self._prev
        self._count += 1
        self._end += taken


def verify(path: Path, heads: Path, final_hash: str | None = None) -> Verdict:
    """Check the chain of ``path`` and that it matches every checkpoint of it in ``heads``.

    A checkpoint is of this log when its ``first`` is the hash of the log's first line (one
    written before checkpoints carried it, or with no records, is taken as this log's): each
    must match the record it names, and the log must hold the furthest. Records after the
    furthest checkpoint must be the ones a run declared before writing them (it was killed
    before its checkpoint: a note says so). A checkpoint of another log, one removed, moved
    aside or rewritten from scratch since, is a problem too, named as such. The first problem
    found is named: its record number (``seq``, from 0) when a record is wrong, and what is
    wrong.

    The heads file is opened and the log's size read under a shared lock on the log (runs
    write a batch and its checkpoint under an exclusive one), and both are read up to their
    sizes then: a run writing meanwhile is not taken for tampering, and waits for no more than
    those two ``fstat`` calls. They are read side by side, one line at a time, keeping what
    each check needs (the furthest checkpoint and declaration, the checkpoints of the record
    being read): memory does not grow with the number of checkpoints (two a batch: a heads
    file outgrows its log).

    A log path that is a symbolic link is a problem (runs refuse to write through one, and a
    log swapped for a link to another intact log would pass as that one); a log removed whose
    heads file still holds checkpoints of records is one too. A run that wrote a ``start``
    record and no ``run`` record (killed, or still going on) is noted.

    With ``final_hash`` (a run's final hash, as its report printed it, kept apart from both
    files), the log must hold the record whose line hashes to it, and no record after it may
    name that record's run: the hash pins every line up to it (each carries the hash of the
    one before), and a run writes nothing after its final record, so a record of that run
    after it was added since, by whoever could write the log and its heads file together. It is
    looked for in the same read of the log as the rest (a second read of the path could be
    of another file, put there in between).

    Raises:
        OSError: either file cannot be read, or the log stays locked
            :data:`~airlock.egress.audit.LOCK_WAIT` seconds.
    """
    if path.is_symlink():
        return Verdict(0, 0, link_refused(path, "the log path"))
    try:
        handle = open_for_reading(path, follow=False)
    except FileNotFoundError:
        removed = _removed(path, heads)
        if removed is None:
            raise
        return removed
    with handle, contextlib.ExitStack() as stack:
        taken = _size_and_heads(handle.fileno(), path, heads, stack)
        if isinstance(taken, str):
            return Verdict(0, 0, taken)
        size, source, heads_size = taken
        found = _Verification(handle, size, Heads(source, heads_size, heads, path), final_hash)
        return found.verdict()


@dataclass(slots=True)
class _Tally:
    """What :func:`verify` keeps of a heads file as it reads it, one entry at a time (never
    the entries themselves): this log's furthest checkpoint and furthest declaration, and the
    furthest checkpoint of other logs once at its path, with their first lines' hashes.
    ``first``: the hash of this log's first line."""

    first: str | None
    furthest: Record | None = None
    declared: Record | None = None
    other: Record | None = None
    other_logs: set[str] = field(default_factory=set)

    def is_own(self, head: Record) -> bool:
        """Whether ``head`` is of this log: it names its first line, or names none (written
        before checkpoints did), or no records."""
        return not ("first" in head and head["records"] and head["first"] != self.first)

    def checkpoints(self, entries: Iterable[Record]) -> Iterator[tuple[int, str, str]]:
        """This log's checkpoints of records among ``entries``, each as the number of the
        last record it names, that record's hash, and its run; the rest tallied."""
        first = self.first
        for head in entries:
            records = head["records"]
            intent = head.get("intent") is True
            if records and "first" in head and head["first"] != first:  # not self.is_own(head)
                if not intent:
                    if self.other is None or records > self.other["records"]:
                        self.other = head
                    self.other_logs.add(str(head["first"]))
            elif intent:  # vouches only for a tail past the checkpoints (see _end)
                if self.declared is None or records > self.declared["records"]:
                    self.declared = head
            else:
                if self.furthest is None or records > self.furthest["records"]:
                    self.furthest = head
                if records:
                    yield records - 1, head["hash"], head["run"]


class _Late:
    """Checkpoints :func:`verify` reads after it has read past the record they name (a heads
    file whose counts go back: checkpoints of a log removed since, written before they named
    its first line), compared in batches of at most :data:`_LATE_BATCH`, each by reading the
    log again up to it. ``found``: the first record one does not match (its number, and the
    checkpoint's run), as the log is read."""

    def __init__(self, handle: BinaryIO, size: int) -> None:
        self.handle = handle
        self.size = size
        self.batch: dict[int, list[tuple[str, str]]] = {}
        self.held = 0
        self.found: tuple[int, str] | None = None

    def add(self, number: int, digest: str, run: str) -> None:
        if self.found is not None and number >= self.found[0]:
            return  # a record before it does not match already
        self.batch.setdefault(number, []).append((digest, run))
        self.held += 1
        if self.held >= _LATE_BATCH:
            self.compare()

    def compare(self) -> None:
        if not self.batch:
            return
        here = self.handle.tell()
        self.handle.seek(0)
        try:
            last = max(self.batch)
            for number, (line, _, _) in enumerate(bounded_lines(self.handle, self.size)):
                if number > last:
                    break
                wanted = self.batch.get(number)
                if wanted is None or line is None:
                    continue
                digest = line_hash(line)
                run = next((run for hashed, run in wanted if hashed != digest), None)
                if run is not None:
                    self.found = (number, run)
                    break
        finally:
            self.handle.seek(here)
            self.batch.clear()
            self.held = 0


class _Verification:
    """One :func:`verify` of a log (read up to ``size``) and its heads file; with
    ``final_hash``, a run's final hash the log must hold, with no record of that run after it."""

    def __init__(
        self, handle: BinaryIO, size: int, heads: Heads, final_hash: str | None = None
    ) -> None:
        self.handle = handle
        self.size = size
        self.heads = heads
        self.runs = _Runs()
        self.final = None if final_hash is None else _FinalHash(final_hash)

    def verdict(self) -> Verdict:
        """The log's lines are read in order, and the heads file's alongside, each checkpoint
        as the log reaches the record it names (kept until then: the entry read last and
        those of the record being read); one naming a record read already goes to
        :class:`_Late`. The first problem in the log's order is named."""
        lines = bounded_lines(self.handle, self.size)
        first_line = next(lines, None)
        first = None if first_line is None or first_line[0] is None else line_hash(first_line[0])
        tally = _Tally(first)
        checkpoints = tally.checkpoints(self.heads.entries())
        late = _Late(self.handle, self.size)
        waiting = next(checkpoints, None)
        prev = GENESIS
        count = 0
        problem: str | None = None
        record: object = None
        for line, ended, _ in itertools.chain([first_line] if first_line else [], lines):
            record = load_line(line)
            problem = _record_problem(line, record, count, prev)
            if problem is None and line is not None and isinstance(record, dict):
                self.runs.add(record)
                digest = line_hash(line)
                while waiting is not None and waiting[0] <= count:
                    if waiting[0] < count:
                        late.add(*waiting)
                    elif waiting[1] != digest:
                        problem = (
                            f"does not match the checkpoint of run {waiting[2]} (the log was "
                            "rewritten)"
                        )
                        break
                    waiting = next(checkpoints, None)
                if problem is None and not ended:
                    problem = "its line is cut short (no line break at the end: a write cut off)"
                if problem is None and self.final is not None:
                    problem = self.final.see(count, digest, record)
                prev = digest
            if problem is not None or late.found is not None:
                break
            count += 1
        if problem is None or count:  # the rest: the tally, and checkpoints of records read
            for entry in itertools.chain([waiting] if waiting else [], checkpoints):
                if entry[0] < count:
                    late.add(*entry)
        late.compare()
        if late.found is not None:
            number, run = late.found
            return self._with_final(
                Verdict(
                    number,
                    self._runs_upto(number),
                    f"{_place(number)}: does not match the checkpoint of run {run} (the log was "
                    "rewritten)",
                    number,
                )
            )
        if problem is not None:
            return self._with_final(
                Verdict(count, len(self.runs.seen), f"{_place(count, record)}: {problem}", count)
            )
        verdict, told = self._end(count, tally, prev)
        if tally.other is not None and (verdict.intact or tally.furthest is None):
            return self._with_final(_another_log(self.heads.log, count, len(self.runs.seen), tally))
        if not verdict.intact:
            return self._with_final(verdict)
        if self.final is not None and self.final.record is None:
            return self._with_final(
                replace(
                    verdict,
                    problem=f"no record has the final hash {self.final.digest} (the log was "
                    "rewritten, or cut short before it, since that run's report)",
                )
            )
        return self._with_final(
            replace(
                verdict,
                notes=verdict.notes + self.runs.unended(told),
                unended=self.runs.unended_runs(),
            )
        )

    def _with_final(self, verdict: Verdict) -> Verdict:
        """``verdict`` naming the record of the final hash looked for, if one was read."""
        if self.final is None:
            return verdict
        return replace(verdict, final_hash_record=self.final.record)

    def _runs_upto(self, number: int) -> int:
        """How many runs records 0 to ``number`` name."""
        runs = _Runs()
        self.handle.seek(0)
        for index, (line, _, _) in enumerate(bounded_lines(self.handle, self.size)):
            if index > number:
                break
            record = load_line(line)
            if isinstance(record, dict):
                runs.add(record)
        return len(runs.seen)

    def _end(self, count: int, tally: _Tally, tip: str) -> tuple[Verdict, str | None]:
        """The verdict on a log whose ``count`` records chain (``tip`` the last one's hash): it
        must hold its furthest checkpoint, and end there or where a run declared it would;
        and the run a note says declared a batch it did not checkpoint, if one does."""
        runs = len(self.runs.seen)
        furthest = tally.furthest
        kept = 0 if furthest is None else int(furthest["records"])
        if furthest is not None and count < kept:
            problem = (
                f"the log holds {count} records but run {furthest['run']} checkpointed {kept} "
                "(records removed from the end)"
            )
            return Verdict(count, runs, problem, count), None
        if count == kept:
            declared = tally.declared
            notes = _unwritten(declared, count)
            told = declared["run"] if declared is not None and notes else None
            return Verdict(count, runs, notes=notes), told
        found = pick_entry(
            self.heads.entries(),
            lambda head: (
                is_intent(head)
                and tally.is_own(head)
                and head["records"] == count
                and head["hash"] == tip
            ),
            furthest=False,
        )
        if found is not None:
            note = (
                f"records {kept} to {count - 1} were never checkpointed: run {found['run']} "
                "declared them before writing them, and ended before its checkpoint (killed?)"
            )
            return Verdict(count, runs, notes=(note,)), found["run"]
        if furthest is None:
            problem = f"no checkpoint of {self.heads.log} was found: the log cannot be vouched for"
            return Verdict(count, runs, problem, 0), None
        problem = (
            f"{_place(kept)}: past the last checkpoint (run {furthest['run']}, {kept} records), "
            "and no run declared the log ending there: appended afterwards by another program, "
            "or a run's write was cut short at a line's end"
        )
        return Verdict(count, runs, problem, kept), None


@dataclass(slots=True)
class _FinalHash:
    """A run's final hash, as :func:`verify` looks for it while it reads the log: the record
    whose line hashes to it (``record``), and that record's run, which writes nothing after it."""

    digest: str
    record: int | None = None
    run: str | None = None

    def see(self, number: int, digest: str, record: Record) -> str | None:
        """Note record ``number`` (its line hashing to ``digest``); what is wrong with it: it
        names the run of the final hash's record, after that record."""
        if self.record is None:
            if digest == self.digest:
                self.record = number
                run = record.get("run")
                self.run = run if isinstance(run, str) else None
            return None
        if self.run is not None and record.get("run") == self.run:
            return (  # _place names the run: "record 7 (line 8, run X): comes after …"
                f"comes after the record of its final hash (record {self.record}): a run "
                "writes nothing after its final record, so this record of it was added since "
                "(by whoever could write the log and its heads file)"
            )
        return None


@dataclass(slots=True)
class _Runs:
    """The runs a log's records name, as :func:`verify` reads them: every one, those that
    wrote a ``start`` record (in order) and those that wrote their ``run`` record (at their
    end)."""

    seen: set[str] = field(default_factory=set)
    started: dict[str, None] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)

    def add(self, record: Record) -> None:
        run = str(record.get("run"))
        self.seen.add(run)
        kind = record.get("type")
        if kind == "start":
            self.started[run] = None
        elif kind == "run":
            self.ended.add(run)

    def unended_runs(self) -> tuple[str, ...]:
        return tuple(run for run in self.started if run not in self.ended)

    def unended(self, told: str | None = None) -> tuple[str, ...]:
        """A note for each run that started and wrote no end record. The one ``told`` of (a
        note says it declared a batch and did not checkpoint it) has a second: a write to
        its log or heads file that failed stops a run short of its end record as much as a
        kill does (a full disk: its traffic stopped then, and it said so)."""
        notes: list[str] = []
        for run in self.unended_runs():
            notes.append(
                f"run {run} has no end record: it was killed or is still running; connections "
                "open then are not recorded"
            )
            if run == told:
                notes.append(
                    f"run {run} declared its last batch and did not checkpoint it (noted above): "
                    "a write to its audit log or heads file failed (a full disk, say: its "
                    "traffic stopped then, and it exited 125 saying so), or it was killed then"
                )
        return tuple(notes)


def _removed(path: Path, heads: Path) -> Verdict | None:
    """The verdict on a log that is not at ``path`` while ``heads`` holds checkpoints of
    records in it (it was removed, or moved by hand); ``None`` when it holds none (no log was
    ever written there)."""
    with opened_heads(heads) as (source, size):
        furthest = pick_entry(
            Heads(source, size, heads, path).entries(),
            lambda head: not is_intent(head) and head["records"] > 0,
            furthest=True,
        )
    if furthest is None:
        return None
    return Verdict(
        0,
        0,
        f"the log was removed: its heads file {heads} holds checkpoints of "
        f"{furthest['records']} records (run {furthest['run']} the furthest)",
    )


def _unsafe_heads(heads: Path, owner: int) -> str | None:
    """Why the checkpoints in ``heads`` cannot vouch for a log ``owner`` owns, or ``None``: it
    is a symbolic link (it could name any file; a run never writes through one), no regular
    file, or someone else may have written it. A run refuses such files
    (:func:`~airlock.egress.audit.open_for_appending`), and verify does not trust them either."""
    try:
        found = heads.lstat()
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(found.st_mode):
        try:
            target = f" (to {heads.readlink()})"
        except OSError:
            target = ""
        return (
            f"the heads file {heads} is a symbolic link{target}: runs never write through one "
            "(they refuse the log), and its checkpoints cannot vouch for the log"
        )
    if not stat.S_ISREG(found.st_mode):
        return (
            f"the heads file {heads} is not a regular file (a FIFO, a device or a folder): it "
            "holds no checkpoint that can vouch for the log"
        )
    problem = others_may_write(found, owner)
    if problem is None:
        return None
    return (
        f"the heads file {heads} {problem}, the log's owner being uid {owner}: its "
        "checkpoints cannot vouch for the log"
    )


def _place(number: int, record: object = None) -> str:
    """Where record ``number`` (``seq``, from 0) is, in words: its line in the file (from 1,
    as an editor and the listing count them) and, when ``record`` is one that names it, its
    run: ``record 7 (line 8, run 20261205T101027Z-7527)``."""
    run = record.get("run") if isinstance(record, dict) else None
    return f"record {number} (line {number + 1}" + (
        f", run {run})" if isinstance(run, str) else ")"
    )


def _record_problem(line: bytes | None, record: object, seq: int, prev: str) -> str | None:
    """What is wrong with ``line`` (``record``: what it holds,
    :func:`~airlock.egress.audit.load_line`) as record ``seq`` of a chain whose last hash is
    ``prev``; ``None`` when nothing is."""
    if line is None:
        return f"its line is longer than any record a run writes ({MAX_RECORD} bytes)"
    if record is BAD_JSON:
        return "is not a JSON record (edited, or cut short)"
    if not isinstance(record, dict):
        return "is not a JSON object"
    if record.get("prev") != prev:
        return (
            f"does not carry the hash of record {seq - 1}: one of the two was edited, or records "
            "were removed, inserted or reordered here"
            if seq
            else "is not the start of a chain (records removed from the start)"
        )
    if type(record.get("seq")) is not int or record["seq"] != seq:
        return f"says it is record {record.get('seq')!r} (records removed, inserted or reordered)"
    return None


def _another_log(path: Path, count: int, runs: int, tally: _Tally) -> Verdict:
    """The verdict on a log whose heads file holds checkpoints of another log at its path."""
    last = tally.other
    assert last is not None
    logs = len(tally.other_logs)
    if tally.furthest is not None:
        this = f"this log's {count} records match their own checkpoints"
    elif count:
        this = f"this log's {count} records have no checkpoint of their own"
    else:
        this = "this log is empty"
    return Verdict(
        count,
        runs,
        f"the heads file holds checkpoints of {'another log' if logs == 1 else f'{logs} other logs'} "
        f"at {path} (run {last.get('run')} checkpointed {last['records']} records, the last "
        f"hashing {last['hash']}), and this log does not begin as that one did: it was "
        f"removed, moved aside or rewritten from scratch since; {this}",
    )


def _unwritten(declared: Record | None, count: int) -> tuple[str, ...]:
    """A note when a run declared more records than the log holds past its checkpoints
    (``declared``: the furthest declaration): its write failed (a full disk), it was killed
    before its write, or those records were removed since (which nothing else can tell)."""
    if declared is None or declared["records"] <= count:
        return ()
    return (
        f"run {declared['run']} declared {declared['records']} records but the log ends at "
        f"{count}: its last write failed or never came (killed), or records were removed from "
        "the end",
    )
