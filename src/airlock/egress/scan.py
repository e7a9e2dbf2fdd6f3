"""Secrets in requests: counted as a body streams past, or replaced before it leaves.

Theory of operation
-------------------
:class:`SecretScanner` is fed a body in pieces as the proxy forwards them; it never holds
more than a segment (``SEGMENT`` bytes) plus a carry. Each segment is scanned by the redaction
engine (``airlock.redact``, JSON-aware), which reports each secret's kind and offsets, never
keeping the value. Secrets that begin before the segment's last ``OVERLAP`` bytes are counted;
the rest of the segment is carried into the next scan (with a little left context), so a
secret shorter than ``OVERLAP`` is seen whole wherever the pieces were cut, and none is
counted twice. :func:`redact_body` replaces secrets in a whole body (``--secrets redact``).

A body being forwarded is fed with :meth:`SecretScanner.add` and counted with
:meth:`SecretScanner.total`, on the event loop: a full segment is scanned in a worker thread
(RE2 lets go of the GIL) while the next one is forwarded, one segment out at a time, so the
loop never waits on a scan it could overlap and memory stays bounded. Nearly all of a scan's
CPU is RE2's one pass over the bytes (about 1.5 ms a MB on the benchmark machine, whatever the
segment's size); with no core free, that pass costs its full share of the throughput.

A body gathered whole (``--secrets redact`` or ``block``) is checked by :func:`check_gathered`,
scanned a window at a time as :func:`redact_body` scans it, so no hit list spans the whole body.
Every copy the check holds (the body decoded of its ``Content-Encoding`` or of its percent
escapes, with the map back; its text, in UTF-16 or UTF-32; the body without its NULs; the body
redacted) is charged to the run's budget of gathered bodies (:class:`Budget`) before it is
made, and refused ``503`` past it; a body without secrets is not copied.

Either way a body is read every way a reader of it might read it: decoded of its
``Content-Encoding`` and as its bytes too, with its percent escapes decoded (the engine reads
JSON's ``\\u005f``, and YAML's and JSON5's ``\\x5f`` and ``\\U0000005f``, in every body,
whatever its type, and replaces a secret in them where it stands), as text in its
charset (UTF-16, UTF-32, UTF-7, ISO-2022, HZ: :func:`wide_charset`), and with its NULs left
out where it holds UTF-16 or UTF-32 text among other bytes (:func:`nul_text`); a gathered
multipart body with a part in quoted-printable is read whole with its escapes decoded too
(:func:`quoted_printable_parts`: the engine reads them only near a sign of the encoding, in
capitals; a streamed one is counted as the engine reads it), and one with a part in base64
with that part decoded (:func:`base64_parts`); a gathered form with IIS's ``%uXXXX``
escapes is read with them decoded too (:func:`wide_escaped_form`). A request's header
lines, but the sign-in ones, are read in one pass of the engine (:func:`header_secrets`),
its target by :func:`path_secrets`, each with those escapes decoded too.
"""

from __future__ import annotations

import asyncio
import binascii
import bisect
import codecs
import functools
import heapq
import io
import itertools
import json
import re
import sys
import threading
import urllib.parse
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

import re2

from airlock.egress.flows import WIDE_PERCENT
from airlock.egress.framing import TOKEN_LIKE, could_hold_secrets, withheld
from airlock.redact import RedactionReport, Redactor
from airlock.redact.rules import RULES
from airlock.redact.table import options

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

SEGMENT = 1 << 20
"""Bytes gathered before a scan."""
OVERLAP = 1 << 12
"""The longest secret guaranteed to be counted across a segment boundary."""
CONTEXT = 4 * 64
"""Bytes before a segment kept for the scan's left context (word boundaries, the name beside
a value): 64 characters, in UTF-32 (four bytes each) or percent-escaped (three) too."""
IN_WORKER = 64 * 1024
"""The last window of a body is scanned in a worker thread from this size on (a small one is
scanned on the loop: handing it over would cost more than the scan)."""


def check_in_worker(body: bytes, encoding: bytes | None) -> bool:
    """Whether a gathered ``body`` is checked (:func:`check_gathered`) in a worker thread, not
    on the event loop: one of :data:`IN_WORKER` bytes or more, or one with a
    ``Content-Encoding`` (``encoding``), whatever its size: 60 KB of gzip decode to 60 MiB,
    whose check took 17 s on the loop, every connection and the run's end held meanwhile."""
    return len(body) > IN_WORKER or bool(encoding)


MAX_GATHERED = 64 * 1024 * 1024
"""The largest body gathered whole for ``--secrets redact`` or ``block``."""
TOO_LARGE = f"body over {MAX_GATHERED} bytes cannot be checked for secrets"
"""Why a larger body is refused, with ``413`` (Content Too Large), in TLS and plain HTTP."""
GATHER_BUDGET = 256 * 1024 * 1024
"""The most bytes of request bodies held at once, across every connection, while they are
gathered and checked (``--secrets redact`` or ``block``)."""
BUSY = (
    f"airlock already holds close to {GATHER_BUDGET} bytes of request bodies to check for "
    "secrets (--secrets redact or block): this one was refused unsent; send it again shortly"
)
"""Why a body that would pass :data:`GATHER_BUDGET` is refused, with ``503``."""
BUSY_DECODED = (
    f"airlock already holds close to {GATHER_BUDGET} bytes of request bodies to check for "
    "secrets (--secrets redact or block), and this one decoded (its Content-Encoding) would "
    "pass that: refused unsent; send it again shortly"
)
"""Why a compressed body whose decoding would pass :data:`GATHER_BUDGET` is refused, ``503``."""
BUSY_CHECKED = (
    f"airlock already holds close to {GATHER_BUDGET} bytes of request bodies to check for "
    "secrets (--secrets redact or block), and the copies checking this one takes (decoded, "
    "read as text, redacted) would pass that: refused unsent; send it again shortly"
)
"""Why a body whose check would hold copies past :data:`GATHER_BUDGET` is refused, ``503``."""
DECODE_STEP = 1 << 20
"""Bytes decoded at a time, each charged to the budget before the next is decoded."""
NUL_TEXT = re2.compile(rb"(?:[\x20-\x7e]\x00{1,3}){8}", options())
"""Eight printable ASCII characters, each followed by one to three NULs: text in UTF-16 (in
either byte order) or UTF-32 among a body's bytes (a form's file part, an archive's names).
RE2, as the engine: one pass, however the bytes fall."""


def nul_text(data: bytes) -> bool:
    """Whether ``data`` holds :data:`NUL_TEXT` (a NUL is looked for first: most bodies have
    none)."""
    return b"\x00" in data and NUL_TEXT.search(data) is not None


class Budget:
    """The bytes of gathered bodies held across a run's connections (:data:`GATHER_BUDGET`),
    the copies their checks make among them (decoded, redacted, …); one :class:`Held` per request
    takes from it, on the event loop or in the worker thread that checks its body."""

    def __init__(self, total: int = GATHER_BUDGET) -> None:
        self.total = total
        self.held = 0
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """Hold ``size`` bytes more; ``False`` (nothing taken) when the budget would pass."""
        with self._lock:
            if self.held + size > self.total:
                return False
            self.held += size
            return True

    def give(self, size: int) -> None:
        """Give back ``size`` bytes."""
        with self._lock:
            self.held -= size


