"""The bare scan of our rule table with RE2: every alternative of the engine's scan in one
program, no per-match work (the engine's limit; the engine itself scans the same alternatives as
a few smaller programs, which RE2 builds faster on new text, see ``airlock.redact.table``).

Used in process by ``redaction.py``, and run as a whole command on a file (start-up, compiling,
the first pass that builds the DFA and reading included), in 1 MiB chunks:

    .venv/bin/python benchmarks/bare_scan.py FILE
"""

from __future__ import annotations

import sys
from typing import Any

from airlock.redact import RULES
from airlock.redact.table import Table


def program() -> Any:
    """Every rule's pattern in one RE2 program (the alternatives the engine scans for)."""
    return Table(RULES).scanner


def scan(compiled: Any, data: bytes) -> int:
    """Every match of ``compiled`` in ``data``, one after the other; how many."""
    position = 0
    count = 0
    while True:
        found = compiled.search(data, position)
        if found is None:
            return count
        count += 1
        first, last = found.span()
        position = max(last, first + 1)


def main() -> int:
    compiled = program()
    with open(sys.argv[1], "rb") as handle:  # noqa: PTH123 - the plainest read
        while chunk := handle.read(1 << 20):
            scan(compiled, chunk)
    return 0


if __name__ == "__main__":
    sys.exit(main())
