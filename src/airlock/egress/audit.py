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
:func:`~.audit_read.verify` flags one. So:

* an edited, removed, inserted or reordered line breaks the chain at the first bad record;
* a log rewritten from scratch, or cut short, no longer matches the heads file: every
  checkpoint (and declaration) of this log must match it, and one of another log (``first``
  not this log's first line's hash) is named as such; a run does not append to a log that no
  longer holds the furthest checkpoint of its own;
* a record past the furthest checkpoint is caught, unless a run declared it (one killed
  between its write and its checkpoint: :func:`~.audit_read.verify` notes it). A run never chains on
  records no run declared (appended by another program, or a heads file removed): it refuses
  the log at its start, and stops (traffic with it) when they appear while it runs;
* two runs may share a log (two agents in two terminals): each writes its batch under a lock
  on the file, and when another run wrote since its last batch (and declared it), its
  pending lines are chained again on what that run left (read back from the file's end), so
  the log stays one chain; :func:`~.audit_read.verify` reads the heads file and the log's size
  under a shared lock, so a batch being written is not taken for tampering;
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
run anyway). A log whose last line is cut short (a crash in the middle of a write) or is no
record is never appended to: :func:`~.audit_read.verify` says where it is broken.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from airlock.errors import AirlockError

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
        self.appended = 0
        """Bytes of the records this run appended (their lines with their breaks), written or
        still pending: what the proxy holds to its cap on one run's records
        (:attr:`~airlock.egress.config.Limits.max_log_bytes`)."""
        self.last_hash = GENESIS
        self._first: str | None = None
        """The hash of the log's first line (which log it is); ``None`` while it is empty."""
        self._key = log_key(path)
        """The log's real path, as its heads file's entries name it (:func:`log_key`): taken
        again when it is opened, then kept (not looked up again for every entry)."""
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
            self._key = log_key(self.path)  # the file opened: its folders are there now
            self._heads_fd = open_for_appending(self.heads, "heads file of audit log")
            _check_private(self._heads_fd, self.heads, "heads file of audit log")
            # under the lock, no other run's write is half done, and every checkpoint in the
            # heads file names records already written (a run checkpoints after its write)
            lock_log(self._fd, self.path, fcntl.LOCK_EX)
            try:
                self.records, self.last_hash = _tip(self.path)
                self._size = self._least = os.fstat(self._fd).st_size
                if self.records:
                    self._first = first_line_hash(self.path)
                    self._check_tip(self._first)
                else:
                    with opened_heads(self.heads) as (source, size):
                        check_not_emptied(Heads(source, size, self.heads, self.path))
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
            self.appended += len(line) + 1

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
        hashes to ``first``): see :func:`check_vouched`.

        Raises:
            ValueError: it was cut short or rewritten since its furthest checkpoint, or it
                holds records no run declared (appended by another program, or the heads file
                lost).
        """
        with opened_heads(self.heads) as (source, size):
            check_vouched(
                Heads(source, size, self.heads, self.path),
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
        first = self._first or first_line_hash(self.path)
        with opened_heads(self.heads) as (source, size):
            declared = _declared(
                Heads(source, size, self.heads, self.path),
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
        the next run and by :func:`~.audit_read.verify`; and a ``verify`` reading under the lock
        finds every record written checkpointed or declared.

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
        # Each system call here hands the interpreter's lock back to the proxy's busy loop and
        # waits to take it again: a flush makes no call it does not need.
        with self._lock:
            batch, self._pending = self._pending, bytearray()
            first = self._pending_start
            tip = (self._next_seq, self._next_prev)
        if not batch:
            self._still_there()  # with nothing pending too: an open tunnel is recorded at its end
            return
        lock_log(self._fd, self.path, fcntl.LOCK_EX)  # another run may share the log: one at a time
        stale = False
        try:
            self._still_there()  # under the lock: it may have been rotated while this run waited
            size = os.fstat(self._fd).st_size
            self._check_not_cut_back(size)
            start = first
            if size != self._size:  # another run wrote since: its tip
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
                    else first_line_hash(self.path)
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

    def _check_not_cut_back(self, size: int) -> None:
        """Fail when the log (``size`` bytes now) is smaller than this run left it
        (:attr:`_least`): records were removed from its end, and the batch would chain on what
        is left (a tip this run checkpointed itself, so one the heads file vouches for) as if
        another run had written it, this run's records since gone without a word until a
        ``verify``.

        Raises:
            OSError: ``EIO``, saying so.
        """
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
            "log": self._key,
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
    problem = others_may_write(found, os.geteuid())
    if problem is not None:
        raise AirlockError(
            f"{what} {path} {problem}: whoever else can write it could forge what it holds; "
            "make it yours and private (chown, chmod 600), or choose another with --audit-log "
            "FILE"
        )


def others_may_write(found: os.stat_result, owner: int) -> str | None:
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
    record = None if too_long else load_line(last)
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


def first_line_hash(path: Path) -> str:
    """The hash of the first line of ``path`` (which log it is), read a piece at a time: a
    line of any length costs a megabyte."""
    digest = hashlib.sha256()
    with open_for_reading(path) as handle:
        for piece in iter(lambda: handle.readline(1 << 20), b""):
            if piece.endswith(b"\n"):
                digest.update(piece[:-1])
                break
            digest.update(piece)
    return digest.hexdigest()


def _line_hash_at(path: Path, index: int) -> str | None:
    """The hash of line ``index`` (from 0) of ``path``; ``None`` when it has fewer lines, or
    that one is longer than any record."""
    with open_for_reading(path) as handle:
        for number, (line, _, _) in enumerate(bounded_lines(handle)):
            if number == index:
                return None if line is None else line_hash(line)
    return None


def open_for_reading(path: Path, follow: bool = True) -> BinaryIO:
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


def bounded_lines(
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
"""Bytes :func:`bounded_lines` reads at a time (split, a block of blank lines is a list of
as many empty lines: a quarter of a megabyte makes two megabytes of list)."""


BAD_JSON = object()
"""What :func:`load_line` gives for a line that holds no JSON."""


def load_line(line: bytes | None) -> object:
    """What ``line`` holds, decoded; :data:`BAD_JSON` when it is no JSON, or no line (longer
    than any record). A blank line is none without asking the decoder: its error costs more
    than reading the line (a file of blank lines)."""
    if not line:
        return BAD_JSON
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return BAD_JSON


@contextlib.contextmanager
def opened_heads(heads: Path) -> Iterator[tuple[BinaryIO | None, int]]:
    """``heads`` open for reading, and its size now; ``None`` and 0 when it is missing.

    Raises:
        OSError: it cannot be read, or it is no regular file.
    """
    try:
        handle = open_for_reading(heads)
    except FileNotFoundError:
        yield None, 0
        return
    with handle:
        yield handle, os.fstat(handle.fileno()).st_size


@dataclass(frozen=True, slots=True)
class Heads:
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
        lines = bounded_lines(self.handle, end - start, _MAX_HEAD_LINE)
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


def is_intent(head: Record) -> bool:
    """Whether a heads entry is a declaration (what a batch about to be written will leave)."""
    return head.get("intent") is True


def _recent(
    heads: Heads, wanted: Callable[[Record], bool], furthest: bool = False
) -> Record | None:
    """The last checkpoint or declaration of the log that is ``wanted`` (with ``furthest``, the
    one with the most records, the first of those): among those in the heads file's last
    :data:`_HEADS_TAIL` bytes, or, when they hold none, in all of it, read one at a time (what
    is looked for was written last, or nearly: the log only grows)."""
    tail, more = heads.tail()
    found = pick_entry(tail, wanted, furthest)
    if found is None and more:
        found = pick_entry(heads.entries(), wanted, furthest)
    return found


def pick_entry(
    entries: Iterable[Record], wanted: Callable[[Record], bool], furthest: bool
) -> Record | None:
    """The last entry that is ``wanted``, or with ``furthest`` the first of those with the
    most records."""
    found = None
    for head in entries:
        if wanted(head) and (found is None or not furthest or head["records"] > found["records"]):
            found = head
    return found


def check_vouched(heads: Heads, tip: tuple[int, str], own: Callable[[Record], bool]) -> None:
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
    head = _recent(heads, lambda head: own(head) and not is_intent(head), furthest=True)
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


def check_not_emptied(heads: Heads) -> None:
    """Fail when the log holds no record but ``heads`` holds a checkpoint of records in it: it
    was removed or emptied since (by a command that could write it, a log in a workspace),
    and a run would start a new one over the loss without a word.

    Raises:
        ValueError: naming the checkpoint.
    """
    head = _recent(heads, lambda head: not is_intent(head) and head["records"] > 0)
    if head is not None:
        raise ValueError(
            f"it holds no record, but run {head['run']} checkpointed {head['records']} in it: "
            "it was removed or emptied since"
        )


def _declared(heads: Heads, tip: tuple[int, str], own: Callable[[Record], bool]) -> Record | None:
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


LOCK_WAIT = 10.0
"""Seconds a run or :func:`~.audit_read.verify` waits for the log's lock (another run writing a
batch)."""


def lock_log(fd: int, path: Path, kind: int = fcntl.LOCK_SH) -> None:
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
