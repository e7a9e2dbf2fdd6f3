"""Prune and list of a large transcript cache, against ``find … -mtime +N -delete``, same run.

    .venv/bin/python benchmarks/sessions_prune.py [--sessions 20000] [--max-seconds 600] [--on-disk]

Builds one config dir shaped like the reference agent's (transcripts; a third with a subagent
transcript, a quarter with tool results; half with file-history, debug log and todo list),
half of the sessions 40 days old and half 2 days old, copies it (``cp -a`` keeps the times),
then times on the same machine, in the same run:

- ``airlock sessions list --json`` (the CLI, a subprocess) and ``SessionStore.list()``;
- ``airlock sessions prune --older-than 30`` on one copy (reads the tail of every candidate
  transcript, groups files by session, writes a removal journal, removes through descriptors);
- ``find DIR -mtime +30 -delete`` on the other copy (removes old files, nothing more).

Both must leave the same files behind; the script checks that. Everything stays under a
temporary folder removed at the end: in /dev/shm (memory) unless ``--on-disk``, as this
machine's shared disk made ``find`` itself vary from 5 to 47 s between runs. Generation stops
at ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

DAY = 86400.0


def build(config_dir: Path, count: int, now: float, max_seconds: float) -> int:
    """Write ``count`` sessions (fewer if ``max_seconds`` runs out); returns how many."""
    started = time.monotonic()
    projects = [config_dir / "projects" / f"-home-user-project{i}" for i in range(40)]
    for folder in [
        *projects,
        *(config_dir / n for n in ("file-history", "debug", "todos")),
    ]:
        folder.mkdir(parents=True, exist_ok=True)
    made = 0
    for made in range(count):
        if time.monotonic() - started > max_seconds:
            break
        _session(config_dir, projects[made % len(projects)], made, now)
    else:
        made = count
    return made


def _session(config_dir: Path, project: Path, number: int, now: float) -> None:
    session_id = str(uuid.UUID(int=number + 1))
    age = 40 * DAY if number % 2 else 2 * DAY
    moment = now - age
    stamp = datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
    lines = [
        {
            "type": "user",
            "sessionId": session_id,
            "cwd": f"/home/user/{project.name}",
            "timestamp": stamp,
            "uuid": str(uuid.uuid4()),
            "parentUuid": None,
            "isSidechain": False,
            "version": "2.1.328",
            "gitBranch": "main",
            "message": {"role": "user", "content": f"task number {number}: fix the build"},
        },
        {
            "type": "assistant",
            "sessionId": session_id,
            "timestamp": stamp,
            "uuid": str(uuid.uuid4()),
            "message": {"role": "assistant", "content": [{"type": "text", "text": "x" * 1500}]},
        },
    ]
    files = {project / f"{session_id}.jsonl": "\n".join(map(json.dumps, lines)) + "\n"}
    if number % 3 == 0:
        files[project / session_id / "subagents" / "agent-a1.jsonl"] = json.dumps(lines[1]) + "\n"
    if number % 4 == 0:
        files[project / session_id / "tool-results" / "toolu_1.txt"] = "output\n" * 200
    if number % 2 == 0 or number % 5 == 1:
        files[config_dir / "file-history" / session_id / "f@v1"] = "old contents\n"
        files[config_dir / "debug" / f"{session_id}.txt"] = "debug\n" * 20
        files[config_dir / "todos" / f"{session_id}-agent-{session_id}.json"] = "[]"
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (moment, moment))


LOCK = ("airlock", "sessions-removal.lock")
"""airlock's own lock file (one prune or delete at a time), kept in the config dir: not a
file of the agent's, so left out of the comparison with ``find``."""


def count_files(root: Path) -> int:
    lock = root.joinpath(*LOCK)
    return sum(
        1 for folder, _, files in os.walk(root) for name in files if Path(folder, name) != lock
    )


