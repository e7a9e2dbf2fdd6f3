"""Prune and list of a large transcript cache, against ``find … -mtime +N -delete``, same run.

    .venv/bin/python benchmarks/sessions_prune.py [--sessions 20000] [--pairs 3]
        [--real-sessions 4000] [--max-seconds 600] [--on-disk]

Builds one config dir shaped like the reference agent's (transcripts; a third with a subagent
transcript, a quarter with tool results; half with file-history, debug log and todo list),
half of the sessions 40 days old and half 2 days old, once, then times on the same machine, in
the same run:

- ``airlock sessions list --json`` (the CLI, a subprocess) and ``SessionStore.list()`` on the
  built tree, alternating, five of each (the median is reported);
- ``airlock sessions prune --older-than 30 --dry-run`` on the built tree, once;
- ``airlock sessions list --json`` of ``--real-sessions`` sessions (4,000 unless told; 0: not)
  whose transcripts are copies of the labelled corpus's (``../shared/corpora``, when there):
  the built tree's transcripts are 2 KB, real ones hundreds, and a listing parses the first
  64 KB of each (median of 3);
- ``--pairs`` pairs (3 unless told) of removals. For each pair the built tree is copied twice
  (``cp -a`` keeps the times), ``os.sync()`` is called, then ``airlock sessions prune
  --older-than 30`` runs on one copy (reads the tail of every candidate transcript, groups
  files by session, writes a removal journal, removes through descriptors) and
  ``find DIR -mtime +30 -delete`` on the other (removes old files, nothing more), back to
  back, the one that goes first alternating from pair to pair. Each pair's wall and CPU
  (user + system, children included) times and their ratios are printed; the goal is judged
  on the median of the pairs' wall ratios, as this machine's speed drifts over minutes and
  one pair alone is noisy.

In every pair both must leave the same files behind; the script checks that, and exits with 1
if they do not. Everything stays under a temporary folder removed at the end: in /dev/shm
(memory) unless ``--on-disk``, as this machine's shared disk made ``find`` itself vary from 5
to 47 s between runs. Generation stops at ``--max-seconds``; every command run has a timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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

TIMEOUT = 600.0
"""Seconds any one command run by this script may take."""


def count_files(root: Path) -> int:
    lock = root.joinpath(*LOCK)
    return sum(
        1 for folder, _, files in os.walk(root) for name in files if Path(folder, name) != lock
    )


def timed(
    command: list[str], env: dict[str, str]
) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    """(wall seconds, CPU seconds user + system, the result) of one run of ``command``; the
    CPU time includes the processes it forked and waited for."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, env=env, timeout=TIMEOUT, check=False)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu, result


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children so far."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True)
    subprocess.run(["cp", "-a", str(source), str(target)], check=True, timeout=TIMEOUT)


def _env(work: Path, config_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CLAUDE_CONFIG_DIR": str(config_dir),
        "HOME": str(work),
        "AIRLOCK_MANAGED_SETTINGS_DIR": str(work / "no-managed"),
    }


@dataclass(frozen=True)
class Pair:
    """One back-to-back run of airlock's prune and ``find`` on fresh copies of the tree."""

    first: str
    ours_wall: float
    ours_cpu: float
    find_wall: float
    find_cpu: float
    left_ours: int
    left_find: int
    report: dict[str, Any]

    @property
    def wall_ratio(self) -> float:
        return self.ours_wall / self.find_wall

    @property
    def cpu_ratio(self) -> float:
        return self.ours_cpu / self.find_cpu


