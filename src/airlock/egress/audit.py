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
  traffic at the writer's next wake-up, records pending or not; one another user owns, or
  that others may write, is refused at the start;
* a record of a connection that finished before a flush is on disk once that flush is done,
  whatever happens to the process afterwards (``kill -9`` included).

If the log or the heads file cannot be written, or anything else goes wrong in the writer
(a last line another program appended that is no record, say), the writer stops, keeps the
error in :attr:`AuditLog.failed` and calls ``on_failure``: the proxy then stops all traffic
(fail closed), and no final checkpoint is written. A log whose last line is cut short (a
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
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from airlock._atomic import replace_file
from airlock.errors import AirlockError, UsageError

GENESIS = "0" * 64
"""The ``prev`` of a log's first record."""
FOLDER = "airlock"
LOG_NAME = "audit.jsonl"
HEADS_FOLDER = "audit-heads"
_HEADS_TAIL = 256 * 1024
"""Bytes read from the end of a heads file for a log's furthest checkpoint at a run's start."""
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
        self._wake = threading.Event()
        self._closing = False
        self._final = True
        self._checkpointed_final = False
        self._fd = -1
        self._heads_fd = -1
        self._size = 0
        """The log's size after this run's last write: another size means another run wrote."""
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
                self._size = os.fstat(self._fd).st_size
                if self.records:
                    self._first = _first_line_hash(self.path)
                    self._check_tip(self._first)
                else:
                    _check_not_emptied(self.heads, self.path)
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
        hashes to ``first``): it holds the furthest checkpoint of its own, and the records
        after it, if any, were declared by the run that wrote them (one killed between its
        write and its checkpoint).

        Raises:
            ValueError: it was cut short or rewritten since that checkpoint, or it holds
                records no run declared (appended by another program, or the heads file lost).
        """
        head = _furthest_checkpoint(self.heads, self.path, first)
        count = 0 if head is None else int(head["records"])
        if head is not None:
            if count == self.records:
                held = head["hash"] == self.last_hash
            else:
                held = count < self.records and _line_hash_at(self.path, count - 1) == head["hash"]
            if not held:
                raise ValueError(
                    f"it does not hold what run {head['run']} checkpointed ({count} records, "
                    f"the last hashing {head['hash']}): it was cut short or rewritten since"
                )
        if count == self.records or _declared(
            self.heads, self.path, first, (self.records, self.last_hash)
        ):
            return
        if head is None:
            raise ValueError(
                f"{self.heads} holds no checkpoint of its {self.records} records: they cannot "
                "be vouched for (written by a run with another config dir, $CLAUDE_CONFIG_DIR: "
                "runs sharing a log must share it; or by another program; or the heads file "
                "was removed)"
            )
        raise ValueError(
            f"records {count} to {self.records - 1} come after its last checkpoint (run "
            f"{head['run']}, {count} records) and no run declared the log ending there: "
            "appended by another program, or a run's write was cut short at a line's end"
        )

    def _check_declared(self, tip: tuple[int, str]) -> None:
        """Fail unless the records another run wrote since this run's last write were declared
        by it in the heads file: a line another program appended meanwhile would otherwise be
        chained on, and vouched for by this run's checkpoint.

        Raises:
            OSError: ``EIO``, saying so.
        """
        first = self._first or _first_line_hash(self.path)
        if _declared(self.heads, self.path, first, tip) is None:
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

        Raises:
            OSError: the log or the heads file cannot be written, or is no longer at its path,
                or another run left a last line that is no record, or records no run declared.
        """
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
            self._size = -1 if stale else os.fstat(self._fd).st_size  # -1: read the tip again
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
                raise OSError(
                    errno.ESTALE,
                    f"{path} was removed or replaced while the run went on (records would go "
                    "into a file no one reads, or go unchecked)",
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
            line is no record (a JSON object with a whole number ``seq`` and a ``prev`` hash).
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
        while position > 0 and breaks < 2:
            step = min(65536, position)
            position -= step
            handle.seek(position)
            blocks.append(handle.read(step))
            breaks += blocks[-1].count(b"\n")
    last = b"".join(reversed(blocks))[:-1].rsplit(b"\n", 1)[-1]
    try:
        record = orjson.loads(last)
    except orjson.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
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
    """The hash of the first line of ``path`` (which log it is)."""
    with _open_for_reading(path) as handle:
        return line_hash(handle.readline().rstrip(b"\n"))


def _line_hash_at(path: Path, index: int) -> str | None:
    """The hash of line ``index`` (from 0) of ``path``; ``None`` when it has fewer lines."""
    for number, line in enumerate(read_lines(path)):
        if number == index:
            return line_hash(line)
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


def read_lines(path: Path) -> Iterator[bytes]:
    """Each line of ``path``, without its line break (a last line without one included).

    Raises:
        OSError: it cannot be read, or it is no regular file.
    """
    with _open_for_reading(path) as handle:
        for raw in handle:
            yield raw[:-1] if raw.endswith(b"\n") else raw


def read_records(path: Path, skipped: list[int] | None = None) -> Iterator[Record]:
    """Each record of the log, decoded; a line that is not a JSON object is skipped, and its
    number (from 1) added to ``skipped`` when given (``airlock audit`` names them)."""
    for number, line in enumerate(read_lines(path), start=1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = None
        if isinstance(record, dict):
            yield record
        elif skipped is not None:
            skipped.append(number)


def read_heads(heads: Path, log: Path) -> list[Record]:
    """The checkpoints of ``log`` in ``heads``, in order (none when the file is missing);
    declarations (``intent``) left out."""
    return [head for head in _all_entries(heads, log) if head.get("intent") is not True]


def _all_entries(heads: Path, log: Path) -> list[Record]:
    """Every checkpoint and declaration of ``log`` in ``heads``, in order."""
    if not heads.exists():
        return []
    return _entries(read_lines(heads), log)


def _tail_entries(heads: Path, log: Path) -> tuple[list[Record], bool]:
    """The checkpoints and declarations of ``log`` in the last :data:`_HEADS_TAIL` bytes of
    ``heads``, and whether the file holds more before them."""
    if not heads.exists():
        return [], False
    with _open_for_reading(heads) as handle:
        start = max(0, os.fstat(handle.fileno()).st_size - _HEADS_TAIL)
        handle.seek(max(0, start - 1))  # from the line break before, if the tail starts a line
        lines = handle.read().split(b"\n")
    if start:
        lines = lines[1:]  # a part of a line (or nothing, before that line break)
    return _entries(lines, log), start > 0


def _furthest_checkpoint(heads: Path, log: Path, first: str) -> Record | None:
    """The checkpoint of ``log`` with the most records among those of the log whose first line
    hashes to ``first``; ``None`` when there is none.

    The log only grows, so its furthest checkpoint is among the last ones written: the heads
    file's last :data:`_HEADS_TAIL` bytes are read, and all of it only when they hold none.
    """
    own = _recent(heads, log, lambda head: head.get("first") == first and not _intent(head))
    return max(own, key=lambda head: int(head["records"]), default=None)


def _intent(head: Record) -> bool:
    """Whether a heads entry is a declaration (what a batch about to be written will leave)."""
    return head.get("intent") is True


def _recent(heads: Path, log: Path, wanted: Callable[[Record], bool]) -> list[Record]:
    """The checkpoints and declarations of ``log`` that are ``wanted``, in order: those in the
    heads file's last :data:`_HEADS_TAIL` bytes, or, when they hold none, in all of it (what
    is looked for was written last, or nearly: the log only grows)."""
    tail, more = _tail_entries(heads, log)
    found = [head for head in tail if wanted(head)]
    if not found and more:
        found = [head for head in _all_entries(heads, log) if wanted(head)]
    return found


def _check_not_emptied(heads: Path, log: Path) -> None:
    """Fail when ``log`` holds no record but ``heads`` holds a checkpoint of records in it: it
    was removed or emptied since (by a command that could write it, a log in a workspace),
    and a run would start a new one over the loss without a word.

    Raises:
        ValueError: naming the checkpoint.
    """
    kept = _recent(heads, log, lambda head: not _intent(head) and head["records"] > 0)
    if kept:
        head = kept[-1]
        raise ValueError(
            f"it holds no record, but run {head['run']} checkpointed {head['records']} in it: "
            "it was removed or emptied since"
        )


def _declared(heads: Path, log: Path, first: str, tip: tuple[int, str]) -> Record | None:
    """The checkpoint or declaration of ``log`` (the log whose first line hashes to ``first``)
    that names ``tip`` (its record count and last hash), the latest one; ``None`` when none
    does. It was written last or nearly (under the log's lock, by the run that wrote the
    records): the heads file's tail is read, and all of it only when that holds none."""
    count, digest = tip
    found = _recent(
        heads,
        log,
        lambda head: (
            head["records"] == count and head["hash"] == digest and head.get("first") == first
        ),
    )
    return found[-1] if found else None


def _entries(lines: Iterable[bytes], log: Path) -> list[Record]:
    """The checkpoints and declarations of ``log`` among ``lines`` (a line that is neither is
    skipped)."""
    wanted = (log_key(log), str(log.expanduser().absolute()))  # as runs named it before too
    found: list[Record] = []
    for line in lines:
        try:
            head = orjson.loads(line)
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
            found.append(head)
    return found


def rotate(log: Path, heads: Path, to: Path, to_heads: Path) -> Verdict:
    """Move an intact log to ``to`` with its checkpoints and declarations (into ``to_heads``,
    each naming ``to``), so that both verify: the log at its new path, and the new log the next
    run begins at the old one (a log moved by hand leaves its checkpoints behind, naming the
    old path: both fail). The verdict on the log moved.

    Done under the log's lock, once the log is verified, and only if no run wrote to it
    meanwhile; a run still going on stops at its next flush (its log is no longer at its
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
    entries = _all_entries(heads, log)
    first = _first_line_hash(log) if before else None
    if any(head.get("first", first) != first and head["records"] for head in entries):
        raise UsageError(
            f"{heads} holds checkpoints of another log once at {log} (verify says which): move "
            "the log and the heads file aside by hand"
        )
    if to_heads.exists() and to_heads.stat().st_size:
        raise UsageError(f"{to_heads}, the heads file {to} would have, is there already")
    with _open_for_reading(log) as handle:
        _lock(handle.fileno(), log, fcntl.LOCK_EX)
        if os.fstat(handle.fileno()).st_size != before:
            raise UsageError(f"a run wrote to {log} meanwhile: rotate it when no run goes on")
        moved = log_key(to)
        lines = b"".join(orjson.dumps({**head, "log": moved}) + b"\n" for head in entries)
        to_heads.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        replace_file(to_heads, lines, mode=0o600)
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


def record_with_hash(path: Path, digest: str) -> int | None:
    """The number (``seq``, from 0) of the record of ``path`` whose line hashes to
    ``digest`` (a run's final hash), or ``None``."""
    for number, line in enumerate(read_lines(path)):
        if line_hash(line) == digest:
            return number
    return None


LOCK_WAIT = 10.0
"""Seconds a run or :func:`verify` waits for the log's lock (another run writing a batch)."""


def verify(path: Path, heads: Path) -> Verdict:
    """Check the chain of ``path`` and that it matches every checkpoint of it in ``heads``.

    A checkpoint is of this log when its ``first`` is the hash of the log's first line (one
    written before checkpoints carried it, or with no records, is taken as this log's): each
    must match the record it names, and the log must hold the furthest. Records after the
    furthest checkpoint must be the ones a run declared before writing them (it was killed
    before its checkpoint: a note says so). A checkpoint of another log, one removed, moved
    aside or rewritten from scratch since, is a problem too, named as such. The first problem
    found is named: its record number (``seq``, from 0) when a record is wrong, and what is
    wrong.

    The heads file and the log's size are read under a shared lock on the log (runs write a
    batch and its checkpoint under an exclusive one), and the log up to that size: a run
    writing meanwhile is not taken for tampering.

    A log path that is a symbolic link is a problem (runs refuse to write through one, and a
    log swapped for a link to another intact log would pass as that one); a log removed whose
    heads file still holds checkpoints of records is one too. A run that wrote a ``start``
    record and no ``run`` record (killed, or still going on) is noted.

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
    with handle:
        _lock(handle.fileno(), path)
        try:
            size = os.fstat(handle.fileno()).st_size
            entries = _all_entries(heads, path)
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        unsafe = _unsafe_heads(heads, os.fstat(handle.fileno()).st_uid)
        if unsafe is not None:
            return Verdict(0, 0, unsafe)
        lines = _lines_upto(handle, size)
        first_line = next(lines, None)
        first = None if first_line is None else line_hash(first_line[0])
        checkpoints: list[Record] = []
        intents: list[Record] = []
        others: list[Record] = []  # checkpoints of another log once at this path
        expected: dict[int, list[Record]] = {}
        for head in entries:
            intent = head.get("intent") is True
            if "first" in head and head["records"] and head["first"] != first:
                if not intent:
                    others.append(head)
                continue
            if intent:  # vouches only for a tail past the checkpoints (see _check_end)
                intents.append(head)
                continue
            checkpoints.append(head)
            if head["records"] > 0:
                expected.setdefault(head["records"] - 1, []).append(head)
        prev = GENESIS
        count = 0
        runs = _Runs()
        last = b""
        for line, ended in itertools.chain([first_line] if first_line else [], lines):
            problem = _check_line(line, count, prev, expected, runs)
            if problem is None and not ended:
                problem = "its line is cut short (no line break at the end: a write cut off)"
            if problem is not None:
                return Verdict(count, len(runs.seen), f"record {count}: {problem}", count)
            prev = line_hash(line)
            last = line
            count += 1
    verdict = _check_end(path, count, len(runs.seen), checkpoints, intents, last)
    if others and (verdict.intact or not checkpoints):
        return _another_log(path, count, len(runs.seen), checkpoints, others)
    if verdict.intact:
        return replace(verdict, notes=verdict.notes + runs.unended())
    return verdict


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
        if record.get("type") == "start":
            self.started[run] = None
        elif record.get("type") == "run":
            self.ended.add(run)

    def unended(self) -> tuple[str, ...]:
        """A note for each run that started and wrote no end record."""
        return tuple(
            f"run {run} has no end record: it was killed or is still running; connections "
            "open then are not recorded"
            for run in self.started
            if run not in self.ended
        )


def _removed(path: Path, heads: Path) -> Verdict | None:
    """The verdict on a log that is not at ``path`` while ``heads`` holds checkpoints of
    records in it (it was removed, or moved by hand); ``None`` when it holds none (no log was
    ever written there)."""
    kept = [head for head in read_heads(heads, path) if head["records"] > 0]
    if not kept:
        return None
    furthest = max(kept, key=lambda head: int(head["records"]))
    return Verdict(
        0,
        0,
        f"the log was removed: its heads file {heads} holds checkpoints of "
        f"{furthest['records']} records (run {furthest['run']} the furthest)",
    )


def _unsafe_heads(heads: Path, owner: int) -> str | None:
    """Why the checkpoints in ``heads`` cannot vouch for a log ``owner`` owns (someone else may
    have written them), or ``None``: a run refuses such files (:func:`_check_private`), and
    verify does not trust them either."""
    try:
        problem = _others_may_write(heads.stat(), owner)
    except FileNotFoundError:
        return None
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


def _lines_upto(handle: BinaryIO, size: int) -> Iterator[tuple[bytes, bool]]:
    """Each line of ``handle`` within its first ``size`` bytes, without its line break, and
    whether it had one."""
    left = size
    for raw in handle:
        if len(raw) > left:
            raw = raw[:left]
        left -= len(raw)
        if raw.endswith(b"\n"):
            yield raw[:-1], True
        elif raw:
            yield raw, False
        if left <= 0:
            return


def _check_line(
    line: bytes, seq: int, prev: str, expected: Mapping[int, list[Record]], runs: _Runs
) -> str | None:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
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
    runs.add(record)
    for head in expected.get(seq, ()):
        if head["hash"] != line_hash(line):
            return f"does not match the checkpoint of run {head['run']} (the log was rewritten)"
    return None


def _another_log(
    path: Path, count: int, runs: int, checkpoints: list[Record], others: list[Record]
) -> Verdict:
    """The verdict on a log whose heads file holds checkpoints of another log at its path."""
    last = max(others, key=lambda head: int(head["records"]))
    logs = len({str(head["first"]) for head in others})
    if checkpoints:
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


def _check_end(
    path: Path,
    count: int,
    runs: int,
    checkpoints: list[Record],
    intents: list[Record],
    last: bytes,
) -> Verdict:
    """The verdict on a log whose ``count`` records chain (``last`` the last line): it must
    hold its furthest checkpoint, and end there or where a run declared it would."""
    kept = max((int(head["records"]) for head in checkpoints), default=0)
    if count < kept:
        furthest = max(checkpoints, key=lambda head: int(head["records"]))
        return Verdict(
            count,
            runs,
            f"the log holds {count} records but run {furthest['run']} checkpointed {kept} "
            "(records removed from the end)",
            count,
        )
    if count == kept:
        return Verdict(count, runs, notes=_unwritten(intents, count))
    tip = line_hash(last)
    declared = [head for head in intents if head["records"] == count and head["hash"] == tip]
    if declared:
        return Verdict(
            count,
            runs,
            notes=(
                f"records {kept} to {count - 1} were never checkpointed: run "
                f"{declared[-1]['run']} declared them before writing them, and ended before "
                "its checkpoint (killed?)",
            ),
        )
    if not checkpoints:
        return Verdict(
            count, runs, f"no checkpoint of {path} was found: the log cannot be vouched for", 0
        )
    furthest = max(checkpoints, key=lambda head: int(head["records"]))
    return Verdict(
        count,
        runs,
        f"record {kept}: past the last checkpoint (run {furthest['run']}, {kept} records), "
        "and no run declared the log ending there: appended afterwards by another program, or "
        "a run's write was cut short at a line's end",
        kept,
    )


def _unwritten(intents: list[Record], count: int) -> tuple[str, ...]:
    """A note when a run declared more records than the log holds past its checkpoints: its
    write failed (a full disk), it was killed before its write, or those records were
    removed since (which nothing else can tell)."""
    ahead = [head for head in intents if head["records"] > count]
    if not ahead:
        return ()
    last = max(ahead, key=lambda head: int(head["records"]))
    return (
        f"run {last['run']} declared {last['records']} records but the log ends at {count}: "
        "its last write failed or never came (killed), or records were removed from the end",
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
