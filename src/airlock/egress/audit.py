"""The audit log: JSON lines, each carrying the SHA-256 of the line before it.

Theory of operation
-------------------
The proxy calls :meth:`AuditLog.append` on its event loop with a plain dict. It adds
``seq`` (the record's line number in the file, from 0) and ``prev`` (the SHA-256, hex, of the
previous line's bytes; 64 zeros for the first line), encodes the line with orjson and copies
it to the end of one buffer of pending lines: a few microseconds, no I/O. (Encoding here rather
than in the writer keeps the two threads from taking turns with the interpreter lock on every
batch. Copying into one buffer rather than keeping each encoded line as an object of its own
is five times cheaper: a list of thousands of small ``bytes`` freed together every batch had
the allocator give memory back and take it again.) A writer thread wakes every
``flush_interval`` seconds and takes the queued lines. Under a lock on the log, it first
*declares* the batch in the heads file, kept apart from the log (under the config dir): a
line with ``"intent": true`` naming the record count and last hash the batch will leave.
Then it appends the lines in one write and ``fsync``\\ s the file; then it appends a
*checkpoint* to the heads file: the run, how many records the log holds, the hash of the last
one, the hash of the first (``first``: which log it is, as a log removed and begun anew at the
same path starts with another record), and at the end of the run ``"final": true``. The heads
file is named by the log's real path, and each entry names it, so every spelling of one log
(through a linked folder, ``..``) shares them; a symbolic link at the log's own path, or the
heads file's, is refused (never written through: it could name any file), and
:func:`verify` flags one. So:

* an edited, removed, inserted or reordered line breaks the chain at the first bad record;
* a log rewritten from scratch, or cut short, no longer matches the heads file: every
  checkpoint (and declaration) of this log must match it, and one of another log (``first``
  not this log's first line's hash) is named as such; a run does not append to a log that no
  longer holds the furthest checkpoint of its own;
* a record past the furthest checkpoint is caught, unless a run declared it (one killed
  between its write and its checkpoint: :func:`verify` notes it). A run never chains on
  records no run declared (appended by another program, or a heads file removed): it refuses
  the log at its start, and stops (traffic with it) when they appear while it runs;
* two runs may share a log (two agents in two terminals): each writes its batch under a lock
  on the file, and when another run wrote since its last batch (and declared it), its
  pending lines are chained again on what that run left (read back from the file's end), so
  the log stays one chain; :func:`verify` reads the heads file and the log's size under a
  shared lock, so a batch being written is not taken for tampering;
* a log or heads file removed, or renamed away and replaced, while the run goes on stops the
  traffic at the writer's next wake-up, records pending or not; a log cut back below what
  this run left (its records removed from the end) stops it at its next batch, before it
  chains on what is left as if another run had written it; one another user owns, or that
  others may write, is refused at the start;
* a record of a connection that finished before a flush is on disk once that flush is done,
  whatever happens to the process afterwards (``kill -9`` included).

If the log or the heads file cannot be written, or anything else goes wrong in the writer
(a last line another program appended that is no record, say), the writer stops, keeps the
error in :attr:`AuditLog.failed` and calls ``on_failure``: the proxy then stops all traffic
(fail closed), and no final checkpoint is written. A flush after one that failed fails too:
the batch that one took is lost, and a flush finding nothing pending would say all is
written (the run's ``start`` record, taken and lost by the writer thread, and the command
run anyway). A log whose last line is cut short (a
crash in the middle of a write) or is no record is never appended to: :func:`verify` says
where it is broken.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import itertools
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import IO, Any, BinaryIO, ClassVar

import orjson

from airlock._atomic import replace_file, sync_file
from airlock.errors import AirlockError, UsageError

GENESIS = "0" * 64
"""The ``prev`` of a log's first record."""
FOLDER = "airlock"
LOG_NAME = "audit.jsonl"
HEADS_FOLDER = "audit-heads"
_HEADS_TAIL = 256 * 1024
"""Bytes read from the end of a heads file for a log's furthest checkpoint at a run's start."""
MAX_RECORD = 16 * 1024 * 1024
"""The longest line a run writes, in bytes, without its line break: a record longer than that
(a command of megabytes of arguments, thousands of rules) is written with its longest fields
left out, saying so (:func:`_within_bound`). A reader takes no longer line whole: one is no
record (cut to pieces, or written by another program), reported as such without being held."""
_MAX_HEAD_LINE = 64 * 1024
"""The longest heads file line read: a checkpoint is a few hundred bytes (its log's path
included); a longer line is none."""
_LATE_BATCH = 16384
"""Checkpoints :func:`verify` holds at once that name a record it has read past already (a
heads file whose counts go back): compared in a pass over the log each time they are that
many."""
_HASH = re.compile(r"[0-9a-f]{64}")

Record = dict[str, Any]


def default_log_path(config_dir: Path) -> Path:
    """``<config dir>/airlock/audit.jsonl``."""
    return config_dir / FOLDER / LOG_NAME


def heads_path(log: Path, config_dir: Path) -> Path:
    """Where the checkpoints of ``log`` are kept: under the config dir, named by the log's real
    path (:func:`log_key`), so every spelling of one file shares one heads file. A heads file
    named by the path as given (as runs named them before) is the one while it is the only one
    there: a log begun then keeps its checkpoints."""
    folder = config_dir / FOLDER / HEADS_FOLDER
    path = folder / f"{_key(log_key(log))}.jsonl"
    legacy = folder / f"{_key(str(log.expanduser().absolute()))}.jsonl"
    if legacy != path and legacy.exists() and not path.exists():
        return legacy
    return path


