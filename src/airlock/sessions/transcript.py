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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from airlock._frozen import frozen
from airlock._frozen import set_field as _set

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


@frozen
class Summary:
    """What a listing needs from a transcript, read from its head and tail."""

    __slots__ = (
        "cwd",
        "first_prompt",
        "info",
        "last_timestamp",
        "malformed_lines",
        "problems",
        "started",
    )
    first_prompt: str | None
    started: datetime | None
    last_timestamp: datetime | None
    cwd: str | None
    problems: tuple[str, ...]
    info: os.stat_result | None
    """The transcript's own status, read from the open file (no second look-up)."""
    malformed_lines: int
    """Lines of the part read (the first :data:`HEAD_BYTES`) that are not JSON objects."""

    def __init__(
        self,
        first_prompt: str | None,
        started: datetime | None,
        last_timestamp: datetime | None,
        cwd: str | None,
        problems: tuple[str, ...] = (),
        info: os.stat_result | None = None,
        malformed_lines: int = 0,
    ) -> None:
        _set(self, "first_prompt", first_prompt)
        _set(self, "started", started)
        _set(self, "last_timestamp", last_timestamp)
        _set(self, "cwd", cwd)
        _set(self, "problems", problems)
        _set(self, "info", info)
        _set(self, "malformed_lines", malformed_lines)


@frozen
class Entry:
    """One line of a transcript: its number, its fields, and a few read out for display."""

    __slots__ = ("data", "line")
    line: int
    data: dict[str, Any]

    def __init__(self, line: int, data: dict[str, Any]) -> None:
        _set(self, "line", line)
        _set(self, "data", data)

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
    as :func:`_last_timestamp_in` would.

    Lines are parsed until the first prompt, the start and the working directory are found.
    In the head of a longer file, every later line is only checked for being a JSON object
    (:func:`_checker`), which is all counting the malformed ones needs, at a third of the cost
    of parsing it: there a listing spends most of its time.
    """
    lines = head.split(b"\n")
    if not complete:
        lines.pop()  # the last piece of a partial head is cut short
    prompt: str | None = None
    started: datetime | None = None
    cwd: str | None = None
    problems: list[str] = []
    malformed = 0
    stamps: list[Any] = []  # every object's timestamp field, for the last one (a whole file)
    is_object: Callable[[bytes], bool] | None = None  # made when first needed
    done = False  # the fields are found; the rest of the head is only checked for problems
    for number, raw in enumerate(lines, start=1):
        if not raw or raw.isspace():
            continue
        if done and not complete:
            if is_object is None:
                is_object = _checker()
            if is_object(raw):
                continue
        elif (data := _read_fields(raw)) is not None:
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
    data = _read_fields(raw)
    return None if data is None else parse_timestamp(data.get("timestamp"))


_Scanner = Callable[[str, int], tuple[Any, int]]
_SCAN: _Scanner = getattr(json.JSONDecoder(), "scan_once")  # noqa: B009 - untyped attribute
"""The decoder's scanner (C when available): one value from a position, as
``json.JSONDecoder.raw_decode`` reads it, without its Python frame."""


_FAST_LOADS: Callable[[bytes], Any] = orjson.loads
_FAST_REFUSED = orjson.JSONDecodeError


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
        data, end = _SCAN(text, 0)
    except (StopIteration, ValueError, RecursionError):
        return None
    return data if end == len(text) and isinstance(data, dict) else None


def _read_fields(raw: bytes) -> dict[str, Any] | None:
    """A line as a JSON object, for a summary, which reads only its strings (type, timestamp,
    working directory, the prompt's text): what :func:`_parse_line` gives, parsed by orjson
    where orjson takes the line (about twice as fast), by :func:`_parse_line` where it does not
    (NaN, lone surrogates, …). orjson reads an integer beyond 64 bits as a float, which is why
    a full reading (``show``) keeps to the standard library. One difference: a line nested
    deeper than the standard library goes (about 960 levels; orjson goes to 1,024) is read
    here and refused there."""
    if len(raw) > MAX_LINE_BYTES:
        return None
    if raw[:1] != b"{":  # empty, not an object, or one after white space: no failing parse
        return _parse_line(raw)
    try:
        data = _FAST_LOADS(raw)
    except _FAST_REFUSED:
        return _parse_line(raw)
    return data if isinstance(data, dict) else None


def _checker() -> Callable[[bytes], bool]:
    """A function telling whether a line is a JSON object, as :func:`_parse_line` says, without
    building it: simdjson checks the line (about three times as fast as orjson parses it);
    what simdjson refuses (NaN, lone surrogates, integers beyond 64 bits, …) or takes where the
    standard library would not (a byte-order mark before the ``{``) goes to
    :func:`_parse_line`. Each function has its own parser (a parser holds the last line it
    read until it reads the next). The same difference as :func:`_read_fields`'s: simdjson
    goes 1,024 levels deep."""
    import simdjson  # here: imported only by a listing that meets a transcript over 64 KB

    parse = simdjson.Parser().parse
    whole = simdjson.Object

    def is_object(raw: bytes) -> bool:
        if len(raw) > MAX_LINE_BYTES:
            return False
        if raw.lstrip(b" \t\r\n")[:1] == b"{":
            try:
                return isinstance(parse(raw), whole)
            except (ValueError, RuntimeError):
                pass
        return _parse_line(raw) is not None

    return is_object


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
