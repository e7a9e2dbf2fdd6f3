"""Stops a test run's PostgreSQL cluster when the run ends, however it ends.

Usage: python pg_watchdog.py ROOT -- STOP-COMMAND...

Started by :func:`tests.collector.backends.postgres_cluster` with its standard input the read
end of a pipe whose write end only the run holds. The kernel closes that end when the run's
process ends, killed or not, so end of input here means the run is gone: if ``ROOT`` (the
cluster's folder) is still there, the run did not stop its cluster, and this runs
``STOP-COMMAND`` (``pg_ctl … -m immediate stop``) and removes ``ROOT``. A server still
starting when its folder goes stops by itself once it finds its lock file gone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: pg_watchdog.py ROOT -- STOP-COMMAND...", file=sys.stderr)
        return 2
    root, stop = Path(argv[0]), argv[2:]
    sys.stdin.buffer.read()  # returns at end of input: the run has ended
    if root.exists():
        subprocess.run(stop, check=False, capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