def _key(text: str) -> str:
    return hashlib.sha256(os.fsencode(text)).hexdigest()[:16]


def log_key(log: Path) -> str:
    """The log's real path: symbolic links, ``.`` and ``..`` resolved. The heads file is named
    by it and each checkpoint names it (``log``): a run writing through a linked folder and a
    ``verify`` of the file itself read the same checkpoints (two spellings kept apart, a
    rewrite checked against one would pass against the other)."""
    return os.path.realpath(log.expanduser())


def audit_paths(environ: Mapping[str, str], audit_log: Path | None = None) -> tuple[Path, Path]:
    """The log (``audit_log``, else under the config dir) and its heads file (under the config dir).

    The config dir is ``$CLAUDE_CONFIG_DIR``, else ``~/.claude`` (:func:`airlock.settings.config_dir`).
    """
    from airlock.settings import config_dir

    home = config_dir(environ)
    log = default_log_path(home) if audit_log is None else audit_log.expanduser()
    return log, heads_path(log, home)


def line_hash(line: bytes) -> str:
    """The SHA-256 of one line's bytes (without its line break), in hex."""
    return hashlib.sha256(line).hexdigest()


def iso_time(epoch: float) -> str:
    """``2026-12-02T10:24:53.123Z``. The text up to the second is kept from the previous call
    (records come in time order) and the milliseconds are looked up: a third of the cost of
    formatting both each time."""
    global _last_second
    second = int(epoch)
    last = _last_second  # one read: another thread may replace it meanwhile
    if last[0] != second:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        last = _last_second = (second, text)
    return last[1] + _MILLISECONDS[int((epoch - second) * 1000)]


_last_second: tuple[int, str] = (-1, "")
"""The last second formatted, and its text."""
_MILLISECONDS = tuple(f"{millisecond:03d}Z" for millisecond in range(1000))