class Held:
    """What one request holds of a :class:`Budget`, given back with :meth:`give` and
    :meth:`release`; used by one request at a time (its coroutine, or the worker thread
    that checks its body meanwhile)."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.size = 0

    def take(self, size: int) -> bool:
        """Hold ``size`` bytes more; ``False`` (nothing taken) when the budget would pass."""
        if not self.budget.take(size):
            return False
        self.size += size
        return True

    def grow(self, size: int) -> bool:
        """:meth:`take` for the copies a body's check holds (a :data:`Grow`).

        Raises:
            Uncheckable: this request alone would pass the whole budget (``413``: no wait
                makes it fit, unlike a budget others hold).
        """
        if self.size + size > self.budget.total:
            raise Uncheckable(
                413,
                f"the request body and the copies checking it takes (decoded, read as text, "
                f"redacted) would pass the {self.budget.total} bytes airlock holds for bodies "
                "to check for secrets (--secrets redact or block) on their own: refused unsent",
            )
        return self.take(size)

    def cover(self, size: int) -> bool:
        """Hold ``size`` bytes in all, taking what is not held yet (a body gathered so far);
        ``False`` (nothing taken) when the budget would pass."""
        return size <= self.size or self.take(size - self.size)

    def give(self, size: int) -> None:
        """Give back ``size`` of the bytes held."""
        self.budget.give(size)
        self.size -= size

    def settle(self, mark: int, kept: int = 0) -> None:
        """Give back what was taken since :attr:`size` was ``mark`` (the copies a body's check
        held, once it is checked), but ``kept`` bytes of it (the body that leaves when it is a
        new copy, decoded or redacted, until it has gone)."""
        self.give(max(self.size - mark - kept, 0))

    def release(self) -> None:
        """Give back all that is held."""
        self.give(self.size)


class SecretsMode(StrEnum):
    """What ``--secrets`` does with a secret found in a request body."""

    REPORT = "report"
    REDACT = "redact"
    BLOCK = "block"


FORM = b"application/x-www-form-urlencoded"


def form_body(content_type: bytes | None) -> bool:
    """Whether a body is a form by its ``Content-Type`` (any of the types a joined header
    lists): its reader takes each ``+`` for a space (``curl --data-urlencode``, ``requests``'
    ``data=``, an HTML form)."""
    if not content_type:
        return False
    return any(
        value.split(b";", 1)[0].strip().lower() == FORM for value in content_type.split(b",")
    )


class SecretScanner:
    """Counts the secrets of one body, fed in pieces.

    Args:
        redactor: The redaction engine (its rules and allow-list).
        segment: Bytes gathered before a scan.
        overlap: The longest secret counted across a segment boundary.
        escapes: Whether a window with percent escapes is read with them decoded too, as
            :func:`check_gathered` reads a gathered body (:func:`escaped_hits`): a body that
            leaves as it came (``--secrets report``) is counted as ``block`` would judge it.
        nuls: Whether a window that holds text in UTF-16 or UTF-32 among its bytes
            (:func:`nul_text`) is read with its NULs left out too, as :func:`check_gathered`
            reads a gathered body; the most of each kind either way is counted.
        plus: Whether the body is a form (:func:`form_body`): with ``escapes``, a window with
            a ``+`` is read with each ``+`` a space too.
    """

    def __init__(
        self,
        redactor: Redactor,
        *,
        segment: int = SEGMENT,
        overlap: int = OVERLAP,
        escapes: bool = False,
        nuls: bool = False,
        plus: bool = False,
    ) -> None:
        self._redactor = redactor
        self._escapes = escapes
        self._plus = plus
        self._nuls = nuls
        self._segment = segment
        self._overlap = overlap
        self._pieces: list[bytes] = []
        self._size = 0
        self._context = b""
        self._scanning: asyncio.Future[tuple[Counter[str], bytes, bytes]] | None = None
        self.counts: Counter[str] = Counter()

    async def add(self, data: bytes) -> None:
        """Take the next piece of a body being forwarded (the event loop's thread): a full
        segment is scanned in a worker thread while the caller forwards the next."""
        if not data or not self.take(data):
            return
        await self._settle()
        window = self.cut(final=False)
        self._scanning = asyncio.get_running_loop().run_in_executor(None, self.scan, *window)

    async def total(self) -> dict[str, int]:
        """The number of secrets of each kind in the whole body fed with :meth:`add`."""
        await self._settle()
        if self._size >= IN_WORKER:
            window = self.cut(final=True)
            self.merge(await asyncio.get_running_loop().run_in_executor(None, self.scan, *window))
        return self.finish()

    async def _settle(self) -> None:
        """Take back the segment out in a worker thread, if any."""
        if self._scanning is not None:
            scanning, self._scanning = self._scanning, None
            self.merge(await scanning)

    def feed(self, data: bytes) -> None:
        """Take the next piece of the body, scanning here when a segment is full."""
        if self.take(data):
            self.merge(self.scan(*self.cut(final=False)))

    def take(self, data: bytes) -> bool:
        """Take the next piece without scanning; whether a segment is due (:meth:`cut`)."""
        self._pieces.append(data)
        self._size += len(data)
        return self._size >= self._segment + self._overlap

    def finish(self) -> dict[str, int]:
        """Scan what is left (here); the number of secrets of each kind in the whole body."""
        if self._size:
            self.merge(self.scan(*self.cut(final=True)))
        return dict(self.counts)

    def cut(self, *, final: bool) -> tuple[list[bytes], int, bool]:
        """The pieces of the window to scan next (left context first), the context's length,
        and ``final``. The pieces are joined by :meth:`scan`, so a caller that scans in a
        worker thread copies nothing on its own.

        Pieces taken while it is scanned wait for :meth:`merge`, which puts the window's carry
        in front of them: at most one window is out at a time.
        """
        parts = [self._context, *self._pieces]
        base = len(self._context)
        self._pieces = []
        self._size = 0
        return parts, base, final

    def scan(self, parts: list[bytes], base: int, final: bool) -> tuple[Counter[str], bytes, bytes]:
        """Scan a window (any thread): the counts, the carry and the next left context."""
        window = b"".join(parts)
        safe = len(window) if final else len(window) - self._overlap
        cut = safe
        counts: Counter[str] = Counter()
        for start, end, kind in self._spans(window):
            if base <= start < safe:
                counts[kind] += 1
                cut = max(cut, end)
        if self._nuls and nul_text(window):
            counts |= self._unnulled(window, base, cut)
        return counts, window[cut:], window[max(base, cut - CONTEXT) : cut]

    def _unnulled(self, window: bytes, base: int, cut: int) -> Counter[str]:
        """The secrets of ``window`` read with its NULs left out that start where the window's
        own count does (from ``base`` up to ``cut``, the carry's start)."""
        low = base - window.count(b"\x00", 0, base)
        high = cut - window.count(b"\x00", 0, cut)
        text = window.replace(b"\x00", b"")
        return Counter(kind for start, _, kind in self._spans(text) if low <= start < high)

    def _spans(self, window: bytes) -> list[tuple[int, int, str]]:
        """The secrets of a window: read with its percent escapes decoded too when asked and
        it holds one (``%`` is looked for first: most windows have none), and a form's with
        its ``+`` as spaces."""
        if self._escapes and (
            (b"%" in window and ESCAPE.search(window) is not None)
            or (self._plus and b"+" in window)
        ):
            hits = escaped_hits(self._redactor, window, plus=self._plus)
            if hits is not None and not hits.over:
                return list(hits)
        return [(hit.start, hit.end, hit.kind) for hit in self._redactor.find(window)]

    def merge(self, result: tuple[Counter[str], bytes, bytes]) -> None:
        """Take a scanned window's counts, carry and context back (the loop's thread)."""
        counts, rest, context = result
        self.counts.update(counts)
        self._context = context
        if rest:
            self._pieces.insert(0, rest)
            self._size += len(rest)


def count_secrets(redactor: Redactor, body: bytes) -> dict[str, int]:
    """The number of secrets of each kind in a whole body: the ones :func:`redact_body` would
    replace, found as it finds them, a window at a time (never every hit of a large body at
    once)."""
    report = RedactionReport(lines=False, keep_findings=False)
    redactor.redact_stream(io.BytesIO(body), _Nowhere(), report=report)
    return report.counts()


def redact_body(
    redactor: Redactor, body: bytes, grow: Grow | None = None
) -> tuple[bytes, dict[str, int]]:
    """``body`` with every secret replaced by ``[REDACTED:<kind>]``, and the counts by kind:
    ``body`` itself when it holds none. The copy is made from the first secret on, each
    piece charged to ``grow`` before it is kept (:class:`_Redacted`).

    Raises:
        Uncheckable: ``grow`` refuses the copy (``503``).
    """
    out = _Redacted(body, grow)
    report = RedactionReport(lines=False, keep_findings=False)
    redactor.redact_stream(io.BytesIO(body), out, report=report)
    return out.redacted(), report.counts()


class Uncheckable(Exception):
    """A gathered body that cannot be checked, or cannot be redacted: the status to answer,
    why, and the secrets found in it (by kind), if any. ``why`` goes to the audit log as the
    refusal's reason, in plain HTTP as it is: runs of token characters are withheld from it
    (:func:`~airlock.egress.framing.withheld`), as from an
    :class:`~airlock.egress.framing.HttpError`'s, should a client's words ever reach it."""

    def __init__(self, status: int, why: str, secrets: dict[str, int] | None = None) -> None:
        why = withheld(why)
        super().__init__(why)
        self.status = status
        self.why = why
        self.secrets = secrets or {}


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,14}")
"""A name a client chose that a refusal or a record may quote as it is: at most 15
characters, of those that charset and coding names are made of (``IBM1047``, ``br``,
``x-mac-roman``). A token, or a run of token characters that may be one (with a digit, the
run :data:`~airlock.egress.framing.TOKEN_LIKE` withholds), is 16 or more."""


def shown_name(name: str, *, quoted: bool = False) -> str:
    """``name``, a charset or a ``Content-Encoding`` coding as the client wrote it, as a
    refusal (which goes to the audit log and the end-of-run report) and a record's
    ``unchecked`` may show it: as it is (in quotes with ``quoted``) when it reads as such a
    name (:data:`_NAME`); else only its length, since a client may write a secret there
    (``charset=ghp_…``, ``Content-Encoding: AKIA…``), which the log must never show."""
    if _NAME.fullmatch(name):
        return repr(name) if quoted else name
    return f"of {len(name)} characters (not shown)"


DECODED = {"gzip": 31, "x-gzip": 31, "deflate": 15}
"""The ``Content-Encoding`` codings decoded for the scan, with zlib's window bits (gzip's
header; zlib's, falling back to raw deflate as some clients send it)."""


def codings(value: bytes | None) -> list[str]:
    """The codings of a ``Content-Encoding`` value, in the order they were applied
    (``identity`` left out)."""
    if not value:
        return []
    named = (item.strip().lower() for item in value.decode("latin-1").split(","))
    return [name for name in named if name and name != "identity"]


Grow = Callable[[int], bool]
"""Charges the next bytes a body's check holds (its decoded body, the copies read from it) to
the budget of gathered bodies (:meth:`Held.take`); ``False`` when they would pass it."""


def _charge(grow: Grow | None, size: int) -> None:
    """Charge ``size`` bytes a check is about to hold to ``grow``, if any.

    Raises:
        Uncheckable: ``grow`` refuses them (``503``, :data:`BUSY_CHECKED`).
    """
    if grow is not None and not grow(size):
        raise Uncheckable(503, BUSY_CHECKED)


class _Redacted(io.BytesIO):
    """Where :func:`redact_body` has a body written redacted. What is written while it is the
    body's own bytes (no secret replaced yet) is only counted, not copied; at the first
    difference the copy begins, and each piece of it is charged to ``grow`` before it is
    kept. A body without secrets is given back as it is (:meth:`redacted`)."""

    def __init__(self, body: bytes, grow: Grow | None) -> None:
        super().__init__()
        self._body = body
        self._grow = grow
        self._same = 0
        """Bytes written so far, while they are the body's own."""
        self._copying = False

    def write(self, data: ReadableBuffer) -> int:
        size = memoryview(data).nbytes
        if not self._copying:
            if self._body.startswith(data, self._same):
                self._same += size
                return size
            self._copying = True
            self._keep(memoryview(self._body)[: self._same])
        self._keep(data)
        return size

    def _keep(self, data: ReadableBuffer) -> None:
        _charge(self._grow, memoryview(data).nbytes)
        super().write(data)

    def redacted(self) -> bytes:
        """What was written: the body itself when it was all the body's own bytes."""
        if self._copying:
            return self.getvalue()
        return self._body if self._same == len(self._body) else self._body[: self._same]


class _Nowhere(io.BytesIO):
    """Output that is not kept (a scan that only wants what the redaction found)."""

    def write(self, data: ReadableBuffer) -> int:
        return memoryview(data).nbytes


TWO_READINGS = (
    "the request body reads as zlib's deflate data and as raw deflate data, two bodies "
    "(a reader that takes deflate as raw reads the other): refused"
)


class RawReading:
    """Whether a ``deflate`` body that reads as zlib data also reads as raw deflate, fed a
    piece at a time: it does once raw deflate gives bytes or a whole stream. A zlib stream
    made as such does not (its header reads as a stored block whose two lengths disagree,
    refused within its first bytes); one made to read two ways does."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj(wbits=-15)
        self.found = False
        self.over = False
        """It cannot read as raw deflate (or was found to): nothing more to feed."""

    def feed(self, data: bytes) -> bool:
        """Read the next piece; whether the body reads as raw deflate too."""
        if self.over:
            return self.found
        try:
            got = self._decoder.decompress(data, 64)  # nothing given: all of it read
        except zlib.error:
            self.over = True  # not raw deflate
            return False
        if got or self._decoder.eof:
            self.found = self.over = True
        return self.found


def reads_raw(body: bytes) -> bool:
    """Whether the whole ``deflate`` ``body``, read as zlib data, reads as raw deflate too."""
    return RawReading().feed(body)


def _inflate(body: bytes, coding: str, limit: int, grow: Grow | None = None) -> bytes:
    """``body`` decoded; a gzip body's every member (as gzip readers decode them all), and
    nothing after the last: bytes a server might read that the check would not. Decoded
    :data:`DECODE_STEP` bytes at a time, each step charged to ``grow`` before the next."""
    for bits in (DECODED[coding], -15) if coding == "deflate" else (DECODED[coding],):
        out = io.BytesIO()  # one buffer: joining the pieces at the end would hold them twice
        size = 0
        rest = body
        try:
            while True:
                decoder = zlib.decompressobj(wbits=bits)
                data = rest
                while not decoder.eof:
                    piece = decoder.decompress(data, DECODE_STEP)
                    size += len(piece)
                    if size > limit:
                        raise Uncheckable(
                            413, f"the request body decoded ({coding}) is over {limit} bytes"
                        )
                    if grow is not None and not grow(len(piece)):
                        raise Uncheckable(503, BUSY_DECODED)
                    out.write(piece)
                    used = len(data) - len(decoder.unconsumed_tail)
                    data = decoder.unconsumed_tail
                    if not piece and not used:  # the input used up: it ends early
                        break
                if not decoder.eof:
                    raise zlib.error("the compressed body ends early")
                rest = decoder.unused_data
                if not rest:
                    if bits == DECODED["deflate"] and reads_raw(body):
                        raise Uncheckable(400, TWO_READINGS)
                    return out.getvalue()
                if coding == "deflate" or rest[:2] != b"\x1f\x8b":
                    raise Uncheckable(
                        400, f"the request body has bytes after its {coding} data: refused"
                    )
        except zlib.error:
            continue
    raise Uncheckable(400, f"the request body is not valid {coding} (its Content-Encoding)")


def decoded(
    body: bytes, encoding: bytes | None, limit: int = MAX_GATHERED, grow: Grow | None = None
) -> bytes:
    """``body`` with its ``Content-Encoding`` undone (gzip, deflate), to be checked; each
    coding's output charged to ``grow`` as it is decoded.

    Raises:
        Uncheckable: a coding airlock does not decode (``br``, ``zstd``, …: ``415``), a body
            that is not what its coding says (``400``), one that decodes to more than
            ``limit`` bytes (``413``), or one whose decoding ``grow`` refuses (``503``).
    """
    for coding in reversed(codings(encoding)):
        if coding not in DECODED:
            raise Uncheckable(
                415,
                f"the request body's Content-Encoding {shown_name(coding)} cannot be decoded "
                "to be checked for secrets; send it uncompressed, or as gzip or deflate",
            )
        body = _inflate(body, coding, limit, grow)
    return body


KEPT = 64 * 1024
"""The most of a ``deflate`` body kept while no byte of it has been decoded as zlib data, to be
read again as raw deflate if it turns out not to be (as :func:`decoded` reads it)."""


DECODE_RATIO = 1100
"""Times the bytes sent so far that a streamed body's decoding may reach for ``--secrets
report``'s count (past :data:`MAX_GATHERED`): more than one deflate stream can give (about
1032), so only codings nested in one another (a CPU bomb) are stopped by it."""
DECODE_CEILING = 1 << 30
"""The most bytes a streamed body is decoded to for ``--secrets report``'s count."""


