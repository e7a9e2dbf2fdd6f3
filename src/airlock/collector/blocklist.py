"""The domain-safety blocklist: a compact, sorted table of SHA-256 hashes, reloadable.

Theory of operation
-------------------
A blocklist of a million domains kept as a Python ``set`` of strings costs about 100 MB.
:class:`BlockList` keeps each domain as its SHA-256 hash instead: the 32-byte hashes sorted
in one ``bytes`` object, and their first 8 bytes as integers in an ``array`` beside it for
``bisect``. That is 40 bytes a domain, and it answers both questions the service is asked:

* hostname mode: is the host or one of its parents listed? (hash each, binary search, compare
  the full 32 bytes: exact, no false positives short of a SHA-256 collision);
* private mode: which full hashes start with this prefix? (a range of the sorted table).

Reading a file (:func:`read_blocklist`) validates every entry as a hostname or IP address. The
common lines (one name, or one address and one name, as ASCII) are matched by one regular
expression over a few megabytes at a time, so a million-line file loads in a second or two;
any other line is parsed on its own (hosts lines with several names, IDN, IPv6). Invalid lines
are counted and the first few numbered; a file whose entries are mostly invalid (a binary or
garbage file) is refused as a whole.

:class:`ReloadingBlockList` watches the file (size, mtime, inode), at most once every
``check_every`` seconds of the injected clock, and loads a changed file in a background
thread; lookups go on against the old table until the new one is swapped in whole. A changed
file that cannot be read, is mostly invalid, or is empty while the table in force is not, is
refused: the previous table stays in force and a warning says so.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sys
import threading
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from itertools import repeat
from operator import methodcaller
from pathlib import Path
from typing import Any

from airlock.errors import UsageError
from airlock.policy.hosts import parse_ipv4
from airlock.policy.rules import normalize_host
from airlock.webfetch import hashing

HOSTS_ADDRESSES = frozenset({"0.0.0.0", "127.0.0.1", "::", "::1", "255.255.255.255"})  # noqa: S104 - hosts-file addresses, nothing binds
NOT_BLOCKED = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "0.0.0.0",  # noqa: S104 - a hosts-file name, nothing binds
    }
)
"""Names a hosts file lists for itself; never taken as blocked domains."""
_NOT_BLOCKED_BYTES = frozenset(name.encode() for name in NOT_BLOCKED)

SHOWN_INVALID = 5
"""How many invalid line numbers a report names."""
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = rf"{_LABEL}(?:\.{_LABEL})*"
_HOSTNAME = re.compile(rf"{_HOST}\Z")
_ADDRESS = r"(?:0\.0\.0\.0|127\.0\.0\.1|::1?|255\.255\.255\.255)"
_NAME = rf"(?=[^ \t\r\n#]{{1,253}}(?![^ \t\r\n#])|[^ \t\r\n#]{{1,253}}\.(?![^ \t\r\n#])){_HOST}\.?"
# One scan finds the lines the fast path does not take: blank and comment lines (group 1, to
# count entries), and lines that are not one name or a hosts line of an address and names
# (ASCII, lower case, at most 253 characters a name): those are parsed on their own by _names.
_SPECIAL_LINE = re.compile(
    rf"^(?:([ \t]*(?:#[^\n]*)?\r?$)|(?![ \t]*(?:{_ADDRESS}(?:[ \t]+{_NAME})+|{_NAME})[ \t]*(?:#[^\n]*)?\r?$)[^\n]*)".encode(),
    re.MULTILINE,
)
_digest = methodcaller("digest")


def _sha256_function() -> Callable[[bytes], Any]:
    """CPython's own SHA-256 when present, else hashlib's (OpenSSL): the same digests.

    For names of about 20 bytes CPython's is about twice as fast: OpenSSL 3's set-up for each
    call costs more than hashing the name.
    """
    try:
        return importlib.import_module("_sha256").sha256  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return sha256


_sha256 = _sha256_function()
_latin = methodcaller("decode", "latin-1")
_HOSTS_PREFIX = re.compile(rf"(?:^|\n)[ \t]*{_ADDRESS}[ \t]+(?=[^ \t\r\n#])".encode())
_NAME_BYTES = b"abcdefghijklmnopqrstuvwxyz0123456789-._\n"
_BAD_PARTS = (b"..", b"\n.", b".-", b"-.", b"\n-", b"-\n")
_COMMENT = re.compile(rb"#[^\n]*")


def valid_hostname(name: str) -> bool:
    """Whether a normalised name is a hostname (labels of letters, digits, ``-``, ``_``) or an IP."""
    if len(name) <= 253 and _HOSTNAME.match(name):
        return True
    return hashing.is_address(name)


def _entry(field: str) -> str:
    """An entry in the form lookups use (:func:`normalize_host`), except an IPv4 address spelt
    other than dotted decimal (``2130706433``): kept as written, as the fast path keeps it."""
    if parse_ipv4(field.rstrip(".")) is not None:
        return field.rstrip(".").lower()
    return normalize_host(field)


def _names(text: str) -> list[str] | None:
    """The normalised names one line lists; ``None`` when the line is not a valid entry."""
    fields = text.split("#", 1)[0].split()
    if not fields:
        return []
    if fields[0] in HOSTS_ADDRESSES and len(fields) > 1:
        fields = fields[1:]
    elif len(fields) > 1:
        return None  # a name followed by something that is not a comment
    names = [_entry(field) for field in fields]
    if not all(valid_hostname(name) for name in names):
        return None
    return [name for name in names if name not in NOT_BLOCKED]


def parse_lines(lines: Iterable[str]) -> Iterator[str]:
    """The domains of a blocklist: one per line, or hosts format (``0.0.0.0 a.com b.com``).

    ``#`` starts a comment; blank lines, hosts-file self names and invalid lines are skipped
    (:func:`read_blocklist` counts and numbers them).
    """
    for line in lines:
        yield from _names(line) or ()


@dataclass(frozen=True, slots=True)
class BlocklistReport:
    """What reading a blocklist file found."""

    path: Path
    entries: int
    """Lines other than blank and comment lines."""
    invalid: int
    """Entries that are not a hostname or IP address (or a hosts line of them)."""
    invalid_lines: tuple[int, ...]
    """The first :data:`SHOWN_INVALID` invalid line numbers (1-based)."""
    domains: int
    """Distinct domains kept."""

    @property
    def mostly_invalid(self) -> bool:
        """Whether at least half the entries are invalid: not a blocklist (binary, garbage)."""
        return self.invalid > 0 and self.invalid * 2 >= self.entries

    def describe_invalid(self) -> str:
        """``N invalid lines of M entries (lines 3, 9, …)``."""
        shown = ", ".join(str(number) for number in self.invalid_lines)
        more = ", …" if self.invalid > len(self.invalid_lines) else ""
        plural = "line" if self.invalid == 1 else "lines"
        return (
            f"{self.invalid} invalid {plural} of {self.entries} entries "
            f"({plural} {shown}{more}): expected one hostname a line, or hosts format "
            f"'0.0.0.0 example.com'"
        )


def _quick(text: bytes) -> list[bytes] | None:
    """The names of a lower-cased file whose every entry is one valid ASCII name; else ``None``.

    Only whole-text operations in C (``translate``, ``replace``, ``find``, ``split``): a
    file with anything else (several names a line, IDN, IPv6, a label that does not look
    right, a name over 63 characters) is left to the line-by-line scan of :func:`_parse`.
    """
    if b"#" in text:
        text = _COMMENT.sub(b"", text)
    text = b"\n" + text + b"\n"
    for blank in (b"\t", b"\r"):
        if blank in text:
            text = text.replace(blank, b" ")
    while b"  " in text:
        text = text.replace(b"  ", b" ")
    text = text.replace(b"\n ", b"\n").replace(b" \n", b"\n")
    for address in (b"\n0.0.0.0 ", b"\n127.0.0.1 "):  # hosts format: the address goes
        if address in text:
            text = text.replace(address, b"\n")
    if text.translate(None, _NAME_BYTES):
        return None  # a space left (two fields), or a character no ASCII hostname has
    if any(part in text for part in _BAD_PARTS):
        return None
    text = text.replace(b".\n", b"\n")  # the trailing dot of a fully qualified name
    names = text.split()
    if max(map(len, names), default=0) > 63:  # then no label is over 63 nor a name over 253
        return None
    return names


def _parse(data: bytes, path: Path) -> tuple[set[bytes], BlocklistReport]:
    """The distinct domains of a blocklist file's bytes, and the report.

    The work is done by C-level operations over the whole text: :func:`_quick` when every
    entry is one plain name; else a regular expression finding the lines that are not, which
    alone are parsed one by one in Python.
    """
    text = data.lower()
    names = _quick(text)
    if names is not None:
        entries = len(names)
        domains = set(names)
        domains -= _NOT_BLOCKED_BYTES
        return domains, BlocklistReport(path, entries, 0, (), len(domains))
    lines = text.count(b"\n") + 1
    blank = invalid = 0
    numbers: list[int] = []
    extra: set[bytes] = set()
    kept: list[bytes] = []
    position = line = 0
    for found in _SPECIAL_LINE.finditer(text):
        if found.group(1) is not None:
            blank += 1
            continue
        begin = found.start()
        line += text.count(b"\n", position, begin)
        kept.append(text[position:begin])
        position = found.end()
        try:
            listed = _names(found.group().decode("utf-8"))
        except UnicodeDecodeError:
            listed = None
        if listed is None:
            invalid += 1
            if len(numbers) < SHOWN_INVALID:
                numbers.append(line + 1)
        else:
            extra.update(name.encode("ascii", "replace") for name in listed)
    if kept:
        kept.append(text[position:])
        text = b"".join(kept)
        del kept
    if b"#" in text:
        text = _COMMENT.sub(b"", text)
    text += b"\n"
    for ending in (b".\n", b". ", b".\t", b".\r"):  # trailing dots of fully qualified names
        if ending in text:
            text = text.replace(ending, ending[1:])
    domains = set(_HOSTS_PREFIX.sub(b"\n", text).split())
    del text
    domains -= _NOT_BLOCKED_BYTES
    domains |= extra
    domains.discard(b"")
    report = BlocklistReport(path, lines - blank, invalid, tuple(numbers), len(domains))
    return domains, report


class BlockList:
    """Listed domains as sorted SHA-256 hashes; a listed domain blocks its subdomains."""

    __slots__ = ("_blob", "_keys", "_starts")

    def __init__(self, domains: Iterable[str]) -> None:
        self._build({_entry(domain).encode("ascii", "replace") for domain in domains})

    def _build(self, distinct: Iterable[bytes]) -> None:
        # Hashes as Latin-1 strings: sorting them compares with memcmp directly, about twice
        # as fast as sorting bytes objects; one encode gives the table back as bytes.
        digests = list(map(_latin, map(_digest, map(_sha256, distinct))))  # no bytecode a domain
        digests.sort()
        blob = "".join(digests).encode("latin-1")
        del digests
        self._index(blob)

    def _index(self, blob: bytes) -> None:
        """Take ``blob`` (sorted 32-byte hashes) as the table and build the indexes over it."""
        self._blob = blob
        # The first 8 bytes of each 32-byte hash, as big-endian integers, copied in C.
        keys = array("Q")
        keys.frombytes(memoryview(self._blob).cast("Q")[::4].tobytes())
        if sys.byteorder == "little":
            keys.byteswap()
        self._keys = keys
        # Where each value of the top 16 bits starts: a search then covers one bucket (about
        # 15 keys at a million domains) instead of the whole table, for 256 KB more.
        self._starts = array("I", map(bisect_left, repeat(keys), range(0, 65537 << 48, 1 << 48)))

    @classmethod
    def from_file(cls, path: Path) -> BlockList:
        """Read a blocklist file (see :func:`read_blocklist`).

        Raises:
            UsageError: the file cannot be read, or most of its entries are invalid.
        """
        table, report = read_blocklist(path)
        if report.mostly_invalid:
            raise UsageError(f"blocklist {path} is not a blocklist: {report.describe_invalid()}")
        return table

    def __len__(self) -> int:
        return len(self._keys)

    def nbytes(self) -> int:
        """Bytes held by the table."""
        return sys.getsizeof(self._blob) + sys.getsizeof(self._keys) + sys.getsizeof(self._starts)

    def _listed(self, digest: bytes) -> bool:
        key = int.from_bytes(digest[:8], "big")
        keys = self._keys
        top = key >> 48
        end = self._starts[top + 1]
        index = bisect_left(keys, key, self._starts[top], end)
        while index < end and keys[index] == key:
            if self._blob[index * 32 : index * 32 + 32] == digest:
                return True
            index += 1
        return False

    def listed(self, domain: str) -> bool:
        """Whether ``domain`` itself is listed."""
        return self._listed(hashing.digest(_entry(domain)))

    def blocks(self, host: str) -> bool:
        """Whether ``host`` or one of its parent domains is listed."""
        name = normalize_host(host)
        if hashing.is_address(name):  # the address, and the IPv4 address an IPv6 one carries
            return any(self._listed(hashing.digest(found)) for found in hashing.domains_of(name))
        start = 0
        while True:  # the name, then each parent: the hot path of the service, kept tight
            if self._listed(_sha256(name[start:].encode("ascii", "replace")).digest()):
                return True
            start = name.find(".", start) + 1
            if start == 0:
                return False

    def hashes_with_prefix(self, prefix: str) -> list[str]:
        """Every listed full hash (hex) that starts with the hex ``prefix`` (4 to 16 digits).

        Raises:
            ValueError: the prefix is not 4 to 16 hex digits.
        """
        if not hashing.MIN_PREFIX_HEX <= len(prefix) <= hashing.MAX_PREFIX_HEX:
            raise ValueError(
                f"prefix {prefix!r} must have {hashing.MIN_PREFIX_HEX} to {hashing.MAX_PREFIX_HEX} hex digits"
            )
        try:
            value = int(prefix, 16)
        except ValueError:
            raise ValueError(f"prefix {prefix!r} is not hexadecimal") from None
        shift = 64 - 4 * len(prefix)
        low = value << shift
        start = bisect_left(self._keys, low)
        end = bisect_left(self._keys, low + (1 << shift))
        return [self._blob[i * 32 : i * 32 + 32].hex() for i in range(start, end)]


CACHE_KEPT = 3
"""Compiled tables kept in a cache directory (the most recent)."""


def read_blocklist(
    path: Path, *, cache_dir: Path | None = None
) -> tuple[BlockList, BlocklistReport]:
    """Read and validate a blocklist file: the table of its valid entries, and what was found.

    With ``cache_dir``, the compiled table is kept there under the SHA-256 of the file's
    bytes: the same content read again (a restart, a reload of a touched file) skips parsing,
    hashing and sorting. A cache entry that does not check out is ignored.

    Raises:
        UsageError: the file cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UsageError(f"blocklist {path} cannot be read: {error.strerror or error}") from error
    content = sha256(data).hexdigest() if cache_dir is not None else ""
    if cache_dir is not None:
        found = _from_cache(cache_dir, content, path)
        if found is not None:
            return found
    hosts, report = _parse(data, path)
    del data
    table = BlockList.__new__(BlockList)
    table._build(hosts)
    if cache_dir is not None:
        with contextlib.suppress(OSError):  # a cache that cannot be written is no cache
            _to_cache(cache_dir, content, table, report)
    return table, report