class AuditLog:
    """One run's writer to a chained log, flushing durably off the event loop's thread.

    Args:
        path: the log (created with its folders, mode 0600, when missing).
        heads: the heads file for this log (see :func:`heads_path`).
        run_id: the run every record and checkpoint is tagged with.
        flush_interval: seconds between flushes.
        on_failure: called (from the writer thread) with the error when a write fails.
    """

    def __init__(
        self,
        path: Path,
        heads: Path,
        run_id: str,
        flush_interval: float = 0.05,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.path = path
        self.heads = heads
        self.run_id = run_id
        self.flush_interval = flush_interval
        self.on_failure = on_failure
        self.failed: BaseException | None = None
        self.records = 0
        """Records in the file after the last flush."""
        self.last_hash = GENESIS
        self._first: str | None = None
        """The hash of the log's first line (which log it is); ``None`` while it is empty."""
        self._next_seq = 0
        self._next_prev = GENESIS
        self._pending = bytearray()
        """Lines encoded and not yet written, each with its line break."""
        self._pending_start: tuple[int, str] = (0, GENESIS)
        """The first pending line's ``seq`` and ``prev``: where the pending lines chain on."""
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        """Held through a flush: one that finds another under way waits for it, so that a
        flush returned means every record appended before it is written."""
        self._wake = threading.Event()
        self._closing = False
        self._final = True
        self._checkpointed_final = False
        self._fd = -1
        self._heads_fd = -1
        self._size = 0
        """The log's size after this run's last write: another size means another run wrote."""
        self._least = 0
        """The log's size when this run opened it, then after each of its writes: it only
        grows while the run goes on (another run's write that failed is cut back to where
        that write began, past this); smaller, records were removed from its end."""
        self._broken: BaseException | None = None
        """Why a flush failed: every flush after it fails too (see :meth:`flush`)."""
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Open (or create) the log and its heads file, find the chain's tip, start the writer.

        Raises:
            AirlockError: the log cannot be created or read, its last line is cut short or is
                no record, or it does not hold the furthest checkpoint of its own (it was cut
                short or rewritten since).
        """
        try:
            for folder in (self.path.parent, self.heads.parent):
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = open_for_appending(self.path, "audit log")
            _check_private(self._fd, self.path, "audit log")
            self._heads_fd = open_for_appending(self.heads, "heads file of audit log")
            _check_private(self._heads_fd, self.heads, "heads file of audit log")
            # under the lock, no other run's write is half done, and every checkpoint in the
            # heads file names records already written (a run checkpoints after its write)
            _lock(self._fd, self.path, fcntl.LOCK_EX)
            try:
                self.records, self.last_hash = _tip(self.path)
                self._size = self._least = os.fstat(self._fd).st_size
                if self.records:
                    self._first = _first_line_hash(self.path)
                    self._check_tip(self._first)
                else:
                    with _opened_heads(self.heads) as (source, size):
                        _check_not_emptied(_Heads(source, size, self.heads, self.path))
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._next_seq, self._next_prev = self.records, self.last_hash
        except AirlockError:
            self._close_files()
            raise
        except OSError as error:
            self._close_files()
            raise AirlockError(
                f"audit log {self.path}: cannot be opened for writing ({error.strerror}); "
                "choose another with --audit-log FILE"
            ) from error
        except ValueError as error:
            self._close_files()
            raise AirlockError(
                f"audit log {self.path}: {error}; run 'airlock audit verify --audit-log "
                f"{self.path}', and to start a new log move the file aside, with its heads "
                f"file {self.heads}"
            ) from error
        self._thread = threading.Thread(target=self._run, name=f"audit-log-{self.run_id}")
        self._thread.daemon = True
        self._thread.start()

    def append(self, record: Record) -> None:
        """Chain and encode one record and queue it (no I/O). ``time`` is epoch seconds."""
        record["time"] = iso_time(record["time"])
        with self._lock:
            record["seq"] = self._next_seq
            record["prev"] = self._next_prev
            if not self._pending:
                self._pending_start = (self._next_seq, self._next_prev)
            try:
                line = orjson.dumps(record, default=str)
            except orjson.JSONEncodeError:  # text that is not UTF-8 (a command's file name)
                line = orjson.dumps(_as_text(record), default=str)
            if len(line) > _WRITTEN_BOUND:
                line = _within_bound(record, len(line))
            self._next_prev = hashlib.sha256(line).hexdigest()  # line_hash, without a call
            self._next_seq += 1
            self._pending += line
            self._pending += b"\n"

    def close(self, final: bool = True) -> str:
        """Flush what is pending, write the final checkpoint, stop the writer; the final hash.

        Raises:
            AirlockError: the log could not be written (now or at an earlier flush).
        """
        self._final = final
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.failed is None and not self._checkpointed_final:
            try:
                self._checkpoint(final=final)
            except OSError as error:
                self.failed = error
        self._close_files()
        if self.failed is not None:
            raise AirlockError(
                f"audit log {self.path} could not be written: {self.failed}"
            ) from self.failed
        return self.last_hash

    def _close_files(self) -> None:
        for fd in (self._fd, self._heads_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._heads_fd = -1

    def _check_tip(self, first: str) -> None:
        """Fail unless the heads file vouches for what the log holds (the log whose first line
        hashes to ``first``): see :func:`_check_vouched`.

        Raises:
            ValueError: it was cut short or rewritten since its furthest checkpoint, or it
                holds records no run declared (appended by another program, or the heads file
                lost).
        """
        with _opened_heads(self.heads) as (source, size):
            _check_vouched(
                _Heads(source, size, self.heads, self.path),
                (self.records, self.last_hash),
                lambda head: head.get("first") == first,
            )

    def _check_declared(self, tip: tuple[int, str]) -> None:
        """Fail unless the records another run wrote since this run's last write were declared
        by it in the heads file: a line another program appended meanwhile would otherwise be
        chained on, and vouched for by this run's checkpoint.

        Raises:
            OSError: ``EIO``, saying so.
        """
        first = self._first or _first_line_hash(self.path)
        with _opened_heads(self.heads) as (source, size):
            declared = _declared(
                _Heads(source, size, self.heads, self.path),
                tip,
                lambda head: head.get("first") == first,
            )
        if declared is None:
            raise OSError(
                errno.EIO,
                f"{self.path} holds records since this run's last write ({tip[0]} now) that no "
                f"run declared in {self.heads}: another program appended to it (runs sharing "
                "a log also share its heads file, under the same config dir)",
            )

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            closing = self._closing
            try:
                self.flush(final=closing and self._final)
            except Exception as error:  # whatever it is, no record is written from now on
                self.failed = error
                if self.on_failure is not None:
                    self.on_failure(error)
                return
            if closing:
                return

    def flush(self, final: bool = False) -> None:
        """Check that the log and its heads file are still there; write what is pending,
        ``fsync`` it, then checkpoint (the writer thread calls this at each wake-up); ``final``
        marks the checkpoint as the run's last (one ``fsync`` fewer at the end).

        Under the log's lock, the batch is first *declared* in the heads file (a line with
        ``"intent": true`` naming the record count and last hash it will leave), then written
        and ``fsync``\\ ed, then checkpointed: records a run killed before its checkpoint
        left are told from records another program appended (no declaration names them), by
        the next run and by :func:`verify`; and a ``verify`` reading under the lock finds
        every record written checkpointed or declared.

        A flush after one that failed (in this thread or another) fails too, saying why that
        one did: the records it took are lost, and those after them chain on them.

        Raises:
            OSError: the log or the heads file cannot be written, or is no longer at its path,
                or was cut back, or another run left a last line that is no record, or records
                no run declared; or an earlier flush failed.
        """
        with self._flushing:
            if self._broken is not None:
                raise OSError(
                    errno.EIO,
                    f"an earlier write to {self.path} failed ({self._broken}): nothing more "
                    "is written",
                ) from self._broken
            try:
                self._flush(final)
            except BaseException as error:
                self._broken = error
                raise

    def _flush(self, final: bool) -> None:
        self._still_there()  # also with nothing pending: an open tunnel is recorded at its end
        with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, bytearray()
            first = self._pending_start
            tip = (self._next_seq, self._next_prev)
        _lock(self._fd, self.path, fcntl.LOCK_EX)  # another run may share the log: one at a time
        stale = False
        try:
            self._still_there()  # again: it may have been rotated while this run waited
            self._check_not_cut_back()
            start = first
            if os.fstat(self._fd).st_size != self._size:  # another run wrote since: its tip
                try:
                    start = _tip(self.path)
                except ValueError as error:
                    raise OSError(errno.EIO, f"{self.path}: {error}") from error
                self._check_declared(start)
            if start != first:
                batch, tip = _chained(batch, start)  # another run wrote first: chain on
                with self._lock:
                    stale = bool(self._pending)  # queued meanwhile, on the old tip
                    if not stale:  # the next records chain on from here
                        self._next_seq, self._next_prev = tip
            if self._first is None:  # a new log: its first line is this batch's, or another run's
                self._first = (
                    line_hash(bytes(batch[: batch.index(b"\n")]))
                    if start[0] == 0
                    else _first_line_hash(self.path)
                )
            self._write_head(tip, final=False, intent=True)
            before = os.fstat(self._fd).st_size
            try:
                _write_all(self._fd, batch)
                os.fsync(self._fd)
            except OSError:  # a full disk: no half line left behind, the log stays whole
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, before)
                raise
            self._least = os.fstat(self._fd).st_size
            self._size = -1 if stale else self._least  # -1: read the tip again
            self.records, self.last_hash = tip
            self._checkpoint(final=final)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._checkpointed_final = final

    def _still_there(self) -> None:
        """Fail when the log at :attr:`path`, or its heads file, is no longer the file being
        written (removed, or renamed and replaced): records or checkpoints written on would
        be in no file anyone reads.

        Raises:
            OSError: ``ESTALE``, saying which.
        """
        for fd, path in ((self._fd, self.path), (self._heads_fd, self.heads)):
            opened = os.fstat(fd)
            try:
                now = path.lstat()  # a link put there is not the file being written
            except FileNotFoundError:
                now = None
            same = now is not None and (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)
            if opened.st_nlink == 0 or not same:
                raise LogReplaced(
                    errno.ESTALE,
                    f"{path} was removed or replaced while the run went on (records would go "
                    "into a file no one reads, or go unchecked; 'airlock audit rotate' moves "
                    "a log away: rotate it when no run writes to it)",
                )

    def _check_not_cut_back(self) -> None:
        """Fail when the log is smaller than this run left it (:attr:`_least`): records were
        removed from its end, and the batch would chain on what is left (a tip this run
        checkpointed itself, so one the heads file vouches for) as if another run had written
        it, this run's records since gone without a word until a ``verify``.

        Raises:
            OSError: ``EIO``, saying so.
        """
        size = os.fstat(self._fd).st_size
        if size < self._least:
            raise OSError(
                errno.EIO,
                f"{self.path} is smaller than this run left it ({size} bytes, {self._least} "
                "after its last write): records were removed from its end while the run went on",
            )

    def _checkpoint(self, final: bool) -> None:
        self._write_head((self.records, self.last_hash), final=final)
        os.fsync(self._heads_fd)

    def _write_head(self, tip: tuple[int, str], final: bool, intent: bool = False) -> None:
        """Append a checkpoint of ``tip`` (record count, last hash) to the heads file, or with
        ``intent`` a declaration of it (what the batch about to be written will leave)."""
        head: Record = {
            "run": self.run_id,
            "log": log_key(self.path),
            "records": tip[0],
            "hash": tip[1],
            "first": self._first,
            "final": final,
            "time": iso_time(time.time()),
        }
        if intent:
            head["intent"] = True
        _append_line(self._heads_fd, orjson.dumps(head) + b"\n")


class LogReplaced(OSError):
    """The log or its heads file is no longer the file being written (``ESTALE``). Its text is
    its message alone: the user reads why traffic stopped, not an error number."""

    def __str__(self) -> str:
        return str(self.strerror)


def open_for_appending(path: Path, what: str) -> int:
    """``path`` open for appending, created (mode 0600) when missing; never through a symbolic
    link: one put at the path (by a command that could write its folder, a workspace) would
    have records, with text the command chose, appended to whatever file it names, a shell's
    start-up file say, or a file created where it points.

    Raises:
        AirlockError: ``path`` is a symbolic link.
        OSError: it cannot be opened (a FIFO put there fails at once: ``O_NONBLOCK``).
    """
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP and path.is_symlink():
            raise AirlockError(link_refused(path, what)) from error
        raise


def link_refused(path: Path, what: str) -> str:
    """Why ``path``, a symbolic link, is refused as ``what`` (the audit log, its heads file)."""
    try:
        target = f" (to {path.readlink()})"
    except OSError:
        target = ""
    return (
        f"{what} {path} is a symbolic link{target}: records are never written through one (it "
        "could name any file, a shell's start-up file say); remove the link, or name the file "
        "itself"
    )


def _check_private(fd: int, path: Path, what: str) -> None:
    """Fail unless ``fd`` (open at ``path``) is a regular file of this user's that no one else
    may write: whoever else could write it could forge records (or checkpoints) in it.

    Raises:
        AirlockError: no regular file, owned by another user, or writable by its group or by
            others.
    """
    found = os.fstat(fd)
    if not stat.S_ISREG(found.st_mode):
        raise AirlockError(
            f"{what} {path} is not a regular file (a device or a folder): records written there "
            "are lost; choose another with --audit-log FILE"
        )
    problem = _others_may_write(found, os.geteuid())
    if problem is not None:
        raise AirlockError(
            f"{what} {path} {problem}: whoever else can write it could forge what it holds; "
            "make it yours and private (chown, chmod 600), or choose another with --audit-log "
            "FILE"
        )


def _others_may_write(found: os.stat_result, owner: int) -> str | None:
    """Why someone besides user ``owner`` may have written the file ``found`` describes (it is
    another user's, or its group or others may write it), or ``None``."""
    if found.st_uid != owner:
        return f"is owned by another user (uid {found.st_uid})"
    if found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"may be written by its group or by others (mode {stat.filemode(found.st_mode)})"
    return None


_WRITTEN_BOUND = MAX_RECORD - 256
"""The longest line :meth:`AuditLog.append` writes: one chained again on another run's records
(:func:`_chained`) may take a few bytes more for its ``seq``."""


def _within_bound(record: Record, size: int) -> bytes:
    """``record`` (``size`` bytes encoded, past :data:`_WRITTEN_BOUND`) encoded within it: each
    field taking more than a sixteenth of that is left out, a note in its place saying how
    long it was; if that is not enough, every field but its chain, its type, run and time.
    Readers take no longer line whole (:data:`MAX_RECORD`), and the run's records go on."""
    kept: Record = {}
    for key, value in record.items():
        length = len(_encoded(value))
        if length > _WRITTEN_BOUND // 16 and key not in ("seq", "prev"):
            value = (
                f"[left out: {length} bytes, past the audit log's bound on a record "
                f"({MAX_RECORD} bytes)]"
            )
        kept[key] = value
    line = _encoded(kept)
    if len(line) <= _WRITTEN_BOUND:
        return line
    named = {
        key: record[key]
        for key in ("type", "run", "time")
        if key in record and len(_encoded(record[key])) <= 1024
    }
    return _encoded(
        {
            **named,
            "left_out": f"every field: the record took {size} bytes, past the audit log's bound "
            f"on a record ({MAX_RECORD} bytes)",
            "seq": record["seq"],
            "prev": record["prev"],
        }
    )


def _encoded(value: Any) -> bytes:
    """``value`` in JSON; text that is not UTF-8 with escapes (:func:`_as_text`)."""
    try:
        return orjson.dumps(value, default=str)
    except orjson.JSONEncodeError:
        return orjson.dumps(_as_text(value), default=str)


def _chained(batch: bytes | bytearray, start: tuple[int, str]) -> tuple[bytearray, tuple[int, str]]:
    """The lines of ``batch`` chained again from ``start`` (the log's record count and last
    hash, as another run left them), encoded; and the tip after them. (Only when runs share a
    log: each line is read back, so the usual path keeps no record objects.)"""
    seq, prev = start
    out = bytearray()
    for text in bytes(batch).splitlines():
        record = orjson.loads(text)
        record["seq"], record["prev"] = seq, prev
        line = orjson.dumps(record, default=str)
        prev = line_hash(line)
        seq += 1
        out += line
        out += b"\n"
    return out, (seq, prev)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _append_line(fd: int, line: bytes) -> None:
    """Append ``line`` to the file ``fd`` (opened ``O_APPEND``) whole or not at all: cut short
    (a full disk, a size limit), what it wrote is cut back off when nothing came after it, so
    that the next line another run appends does not join it into one that is no line (its
    declaration lost).

    Raises:
        OSError: it could not be written whole (the system's error).
    """
    view = memoryview(line)
    written = 0
    try:
        while written < len(line):
            written += os.write(fd, view[written:])
    except OSError:
        if written:
            end = os.lseek(fd, 0, os.SEEK_CUR)  # after the bytes written
            if os.fstat(fd).st_size == end:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, end - written)
        raise