class StreamDecoder:
    """A streamed body's ``Content-Encoding`` undone piece by piece for ``--secrets report``
    (which forwards the body as it came), every coding in turn as :func:`decoded` undoes them
    (``gzip, deflate``: deflate's, then gzip's). Each coding is decoded up to
    :data:`MAX_GATHERED`, or :data:`DECODE_RATIO` times the bytes sent so far when that is
    more, never past :data:`DECODE_CEILING`. :attr:`unchecked` says why the body could not be
    read decoded to its end, when it could not (the decoding then stops: the rest is not read
    decoded)."""

    def __init__(
        self,
        encoding: bytes | None,
        floor: int = MAX_GATHERED,
        ratio: int = DECODE_RATIO,
        ceiling: int = DECODE_CEILING,
    ) -> None:
        self.steps = codings(encoding)
        self.unchecked = ""
        self._floor, self._ratio, self._ceiling = floor, ratio, ceiling
        self._sent = 0
        self._stages: list[_Inflater] = []
        if any(step not in DECODED for step in self.steps):
            shown = ", ".join(shown_name(step) for step in self.steps)
            self.unchecked = f"Content-Encoding {shown} not decoded"
        else:
            self._stages = [_Inflater(step) for step in reversed(self.steps)]

    def feed(self, piece: bytes) -> bytes:
        """The decoded bytes of ``piece`` (``piece`` itself with no coding), in one piece."""
        return b"".join(self.pieces(piece))

    def pieces(self, piece: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``piece`` (``piece`` itself with no coding), at most
        :data:`DECODE_STEP` at a time: a small piece may decode to a great deal."""
        if not self.steps:
            yield piece
            return
        if self.unchecked:
            return
        self._sent += len(piece)
        limit = min(self._ceiling, max(self._floor, self._ratio * self._sent))
        decoded: Iterable[bytes] = (piece,)
        for stage in self._stages:
            decoded = stage.through(decoded, limit)
        yield from decoded
        self.unchecked = next((stage.unchecked for stage in self._stages if stage.unchecked), "")


class _Inflater:
    """One coding (gzip or deflate) of a streamed body undone piece by piece, every gzip
    member in turn; a ``deflate`` body that is not zlib data from its start is read as raw
    deflate, as some clients send it."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self.unchecked = ""
        self._bits = 15 if coding == "deflate" else 47
        self._decoder = None  # None once it stopped: typed so without zlib's private class
        self._decoder = zlib.decompressobj(wbits=self._bits)
        self._kept: list[bytes] | None = [] if self._bits == 15 else None
        """The body so far, while nothing of it was decoded as zlib data (``deflate``)."""
        self._raw = RawReading() if coding == "deflate" else None
        """Whether a ``deflate`` body read as zlib data reads as raw deflate too."""
        self._out = 0
        self._members = 0

    def through(self, pieces: Iterable[bytes], limit: int) -> Iterator[bytes]:
        """The decoded bytes of ``pieces``, up to ``limit`` in all; none once it stopped."""
        for piece in pieces:
            if self._decoder is None:
                return
            yield from self.feed(piece, limit)

    def feed(self, piece: bytes, limit: int) -> Iterator[bytes]:
        """The decoded bytes of ``piece``, at most :data:`DECODE_STEP` at a time."""
        if self._kept is not None:
            self._kept.append(piece)
        if self._raw is not None:
            self._raw.feed(piece)
        for out in self._inflate(piece, limit):
            self._kept = None  # zlib data: nothing to read again
            yield out
        if self._kept is None:
            if self._bits == 15 and self._raw is not None and self._raw.found:
                self._decoder = None  # a body made to read two ways: said, not read on
                self.unchecked = f"{TWO_READINGS.removesuffix(': refused')}: read as zlib's"
            return
        if self._decoder is None:  # not zlib data: raw deflate, from the start
            kept, self._kept = b"".join(self._kept), None
            self.unchecked, self._bits = "", -15
            self._decoder = zlib.decompressobj(wbits=self._bits)
            yield from self._inflate(kept, limit)
        elif sum(map(len, self._kept)) > KEPT:
            self._kept = None

    def _inflate(self, data: bytes, limit: int) -> Iterator[bytes]:
        while data and self._decoder is not None:
            try:  # at the limit, one byte more says whether the data goes on
                got = self._decoder.decompress(data, max(min(DECODE_STEP, limit - self._out), 1))
            except zlib.error:
                self._decoder = None
                self.unchecked = (
                    f"bytes after the {self.coding} data"
                    if self._members
                    else f"the body is not valid {self.coding}"
                )
                return
            self._out += len(got)
            if self._out > limit:
                self._decoder = None
                self.unchecked = f"the body decoded passed {limit} bytes: the rest not read"
                return
            if got:
                yield got
            if self._decoder.unconsumed_tail:
                data = self._decoder.unconsumed_tail
            elif self._decoder.eof:  # what follows is the next member (readers read them all)
                data = self._decoder.unused_data
                self._members += 1
                self._decoder = zlib.decompressobj(wbits=self._bits)
            else:
                data = b""


_CHARSET = re.compile(
    rb"charset\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|'([^']*)'|([^\s;,\"']+))", re.IGNORECASE
)
"""A ``charset`` parameter wherever it stands in a ``Content-Type`` (inside another
parameter's quoted value too, as a reader that searches the value would find it): quoted,
with its quoted pairs (``"utf\\-7"``), in single quotes, or bare."""
_CHARSET_2231 = re.compile(
    rb"charset\*(\d*)(\*?)\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|([^\s;,\"]+))", re.IGNORECASE
)
"""A ``charset`` parameter as RFC 2231 writes it (Werkzeug, Django and Python's ``email``
read it): ``charset*=utf-8''utf-7`` (percent escapes after the language), or in numbered
pieces (``charset*0=utf; charset*1=-7``, ``charset*0*=…``) joined in order."""
_QUOTED_PAIR = re.compile(rb"\\(.)", re.DOTALL)
_ASCII_TEXT = bytes(range(0x20, 0x7F)) + b"\t\n\r"
"""ASCII a charset must read as itself, every printable character and the line breaks, for
the body to be scanned as its bytes (UTF-7 reads ``+AGc-`` as ``g``, EBCDIC reads no letter
as itself)."""
_STATEFUL = ("iso2022_", "hz", "unicode-escape", "raw-unicode-escape")
"""Codecs (by the names :func:`codecs.lookup` gives) that read ASCII as itself but have
sequences that read as nothing or as another character: ``ghp_aB`` ESC ``( B`` ``3dE…`` is
one token in ISO-2022-JP, ``ghp_aB~`` newline ``3dE…`` in HZ, ``ghp\\x5faB3dE…`` in
Python's ``unicode_escape`` (``\\U0000005f`` in ``raw_unicode_escape``)."""
_ALIASES = {
    "binary": "",
    "unknown-8bit": "",
    "x-user-defined": "",
    "windows-874": "cp874",
    "windows-31j": "cp932",
    "x-mac-roman": "mac-roman",
    "iso-8859-8-i": "iso8859-8",
}
"""Charsets other readers name that Python has no codec of that name for: the codec that
reads them, or ``""`` for bytes that are no text (``file -bi`` says ``charset=binary``)."""
XML_DECLARATION = 4096
"""How much of a body's start is read for an XML declaration's ``encoding``: one that does
not end within it is refused (XML lets spaces pad it)."""
_XML_ENCODING = re.compile(rb"^<\?xml[^>]*?\sencoding\s*=\s*[\"']([^\"']*)[\"']")
_EBCDIC_XML = b"\x4c\x6f\xa7\x94"
"""``<?xm`` in EBCDIC: an XML reader then reads the declaration in EBCDIC (XML 1.0, F.1)."""
_PART_TYPE = re.compile(rb"(?im)^content-type[ \t]*:[^\r\n]*(?=\r?\n)")
"""A part's own ``Content-Type`` line in a multipart body (a form field's charset), whole: a
line cut at the end of the bytes read so far (a streamed body's first ones) is not read, as
its charset would be a piece of one (``utf-3`` of ``utf-32-le``)."""
MAX_PARTS = 1000
"""The most part headers of a multipart body read for their charsets."""


def charsets(content_type: bytes | None, start: bytes = b"") -> list[str]:
    """Every charset a reader of the body may take: each ``charset`` parameter of
    ``Content-Type`` (:data:`_CHARSET`, its quoted pairs undone; :data:`_CHARSET_2231`),
    those of the parts' own headers in a multipart body (in ``start``), and the ``encoding``
    of an XML declaration at the body's start (in ASCII, after a UTF-8 byte-order mark, or in
    EBCDIC, which an XML reader tells from the first bytes: ``cp037`` when it names none).

    Raises:
        Uncheckable: ``415``, an XML declaration that does not end within
            :data:`XML_DECLARATION` bytes.
    """
    found = _parameters(content_type or b"")
    if b"multipart/" in (content_type or b"").lower():
        for line in itertools.islice(_PART_TYPE.finditer(start), MAX_PARTS):
            found += _parameters(line[0])
    head = start[:XML_DECLARATION].removeprefix(codecs.BOM_UTF8)
    if head.startswith(_EBCDIC_XML):
        head = head.decode("cp037").encode("latin-1", "replace")
    elif not head.startswith(b"<?xml"):
        return found
    end = head.find(b"?>")
    if end < 0 and len(start) >= XML_DECLARATION:
        raise Uncheckable(
            415, f"the request body's XML declaration does not end in {XML_DECLARATION} bytes"
        )
    declared = _XML_ENCODING.match(head[: end + 2] if end >= 0 else head)
    ebcdic = start.removeprefix(codecs.BOM_UTF8).startswith(_EBCDIC_XML)
    if declared:
        found.append(declared[1].decode("latin-1").strip())
    elif ebcdic:
        found.append("cp037")
    return found


def _parameters(value: bytes) -> list[str]:
    """The charsets a header value names, each way a reader may read them."""
    found = []
    for match in _CHARSET.finditer(value):
        quoted, single, bare = match.groups()
        text = _QUOTED_PAIR.sub(rb"\1", quoted) if quoted is not None else single or bare or b""
        found.append(text.decode("latin-1").strip())
    pieces: dict[int, str] = {}
    for match in _CHARSET_2231.finditer(value):
        number, extended, quoted, bare = match.groups()
        text = (_QUOTED_PAIR.sub(rb"\1", quoted) if quoted is not None else bare).decode("latin-1")
        if extended or not number:  # percent escapes; the first piece names its own charset
            if not number or number == b"0":
                text = text.split("'", 2)[-1] if text.count("'") >= 2 else text
            text = urllib.parse.unquote(text, encoding="latin-1")
        if not number:
            found.append(text.strip())
        elif len(pieces) < MAX_PARTS:
            pieces.setdefault(int(number[:6]), text)
    if pieces:
        found.append("".join(pieces[key] for key in sorted(pieces)).strip())
    return found


@functools.lru_cache(maxsize=256)
def _reading(named: str) -> str | None:
    """How a body in the charset ``named`` must be read: ``""`` as its bytes (ASCII reads as
    itself, and no other byte reads as ASCII), the codec that reads it as text, or ``None``
    for a charset airlock does not read (another reader may)."""
    name = _ALIASES.get(named.lower(), named)
    if not name:
        return ""
    try:
        name = codecs.lookup(name).name  # base64, zlib: LookupError in decode() below
        if name.startswith(_STATEFUL):
            return name
        if _ASCII_TEXT.decode(name, errors="replace") != _ASCII_TEXT.decode("ascii"):
            return name
        high = (bytes([byte]).decode(name, errors="replace") for byte in range(0x80, 0x100))
        if any(char.isascii() for text in high for char in text):  # Mac Arabic's 0xDF is _
            return name
    except (LookupError, UnicodeError, ValueError):  # a NUL in the name: ValueError
        return None
    return ""


def unreadable_charset(name: str, why: str, *, ours: bool = False) -> Uncheckable:
    """The refusal of a body in a charset airlock does not read (``415``, under ``redact``
    and ``block``): ``name`` as the client wrote it (shown as :func:`shown_name` shows it),
    or, with ``ours``, codecs' own names (:func:`codecs.lookup`'s), shown as they are."""
    shown = repr(name) if ours else shown_name(name, quoted=True)
    return Uncheckable(
        415,
        f"the request body's charset {shown} {why}: it cannot be checked for secrets; "
        "send it in UTF-8 (or UTF-16, UTF-32, or a charset that reads ASCII as itself)",
    )


def wide_charset(content_type: bytes | None, start: bytes) -> str | None:
    """The codec of a body whose text is not in ASCII's bytes (UTF-16, UTF-32, UTF-7, EBCDIC,
    …), or is not only in them (ISO-2022, HZ, unicode_escape: :data:`_STATEFUL`), which the
    scan must read decoded: named by a charset a reader may take (:func:`charsets`), or told
    by the body's first bytes (``start``) as JSON readers tell it: a UTF-16 or UTF-32
    byte-order mark, or NULs among the first four bytes. ``None`` for any other body (UTF-8,
    Latin-1, …).

    Raises:
        Uncheckable: ``415``: a charset airlock does not know (another reader may: IBM1047,
            UTF-7-IMAP), one that is not of text, or two that read the body differently.
    """
    wide: set[str] = set()
    for named in charsets(content_type, start):
        reading = _reading(named)
        if reading is None:  # another reader may know it
            raise unreadable_charset(named, "is not one airlock reads")
        if reading:
            wide.add(reading)
    if len(wide) > 1:
        # codecs' own names (codecs.lookup), not the client's: shown as they are
        raise unreadable_charset(", ".join(sorted(wide)), "names more than one reading", ours=True)
    if wide:
        return wide.pop()
    if start[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or b"\x00" in start[:4]:
        sniffed = json.detect_encoding(start[:4])
        return None if sniffed.startswith("utf-8") else sniffed
    return None


def wide_refusal(codec: str, secrets: dict[str, int]) -> str:
    """Why ``--secrets redact`` refused a body in ``codec`` that holds secrets."""
    kinds = secret_kinds(secrets)
    return (
        f"--secrets redact: the request body, in {codec}, holds secrets ({kinds}) that "
        "cannot be replaced where they stand: refused; nothing was sent"
    )


class WideText:
    """A streamed body in UTF-16 or UTF-32 (:func:`wide_charset`) read as text for
    ``--secrets report``'s count, with a scanner of its own, as :func:`check_gathered` reads a
    gathered one (a byte-order mark, or none: the machine's order); any other body adds
    nothing. A body its charset cannot read, or in a charset airlock does not read, is not
    read as text, :attr:`unchecked` saying so. Its first :data:`XML_DECLARATION` bytes are
    held until the charset is told (an XML declaration's too), and on to the end of the line
    they end in (up to twice as many bytes): a multipart part's ``Content-Type`` line cut
    there is read whole."""

    def __init__(self, redactor: Redactor, content_type: bytes | None) -> None:
        self._content_type = content_type
        self._start: bytes | None = b""
        """The first bytes, until the charset is told from them."""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._scanner = SecretScanner(redactor, escapes=True, plus=form_body(content_type))
        self.unchecked = ""

    async def add(self, data: bytes) -> None:
        """Take the next piece of the body (its ``Content-Encoding`` undone)."""
        if self._start is not None:
            self._start += data
            if len(self._start) < XML_DECLARATION or (
                self._start.find(b"\n", XML_DECLARATION - 1) < 0
                and len(self._start) < 2 * XML_DECLARATION
            ):
                return
            data = self._begin()
        if self._decoder is not None:
            await self._scanner.add(self._decode(data, final=False))

    def _begin(self) -> bytes:
        start, self._start = self._start or b"", None
        try:
            codec = wide_charset(self._content_type, start)
        except Uncheckable as error:  # counted as its bytes only
            self.unchecked = error.why
            return start
        if codec is None:
            return start
        codec, at = _byte_order(codec, start)
        self._decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        return start[at:]

    def _decode(self, data: bytes, *, final: bool) -> bytes:
        """``data`` read as text, in UTF-8; nothing once the charset cannot read it."""
        if self._decoder is None:
            return b""
        try:
            return self._decoder.decode(data, final).encode("utf-8")
        except (UnicodeError, ValueError) as error:  # a charset that reads ASCII alone
            self.unchecked = f"the body cannot be read as its charset: {error}"[:200]
            self._decoder = None
            return b""

    async def total(self) -> dict[str, int]:
        """The secrets of the text, by kind (none for a body in another charset)."""
        if self._start is not None:
            await self.add(self._begin())
        if self._decoder is None:
            return await self._scanner.total()
        await self._scanner.add(self._decode(b"", final=True))
        return await self._scanner.total()


class BodyCount:
    """The secrets of a body forwarded as it comes (``--secrets report``), counted as
    ``block`` would judge it: its ``Content-Encoding`` undone (:class:`StreamDecoder`), read
    with its percent escapes decoded too, and read as text too when it is UTF-16 or UTF-32
    (:class:`WideText`). A body with a ``Content-Encoding`` is read as its bytes too (they
    leave as they are: a gzip header's file name, bytes after the compressed data, a body
    that is not what its coding says), the most of each kind either way counted; why it
    could not be read decoded to its end, if it could not, is :attr:`unchecked`. Fed on the
    event loop, scanned beside the forwarding."""

    def __init__(
        self, redactor: Redactor, encoding: bytes | None, content_type: bytes | None
    ) -> None:
        self.decoder = StreamDecoder(encoding)
        self._scanner = SecretScanner(
            redactor, escapes=True, nuls=True, plus=form_body(content_type)
        )
        self._raw = SecretScanner(redactor) if self.decoder.steps else None
        self._wide = WideText(redactor, content_type)

    @property
    def unchecked(self) -> str:
        """Why the body was not read decoded to its end (its bytes were): ``""`` when it was."""
        return self.decoder.unchecked or self._wide.unchecked

    async def add(self, payload: bytes) -> None:
        """Take the next piece of the body as sent."""
        if self._raw is None:
            await self._scanner.add(payload)
            await self._wide.add(payload)
            return
        await self._raw.add(payload)
        for data in self.decoder.pieces(payload):
            await self._scanner.add(data)
            await self._wide.add(data)
            await asyncio.sleep(0)  # a bomb's decoding lets the other connections go on

    async def total(self) -> dict[str, int]:
        """The secrets of the body, by kind: the most of each either way it was read."""
        counts = Counter(await self._scanner.total()) | Counter(await self._wide.total())
        if self._raw is not None:
            counts |= Counter(await self._raw.total())
        return dict(counts)


ESCAPE = re.compile(rb"%[0-9A-Fa-f]{2}")
MAX_ESCAPES = 1_000_000
"""Percent escapes a gathered body may hold and still be redacted in place (each is a point
of the map from the decoded body back to the body)."""
ESCAPE_POINT = 8
"""Bytes of the map back from a decoded body (:class:`_Unescaped`) for each escape."""
MAX_SPANS = 100_000
"""Secrets a gathered body with percent escapes may hold, read either way, and still be
redacted in place: the span of each is kept until the body is written anew."""
SPAN_BYTES = 24
"""Bytes a kept span holds (:class:`_Spans`): its start and end, and a reference to its kind."""
TOO_MANY_SECRETS = (
    f"the request body holds more than {MAX_SPANS} secrets to redact in place (it has percent "
    "escapes): refused; nothing was sent"
)
"""Why ``--secrets redact`` refuses such a body, with ``413``."""
_UNESCAPED = {
    f"%{high}{low}".encode(): bytes([code])
    for code in range(256)
    for high in {f"{code >> 4:x}", f"{code >> 4:X}"}
    for low in {f"{code & 15:x}", f"{code & 15:X}"}
}
"""The byte of each escape, its hex digits in either case."""


def _count_escapes(body: bytes, most: int) -> int:
    """The number of percent escapes in ``body``, counted up to one past ``most``."""
    count = 0
    for count, _ in enumerate(ESCAPE.finditer(body), 1):
        if count > most:
            break
    return count


class _Unescaped:
    """``body`` with its ``count`` percent escapes decoded (:attr:`text`, made in one copy), and
    the way back from an offset in it to one in ``body`` (:meth:`origin`): where each escape's
    byte ends in the text, :data:`ESCAPE_POINT` bytes an escape."""

    def __init__(self, body: bytes, count: int) -> None:
        self.ends = array("q", [0]) * count
        text = io.BytesIO()
        view = memoryview(body)
        position = 0
        for index, found in enumerate(ESCAPE.finditer(body)):
            start = found.start()
            text.write(view[position:start])
            text.write(_UNESCAPED[found.group()])
            position = start + 3
            self.ends[index] = start - 2 * index + 1  # each escape before it is 2 bytes shorter
        text.write(view[position:])
        self.text = text.getvalue()

    def origin(self, at: int) -> int:
        """The offset in the body of the boundary ``at`` of the text (an escape's byte maps to
        the escape whole)."""
        return at + 2 * bisect.bisect_right(self.ends, at)


class _Spans(RedactionReport):
    """What :meth:`Redactor.redact_stream` finds in one reading of a body: the number of
    secrets of each kind (:attr:`tally`), and the spans of the first :data:`MAX_SPANS` of
    them in the body (mapped back by ``origin``), kept compactly, each charged to ``grow``
    (:data:`SPAN_BYTES`) before it is kept; past them, :attr:`over` is set and only the
    counts go on."""

    def __init__(self, grow: Grow | None, origin: Callable[[int], int] | None = None) -> None:
        super().__init__(lines=False, keep_findings=False)
        self._grow = grow
        self._origin = origin
        self.starts = array("q")
        self.ends = array("q")
        self.kinds: list[str] = []
        self.over = False

    def add(self, kind: str, line: int, start: int, end: int) -> None:
        super().add(kind, line, start, end)
        if len(self.kinds) >= MAX_SPANS:
            self.over = True
            return
        _charge(self._grow, SPAN_BYTES)
        if self._origin is not None:
            start, end = self._origin(start), self._origin(end)
        self.starts.append(start)
        self.ends.append(end)
        self.kinds.append(kind)

    def spans(self) -> Iterator[tuple[int, int, str]]:
        """The kept spans, in order: start, end and kind."""
        return zip(self.starts, self.ends, self.kinds, strict=True)


class EscapedHits:
    """The secrets of a body with percent escapes (:func:`escaped_hits`): found in it as it is
    and with the escapes decoded (a form's also with its ``+`` as spaces), as spans of the
    body, in order; a secret found more than one way is one."""

    def __init__(self, *readings: _Spans) -> None:
        self._readings = readings

    @property
    def over(self) -> bool:
        """Whether either reading found more than :data:`MAX_SPANS` secrets: the spans past
        them were not kept, and the counts are the most of each kind either way."""
        return any(reading.over for reading in self._readings)

    def counts(self) -> dict[str, int]:
        """The secrets by kind: each span once; past :data:`MAX_SPANS` secrets, the most of
        each kind either way it was read (every kind found is named; a count may be short by
        the secrets found one way only)."""
        if self.over:
            most: Counter[str] = Counter()
            for reading in self._readings:
                most |= Counter(reading.tally)
            return dict(most)
        return dict(Counter(kind for _, _, kind in self))

    def __iter__(self) -> Iterator[tuple[int, int, str]]:
        return _merged(*(reading.spans() for reading in self._readings))


def escaped_hits(
    redactor: Redactor, body: bytes, grow: Grow | None = None, *, plus: bool = False
) -> EscapedHits | None:
    """The secrets of ``body`` with its percent escapes decoded (a form's
    ``aws_secret_access_key=wJalr…%2F…``, ``ghp%5F…``), as spans of ``body`` itself, and those
    of ``body`` as it is, not overlapping; ``None`` when it holds more than
    :data:`MAX_ESCAPES` escapes. With ``plus`` (a form: :func:`form_body`), a body with a
    ``+`` is also read with each ``+`` a space before its escapes are decoded, as a form's
    reader reads it (``BEGIN+RSA+PRIVATE+KEY``, ``aws_secret_access_key+%3D+…``); an escaped
    ``%2B`` stays a ``+``. A space takes the place of a ``+``, so the map back is the same.

    Each reading is scanned as :func:`redact_body` scans a body, a window at a time. What the
    scan holds is charged to ``grow`` before it is made: the decoded copy and its map back
    (:class:`_Unescaped`), and each span kept (:class:`_Spans`).

    Raises:
        Uncheckable: ``grow`` refuses what the scan would hold (``503``).
    """
    count = _count_escapes(body, MAX_ESCAPES)
    if count > MAX_ESCAPES:
        return None
    as_sent = _Spans(grow)
    redactor.redact_stream(io.BytesIO(body), _Nowhere(), report=as_sent)
    _charge(grow, len(body) - 2 * count + ESCAPE_POINT * count)
    unescaped = _Unescaped(body, count)
    decoded = _Spans(grow, unescaped.origin)
    redactor.redact_stream(io.BytesIO(unescaped.text), _Nowhere(), report=decoded)
    if not (plus and b"+" in body):
        return EscapedHits(as_sent, decoded)
    _charge(grow, 2 * len(body))  # the body with spaces, then its escapes decoded
    spaced = _Unescaped(body.replace(b"+", b" "), count)
    as_form = _Spans(grow, spaced.origin)
    redactor.redact_stream(io.BytesIO(spaced.text), _Nowhere(), report=as_form)
    return EscapedHits(as_sent, decoded, as_form)


def _check_escaped(
    redactor: Redactor,
    mode: SecretsMode,
    body: bytes,
    grow: Grow | None = None,
    *,
    plus: bool = False,
) -> tuple[bytes | None, dict[str, int]]:
    """:func:`check_gathered` for a body with percent escapes, or a form's ``+``
    (:func:`escaped_hits`). The
    redacted body's size is charged to ``grow`` before it is written. Under ``block``, a body
    with more than :data:`MAX_SPANS` secrets is refused as any other that holds one, with the
    counts :meth:`EscapedHits.counts` gives.

    Raises:
        Uncheckable: too many escapes to check (``413``); under ``redact``, more than
            :data:`MAX_SPANS` secrets to replace in place (``413``, with the counts); copies
            ``grow`` refuses (``503``).
    """
    hits = escaped_hits(redactor, body, grow, plus=plus)
    if hits is None:
        raise Uncheckable(
            413, f"the request body holds more than {MAX_ESCAPES} percent escapes to check"
        )
    secrets = hits.counts()
    if not secrets:
        return body, secrets
    if mode is SecretsMode.BLOCK:
        return None, secrets
    if hits.over:
        raise Uncheckable(413, TOO_MANY_SECRETS, secrets)
    markers = {kind: f"[REDACTED:{kind}]".encode() for kind in secrets}
    _charge(grow, len(body) + sum(len(markers[kind]) - (end - start) for start, end, kind in hits))
    out, view, position = io.BytesIO(), memoryview(body), 0
    for start, end, kind in hits:
        out.write(view[position:start])
        out.write(markers[kind])
        position = end
    out.write(view[position:])
    return out.getvalue(), secrets


def check_gathered(
    redactor: Redactor,
    mode: SecretsMode,
    body: bytes,
    encoding: bytes | None = None,
    content_type: bytes | None = None,
    grow: Grow | None = None,
) -> tuple[bytes | None, dict[str, int], bool]:
    """A whole body as it may leave, its secrets by kind, and whether its ``Content-Encoding``
    must go (it left decoded): ``--secrets redact`` replaces each secret; ``--secrets block``
    gives ``None`` (refused) for a body that holds any. A compressed body is checked decoded
    (:func:`decoded`); it leaves as it came when it holds no secret, decoded and redacted when
    it does. A body with percent escapes is read with them decoded too, and a secret found
    either way is replaced in place (:func:`escaped_hits`). A body in UTF-16 or UTF-32
    (:func:`wide_charset`) is read as text too; one that holds a secret that way is refused
    under ``redact`` as well, which cannot replace it where it stands. A body with such text
    among its bytes (a form's file part: :func:`nul_text`) is read with its NULs left out too;
    under ``redact`` it is refused when a secret is left that way once what its bytes show is
    replaced. So is a multipart body with a part in quoted-printable
    (:func:`quoted_printable_parts`), read whole with its escapes decoded, in either case,
    one with a part in base64 (:func:`base64_parts`), read with that part decoded, and a
    form with IIS's ``%uXXXX`` escapes (:func:`wide_escaped_form`), read with them decoded.

    Every copy the check holds is charged to ``grow`` (the run's budget of gathered bodies)
    before it is made: the decoded body, the body decoded of its escapes and their map, the
    text of a wide body, the body without its NULs, the redacted body. A body with no secret leaves as the very object
    it came as, or as its decoded copy; what leaves as a new object is a copy charged so.

    Raises:
        Uncheckable: as :func:`decoded`; ``403`` for a secret in UTF-16 or UTF-32 text under
            ``redact`` (with the secrets found); ``413`` for a body with percent escapes that
            cannot be redacted in place (:func:`_check_escaped`); ``503`` for copies ``grow``
            refuses.
    """
    plain = decoded(body, encoding, grow=grow)
    checked = _check_plain(redactor, mode, body, plain, content_type, grow)
    # what its readers hand on decoded: parts in quoted-printable, read in any case and past
    # the engine's window (which reads =XX in capitals, near a sign of the encoding); parts
    # in base64; a form's IIS %uXXXX escapes
    for holds, in_parts_of, read in (
        (quoted_printable_parts, _quoted_printable_secrets, QUOTED_PRINTABLE_READ),
        (base64_parts, _base64_secrets, BASE64_READ),
        (wide_escaped_form, _wide_escaped_secrets, WIDE_ESCAPES_READ),
    ):
        if not holds(content_type, plain):
            continue
        in_parts = in_parts_of(redactor, plain, grow)
        if in_parts:
            checked = _with_hidden(
                checked,
                in_parts,
                mode,
                body,
                functools.partial(in_parts_of, redactor, grow=grow),
                read,
            )
    return checked


def _with_hidden(
    checked: tuple[bytes | None, dict[str, int], bool],
    hidden: dict[str, int],
    mode: SecretsMode,
    body: bytes,
    still_hidden: Callable[[bytes], dict[str, int]],
    reading: str,
) -> tuple[bytes | None, dict[str, int], bool]:
    """``checked`` (what :func:`_check_decoded` made of ``body``) with the secrets ``hidden``
    that another reading of it found (``reading``, in words): all counted; under ``block``
    refused; under ``redact`` refused too when the body that would leave (what the bytes
    show replaced) still holds such a secret read that way (``still_hidden``), as it cannot
    be replaced where it stands.

    Raises:
        Uncheckable: ``403`` under ``redact``, such a secret left.
    """
    leaving, found, left_decoded = checked
    secrets = dict(Counter(hidden) | Counter(found))
    if mode is SecretsMode.BLOCK or leaving is None:
        return None, secrets, False
    if leaving is body or still_hidden(leaving):
        raise Uncheckable(403, wide_refusal(reading, secrets), secrets)
    return leaving, secrets, left_decoded


_QUOTED_PRINTABLE_WORD = re.compile(rb"quoted-printable", re.IGNORECASE)
"""In a part's ``Content-Transfer-Encoding``: its content is in quoted-printable, which a
multipart reader decodes (Go's ``mime/multipart`` does, without being asked)."""
_QUOTED_PRINTABLE_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})|=[ \t]*\r?\n")
"""A quoted-printable escape, its hex digits in either case (Python's ``quopri`` and Go's
reader take ``=5f``), or a soft line break."""
QUOTED_PRINTABLE_READ = "quoted-printable (a part's Content-Transfer-Encoding)"
"""What :func:`wide_refusal` names a body in when its secret is in such a part."""


