"""Sandbox start-up: ``airlock run -- true`` next to bare bubblewrap and ``srt -- true``, in one run.

Rows, each run ``--runs`` times, round-robin (one of each in turn, so a busy moment hits every
row alike), from a fresh process each time:

* ``bwrap``: bare bubblewrap, ``bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all
  --die-with-parent true``: the floor;
* ``airlock run``: ``airlock run -- true`` with its audit log on (in a scratch home), the
  whole command: Python start-up, settings, the sandbox with every path rule, the stub, the
  audit log's start and run records flushed, the report. ``true`` connects nowhere, so the
  proxy itself is never loaded (see ``airlock.egress.standby``);
* ``srt``: Anthropic's sandbox-runtime, ``srt true`` (``--srt PATH``, else ``srt`` on PATH,
  else ``benchmarks/.peers/node_modules/.bin/srt``; install it there with
  ``npm install --prefix benchmarks/.peers @anthropic-ai/sandbox-runtime@0.0.83``);
* ``bwrap, in a project``, ``airlock run, in a project`` and ``srt, in a project``: ``true``
  again, started in a git repository of about 2,000 folders and 10,000 files (a mid-sized
  project; airlock walks it for nested repositories and agent settings before the run, and
  again after it);
* ``bwrap, connecting`` and ``airlock run, connecting``: the same two with a command that
  connects to the proxy's port first thing (``python -I -S -c``, a TCP connect to 127.0.0.1:3128,
  refused in bare bubblewrap): airlock then loads and starts its proxy while the command
  waits, the worst case, as for every command before the proxy was loaded on demand.

Prints the median, 90th percentile and minimum wall time of each row in milliseconds, and
airlock's median minus bare bubblewrap's, for ``true`` (the goal: at most 100 ms) and for the
connecting command. ``benchmarks/egress.py`` prints the same rows (``--startup-runs``). Then
which of the modules that only inspection, the git gateway, IDNA names or a terminal table need
were loaded by a run whose proxy served a connection (``python -X importtime``): each costs
millions of instructions, and a plain run should load none; and whether ``airlock run -- true``
loaded asyncio.

    .venv/bin/python benchmarks/sandbox_startup.py --runs 20
"""

from __future__ import annotations

import argparse
import compileall
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
NOT_ON_THE_PLAIN_PATH = (  # the redaction engine is not here: it reads the arguments of a
    # command that has any, for the run's record, once the command has ended
    "airlock.egress.inspect",
    "airlock.egress.inspected",
    "airlock.egress.plain",
    "airlock.egress.scan",
    "airlock.egress.gateway",
    "airlock.egress.ca",
    "airlock.egress.audit_read",
    "cryptography",
    "httpx",
    "rich",
    "idna",
)


CONNECTING = (
    os.path.realpath(sys.executable),  # the interpreter itself, not a venv's link or a shim
    "-I",
    "-S",
    "-c",
    "import socket\ntry: socket.create_connection(('127.0.0.1', 3128)).close()\nexcept OSError: pass",
)
"""A command that connects to the proxy's port inside the sandbox first thing, and ends."""