def timed(
    command: list[str], env: dict[str, str]
) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    """Wall seconds of one run of ``command`` (its CPU seconds go to :data:`CPU`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, env=env, timeout=600, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[command[-1]] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, result


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


CPU: dict[str, float] = {}
"""CPU seconds (user + system) of the last run of each command, by its last argument."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument(
        "--on-disk",
        action="store_true",
        help="build the trees under /tmp (the disk) rather than /dev/shm (memory)",
    )
    args = parser.parse_args()
    airlock = [sys.executable, "-m", "airlock", "sessions"]
    shm = Path("/dev/shm")
    base = None if args.on_disk or not shm.is_dir() else shm
    work = Path(tempfile.mkdtemp(prefix="airlock-bench-sessions-", dir=base))
    print(f"trees under {work} ({'memory' if base else 'disk'})")
    try:
        ours, theirs = work / "ours" / ".claude", work / "find" / ".claude"
        now = time.time()
        t0 = time.perf_counter()
        made = build(ours, args.sessions, now, args.max_seconds)
        built = time.perf_counter() - t0
        theirs.parent.mkdir(parents=True)
        subprocess.run(["cp", "-a", str(ours), str(theirs)], check=True, timeout=600)
        os.sync()  # both trees on disk before anything is timed: no writeback in the timings
        files = count_files(ours)
        print(f"tree: {made} sessions, {files} files, half 40 days old (built in {built:.1f} s)")
        env = {**os.environ, "CLAUDE_CONFIG_DIR": str(ours), "HOME": str(work)}
        env["AIRLOCK_MANAGED_SETTINGS_DIR"] = str(work / "no-managed")

        from airlock.sessions import SessionStore

        library_runs, library_cpu, cli_runs, cli_cpu = [], [], [], []
        for _ in range(3):  # the median of three of each: this machine is shared and noisy
            before = _cpu()
            t0 = time.perf_counter()
            listed = SessionStore(ours).list()
            library_runs.append(time.perf_counter() - t0)
            library_cpu.append(_cpu() - before)  # its forked reader included
            elapsed, result = timed([*airlock, "list", "--json"], env)
            assert result.returncode == 0, result.stderr
            assert len(json.loads(result.stdout)) == made == len(listed)
            cli_runs.append(elapsed)
            cli_cpu.append(CPU["--json"])
        library_list, cli_list = sorted(library_runs)[1], sorted(cli_runs)[1]
        dry, result = timed([*airlock, "prune", "--older-than", "30", "--dry-run", "--json"], env)
        assert result.returncode == 0, result.stderr
        os.sync()
        ours_prune, result = timed([*airlock, "prune", "--older-than", "30", "--json"], env)
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        os.sync()
        find_prune, result = timed(["find", str(theirs), "-mtime", "+30", "-delete"], env)
        assert result.returncode == 0, result.stderr
        left_ours, left_find = count_files(ours), count_files(theirs)
        print(f"removed: airlock {len(report['sessions'])} sessions, {report['bytes_freed']} bytes")
        for line in report["skipped"][:3] + report["problems"][:3]:
            print(f"  note: {line}")
        print(f"files left: airlock {left_ours}, find {left_find} (must match)")
        print()
        ours_cpu, find_cpu = CPU["--json"], CPU["-delete"]
        print(f"{'task':<44}{'airlock':>10}{'find':>10}{'ratio':>8}")
        print(
            f"{'prune, wall (half of the sessions expired)':<44}{ours_prune:>9.2f}s"
            f"{find_prune:>9.2f}s{ours_prune / find_prune:>7.2f}x"
        )
        print(
            f"{'prune, CPU user+system':<44}{ours_cpu:>9.2f}s"
            f"{find_cpu:>9.2f}s{ours_cpu / find_cpu:>7.2f}x"
        )
        print(f"{'prune --dry-run':<44}{dry:>9.2f}s{'':>10}")
        print(f"{'list --json (CLI, incl. start-up; median of 3)':<44}{cli_list:>9.2f}s{'':>10}")
        print(f"{'  its CPU, both processes (median of 3)':<44}{sorted(cli_cpu)[1]:>9.2f}s")
        print(f"{'SessionStore.list() (library; median of 3)':<44}{library_list:>9.2f}s{'':>10}")
        print(f"{'  its CPU, both processes (median of 3)':<44}{sorted(library_cpu)[1]:>9.2f}s")
        print(f"(load average while running: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
        return 0 if left_ours == left_find else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