def quoted_printable_parts(content_type: bytes | None, plain: bytes) -> bool:
    """Whether ``plain`` is a multipart body with a part in quoted-printable."""
    return b"multipart/" in (content_type or b"").lower() and any(
        _encoding_headers(plain, _QUOTED_PRINTABLE_WORD)
    )


def _quoted_printable_secrets(
    redactor: Redactor, plain: bytes, grow: Grow | None
) -> dict[str, int]:
    """The secrets of ``plain`` read with its quoted-printable escapes decoded, the whole body
    at once (the engine reads them near a sign of the encoding, a window at a time), by kind;
    the copy charged to ``grow`` before it is made."""
    _charge(grow, len(plain))
    text = _QUOTED_PRINTABLE_ESCAPE.sub(
        lambda found: bytes.fromhex((found[1] or b"").decode()), plain
    )
    return _check_decoded(redactor, SecretsMode.BLOCK, text, text, grow)[1]


_PART_ENCODING = re.compile(rb"^content-transfer-encoding[ \t]*:", re.IGNORECASE | re.MULTILINE)
"""The start of a multipart body's part header that names its content's encoding."""
_HEADER_LINE_END = re.compile(rb"\n(?![ \t])")
"""The end of a header line, which goes on over lines folded (begun with a space or a tab)."""
_BASE64_WORD = re.compile(rb"base64", re.IGNORECASE)