def _from_cache(
    cache_dir: Path, content: str, path: Path
) -> tuple[BlockList, BlocklistReport] | None:
    try:
        meta = json.loads((cache_dir / f"blocklist-{content}.json").read_text())
        blob = (cache_dir / f"blocklist-{content}.bin").read_bytes()
        if len(blob) != 32 * meta["domains"] or sha256(blob).hexdigest() != meta["table"]:
            return None
        report = BlocklistReport(
            path,
            int(meta["entries"]),
            int(meta["invalid"]),
            tuple(int(n) for n in meta["invalid_lines"]),
            int(meta["domains"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    table = BlockList.__new__(BlockList)
    table._index(blob)
    return table, report


def _to_cache(cache_dir: Path, content: str, table: BlockList, report: BlocklistReport) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "entries": report.entries,
        "invalid": report.invalid,
        "invalid_lines": list(report.invalid_lines),
        "domains": len(table),
        "table": sha256(table._blob).hexdigest(),
    }
    for suffix, data in ((".bin", table._blob), (".json", json.dumps(meta).encode())):
        temp = cache_dir / f".blocklist-{content}{suffix}.{os.getpid()}"
        temp.write_bytes(data)
        temp.replace(cache_dir / f"blocklist-{content}{suffix}")
    tables = sorted(cache_dir.glob("blocklist-*.bin"), key=lambda p: p.stat().st_mtime_ns)
    for old in tables[:-CACHE_KEPT]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)  # noqa: PTH116 - one stat call for size, mtime and inode
    except OSError:
        return None
    return (status.st_size, status.st_mtime_ns, status.st_ino)


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ReloadingBlockList:
    """A :class:`BlockList` from a file, reloaded when the file changes, without a restart.

    Args:
        path: the blocklist file (one domain a line, or hosts format).
        clock: monotonic seconds.
        check_every: seconds between two looks at the file.
        warn: where reports go (a line each; default stderr).
        cache_dir: where compiled tables are kept (see :func:`read_blocklist`); none when not given.

    Raises:
        UsageError: at start, the file cannot be read or is mostly invalid.
    """

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float],
        check_every: float = 1.0,
        warn: Callable[[str], None] = _warn,
        cache_dir: Path | None = None,
    ) -> None:
        self.path = path
        self.cache_dir = cache_dir
        self.clock = clock
        self.check_every = check_every
        self.warn = warn
        self._signature = _signature(path)
        table, report = read_blocklist(path, cache_dir=cache_dir)
        if report.mostly_invalid:
            raise UsageError(f"blocklist {path} is not a blocklist: {report.describe_invalid()}")
        if report.invalid:
            warn(f"airlock serve: blocklist {path}: skipped {report.describe_invalid()}")
        self.current = table
        self.report = report
        self.loaded_at = clock()
        self.reloads = 0
        self.refused = 0
        self._checked = self.loaded_at
        self._lock = threading.Lock()
        self._loading = False

    def get(self) -> BlockList:
        """The table in force; starts a reload in the background when the file changed."""
        now = self.clock()
        if now - self._checked >= self.check_every:
            self._checked = now
            self.reload_if_changed(wait=False)
        return self.current

    def reload_if_changed(self, *, wait: bool) -> bool:
        """Reload when the file changed since the last try. Returns whether a reload started."""
        signature = _signature(self.path)
        if signature is None or signature == self._signature:
            return False
        return self.reload(wait=wait)

    def reload(self, *, wait: bool) -> bool:
        """Load the file again (in a thread unless ``wait``); keep the old table on failure."""
        with self._lock:
            if self._loading:
                return False
            self._loading = True
        if wait:
            self._load()
        else:
            threading.Thread(target=self._load, name="blocklist-reload", daemon=True).start()
        return True

    def _refuse(self, why: str) -> None:
        self.refused += 1
        self.warn(
            f"airlock serve: WARNING: blocklist {self.path} {why}; keeping the previous "
            f"blocklist ({len(self.current)} domains) in force"
        )

    def _load(self) -> None:
        try:
            # Remembered before reading: a refused version is not tried again until it changes.
            self._signature = _signature(self.path)
            table, report = read_blocklist(self.path, cache_dir=self.cache_dir)
        except UsageError as error:
            self._refuse(f"cannot be reloaded ({error})")
        else:
            if report.mostly_invalid:
                self._refuse(f"is not a blocklist: {report.describe_invalid()}")
            elif (
                report.entries == 0
                and len(self.current)
                and self._signature
                and not self._signature[0]
            ):
                self._refuse("is empty (being rewritten?)")
            else:
                if report.invalid:
                    self.warn(
                        f"airlock serve: blocklist {self.path}: skipped {report.describe_invalid()}"
                    )
                self.warn(
                    f"airlock serve: reloaded blocklist {self.path}: {len(table)} domains "
                    f"(was {len(self.current)})"
                )
                self.current = table
                self.report = report
                self.loaded_at = self.clock()
                self.reloads += 1
        finally:
            with self._lock:
                self._loading = False
