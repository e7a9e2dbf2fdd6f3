"""Redacting a named file or stdin to stdout or a file written atomically (the I/O edge)."""

from __future__ import annotations

import os
from pathlib import Path

from airlock.errors import UsageError
from airlock.redact.engine import Redactor
from airlock.redact.report import RedactionReport

TYPE_CHECKING = False  # typing stays unimported at run time (start-up time)
if TYPE_CHECKING:
    from typing import IO, BinaryIO


def redact_path(
    redactor: Redactor,
    source: str,
    output: str | None,
    stdin: BinaryIO,
    stdout: BinaryIO,
    report: RedactionReport | None = None,
) -> RedactionReport:
    """Redact ``source`` (a path, or ``-`` for ``stdin``) into ``output`` or ``stdout``.

    ``report`` (when given) is filled in as the copy goes, so it says what was found even when
    writing fails part way (a reader that went away).

    The output file is written to a temporary name beside it and renamed into place, so it is
    never left half-written and may be the source itself. An output path that is there and is
    no regular file (a device such as ``/dev/null``, a FIFO, a folder, a link) is refused: the
    rename would put a file in its place.

    Raises:
        UsageError: The source cannot be read or the output cannot be written.
    """
    try:
        src = stdin if source == "-" else Path(source).open("rb")  # noqa: SIM115
    except OSError as error:
        raise UsageError(f"cannot read {source!r}: {error.strerror}") from error
    report = RedactionReport() if report is None else report
    try:
        if output is None:
            redactor.redact_stream(src, stdout, report=report)
            stdout.flush()
            return report
        return _redact_to_file(redactor, src, Path(output), report)
    finally:
        if src is not stdin:
            src.close()


def _redact_to_file(
    redactor: Redactor, src: BinaryIO, target: Path, report: RedactionReport
) -> RedactionReport:
    import stat

    from airlock._atomic import replace_file
    from airlock._kinds import file_kind

    try:
        found = target.lstat().st_mode
    except OSError:
        found = None
    if found is not None and not stat.S_ISREG(found):
        # A rename over it would put a new file where a device (/dev/null), a FIFO, a
        # folder or a link was: never done; stdout writes into any of them.
        raise UsageError(
            f"cannot write to {str(target)!r}: it is {file_kind(found)}, not a regular file "
            "(the output replaces a file whole, under a new name); leave --output out and "
            "send stdout there instead (airlock redact FILE > PATH)"
        )
    mode = found & 0o777 if found is not None else 0o600

    def fill(dst: IO[bytes]) -> None:
        os.fchmod(dst.fileno(), mode)  # the target's own mode, whatever the umask
        redactor.redact_stream(src, dst, report=report)

    try:
        replace_file(target, fill, mode=mode)
    except OSError as error:
        if error.filename is None:  # reading or writing the content, not the folder
            raise
        raise UsageError(f"cannot write to {str(target.parent)!r}: {error.strerror}") from error
    return report