def _encoding_headers(plain: bytes, word: re.Pattern[bytes]) -> Iterator[int]:
    """Where each of ``plain``'s part headers that say its content is in the encoding
    ``word`` names ends: the word anywhere in its value, which may go on over folded lines
    (JavaMail and Go's ``textproto`` unfold a header; JavaMail takes its first word past
    comments and quoted text: ``(a file) base64``)."""
    for name in _PART_ENCODING.finditer(plain):
        line_end = _HEADER_LINE_END.search(plain, name.end())
        found = word.search(plain, name.end(), line_end.start() if line_end else len(plain))
        if found is not None:
            yield found.end()


def _base64_headers(plain: bytes) -> Iterator[int]:
    """Where each of ``plain``'s part headers that say its content is in base64 ends
    (:func:`_encoding_headers`), which a multipart reader decodes without being asked
    (python-multipart's ``FormParser``, Python's ``email`` with ``decode=True``, JavaMail),
    as it decodes quoted-printable."""
    return _encoding_headers(plain, _BASE64_WORD)


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/=]+")
"""What a base64 reader skips: line breaks, and any other byte outside its alphabet."""
_AFTER_PADDING = re.compile(rb"(?<==)(?=[^=])")
"""Where a run of base64 that ended in padding is followed by another (decoded four letters
at a time, as python-multipart decodes a part, each run is read)."""
BASE64_READ = "base64 (a part's Content-Transfer-Encoding)"
"""What :func:`wide_refusal` names a body in when its secret is in such a part."""


