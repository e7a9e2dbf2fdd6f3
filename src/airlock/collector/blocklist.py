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

:class:`ReloadingBlockList` watches the file (size, mtime, inode), at most once every
``check_every`` seconds of the injected clock, and loads a changed file in a background
thread; lookups go on against the old table until the new one is swapped in whole.
"""

from __future__ import annotations

import os
import sys
import threading
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from hashlib import sha256
from pathlib import Path

from airlock.errors import UsageError
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


def parse_lines(lines: Iterable[str]) -> Iterator[str]:
    """The domains of a blocklist: one per line, or hosts format (``0.0.0.0 a.com b.com``).

    ``#`` starts a comment; blank lines, hosts-file self names and invalid names are skipped.
    """
    for raw in lines:
        fields = (raw.split("#", 1)[0] if "#" in raw else raw).split()
        if not fields:
            continue
        names = fields[1:] if fields[0] in HOSTS_ADDRESSES and len(fields) > 1 else fields[:1]
        for name in names:
            domain = name.rstrip(".").lower() if name.isascii() else normalize_host(name)
            if domain and domain not in NOT_BLOCKED and "/" not in domain:
                yield domain


class BlockList:
    """Listed domains as sorted SHA-256 hashes; a listed domain blocks its subdomains."""

    __slots__ = ("_blob", "_keys", "_starts")

    def __init__(self, domains: Iterable[str]) -> None:
        self._build(normalize_host(domain) for domain in domains)

    def _build(self, normalized: Iterable[str]) -> None:
        digests = [sha256(domain.encode("ascii", "replace")).digest() for domain in normalized]
        digests.sort()  # then drop repeats: cheaper in memory than a set of a million digests
        unique = [d for i, d in enumerate(digests) if i == 0 or d != digests[i - 1]]
        del digests
        self._blob = b"".join(unique)
        self._keys = array("Q", (int.from_bytes(d[:8], "big") for d in unique))
        # Where each value of the top 16 bits starts: a search then covers one bucket (about
        # 15 keys at a million domains) instead of the whole table, for 256 KB more.
        self._starts = array("I", (bisect_left(self._keys, top << 48) for top in range(65537)))

    @classmethod
    def from_file(cls, path: Path) -> BlockList:
        """Read a blocklist file.

        Raises:
            UsageError: the file cannot be read.
        """
        try:
            with path.open(encoding="utf-8", errors="replace") as handle:
                table = cls.__new__(cls)
                table._build(parse_lines(handle))  # parse_lines normalises already
                return table
        except OSError as error:
            raise UsageError(
                f"blocklist {path} cannot be read: {error.strerror or error}"
            ) from error

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
        return self._listed(hashing.digest(normalize_host(domain)))

    def blocks(self, host: str) -> bool:
        """Whether ``host`` or one of its parent domains is listed."""
        name = normalize_host(host)
        if hashing.is_address(name):
            return self._listed(hashing.digest(name))
        start = 0
        while True:  # the name, then each parent: the hot path of the service, kept tight
            if self._listed(sha256(name[start:].encode("ascii", "replace")).digest()):
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


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        status = os.stat(path)  # noqa: PTH116 - one stat call for size, mtime and inode
    except OSError:
        return None
    return (status.st_size, status.st_mtime_ns, status.st_ino)


class ReloadingBlockList:
    """A :class:`BlockList` from a file, reloaded when the file changes, without a restart.

    Args:
        path: the blocklist file (one domain a line, or hosts format).
        clock: monotonic seconds.
        check_every: seconds between two looks at the file.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float], check_every: float = 1.0) -> None:
        self.path = path
        self.clock = clock
        self.check_every = check_every
        self._signature = _signature(path)
        self.current = BlockList.from_file(path)
        self.loaded_at = clock()
        self.reloads = 0
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
        """Reload when the file changed since the last load. Returns whether a reload started."""
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

    def _load(self) -> None:
        try:
            signature = _signature(self.path)
            table = BlockList.from_file(self.path)
        except UsageError as error:
            print(f"airlock serve: keeping the previous blocklist: {error}", file=sys.stderr)
        else:
            self.current = table
            self._signature = signature
            self.loaded_at = self.clock()
            self.reloads += 1
        finally:
            with self._lock:
                self._loading = False
