"""Reading transcripts: one JSON object a line, read in bounded pieces, never fatal.

A summary (:func:`summarize`) reads only the head and the tail of a file: the first prompt and
the first timestamp are near the start, the last timestamp is near the end. The tail is read
backwards from the end (:func:`last_timestamp`): the last line that is a JSON object with a
``timestamp`` field gives it; a last line cut short, malformed or without one is passed over,
and a line longer than the piece read is read to its start. A full reading
(:func:`read_entries`) streams line by line. A line that is not a JSON object is reported with
its line number and skipped; a transcript is never rejected for it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

HEAD_BYTES = 64 * 1024
"""How much of the start of a transcript a summary reads."""
TAIL_BYTES = 16 * 1024
"""How much of the end of a transcript a summary reads first, to find the last timestamp (more
only when the lines there have none, see :func:`last_timestamp`)."""
PROMPT_CHARS = 120
"""A first prompt is cut to this many characters in a summary."""
PROBLEMS_PER_FILE = 5
"""Malformed lines of one file reported one by one; the rest are counted."""
MAX_LINE_BYTES = 64 * 1024 * 1024
"""A line longer than this is reported as malformed rather than parsed."""


@dataclass(frozen=True, slots=True)
class Summary:
    """What a listing needs from a transcript, read from its head and tail."""

    first_prompt: str | None
    started: datetime | None
    last_timestamp: datetime | None
    cwd: str | None
    problems: tuple[str, ...] = ()
    info: os.stat_result | None = None
    """The transcript's own status, read from the open file (no second look-up)."""
    malformed_lines: int = 0
    """Lines of the part read (the first :data:`HEAD_BYTES`) that are not JSON objects."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a transcript: its number, its fields, and a few read out for display."""

    line: int
    data: dict[str, Any]

    @property
    def type(self) -> str:
        value = self.data.get("type")
        return value if isinstance(value, str) else "unknown"

    @property
    def timestamp(self) -> datetime | None:
        return parse_timestamp(self.data.get("timestamp"))

    @property
    def sidechain(self) -> bool:
        return self.data.get("isSidechain") is True


def open_no_follow(path: str | Path) -> BinaryIO:
    """Open a file for reading in binary, refusing when its last component is a symbolic link."""
    return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")


def parse_timestamp(value: Any) -> datetime | None:
    """An ISO 8601 timestamp as an aware UTC datetime, or ``None`` when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def summarize(
    path: str | Path, *, head_too: bool = True, info: os.stat_result | None = None
) -> Summary:
    """Read the head and tail of a transcript for its first prompt and its time span.

    Args:
        path: the transcript.
        head_too: also read the first prompt, start and working directory; without it only
            the last timestamp is read (all a prune needs).
        info: the transcript's status from a look just made (``lstat``); saves a second
            look-up. A prune compares it with a fresh look before removing, so a file written
            to after it was taken is kept.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        return Summary(None, None, None, None, (f"{path}: cannot be read: {error.strerror}",))
    try:
        if info is None:
            info = os.fstat(fd)
        size = info.st_size
        if not head_too:
            return Summary(None, None, last_timestamp(fd, size), None, (), info)
        head = os.read(fd, HEAD_BYTES)
        complete = len(head) < HEAD_BYTES or len(head) >= size
        last = None if complete else last_timestamp(fd, size)
    except OSError as error:
        return Summary(None, None, None, None, (f"{path}: cannot be read: {error.strerror}",))
    finally:
        os.close(fd)
    return _summary_of(str(path), head, last, info, complete=complete)


def _summary_of(
    path: str, head: bytes, last: datetime | None, info: os.stat_result, *, complete: bool
) -> Summary:
    """The summary of a transcript's head; ``last`` is its last timestamp, read from its end,
    unless the head is the whole file (``complete``): then it is taken from the lines parsed,
    as :func:`_last_timestamp_in` would. Every line of the head is parsed (the malformed ones
    are counted); the first prompt, the start and the working directory come from the first
    lines that have them."""
    lines = head.split(b"\n")
    if not complete:
        lines.pop()  # the last piece of a partial head is cut short
    prompt: str | None = None
    started: datetime | None = None
    cwd: str | None = None
    problems: list[str] = []
    malformed = 0
    stamps: list[Any] = []  # every object's timestamp field, for the last one (a whole file)
    done = False  # the fields are found; the rest of the head is only checked for problems
    for number, raw in enumerate(lines, start=1):
        if not raw or raw.isspace():
            continue
        if (data := _parse_line(raw)) is not None:
            if complete:
                stamps.append(data.get("timestamp"))
            if not done:
                if started is None:
                    started = parse_timestamp(data.get("timestamp"))
                if cwd is None and isinstance(data.get("cwd"), str):
                    cwd = data["cwd"]
                if prompt is None:
                    prompt = user_text(data)
                done = prompt is not None and started is not None and cwd is not None
            continue
        malformed += 1
        if malformed <= PROBLEMS_PER_FILE:
            problems.append(f"{path}: line {number}: not a JSON object (skipped)")
    if malformed > PROBLEMS_PER_FILE:
        problems.append(
            f"{path}: … and {malformed - PROBLEMS_PER_FILE} more line(s) not JSON objects"
        )
    if complete:  # the whole file was read: its last line with a timestamp, as parsed
        last = next(filter(None, map(parse_timestamp, reversed(stamps))), None)
    return Summary(_shorten(prompt), started, last, cwd, tuple(problems), info, malformed)