def find_srt(given: str | None) -> str | None:
    """The ``srt`` program: ``given``, else on PATH, else under ``benchmarks/.peers``."""
    for candidate in (given, shutil.which("srt"), str(HERE / ".peers/node_modules/.bin/srt")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return str(Path(candidate).absolute())  # the rows run in a scratch folder
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
    for name in ("bwrap", "airlock run", "srt"):
        if name in rows:
            rows[name + IN_A_PROJECT] = rows[name]
    rows["bwrap, connecting"] = [*rows["bwrap"][:-1], *CONNECTING]
    rows["airlock run, connecting"] = [*run, "run", "--", *CONNECTING]
    return rows


IN_A_PROJECT = ", in a project"
"""The suffix of the rows started in :func:`make_project`'s repository."""

PROJECT_SHAPE = (12, 12, 14, 5)
"""Folders at each of three levels, and files in each folder of the last."""


def make_project(folder: Path) -> int:
    """A git repository of ``PROJECT_SHAPE`` folders and empty files, added to its index (as
    a project's files are: airlock reads the index after the run); how many folders."""
    subprocess.run(["git", "init", "-q", str(folder)], check=True)
    first, second, third, files = PROJECT_SHAPE
    made = 1
    for a in range(first):
        for b in range(second):
            for c in range(third):
                leaf = folder / f"p{a}" / f"q{b}" / f"r{c}"
                leaf.mkdir(parents=True)
                for number in range(files):
                    (leaf / f"m{number}.py").touch()
            made += third + 1
        made += 1
    subprocess.run(["git", "-C", str(folder), "add", "-A"], check=True)
    return made


def measure(rows: dict[str, list[str]], runs: int, scratch: Path) -> dict[str, list[float]]:
    """Wall milliseconds of each row, ``runs`` times, round-robin."""
    home = scratch / "home"
    workspace = scratch / "workspace"
    project = scratch / "project"
    home.mkdir(exist_ok=True)
    workspace.mkdir(exist_ok=True)
    if not project.exists():
        make_project(project)
    environ = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    where = {name: project if name.endswith(IN_A_PROJECT) else workspace for name in rows}
    for name, command in rows.items():  # one warm-up each: page cache, bytecode
        subprocess.run(command, cwd=where[name], env=environ, capture_output=True, check=False)
    for _ in range(runs):
        for name, command in rows.items():
            started = time.perf_counter()
            done = subprocess.run(
                command, cwd=where[name], env=environ, capture_output=True, check=False
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
    in_project = statistics.median(times["airlock run" + IN_A_PROJECT]) - statistics.median(
        times["bwrap" + IN_A_PROJECT]
    )
    print(f"in a project of about 2,000 folders: {in_project:+.1f} ms above bare bubblewrap")
    connecting = statistics.median(times["airlock run, connecting"]) - statistics.median(
        times["bwrap, connecting"]
    )
    print(
        f"with a command that connects first thing (the proxy loaded while it waits): {connecting:+.1f} ms"
    )
    if "srt" in times:
        ratio = statistics.median(times["srt"]) / statistics.median(times["airlock run"])
        print(f"srt takes {ratio:.1f}x airlock run's start-up")


def imported(scratch: Path, command: list[str]) -> set[str]:
    """The modules ``airlock run -- COMMAND`` imported (``python -X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "airlock", "run", "--", *command],
        cwd=scratch / "workspace",
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(scratch / "home")},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"airlock run failed ({done.returncode}): {done.stderr[-500:]}")
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


def heavy_imports(scratch: Path) -> list[str]:
    """The modules of :data:`NOT_ON_THE_PLAIN_PATH` that a run whose proxy served a
    connection loaded."""
    names = imported(scratch, list(CONNECTING))
    if "airlock.egress.server" not in names:
        raise SystemExit("airlock run did not load its proxy: the import check means nothing")
    return sorted(
        name
        for name in names
        if any(name == root or name.startswith(root + ".") for root in NOT_ON_THE_PLAIN_PATH)
    )


def compile_airlock() -> None:
    """Compile airlock's bytecode first, as ``scripts/setup.sh`` does for a user.

    A source file changed since its bytecode was written is compiled again by every run that
    imports it when bytecode is not written (``PYTHONDONTWRITEBYTECODE``): the rows would time
    the compiler, not the run.
    """
    import airlock  # the tree the rows run (``PYTHONPATH`` included)

    compileall.compile_dir(Path(airlock.__file__).parent, quiet=1)


def run(runs: int, srt_path: str | None) -> None:
    """Measure and print (for ``benchmarks/egress.py`` too)."""
    srt = find_srt(srt_path)
    compile_airlock()
    with tempfile.TemporaryDirectory(prefix="sandbox-startup-") as name:
        scratch = Path(name)
        times = measure(commands(srt), runs, scratch)
        heavy = heavy_imports(scratch)
        quiet = imported(scratch, ["true"])
    print_rows(times, srt is None)
    print(
        "modules a plain run need not load, loaded by a plain run that connects: "
        + (", ".join(heavy) if heavy else "none")
    )
    print(
        "airlock run -- true loaded the proxy (asyncio): "
        + ("yes" if "asyncio" in quiet or "airlock.egress.server" in quiet else "no")
    )


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
