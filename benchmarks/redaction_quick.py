"""A quick in-process check of redaction speed against the bare scan of the same program.

Scans the generated corpus (``airlock.redact.corpus``, seed 1, ``--megabytes``, joined four
times) with the engine's one RE2 program alone, then redacts it with ``Redactor``; best of three:

    .venv/bin/python benchmarks/redaction_quick.py [--megabytes 5]
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import bare_scan as bare
from airlock.redact import RULES, Redactor
from airlock.redact.corpus import generate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=5.0)
    args = parser.parse_args()
    whole = b"".join(data for _, data in generate(1, args.megabytes).files) * 4
    compiled = bare.program()
    bare.scan(compiled, whole)  # the DFA built
    redactor = Redactor()
    bare_best = engine_best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        bare.scan(compiled, whole)
        bare_best = max(bare_best, len(whole) / 1e6 / (time.perf_counter() - started))
        started = time.perf_counter()
        redactor.redact_stream(io.BytesIO(whole), io.BytesIO())
        engine_best = max(engine_best, len(whole) / 1e6 / (time.perf_counter() - started))
    print(f"patterns: {len(RULES)}; {len(whole) / 1e6:.1f} MB")
    print(
        f"bare scan {bare_best:.0f} MB/s; redact_stream {engine_best:.0f} MB/s "
        f"({engine_best / bare_best:.2f} of the bare scan)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