def run_pair(work: Path, built: Path, number: int, airlock: list[str]) -> Pair:
    """Copy ``built`` twice, sync, then prune one copy with airlock and the other with
    ``find``, airlock first in even pairs and ``find`` first in odd ones."""
    folder = work / f"pair{number}"
    ours, theirs = folder / "airlock" / ".claude", folder / "find" / ".claude"
    try:
        _copy(built, ours)
        _copy(built, theirs)
        os.sync()  # both copies written out before anything is timed: no writeback inside
        env = _env(work, ours)
        runs: dict[str, tuple[float, float, subprocess.CompletedProcess[bytes]]] = {}
        order = ["airlock", "find"] if number % 2 == 0 else ["find", "airlock"]
        for who in order:
            if who == "airlock":
                command = [*airlock, "prune", "--older-than", "30", "--json"]
            else:
                command = ["find", str(theirs), "-mtime", "+30", "-delete"]
            runs[who] = timed(command, env)
            assert runs[who][2].returncode == 0, runs[who][2].stderr
        return Pair(
            first=order[0],
            ours_wall=runs["airlock"][0],
            ours_cpu=runs["airlock"][1],
            find_wall=runs["find"][0],
            find_cpu=runs["find"][1],
            left_ours=count_files(ours),
            left_find=count_files(theirs),
            report=json.loads(runs["airlock"][2].stdout),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # keep at most one pair's copies in memory


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "redaction-dev"
"""The labelled corpus beside the project: transcripts of the reference's shape and of real
size (125-550 KB each)."""


def _list_real_sizes(work: Path, count: int, airlock: list[str]) -> None:
    """``list --json`` of ``count`` sessions whose transcripts are the corpus's (copied in
    turn): the generated tree's transcripts are 2 KB, so a listing there parses little."""
    sources = sorted((CORPUS / "transcripts").glob("*/*.jsonl"))
    if not sources:
        print(f"(no corpus at {CORPUS}: no listing of transcripts of real size)")
        return
    config = work / "real" / ".claude"
    project = config / "projects" / "-home-user-real"
    project.mkdir(parents=True)
    for number in range(count):
        shutil.copyfile(
            sources[number % len(sources)], project / f"{uuid.UUID(int=number + 1)}.jsonl"
        )
    size = sum(path.stat().st_size for path in project.iterdir())
    runs = []
    for _ in range(3):
        elapsed, cpu, result = timed([*airlock, "list", "--json"], _env(work, config))
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)) == count
        runs.append((elapsed, cpu))
    elapsed, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
    label = f"list --json, {count} corpus transcripts ({size / 1e9:.1f} GB)"
    print(f"{label:<48}{elapsed:>8.2f}s{cpu:>8.2f}s")
    print(f"  ({elapsed / count * 1e3:.2f} ms a session of real size; median of 3)")
    shutil.rmtree(config.parent, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--pairs", type=int, default=3, help="prune/find pairs (default 3)")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument(
        "--real-sessions",
        type=int,
        default=4000,
        help="also list this many sessions made of the corpus's transcripts (0: not)",
    )
    parser.add_argument(
        "--on-disk",
        action="store_true",
        help="build the trees under /tmp (the disk) rather than /dev/shm (memory)",
    )
    args = parser.parse_args()
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    airlock = [sys.executable, "-m", "airlock", "sessions"]
    shm = Path("/dev/shm")
    base = None if args.on_disk or not shm.is_dir() else shm
    work = Path(tempfile.mkdtemp(prefix="airlock-bench-sessions-", dir=base))
    print(f"trees under {work} ({'memory' if base else 'disk'})")
    try:
        built = work / "built" / ".claude"
        now = time.time()
        t0 = time.perf_counter()
        made = build(built, args.sessions, now, args.max_seconds)
        elapsed = time.perf_counter() - t0
        files = count_files(built)
        print(f"tree: {made} sessions, {files} files, half 40 days old (built in {elapsed:.1f} s)")
        env = _env(work, built)

        from airlock.sessions import SessionStore

        library_runs, library_cpu, cli_runs, cli_cpu = [], [], [], []
        for _ in range(5):  # alternating, the median of five of each: this machine is noisy
            before = _cpu()
            t0 = time.perf_counter()
            listed = SessionStore(built).list()
            library_runs.append(time.perf_counter() - t0)
            library_cpu.append(_cpu() - before)
            elapsed, cpu, result = timed([*airlock, "list", "--json"], env)
            assert result.returncode == 0, result.stderr
            assert len(json.loads(result.stdout)) == made == len(listed)
            cli_runs.append(elapsed)
            cli_cpu.append(cpu)
        dry, dry_cpu, result = timed(
            [*airlock, "prune", "--older-than", "30", "--dry-run", "--json"], env
        )
        assert result.returncode == 0, result.stderr
        assert count_files(built) == files, "a dry run or a listing changed the tree"

        pairs: list[Pair] = []
        print()
        print(
            f"{'pair':<6}{'first':<9}{'airlock wall':>13}{'find wall':>11}{'ratio':>8}"
            f"{'airlock CPU':>13}{'find CPU':>10}{'ratio':>8}{'files left':>16}"
        )
        for number in range(args.pairs):
            pair = run_pair(work, built, number, airlock)
            pairs.append(pair)
            left = f"{pair.left_ours}/{pair.left_find}"
            same = "ok" if pair.left_ours == pair.left_find else "DIFFER"
            print(
                f"{number + 1:<6}{pair.first:<9}{pair.ours_wall:>12.2f}s{pair.find_wall:>10.2f}s"
                f"{pair.wall_ratio:>7.2f}x{pair.ours_cpu:>12.2f}s{pair.find_cpu:>9.2f}s"
                f"{pair.cpu_ratio:>7.2f}x{left:>13} {same}"
            )
        wall_ratio = statistics.median(p.wall_ratio for p in pairs)
        print(
            f"{'median':<15}{statistics.median(p.ours_wall for p in pairs):>12.2f}s"
            f"{statistics.median(p.find_wall for p in pairs):>10.2f}s{wall_ratio:>7.2f}x"
            f"{statistics.median(p.ours_cpu for p in pairs):>12.2f}s"
            f"{statistics.median(p.find_cpu for p in pairs):>9.2f}s"
            f"{statistics.median(p.cpu_ratio for p in pairs):>7.2f}x"
        )
        print("(each median is taken on its own column; files left: airlock/find, must match)")
        report = pairs[-1].report
        print(
            f"removed (last pair): airlock {len(report['sessions'])} sessions, "
            f"{report['bytes_freed']} bytes"
        )
        for line in report["skipped"][:3] + report["problems"][:3]:
            print(f"  note: {line}")
        print()
        list_cli, list_library = statistics.median(cli_runs), statistics.median(library_runs)
        print(f"{'task':<48}{'wall':>9}{'CPU':>9}")
        print(f"{'prune --dry-run (once)':<48}{dry:>8.2f}s{dry_cpu:>8.2f}s")
        print(
            f"{'list --json (CLI, incl. start-up; median of 5)':<48}{list_cli:>8.2f}s"
            f"{statistics.median(cli_cpu):>8.2f}s"
        )
        print(
            f"{'SessionStore.list() (library; median of 5)':<48}{list_library:>8.2f}s"
            f"{statistics.median(library_cpu):>8.2f}s"
        )
        print("(CPU: user + system)")
        if args.real_sessions:
            _list_real_sizes(work, args.real_sessions, airlock)
        print()
        matched = all(p.left_ours == p.left_find for p in pairs)
        goals = [
            (
                f"prune within 2x of find's wall time, median of {len(pairs)} pair ratios "
                f"({wall_ratio:.2f}x)",
                wall_ratio <= 2.0,
            ),
            (
                f"list under 2 s, median of 5: CLI {list_cli:.2f} s, library {list_library:.2f} s",
                max(list_cli, list_library) < 2.0,
            ),
            ("same files left by airlock and find, every pair", matched),
        ]
        for text, met in goals:
            print(f"goal {'MET    ' if met else 'NOT MET'} {text}")
        print(f"(load average while running: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
        return 0 if matched else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