def base64_parts(content_type: bytes | None, plain: bytes) -> bool:
    """Whether ``plain`` is a multipart body with a part in base64."""
    return b"multipart/" in (content_type or b"").lower() and any(_base64_headers(plain))


def _base64_secrets(redactor: Redactor, plain: bytes, grow: Grow | None) -> dict[str, int]:
    """The secrets of ``plain``'s parts in base64, by kind; the copies charged to ``grow``
    before they are made.

    Each part is read decoded from where its header says base64 to the next such header (or
    the body's end: what follows its content, its delimiter and the next parts, reads as
    bytes after it, which cannot join a secret it holds); the letters of the header lines
    after it come before its content's, so the content is read from each of the four places
    a group of four may start, and the reader's grouping is among them. A line that looks
    like such a header inside a part's content cuts it there, not for its reader, which
    reads the line's letters as base64 too (and those after it, blank line or none): the
    letters after it are read from each of the four places too. A ``=`` inside the letters
    is read both ways: as the end of a run of them, after which the next is grouped anew
    (python-multipart decodes four letters at a time), and skipped, the letters around it
    one run (Python's ``email`` skips one where no group of four can end, and reads on).

    Every part of a reading is decoded into one text, a line apart, read at once: thousands
    of tiny parts, or a part of thousands of padded runs (``A=A=…``), cost what one part of
    their size costs, not a scan each."""
    headers = list(_base64_headers(plain))
    spans = [
        (start, headers[at + 1] if at + 1 < len(headers) else len(plain))
        for at, start in enumerate(headers)
    ]
    letters = sum(end - start for start, end in spans)
    _charge(grow, letters)  # their letters alone
    parts = [_AFTER_PADDING.split(_NOT_BASE64.sub(b"", plain[start:end])) for start, end in spans]
    # a reader that skips a = where no group ends reads on: each part's letters, one run
    joined = [[b"".join(runs).replace(b"=", b"")] for runs in parts if len(runs) > 1]
    _charge(grow, sum(len(runs[0]) for runs in joined))  # held beside the runs
    _charge(grow, letters * 3 // 4)  # decoded: three bytes for four, one copy at a time
    found: Counter[str] = Counter()
    for reading in (parts, joined):
        # every part of a reading in one text, a line apart (read once, whatever the count
        # of parts); a run of one letter, which holds no whole byte, left out at once
        runs_of = [[run for run in map(_unpadded, runs) if len(run) > 1] for runs in reading]
        for shift in range(4):  # one grouping's copy held at a time: charged once
            text = b"\n".join(
                b"".join(_base64_run(run[shift:]) for run in runs if len(run) > shift + 1)
                for runs in runs_of
            )
            found |= Counter(_check_decoded(redactor, SecretsMode.BLOCK, text, text, grow)[1])
            del text
    return dict(found)


def _unpadded(run: bytes) -> bytes:
    return run.rstrip(b"=")


def _base64_run(letters: bytes) -> bytes:
    """One run of base64 letters decoded (its padding taken off already, :func:`_unpadded`),
    as a reader decodes it: a last group of one letter, which holds no whole byte, left
    out."""
    letters = letters[: len(letters) - 1] if len(letters) % 4 == 1 else letters
    return binascii.a2b_base64(letters + b"=" * (-len(letters) % 4))


def _check_plain(
    redactor: Redactor,
    mode: SecretsMode,
    body: bytes,
    plain: bytes,
    content_type: bytes | None,
    grow: Grow | None,
) -> tuple[bytes | None, dict[str, int], bool]:
    """:func:`check_gathered` of ``body``, ``plain`` being it decoded of its
    ``Content-Encoding``: but for a quoted-printable part, every reading."""
    form = form_body(content_type)
    codec = wide_charset(content_type, plain)
    if codec is not None:  # read as text too
        wide = _wide_secrets(redactor, plain, codec, grow, form)
        if wide:
            as_sent = _check_decoded(redactor, SecretsMode.BLOCK, body, plain, grow, form)[1]
            secrets = dict(Counter(wide) | Counter(as_sent))
            if mode is SecretsMode.REDACT:
                raise Uncheckable(403, wide_refusal(codec, secrets), secrets)
            return None, secrets, False
    if not nul_text(plain):
        return _check_decoded(redactor, mode, body, plain, grow, form)
    unnulled = _unnulled_secrets(redactor, plain, grow, form)  # UTF-16 or UTF-32 in its bytes
    checked = _check_decoded(redactor, mode, body, plain, grow, form)
    if not unnulled:
        return checked
    # redact replaced what the bytes show: what the NULs hid cannot be replaced where it stands
    return _with_hidden(
        checked,
        unnulled,
        mode,
        body,
        lambda leaving: _unnulled_secrets(redactor, leaving, grow, form),
        NUL_TEXT_READ,
    )


NUL_TEXT_READ = "UTF-16 or UTF-32 among its bytes (read with its NULs left out)"
"""What :func:`wide_refusal` names a body in when its secret is in such text."""


def _unnulled_secrets(
    redactor: Redactor, plain: bytes, grow: Grow | None, form: bool = False
) -> dict[str, int]:
    """The secrets of ``plain`` read with its NULs left out (:func:`nul_text`), by kind; the
    copy charged to ``grow`` before it is made. A form's text is read as a form's reader
    reads it (``form``: its ``+`` as spaces too), as the body's bytes are."""
    _charge(grow, len(plain) - plain.count(b"\x00"))
    text = plain.replace(b"\x00", b"")
    return _check_decoded(redactor, SecretsMode.BLOCK, text, text, grow, form)[1]


def _wide_secrets(
    redactor: Redactor, plain: bytes, codec: str, grow: Grow | None, form: bool = False
) -> dict[str, int]:
    """The secrets of ``plain`` read as text in ``codec`` (:func:`_as_utf8`), by kind; a
    form's text as a form's reader reads it (``form``: its ``+`` as spaces too: a reader that
    takes the charset, as Django does, decodes the text, then the form)."""
    text = _as_utf8(plain, codec, grow)
    return _check_decoded(redactor, SecretsMode.BLOCK, text, text, grow, form)[1]


_BYTE_ORDERS = {
    "utf-16": ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")),
    "utf-32": ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be")),
}
"""The byte-order marks ``utf-16`` and ``utf-32`` read, and the codec of each order."""


def _byte_order(codec: str, plain: bytes) -> tuple[str, int]:
    """The codec that reads ``plain`` as ``codec`` reads it whole, and where its text starts:
    ``utf-16`` and ``utf-32`` take the order of a byte-order mark (left out) or, with none,
    the machine's own."""
    for mark, ordered in _BYTE_ORDERS.get(codec, ()):
        if plain.startswith(mark):
            return ordered, len(mark)
    if codec in _BYTE_ORDERS:
        return f"{codec}-{'le' if sys.byteorder == 'little' else 'be'}", 0
    return codec, 0


def _as_utf8(plain: bytes, codec: str, grow: Grow | None = None) -> bytes:
    """``plain`` read in ``codec`` (errors replaced), in UTF-8, charged to ``grow`` before it
    is kept. UTF-16 and UTF-32 are read :data:`DECODE_STEP` bytes at a time, each step's
    UTF-8 charged as it comes. Any other codec a charset names (UTF-7, EBCDIC, …) is read in
    one piece, as its decoder may hold a long run back or read no piece alone: charged first
    at its upper bound, at most a character a byte and 4 bytes a character, as text and again
    as UTF-8.

    Raises:
        Uncheckable: ``grow`` refuses it (``503``); its charset cannot read it (``415``: one
            that reads ASCII alone, as ``punycode``).
    """
    if not codec.startswith(("utf-16", "utf-32")):
        _charge(grow, 8 * len(plain))
        try:
            return plain.decode(codec, errors="replace").encode("utf-8")
        except (UnicodeError, ValueError):
            raise Uncheckable(
                415,
                f"the request body cannot be read as its charset ({codec}) to be checked for "
                "secrets",
            ) from None
    codec, at = _byte_order(codec, plain)
    decoder = codecs.getincrementaldecoder(codec)(errors="replace")
    text = io.BytesIO()
    while True:
        piece = plain[at : at + DECODE_STEP]
        at += DECODE_STEP
        utf8 = decoder.decode(piece, final=at >= len(plain)).encode("utf-8")
        _charge(grow, len(utf8))
        text.write(utf8)
        if at >= len(plain):
            return text.getvalue()


def _check_decoded(
    redactor: Redactor,
    mode: SecretsMode,
    body: bytes,
    plain: bytes,
    grow: Grow | None = None,
    form: bool = False,
) -> tuple[bytes | None, dict[str, int], bool]:
    """:func:`check_gathered` of ``body`` read as its bytes, ``plain`` being it decoded (the
    same object when it has no ``Content-Encoding``); ``form``: it is a form
    (:func:`form_body`), whose ``+`` is a space."""
    in_raw = count_secrets(redactor, body) if plain is not body else {}
    # a form's values (%2F, %2B, + for a space): read decoded too
    if ESCAPE.search(plain) is not None or (form and b"+" in plain):
        checked, secrets = _check_escaped(redactor, mode, plain, grow, plus=form)
        secrets = dict(Counter(secrets) | Counter(in_raw))  # a gzip header leaves as it is
        if checked is plain and not in_raw:
            return body, secrets, False
        if checked is None or (mode is SecretsMode.BLOCK and secrets):
            return None, secrets, False
        return checked, secrets, plain is not body
    if plain is body:
        if mode is SecretsMode.REDACT:
            return (*redact_body(redactor, body, grow), False)
        secrets = count_secrets(redactor, body)
        return (None if secrets else body), secrets, False
    # the most of each kind either way: a gzip header's name or comment leaves as it is
    secrets = dict(Counter(count_secrets(redactor, plain)) | Counter(in_raw))
    if not secrets:
        return body, secrets, False
    if mode is SecretsMode.BLOCK:
        return None, secrets, False
    redacted, found = redact_body(redactor, plain, grow)
    return redacted, dict(Counter(secrets) | Counter(found)), True


def _wide_unescaped(text: str) -> str:
    """``text`` with its ``%uXXXX`` escapes decoded (IIS and ASP.NET decode them:
    :data:`~airlock.egress.flows.WIDE_PERCENT`), a lone surrogate as the replacement
    character."""
    if "%" not in text:
        return text
    return WIDE_PERCENT.sub(lambda found: _code_point(int(found[1], 16)), text)


def _code_point(code: int) -> str:
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)