def _tip(path: Path) -> tuple[int, str]:
    """How many records ``path`` holds and the hash of its last line.

    Raises:
        ValueError: the file does not end with a line break (a cut-short write), or its last
            line is no record (a JSON object with a whole number ``seq`` and a ``prev`` hash,
            no longer than :data:`MAX_RECORD`: a longer one is not read whole).
    """
    size = path.stat().st_size
    if size == 0:
        return 0, GENESIS
    with path.open("rb") as handle:
        handle.seek(size - 1)
        if handle.read(1) != b"\n":
            raise ValueError("its last line is cut short (no line break at the end)")
        blocks: list[bytes] = []  # read backwards; newlines counted in each new block only
        breaks = 0
        position = size
        while position > 0 and breaks < 2 and size - position < MAX_RECORD + 2:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            blocks.append(handle.read(step))
            breaks += blocks[-1].count(b"\n")
    data = b"".join(reversed(blocks))
    del blocks
    start = data.rfind(b"\n", 0, len(data) - 1) + 1  # where the last line begins
    too_long = len(data) - 1 - start > MAX_RECORD or (start == 0 and position > 0)
    last = b"" if too_long else data[start:-1]
    del data
    record = None if too_long else _loads(last)
    if too_long:
        wrong = f"longer than any record a run writes, {MAX_RECORD} bytes"
    elif not isinstance(record, dict):
        wrong = "not a JSON object"
    elif type(record.get("seq")) is not int or record["seq"] < 0:
        wrong = 'no whole number "seq"'
    elif not isinstance(record.get("prev"), str) or not _HASH.fullmatch(record["prev"]):
        wrong = 'no "prev" hash'
    else:
        return record["seq"] + 1, line_hash(last)
    with path.open("rb") as handle:
        number = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
    raise ValueError(f"its last line (line {number}) is no audit record ({wrong})")


