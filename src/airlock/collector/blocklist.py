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

Reading a file (:func:`read_blocklist`) parses it line by line (:func:`parse_line`): one
name a line, or hosts format (an address, then names), ``#`` comments. Every name is taken in
its canonical form (:func:`airlock.policy.hosts.parse_host`: the form rules, the preflight and
the connection use), so ``0x7f000001`` and ``127.0.0.1`` are one entry and an IDN is listed
as the A-label the client asks about. A plain lower-case ASCII name is already canonical and
is taken as it is. Invalid lines are counted and the first few numbered; a file whose
entries are mostly invalid (a binary or garbage file) is refused as a whole.

:class:`ReloadingBlockList` watches the file (size, mtime, inode), at most once every
``check_every`` seconds of the injected clock, and loads a changed file in a background
thread; lookups go on against the old table until the new one is swapped in whole. A changed
file that cannot be read, is mostly invalid, or is empty while the table in force is not, is
refused: the previous table stays in force and a warning says so.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path

from airlock.errors import UsageError
from airlock.policy.hosts import HostError, parse_host
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

SHOWN_INVALID = 5
"""How many invalid line numbers a report names."""
_PLAIN = re.compile(
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z_][a-z0-9_-]{0,61}[a-z0-9_]\Z"
)
"""A lower-case ASCII name whose labels are valid and whose last label is not a number: the
canonical form already (``xn--`` labels are checked by :func:`parse_host`)."""


def canonical(name: str) -> str:
    """The canonical text of a host (a name or an address).

    Raises:
        HostError: neither a valid name nor an address.
    """
    if len(name) <= 253 and _PLAIN.match(name) and "xn--" not in name:
        return name
    return parse_host(name).text


def parse_line(line: str) -> list[str] | None:
    """The canonical names one line lists (``[]``: none); ``None`` when it is not a valid entry."""
    fields = line.split("#", 1)[0].lower().split()
    if not fields:
        return []
    if fields[0] in HOSTS_ADDRESSES and len(fields) > 1:
        fields = fields[1:]
    elif len(fields) > 1:
        return None  # a name followed by something that is not a comment
    try:
        names = [canonical(field) for field in fields]
    except HostError:
        return None
    return [name for name in names if name not in NOT_BLOCKED]


def parse_lines(lines: Iterable[str]) -> Iterator[str]:
    """The domains of a blocklist: one per line, or hosts format (``0.0.0.0 a.com b.com``).

    ``#`` starts a comment; blank lines, hosts-file self names and invalid lines are skipped
    (:func:`read_blocklist` counts and numbers them).
    """
    for line in lines:
        yield from parse_line(line) or ()


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


class BlockList:
    """Listed domains as sorted SHA-256 hashes; a listed domain blocks its subdomains."""

    __slots__ = ("_blob", "_keys", "_starts")

    def __init__(self, domains: Iterable[str], *, canonical: bool = False) -> None:
        """The table of ``domains`` (``canonical``: already in canonical form, as read)."""
        names = set(domains) if canonical else {_canonical_or_text(domain) for domain in domains}
        digests = sorted([sha256(name.encode("ascii", "replace")).digest() for name in names])
        del names
        self._blob = b"".join(digests)
        del digests
        # The first 8 bytes of each 32-byte hash, as big-endian integers, copied in C.
        keys = array("Q")
        keys.frombytes(memoryview(self._blob).cast("Q")[::4].tobytes())
        if sys.byteorder == "little":
            keys.byteswap()
        self._keys = keys
        # Where each value of the top 16 bits starts: a search then covers one bucket (about
        # 15 keys at a million domains) instead of the whole table, for 256 KB more.
        self._starts = array("I", (bisect_left(keys, top << 48) for top in range(65537)))

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
        return self._listed(hashing.digest(_canonical_or_text(domain)))

    def blocks(self, host: str) -> bool:
        """Whether ``host`` or one of its parent domains is listed (an address: itself)."""
        return any(
            self._listed(hashing.digest(name))
            for name in hashing.domains_of(_canonical_or_text(host))
        )

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


def _canonical_or_text(host: str) -> str:
    """The canonical host; an invalid one lower-cased, so that it matches nothing valid."""
    text = host.strip().lower()
    try:
        return canonical(text)
    except HostError:
        return text


def read_blocklist(path: Path) -> tuple[BlockList, BlocklistReport]:
    """Read and validate a blocklist file: the table of its valid entries, and what was found.

    Raises:
        UsageError: the file cannot be read.
    """
    domains: set[str] = set()
    entries = invalid = 0
    numbers: list[int] = []
    try:
        with path.open(encoding="utf-8", errors="surrogateescape") as lines:
            for number, line in enumerate(lines, 1):
                try:
                    names = parse_line(line)
                except UnicodeError:  # a line of undecodable bytes
                    names = None
                if names is None:
                    entries += 1
                    invalid += 1
                    if len(numbers) < SHOWN_INVALID:
                        numbers.append(number)
                elif names or line.split("#", 1)[0].strip():
                    entries += 1
                    domains.update(names)
    except OSError as error:
        raise UsageError(f"blocklist {path} cannot be read: {error.strerror or error}") from error
    table = BlockList(domains, canonical=True)
    return table, BlocklistReport(path, entries, invalid, tuple(numbers), len(table))


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
    ) -> None:
        self.path = path
        self.clock = clock
        self.check_every = check_every
        self.warn = warn
        self._signature = _signature(path)
        table, report = read_blocklist(path)
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
            table, report = read_blocklist(self.path)
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
