"""Redacting a named file or stdin to stdout or a file written atomically (the I/O edge)."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from airlock.errors import UsageError
from airlock.redact.engine import RedactionReport, Redactor
from airlock.redact.split import processes_for, redact_file


def redact_path(
    redactor: Redactor,
    source: str,
    output: str | None,
    stdin: BinaryIO,
    stdout: BinaryIO,
    report: RedactionReport | None = None,
    *,
    jobs: int | None = None,
) -> RedactionReport:
    """Redact ``source`` (a path, or ``-`` for ``stdin``) into ``output`` or ``stdout``.

    A large regular file is scanned by up to ``jobs`` processes at once (by default one per
    available CPU, see ``redact.split``); stdin and small files by this one.

    ``report`` (when given) is filled in as the copy goes, so it says what was found even when
    writing fails part way (a reader that went away).

    The output file is written to a temporary name beside it and renamed into place, so it is
    never left half-written and may be the source itself.

    Raises:
        UsageError: The source cannot be read or the output cannot be written.
    """
    try:
        src = stdin if source == "-" else Path(source).open("rb")  # noqa: SIM115
    except OSError as error:
        raise UsageError(f"cannot read {source!r}: {error.strerror}") from error
    report = RedactionReport() if report is None else report
    try:
        copy = _copier(redactor, src, report, jobs)
        if output is None:
            copy(stdout)
            stdout.flush()
            return report
        return _redact_to_file(copy, Path(output), report)
    finally:
        if src is not stdin:
            src.close()


def _copier(
    redactor: Redactor, src: BinaryIO, report: RedactionReport, jobs: int | None
) -> Callable[[BinaryIO], object]:
    """What copies ``src`` redacted into a destination: one process, or several."""
    info = os.fstat(src.fileno()) if _has_fileno(src) else None
    if info is not None and stat.S_ISREG(info.st_mode):
        processes = processes_for(info.st_size, jobs)
        if processes > 1:
            return lambda dst: redact_file(redactor, src, dst, report=report, processes=processes)
    return lambda dst: redactor.redact_stream(src, dst, report=report)


def _has_fileno(src: BinaryIO) -> bool:
    try:
        src.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False
    return True


def _redact_to_file(
    copy: Callable[[BinaryIO], object], target: Path, report: RedactionReport
) -> RedactionReport:
    directory = target.parent
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    except OSError as error:
        raise UsageError(f"cannot write to {str(directory)!r}: {error.strerror}") from error
    try:
        with os.fdopen(fd, "wb") as dst:
            copy(dst)
            dst.flush()
            os.fsync(dst.fileno())
        with contextlib.suppress(OSError):
            mode = target.stat().st_mode & 0o777 if target.exists() else 0o600
            Path(temporary).chmod(mode)
        Path(temporary).replace(target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return report
