"""Sandbox start-up: ``airlock run -- true`` next to bare bubblewrap and ``srt -- true``, in one run.

Rows, each run ``--runs`` times, round-robin (one of each in turn, so a busy moment hits every
row alike), from a fresh process each time:

* ``bwrap``: bare bubblewrap, ``bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all
  --die-with-parent true``: the floor;
* ``airlock run``: ``airlock run -- true`` with its audit log on (in a scratch home), the
  whole command: Python start-up, settings, the sandbox with every path rule, the stub, the
  proxy thread, the run record flushed, the report;
* ``srt``: Anthropic's sandbox-runtime, ``srt true`` (``--srt PATH``, else ``srt`` on PATH,
  else ``benchmarks/.peers/node_modules/.bin/srt``; install it there with
  ``npm install --prefix benchmarks/.peers @anthropic-ai/sandbox-runtime@0.0.83``).

Prints the median, 90th percentile and minimum wall time of each row in milliseconds, and
airlock's median minus bare bubblewrap's (the goal: at most 100 ms). ``benchmarks/egress.py``
prints the same rows (``--startup-runs``).

    .venv/bin/python benchmarks/sandbox_startup.py --runs 20
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_MS = 100.0


def find_srt(given: str | None) -> str | None:
    """The ``srt`` program: ``given``, else on PATH, else under ``benchmarks/.peers``."""
    for candidate in (given, shutil.which("srt"), str(HERE / ".peers/node_modules/.bin/srt")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def commands(srt: str | None) -> dict[str, list[str]]:
    airlock = Path(sys.executable).with_name("airlock")
    run = [str(airlock)] if airlock.is_file() else [sys.executable, "-m", "airlock"]
    rows = {
        "bwrap": [
            "bwrap",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--unshare-all",
            "--die-with-parent",
            "true",
        ],
        "airlock run": [*run, "run", "--", "true"],
    }
    if srt is not None:
        rows["srt"] = [srt, "true"]
    return rows


def measure(rows: dict[str, list[str]], runs: int, scratch: Path) -> dict[str, list[float]]:
    """Wall milliseconds of each row, ``runs`` times, round-robin."""
    home = scratch / "home"
    workspace = scratch / "workspace"
    home.mkdir(exist_ok=True)
    workspace.mkdir(exist_ok=True)
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for command in rows.values():  # one warm-up each: page cache, bytecode
        subprocess.run(command, cwd=workspace, env=environ, capture_output=True, check=False)
    for _ in range(runs):
        for name, command in rows.items():
            started = time.perf_counter()
            done = subprocess.run(
                command, cwd=workspace, env=environ, capture_output=True, check=False
            )
            elapsed = (time.perf_counter() - started) * 1000
            if done.returncode != 0:
                raise SystemExit(
                    f"{name} failed ({done.returncode}): {done.stderr.decode()[-500:]}"
                )
            times[name].append(elapsed)
    return times


def print_rows(times: dict[str, list[float]], srt_missing: bool) -> None:
    """The table, and airlock's start-up above bare bubblewrap."""
    print("| sandbox start-up (ms) | median | p90 | min |")
    print("| --- | --- | --- | --- |")
    for name, found in times.items():
        ordered = sorted(found)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"| {name} | {statistics.median(found):.1f} | {p90:.1f} | {ordered[0]:.1f} |")
    if srt_missing:
        print(
            "| srt | not installed: npm install --prefix benchmarks/.peers @anthropic-ai/sandbox-runtime@0.0.83 | | |"
        )
    above = statistics.median(times["airlock run"]) - statistics.median(times["bwrap"])
    verdict = "meets" if above <= GOAL_MS else "misses"
    print(
        f"airlock run above bare bubblewrap: {above:+.1f} ms (goal: at most {GOAL_MS:.0f} ms; {verdict} it)"
    )
    if "srt" in times:
        ratio = statistics.median(times["srt"]) / statistics.median(times["airlock run"])
        print(f"srt takes {ratio:.1f}x airlock run's start-up")


def run(runs: int, srt_path: str | None) -> None:
    """Measure and print (for ``benchmarks/egress.py`` too)."""
    srt = find_srt(srt_path)
    with tempfile.TemporaryDirectory(prefix="sandbox-startup-") as name:
        scratch = Path(name)
        times = measure(commands(srt), runs, scratch)
    print_rows(times, srt is None)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=20, help="runs of each row (default 20)")
    parser.add_argument("--srt", help="the srt program (default: on PATH, or benchmarks/.peers)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at start")
    run(args.runs, args.srt)
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