def _first_line_hash(path: Path) -> str:
    """The hash of the first line of ``path`` (which log it is), read a piece at a time: a
    line of any length costs a megabyte."""
    digest = hashlib.sha256()
    with _open_for_reading(path) as handle:
        for piece in iter(lambda: handle.readline(1 << 20), b""):
            if piece.endswith(b"\n"):
                digest.update(piece[:-1])
                break
            digest.update(piece)
    return digest.hexdigest()


def _line_hash_at(path: Path, index: int) -> str | None:
    """The hash of line ``index`` (from 0) of ``path``; ``None`` when it has fewer lines, or
    that one is longer than any record."""
    with _open_for_reading(path) as handle:
        for number, (line, _, _) in enumerate(_bounded_lines(handle)):
            if number == index:
                return None if line is None else line_hash(line)
    return None


# ---------------------------------------------------------------------------------------------
# Reading and verifying


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


def _open_for_reading(path: Path, follow: bool = True) -> BinaryIO:
    """``path`` open for reading, when it is a regular file (a FIFO is opened without waiting
    for a writer, then refused); not through a symbolic link unless ``follow``.

    Raises:
        OSError: it cannot be opened, or it is no regular file (``ELOOP``: a link, not
            followed).
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    fd = os.open(path, flags if follow else flags | os.O_NOFOLLOW)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file (a FIFO, a device or a folder)", str(path))
    return os.fdopen(fd, "rb")


def _bounded_lines(
    handle: BinaryIO, size: int | None = None, limit: int = MAX_RECORD
) -> Iterator[tuple[bytes | None, bool, int]]:
    """Each line of ``handle`` from where it stands (within its next ``size`` bytes when
    given), without its line break: the line, or ``None`` when it is longer than ``limit``
    (its bytes dropped as they come, never held whole: a file of one endless line costs
    ``limit``, not its size); whether it had a line break; and the bytes it took.

    The file is read :data:`_BLOCK` bytes at a time and each block split at its line breaks:
    cheaper than asking for one line at a time (a log of a million lines)."""
    read = handle.read
    left = -1 if size is None else size  # -1: up to the end of the file
    begun: list[bytes] = []  # the start of a line that goes on in the next block
    held = 0  # its length
    dropped = False  # it is longer than ``limit``: only its length is kept
    while left:
        block = read(_BLOCK if left < 0 or left > _BLOCK else left)
        if not block:
            break
        if left > 0:
            left -= len(block)
        lines = block.split(b"\n")
        rest = lines.pop()  # after the last line break: the start of the next line
        if lines and held:  # the first ends the line begun before
            end = lines[0]
            taken = held + len(end) + 1
            if dropped or taken > limit + 1:
                yield None, True, taken
            else:
                yield b"".join(begun) + end, True, taken
            begun, held, dropped = [], 0, False
            lines = lines[1:]
        for line in lines:
            if len(line) > limit:
                yield None, True, len(line) + 1
            else:
                yield line, True, len(line) + 1
        if rest:
            held += len(rest)
            if held > limit:
                begun, dropped = [], True
            elif not dropped:
                begun.append(rest)
    if held:  # the last line, without its line break
        yield (None if dropped else b"".join(begun)), False, held


_BLOCK = 256 * 1024
"""Bytes :func:`_bounded_lines` reads at a time (split, a block of blank lines is a list of
as many empty lines: a quarter of a megabyte makes two megabytes of list)."""


_BAD_JSON = object()
"""What :func:`_loads` gives for a line that holds no JSON."""


def _loads(line: bytes | None) -> object:
    """What ``line`` holds, decoded; :data:`_BAD_JSON` when it is no JSON, or no line (longer
    than any record). A blank line is none without asking the decoder: its error costs more
    than reading the line (a file of blank lines)."""
    if not line:
        return _BAD_JSON
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return _BAD_JSON


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
    with _open_for_reading(path) as handle:
        for number, (line, _, _) in enumerate(_bounded_lines(handle), start=1):
            record = _loads(line)
            if isinstance(record, dict):
                yield record
            elif skipped is not None:
                skipped.add(number)


def _size_and_heads(
    fd: int, path: Path, heads: Path, stack: contextlib.ExitStack[Any]
) -> tuple[int, BinaryIO | None, int] | str:
    """The log's size and its heads file opened (kept open by ``stack``), taken together under
    a shared lock on the log, held a moment; or why the heads file cannot vouch for the log
    (:func:`_unsafe_heads`: asked first, so that one that is no regular file is named as the
    heads file, not opened)."""
    unsafe = _unsafe_heads(heads, os.fstat(fd).st_uid)
    if unsafe is not None:
        return unsafe
    _lock(fd, path)
    try:
        size = os.fstat(fd).st_size
        source, heads_size = stack.enter_context(_opened_heads(heads))
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
    return size, source, heads_size


@contextlib.contextmanager
def _opened_heads(heads: Path) -> Iterator[tuple[BinaryIO | None, int]]:
    """``heads`` open for reading, and its size now; ``None`` and 0 when it is missing.

    Raises:
        OSError: it cannot be read, or it is no regular file.
    """
    try:
        handle = _open_for_reading(heads)
    except FileNotFoundError:
        yield None, 0
        return
    with handle:
        yield handle, os.fstat(handle.fileno()).st_size


@dataclass(frozen=True, slots=True)
class _Heads:
    """A heads file being read for ``log``: open (``None`` when it is missing), and the bytes
    it held when opened (under the log's lock: what runs had written by then; a line a run
    appends afterwards is not read)."""

    handle: BinaryIO | None
    size: int
    path: Path
    log: Path

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[Record]:
        """The checkpoints and declarations of the log from byte ``start`` (at a line's start)
        to ``end`` (the size when opened), in order, read one at a time (a line that is
        neither is skipped)."""
        end = self.size if end is None else end
        if self.handle is None or start >= end:
            return
        self.handle.seek(start)
        lines = _bounded_lines(self.handle, end - start, _MAX_HEAD_LINE)
        yield from _entries(map(itemgetter(0), lines), self.log)

    def tail(self) -> tuple[list[Record], bool]:
        """The checkpoints and declarations of the log in the last :data:`_HEADS_TAIL` bytes,
        and whether the file holds more before them."""
        if self.handle is None:
            return [], False
        start = max(0, self.size - _HEADS_TAIL)
        self.handle.seek(max(0, start - 1))  # from the line break before, if the tail starts a line
        lines = self.handle.read(self.size - max(0, start - 1)).split(b"\n")
        if start:
            lines = lines[1:]  # a part of a line (or nothing, before that line break)
        return list(_entries(lines, self.log)), start > 0


def read_heads(heads: Path, log: Path) -> list[Record]:
    """The checkpoints of ``log`` in ``heads``, in order (none when the file is missing);
    declarations (``intent``) left out. All at once: :func:`verify` and the rest read them
    one at a time (two lines a batch: a heads file outgrows its log)."""
    with _opened_heads(heads) as (source, size):
        return [head for head in _Heads(source, size, heads, log).entries() if not _intent(head)]


def holds_checkpoints(heads: Path, log: Path) -> bool:
    """Whether ``heads`` holds a checkpoint of records in ``log`` (its lines read one at a
    time).

    Raises:
        OSError: it cannot be read, or it is no regular file.
    """
    with _opened_heads(heads) as (source, size):
        return any(
            head["records"] and not _intent(head)
            for head in _Heads(source, size, heads, log).entries()
        )


def _intent(head: Record) -> bool:
    """Whether a heads entry is a declaration (what a batch about to be written will leave)."""
    return head.get("intent") is True


def _recent(
    heads: _Heads, wanted: Callable[[Record], bool], furthest: bool = False
) -> Record | None:
    """The last checkpoint or declaration of the log that is ``wanted`` (with ``furthest``, the
    one with the most records, the first of those): among those in the heads file's last
    :data:`_HEADS_TAIL` bytes, or, when they hold none, in all of it, read one at a time (what
    is looked for was written last, or nearly: the log only grows)."""
    tail, more = heads.tail()
    found = _pick(tail, wanted, furthest)
    if found is None and more:
        found = _pick(heads.entries(), wanted, furthest)
    return found


def _pick(
    entries: Iterable[Record], wanted: Callable[[Record], bool], furthest: bool
) -> Record | None:
    """The last entry that is ``wanted``, or with ``furthest`` the first of those with the
    most records."""
    found = None
    for head in entries:
        if wanted(head) and (found is None or not furthest or head["records"] > found["records"]):
            found = head
    return found


def _check_vouched(heads: _Heads, tip: tuple[int, str], own: Callable[[Record], bool]) -> None:
    """Fail unless ``heads`` vouches for what its log holds, ``tip`` (its record count and the
    hash of its last record): the log holds the furthest checkpoint of its own (``own``: an
    entry of this log, not of another once at its path), and the records after it, if any,
    were declared by the run that wrote them (one killed between its write and its
    checkpoint). A chain intact up to a checkpoint that matches is the one its run wrote.

    Raises:
        ValueError: it was cut short or rewritten since that checkpoint, or it holds records
            no run declared (appended by another program, or the heads file lost).
    """
    records, last_hash = tip
    head = _recent(heads, lambda head: own(head) and not _intent(head), furthest=True)
    count = 0 if head is None else int(head["records"])
    if head is not None and count:
        if count == records:
            held = head["hash"] == last_hash
        else:
            held = count < records and _line_hash_at(heads.log, count - 1) == head["hash"]
        if not held:
            raise ValueError(
                f"it does not hold what run {head['run']} checkpointed ({count} records, "
                f"the last hashing {head['hash']}): it was cut short or rewritten since"
            )
    if count == records or _declared(heads, tip, own):
        return
    if head is None:
        raise ValueError(
            f"{heads.path} holds no checkpoint of its {records} records: they cannot be "
            "vouched for (written by a run with another config dir, $CLAUDE_CONFIG_DIR: runs "
            "sharing a log must share it; or by another program; or the heads file was "
            "removed)"
        )
    raise ValueError(
        f"records {count} to {records - 1} come after its last checkpoint (run "
        f"{head['run']}, {count} records) and no run declared the log ending there: "
        "appended by another program, or a run's write was cut short at a line's end"
    )


def _check_not_emptied(heads: _Heads) -> None:
    """Fail when the log holds no record but ``heads`` holds a checkpoint of records in it: it
    was removed or emptied since (by a command that could write it, a log in a workspace),
    and a run would start a new one over the loss without a word.

    Raises:
        ValueError: naming the checkpoint.
    """
    head = _recent(heads, lambda head: not _intent(head) and head["records"] > 0)
    if head is not None:
        raise ValueError(
            f"it holds no record, but run {head['run']} checkpointed {head['records']} in it: "
            "it was removed or emptied since"
        )


def _declared(heads: _Heads, tip: tuple[int, str], own: Callable[[Record], bool]) -> Record | None:
    """The checkpoint or declaration of the log (``own``: of this log, not of another once at
    its path) that names ``tip`` (its record count and last hash), the latest one; ``None``
    when none does. It was written last or nearly (under the log's lock, by the run that
    wrote the records): the heads file's tail is read, and all of it only when that holds
    none."""
    count, digest = tip
    return _recent(
        heads, lambda head: head["records"] == count and head["hash"] == digest and own(head)
    )


def _entries(lines: Iterable[bytes | None], log: Path) -> Iterator[Record]:
    """The checkpoints and declarations of ``log`` among ``lines``, one at a time (a line that
    is neither, or ``None``, is skipped)."""
    wanted = (log_key(log), str(log.expanduser().absolute()))  # as runs named it before too
    loads = orjson.loads
    for line in lines:
        if not line:
            continue
        try:
            head = loads(line)
        except orjson.JSONDecodeError:
            continue
        if (
            isinstance(head, dict)
            and head.get("log") in wanted
            and type(head.get("records")) is int
            and head["records"] >= 0
            and isinstance(head.get("hash"), str)
            and isinstance(head.get("run"), str)
        ):
            yield head


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
    first = _first_line_hash(log) if before else None
    with _opened_heads(heads) as (source, size), _open_for_reading(log) as handle:
        moving = _Heads(source, size, heads, log)

        def fill(out: IO[bytes]) -> None:
            _copy_heads(moving, 0, size, to, first, out)
            sync_file(out)  # before the lock: what is left to sync under it is the lines since
            _lock(handle.fileno(), log, fcntl.LOCK_EX)
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
    heads: _Heads, start: int, end: int, to: Path, first: str | None, out: IO[bytes]
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
        self._handle = _open_for_reading(path)
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
        for number, (line, ended, taken) in enumerate(_bounded_lines(self._handle), start=1):
            self._read += taken
            record = _loads(line)
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
                :data:`LOCK_WAIT` seconds.
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
                for line, ended, taken in _bounded_lines(self._handle, size - self._end):
                    self._check(line, ended, taken, _loads(line), last=True)
                    if self._problem is not None:
                        break
            if self._problem is not None:
                return self._problem
            read = _Heads(source, heads_size, heads, self.path)
            first = self._first
            try:
                if self._count:
                    own = _Tally(first).is_own
                    _check_vouched(read, (self._count, self._prev), own)
                else:
                    _check_not_emptied(read)
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


LOCK_WAIT = 10.0
"""Seconds a run or :func:`verify` waits for the log's lock (another run writing a batch)."""


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
        OSError: either file cannot be read, or the log stays locked :data:`LOCK_WAIT` seconds.
    """
    if path.is_symlink():
        return Verdict(0, 0, link_refused(path, "the log path"))
    try:
        handle = _open_for_reading(path, follow=False)
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
        found = _Verification(handle, size, _Heads(source, heads_size, heads, path), final_hash)
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
            for number, (line, _, _) in enumerate(_bounded_lines(self.handle, self.size)):
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
        self, handle: BinaryIO, size: int, heads: _Heads, final_hash: str | None = None
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
        lines = _bounded_lines(self.handle, self.size)
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
            record = _loads(line)
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
        for index, (line, _, _) in enumerate(_bounded_lines(self.handle, self.size)):
            if index > number:
                break
            record = _loads(line)
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
        found = _pick(
            self.heads.entries(),
            lambda head: (
                _intent(head)
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
    with _opened_heads(heads) as (source, size):
        furthest = _pick(
            _Heads(source, size, heads, path).entries(),
            lambda head: not _intent(head) and head["records"] > 0,
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
    (:func:`open_for_appending`, :func:`_check_private`), and verify does not trust them
    either."""
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
    problem = _others_may_write(found, owner)
    if problem is None:
        return None
    return (
        f"the heads file {heads} {problem}, the log's owner being uid {owner}: its "
        "checkpoints cannot vouch for the log"
    )


def _lock(fd: int, path: Path, kind: int = fcntl.LOCK_SH) -> None:
    """Take a lock on the log (shared, or ``LOCK_EX``), waiting at most :data:`LOCK_WAIT`
    seconds: a process that holds it longer (a run's writes take it for a moment) would
    otherwise keep records from the disk, or a run from starting, for as long as it likes.

    Raises:
        OSError: still locked then.
    """
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, kind | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise OSError(
                    errno.EAGAIN,
                    f"another process held it locked for over {LOCK_WAIT:g} seconds",
                    str(path),
                ) from None
            time.sleep(0.02)


def _place(number: int, record: object = None) -> str:
    """Where record ``number`` (``seq``, from 0) is, in words: its line in the file (from 1,
    as an editor and the listing count them) and, when ``record`` is one that names it, its
    run: ``record 7 (line 8, run 20261205T101027Z-7527)``."""
    run = record.get("run") if isinstance(record, dict) else None
    return f"record {number} (line {number + 1}" + (
        f", run {run})" if isinstance(run, str) else ")"
    )


def _record_problem(line: bytes | None, record: object, seq: int, prev: str) -> str | None:
    """What is wrong with ``line`` (``record``: what it holds, :func:`_loads`) as record
    ``seq`` of a chain whose last hash is ``prev``; ``None`` when nothing is."""
    if line is None:
        return f"its line is longer than any record a run writes ({MAX_RECORD} bytes)"
    if record is _BAD_JSON:
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


def _as_text(value: Any) -> Any:
    """``value`` with each string that is not valid UTF-8 (lone surrogates: bytes of a file
    name or an argument that are not UTF-8, as Python decodes them) written with ``\\x``
    escapes for those bytes, so the record can be encoded; the rest as it is."""
    if isinstance(value, str):
        try:
            raw = value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a surrogate no byte decodes to: written as \\udXXX
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    if isinstance(value, dict):
        return {_as_text(key): _as_text(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_text(item) for item in value]
    return value