_WIDE_ESCAPE_BYTES = re.compile(WIDE_PERCENT.pattern.encode())
""":data:`~airlock.egress.flows.WIDE_PERCENT` in bytes: in a form's values and a header's,
which ASP.NET decodes as it decodes a target."""
WIDE_ESCAPES_READ = "IIS's %uXXXX escapes (a form's values, as ASP.NET reads them)"
"""What :func:`wide_refusal` names a body in when its secret is in such escapes."""


def _wide_bytes(data: bytes) -> bytes:
    """``data`` with its ``%uXXXX`` escapes decoded, each character in UTF-8."""
    return _WIDE_ESCAPE_BYTES.sub(lambda found: _code_point(int(found[1], 16)).encode(), data)


def wide_escaped_form(content_type: bytes | None, plain: bytes) -> bool:
    """Whether ``plain`` is a form (:func:`form_body`) holding a ``%uXXXX`` escape."""
    return form_body(content_type) and _WIDE_ESCAPE_BYTES.search(plain) is not None


def _wide_escaped_secrets(redactor: Redactor, plain: bytes, grow: Grow | None) -> dict[str, int]:
    """The secrets of the form ``plain`` read with its ``%uXXXX`` escapes decoded, then as a
    form is read (its ``%XX`` escapes, ``+`` as spaces), by kind; the copy charged to
    ``grow`` before it is made."""
    _charge(grow, len(plain))
    text = _wide_bytes(plain)
    return _check_decoded(redactor, SecretsMode.BLOCK, text, text, grow, form=True)[1]