def last_timestamp(fd: int, size: int) -> datetime | None:
    """The last timestamp of an open transcript of ``size`` bytes, read from its end.

    Reads :data:`TAIL_BYTES` before the end (``pread``, the file position is left alone) and
    looks at the lines there from the last one back (:func:`_last_timestamp_in`); a line that
    started before the piece read is not looked at until its start is read too. When no line
    of the piece has a timestamp (the last line is longer than the piece, or the last lines
    carry none), the piece before it is read, each twice as long as the one before, back to
    the start of the file or :data:`MAX_LINE_BYTES` from the end, whichever comes first.
    """
    position = size
    window = TAIL_BYTES
    carried = b""  # the start of the file's part already read, up to its first line break
    while position > 0 and size - position < MAX_LINE_BYTES:
        step = min(window, position)
        position -= step
        block = os.pread(fd, step, position)
        if len(block) < step:  # cut short since the size was taken: what is there, from 0
            block = os.pread(fd, position + step, 0)
            position = 0
        data = block + carried if carried else block
        if position > 0:
            cut = data.find(b"\n")
            if cut < 0:  # still inside one line: read further back
                carried = data
                window *= 2
                continue
            carried, data = data[: cut + 1], data[cut + 1 :]
        found = _last_timestamp_in(data)
        if found is not None:
            return found
        window *= 2
    return None


def _last_timestamp_in(data: bytes) -> datetime | None:
    """The timestamp of the last line of ``data`` that is a JSON object with a ``timestamp``
    field (at its top level: one inside a message or a tool result is not the line's).

    A final line cut short (a crash mid-write, or a write in progress) is not an object, and
    neither is a malformed line: the line before them is taken.
    """
    end = len(data)
    while end > 0:
        start = data.rfind(b"\n", 0, end) + 1
        found = _line_timestamp(data[start:end])
        if found is not None:
            return found
        end = start - 1
    return None


def _line_timestamp(raw: bytes) -> datetime | None:
    data = _parse_line(raw)
    return None if data is None else parse_timestamp(data.get("timestamp"))


_DECODER = json.JSONDecoder()


def _parse_line(raw: bytes) -> dict[str, Any] | None:
    """A line (UTF-8) as a JSON object, or ``None`` when it is not one."""
    if len(raw) > MAX_LINE_BYTES:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text[:1] != "{" or text[-1:] != "}":
        text = text.strip()
        if text[:1] != "{":
            return None  # not an object, whatever else it is
    try:
        data, end = _DECODER.raw_decode(text)
    except (ValueError, RecursionError):
        return None
    return data if end == len(text) and isinstance(data, dict) else None


def _shorten(text: str | None) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat if len(flat) <= PROMPT_CHARS else flat[: PROMPT_CHARS - 1] + "…"


def user_text(data: dict[str, Any]) -> str | None:
    """The text a person typed, when this line is such a prompt (not a tool result or meta)."""
    if data.get("type") != "user" or data.get("isMeta") is True:
        return None
    message = data.get("message")
    if not isinstance(message, dict):
        return None
    text = _text_of(message.get("content"))
    if not text or text.lstrip().startswith(("<command-", "<local-command", "<system-reminder")):
        return None
    return text


def _text_of(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            block["text"]
            for block in content
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        ]
        return "\n".join(parts) if parts else None
    return None


def read_entries(path: str | Path, problems: list[str]) -> Iterator[Entry]:
    """Every line of a transcript that is a JSON object; the others are added to ``problems``."""
    malformed = 0
    with open_no_follow(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            data = _parse_line(raw)
            if data is None:
                malformed += 1
                if malformed <= PROBLEMS_PER_FILE:
                    problems.append(f"{path}: line {number}: not a JSON object (skipped)")
                continue
            yield Entry(number, data)
    if malformed > PROBLEMS_PER_FILE:
        problems.append(
            f"{path}: … and {malformed - PROBLEMS_PER_FILE} more line(s) not JSON objects"
        )
