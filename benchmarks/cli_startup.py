"""CLI start-up: median wall time of ``airlock flows --json`` beside a bare interpreter.

    .venv/bin/python benchmarks/cli_startup.py [--runs 30]

Both commands run alternately in the same loop, so machine noise hits both alike. The goal is
no more than 80 ms above ``python -c pass``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_MS = 80.0


def _time(command: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
    )
    return (time.perf_counter() - start) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    airlock = str(Path(sys.executable).with_name("airlock"))
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -I -S -c pass": [sys.executable, "-I", "-S", "-c", "pass"],
        "airlock flows --json": [airlock, "flows", "--json"],
        "airlock flows (table)": [airlock, "flows"],
    }
    with tempfile.TemporaryDirectory() as home:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": home,
            "AIRLOCK_MANAGED_SETTINGS_DIR": home,
        }
        for command in commands.values():  # warm the file cache and .pyc files
            _time(command, env, home)
        samples: dict[str, list[float]] = {name: [] for name in commands}
        deadline = time.monotonic() + 120
        for _ in range(args.runs):
            for name, command in commands.items():
                samples[name].append(_time(command, env, home))
            if time.monotonic() > deadline:
                break
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':<24}{'median ms':>12}{'p90 ms':>10}{'above bare':>12}")
    for name, times in samples.items():
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{name:<24}{median:>12.1f}{p90:>10.1f}{median - base:>12.1f}")
    above = statistics.median(samples["airlock flows --json"]) - base
    verdict = "meets" if above <= GOAL_MS else "misses"
    print(
        f"\nairlock flows --json is {above:.1f} ms above the bare interpreter: {verdict} the goal of {GOAL_MS:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