_MARKER_OR_RUN = re.compile(r"\[REDACTED:[a-z0-9_]+\]|" + TOKEN_LIKE.pattern)


def path_secrets(redactor: Redactor, target: str, logged: str) -> tuple[str, dict[str, int]]:
    """The secrets in a request's target (path and query, values too, read as sent, with its
    percent escapes decoded, IIS's ``%u005f`` too (:func:`_wide_unescaped`), and with its
    ``+`` as spaces too), by kind, and ``logged`` (the
    target as the audit log shows it, query values already left out) fit for the log: with a
    secret anywhere in the target, each secret the engine finds in ``logged`` (as sent, then
    decoded) is replaced by its marker, and each run of token characters left is left out
    too (``/bot<token>/sendMessage``, ``ghp%5F…``). Only a target the engine could find a
    secret in is scanned (:func:`could_hold_secrets`), or every one with rules of the user's
    own."""
    readings = [target]
    wide = "%" in target and WIDE_PERCENT.search(target) is not None
    if "%" in target:
        readings.append(urllib.parse.unquote(target, errors="replace"))
        if wide:  # IIS's %u005f too, as the flows read it
            readings.append(urllib.parse.unquote(_wide_unescaped(target), errors="replace"))
    if "+" in target:  # a query's values as a form's reader reads them: + is a space
        readings.append(urllib.parse.unquote_plus(target, errors="replace"))
        if wide:  # ASP.NET's UrlDecode reads both at once
            readings.append(urllib.parse.unquote_plus(_wide_unescaped(target), errors="replace"))
    own_rules = len(redactor.rules) > len(RULES)  # the user's rules may find anything
    if not own_rules and not any(could_hold_secrets(text) for text in readings):
        return logged, {}
    counts: Counter[str] = Counter()
    for text in readings:
        found = Counter(hit.kind for hit in redactor.find(text.encode("utf-8", "replace")))
        counts |= found  # the most of each kind either way: one secret is not two
    if not counts:
        return logged, {}
    shown = redactor.redact_text(logged)[0]  # a secret as sent (%40 inside a password)
    # read decoded, so that no escape can keep a token's run apart (%67%68%70%5F…, %u005f)
    shown = urllib.parse.unquote(_wide_unescaped(shown), errors="replace")
    shown = redactor.redact_text(shown)[0]
    kinds = {rule.kind for rule in redactor.rules}

    def withhold(found: re.Match[str]) -> str:
        text = found.group()
        if text.startswith("[") and text[10:-1] in kinds:
            return text  # a marker of the engine's
        return TOKEN_LIKE.sub("[REDACTED]", text)

    return _MARKER_OR_RUN.sub(withhold, shown), dict(counts)


SIGN_IN = frozenset({b"authorization", b"proxy-authorization", b"x-api-key", b"cookie"})
"""The request headers not scanned: how a client signs in to the host it talks to."""

NONCES = frozenset({b"sec-websocket-key", b"sec-websocket-accept", b"idempotency-key"})
"""Request headers whose value is a random nonce or a request's id, which lets in nothing:
``Sec-WebSocket-Key`` (RFC 6455: 16 random bytes in base64, that the server hashes into its
``Sec-WebSocket-Accept`` to show it speaks WebSocket; a new one for each handshake) and
``Idempotency-Key`` (a client's id for one request, so that a retry is not done twice: a UUID,
or ``stainless-python-retry-<uuid>`` from Anthropic's and OpenAI's SDKs). Read as ``name:
value``, the ``Key`` in their names makes every such value a generic key. Their value is read
on its own instead: a token of a vendor's shape (``ghp_…``), or a name and value written into
it (``password=…``), is still found there; only the header's name is not taken for one."""

Headers = list[tuple[bytes, bytes]]


def _merged(*readings: Iterable[tuple[int, int, str]]) -> Iterator[tuple[int, int, str]]:
    """The spans of secrets found in more than one reading of the same bytes (each in order),
    in order and not overlapping: spans that overlap are one secret, kept with the first one's
    kind."""
    kept: tuple[int, int, str] | None = None
    for span in heapq.merge(*readings):
        if kept is not None and span[0] < kept[1]:  # the same secret, found more than one way
            kept = (kept[0], max(kept[1], span[1]), kept[2])
            continue
        if kept is not None:
            yield kept
        kept = span
    if kept is not None:
        yield kept


def _header_hits(redactor: Redactor, text: bytes) -> list[tuple[int, int, str]]:
    """The secrets of a request's header lines (``text``), read as sent, and with their
    percent escapes decoded and their ``+`` as spaces when they hold any, as
    :func:`path_secrets` reads a target (``Referer: …?token=ghp%5F…``, ``X-Original-URL``):
    as spans of ``text``, escapes taken whole."""
    as_sent = redactor.find(text)
    count = _count_escapes(text, MAX_ESCAPES) if b"%" in text else 0
    plus = b"+" in text
    readings = [[(hit.start, hit.end, hit.kind) for hit in as_sent]] if as_sent else []
    if not count and not plus:
        return readings[0] if readings else []
    # A ``+`` becomes a space before the escapes are decoded (``%2B`` stays a ``+``); the
    # space takes its place, so the map back is the same.
    others = ([text] if count else []) + ([text.replace(b"+", b" ")] if plus else [])
    for other in others:
        unescaped = _Unescaped(other, count)
        found = redactor.find(unescaped.text)
        readings.append(
            [(unescaped.origin(h.start), unescaped.origin(h.end), h.kind) for h in found]
        )
    return list(_merged(*readings))


def header_secrets(redactor: Redactor, headers: Headers) -> tuple[dict[str, int], Headers | None]:
    """The secrets of a request's header lines but the sign-in ones (:data:`SIGN_IN`), by
    kind, found in one pass of the engine over them all, each read as ``name: value`` (a name
    gives its value's context; a nonce's value on its own: :data:`NONCES`), and read again
    with percent escapes decoded and ``+`` as spaces when they hold any (:func:`_header_hits`),
    IIS's ``%uXXXX`` ones too; and the headers with each secret replaced by its marker where
    it stands in its value (``--secrets redact``), or ``None`` when one reaches into a
    header's name or past its line, or shows only with ``%u`` escapes decoded (it cannot be
    replaced and leave the header whole)."""
    lines: list[bytes] = []
    # Per line read: where it starts in the text read, where its value starts, its header.
    starts: list[int] = []
    values: list[int] = []
    scanned: list[int] = []
    at = 0
    for index, (name, value) in enumerate(headers):
        lowered = name.lower()
        if lowered in SIGN_IN:
            continue
        line = value if lowered in NONCES else b"%s: %s" % (name, value)
        scanned.append(index)
        starts.append(at)
        values.append(at + len(line) - len(value))
        lines.append(line)
        at += len(line) + 1
    if not lines:
        return {}, headers
    text = b"\n".join(lines)
    hits = _header_hits(redactor, text)
    secrets = dict(Counter(kind for _, _, kind in hits))
    if b"%" in text and _WIDE_ESCAPE_BYTES.search(text) is not None:  # IIS's %u005f too
        wide = Counter(kind for _, _, kind in _header_hits(redactor, _wide_bytes(text)))
        if wide - Counter(secrets):  # shown by those escapes alone: cannot be replaced
            return dict(wide | Counter(secrets)), None
    if not hits:
        return {}, headers
    spans: dict[int, list[tuple[int, int, str]]] = {}
    for start, end, kind in hits:
        row = bisect.bisect_right(starts, start) - 1
        index = scanned[row]
        value = headers[index][1]
        begins = values[row]
        if start < begins or end > begins + len(value):
            return secrets, None
        spans.setdefault(index, []).append((start - begins, end - begins, kind))
    replaced = list(headers)
    for index, found in spans.items():
        name, value = headers[index]
        out, position = [], 0
        for start, end, kind in found:  # in order, not overlapping
            out += [value[position:start], f"[REDACTED:{kind}]".encode()]
            position = end
        replaced[index] = (name, b"".join([*out, value[position:]]))
    return secrets, replaced


def header_refusal(mode: SecretsMode, secrets: dict[str, int]) -> str:
    """Why ``--secrets block`` refused a request whose headers hold secrets, or ``redact`` one
    whose secret reaches into a header's name."""
    kinds = secret_kinds(secrets)
    if mode is SecretsMode.BLOCK:
        return f"--secrets block: the request's headers hold secrets ({kinds}); nothing was sent"
    return (
        f"--secrets {mode.value}: the request's headers hold secrets ({kinds}), one in a "
        "header's name, which cannot be replaced: nothing was sent"
    )


def path_refusal(mode: SecretsMode, secrets: dict[str, int]) -> str:
    """Why ``--secrets redact`` or ``block`` refused a request whose path holds secrets (a
    path cannot be redacted and still name what it names); under ``redact``, what the user
    can do instead: the body and the headers are redacted where a secret stands."""
    kinds = secret_kinds(secrets)
    said = f"--secrets {mode.value}: the request's path holds secrets ({kinds})"
    if mode is SecretsMode.REDACT:
        return (
            f"{said}, which cannot be replaced there: nothing was sent; send it in the body "
            "or a header, or use --secrets report"
        )
    return f"{said}; nothing was sent"


def secret_kinds(secrets: dict[str, int]) -> str:
    """``github_token ×1, aws_key ×2``: the kinds and counts of a refusal, as the report
    writes them (never a value)."""
    return ", ".join(f"{kind} ×{count}" for kind, count in sorted(secrets.items()))


def blocked_reason(secrets: dict[str, int]) -> str:
    """Why ``--secrets block`` refused a body, naming the kinds and counts, never a value."""
    kinds = secret_kinds(secrets)
    return f"--secrets block: the request body holds secrets ({kinds}); nothing was sent"
