"""``airlock run`` killed with SIGKILL: the placeholders it left are removed by the next run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from airlock.sandbox.placeholders import Placeholders, remove_empty, sweep
from tests.cli import airlock
from tests.integration.started import start_run


def _killed_run(tmp_path: Path) -> None:
    """``airlock run`` in the project, killed with SIGKILL while its command runs."""
    process = start_run(tmp_path, "echo started; exec sleep 60")
    process.kill()
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]


def test_the_next_run_removes_what_a_killed_one_left(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """A killed run leaves an empty .git/commondir (git then fails), empty folders at the
    missing protected paths and its scratch folder; the next run removes them and says so;
    git works again."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    _killed_run(tmp_path)
    commondir = project / ".git" / "commondir"
    deadline = time.monotonic() + 10
    while not commondir.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert commondir.exists() and commondir.stat().st_size == 0  # what the killed run left
    assert (project / ".vscode").is_dir()
    assert list(tmp_path.glob("airlock-run-*"))  # its scratch folder (TMPDIR is tmp_path)
    broken = subprocess.run(["git", "status"], cwd=project, capture_output=True, text=True)
    assert broken.returncode != 0
    time.sleep(0.5)  # bubblewrap dies with airlock; its pid must be gone for the sweep
    done = airlock("run", "--audit-log", str(tmp_path / "b.jsonl"), "--", "true", timeout=180)
    assert done.returncode == 0, done.stderr
    assert "removed the empty placeholders" in done.stderr
    assert not commondir.exists()
    assert not (project / ".vscode").exists()
    assert not list((config_dir / "airlock" / "placeholders").iterdir())
    assert not list(tmp_path.glob("airlock-run-*"))
    fixed = subprocess.run(["git", "status"], cwd=project, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr


def test_a_placeholder_another_running_sandbox_stands_on_stays(tmp_path: Path) -> None:
    """Removal skips paths a live run's ledger lists (its mount would go), and empties only."""
    ledgers = tmp_path / "ledgers"
    shared, own, full = tmp_path / "shared", tmp_path / "own", tmp_path / "full"
    for folder in (shared, own, full):
        folder.mkdir()
    (full / "kept").write_text("content")
    live = Placeholders([shared], ledgers / "live.json")
    live.record()  # this process: alive
    ended = Placeholders([shared, own, full], ledgers / "ended.json")
    ended.record()
    ended.remove()
    assert shared.exists() and not own.exists() and full.exists()
    assert not (ledgers / "ended.json").exists() and (ledgers / "live.json").exists()


def test_sweep_leaves_the_ledgers_of_runs_still_going(tmp_path: Path) -> None:
    ledgers = tmp_path / "ledgers"
    left = tmp_path / "left"
    left.mkdir()
    Placeholders([left], ledgers / "mine.json").record()  # this process's: still going
    assert sweep(ledgers) == []
    assert left.exists()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (ledgers / "dead.json").write_text(
        f'{{"pid": {int(dead.stdout)}, "paths": ["{tmp_path / "gone"}"]}}'
    )
    (tmp_path / "gone").mkdir()
    assert sweep(ledgers) == [ledgers / "dead.json"]
    assert not (tmp_path / "gone").exists()


def test_a_run_keeps_the_placeholder_of_another_run_it_stands_on(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """Run A made an empty .git/commondir (a placeholder, in its ledger); run B, started in the
    same repository meanwhile, binds onto it read-only. When A ends, its placeholder stays
    while B runs (removing it would take B's mount away), so code in B still cannot write
    .git/commondir (which would make git outside read a config and hooks of its choosing)."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    commondir = project / ".git" / "commondir"
    commondir.touch()
    run_a = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    ledger_a = config_dir / "airlock" / "placeholders" / f"run-a-{run_a.pid}.json"
    ledger_a.parent.mkdir(parents=True)
    ledger_a.write_text(f'{{"pid": {run_a.pid}, "paths": ["{commondir}"]}}', encoding="utf-8")
    run_b = start_run(
        tmp_path,
        "echo started; while [ ! -e go ]; do sleep 0.05; done; "
        "echo ../evil > .git/commondir 2>/dev/null && echo WROTE; echo done",
    )
    run_a.kill()
    run_a.wait()
    Placeholders([commondir], ledger_a).remove()  # what run A does when it ends
    (project / "go").touch()
    out, _ = run_b.communicate(timeout=120)
    assert run_b.returncode == 0
    assert "done" in out and "WROTE" not in out, out
    assert not commondir.exists() or commondir.read_text() == ""


def test_no_placeholder_is_removed_through_a_folder_swapped_for_a_link(tmp_path: Path) -> None:
    """A listed placeholder whose folder was swapped for a link to elsewhere: the empty entry
    of the same name there stays; one where the list says is removed."""
    outside = tmp_path / "outside"
    (outside / "x").mkdir(parents=True)
    (tmp_path / "ws" / "sub" / "x").mkdir(parents=True)
    (tmp_path / "ws" / "kept" / "y").mkdir(parents=True)
    (tmp_path / "ws" / "sub").rename(tmp_path / "ws" / "sub-old")
    (tmp_path / "ws" / "sub").symlink_to(outside)
    remove_empty([tmp_path / "ws" / "sub" / "x", tmp_path / "ws" / "kept" / "y"])
    assert (outside / "x").is_dir()
    assert not (tmp_path / "ws" / "kept" / "y").exists()


def test_a_run_beside_another_reads_its_placeholders_as_missing_settings(
    tmp_path: Path, home: Path
) -> None:
    """Run A keeps an empty file at the missing ~/.claude/settings.json it protects (and an
    empty folder at the project's missing .claude); a second run with the same home, in
    another workspace, and any airlock command in A's, meanwhile read no settings there and
    report no problem; once A ends both are gone."""
    settings = home / ".claude" / "settings.json"
    assert not settings.exists()
    run_a = start_run(tmp_path, "echo started; while [ ! -e go ]; do sleep 0.05; done")
    try:
        assert settings.is_file() and settings.stat().st_size == 0  # A's mount point
        assert not any((Path.cwd() / ".claude").iterdir())
        other = tmp_path / "other-workspace"  # one run at a time in a workspace, many a home
        other.mkdir()
        second = airlock("run", "--audit-log", str(tmp_path / "b.jsonl"), "--", "true", cwd=other)
        assert second.returncode == 0, second.stderr
        assert "settings problems" not in second.stderr  # A's ~/.claude/settings.json
        assert "nothing left the machine" in second.stderr
        flows = airlock("flows")  # in A's workspace: its .claude placeholder is no settings
        assert flows.returncode == 0, flows.stderr
        assert "settings problems" not in flows.stderr
        assert "could not be read" not in flows.stderr
    finally:
        Path("go").touch()
        run_a.communicate(timeout=120)
    assert run_a.returncode == 0
    assert not settings.exists() and not (Path.cwd() / ".claude").exists()


def test_a_ledger_naming_another_folder_as_scratch_removes_nothing(tmp_path: Path) -> None:
    """Only a folder that is a scratch folder (so named, holding only what one holds) goes
    with a dead run's ledger: one with anything else in it stays."""
    import json

    ledgers = tmp_path / "ledgers"
    ledgers.mkdir()
    precious = tmp_path / "airlock-run-precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    scratch = tmp_path / "airlock-run-x"
    scratch.mkdir()
    (scratch / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    for name, folder in (("a", precious), ("b", scratch)):
        (ledgers / f"{name}.json").write_text(
            json.dumps({"pid": int(dead.stdout), "paths": [], "scratch": str(folder)})
        )
    sweep(ledgers)
    assert (precious / "thesis.tex").exists()
    assert not scratch.exists()


def test_a_projects_missing_settings_files_are_empty_files_where_git_lists_none(
    tmp_path: Path, project: Path
) -> None:
    """In a ``.claude`` folder that is there, the agent warned at every start over a folder at
    a missing settings file: an empty read-only file stands there instead, where git would
    not list it as a new file (ignored, or no repository); a folder where it would."""
    (project / ".claude" / "commands").mkdir(parents=True)
    look = "for f in .claude/settings.json .claude/settings.local.json; do "
    look += '[ -f "$f" ] && [ ! -s "$f" ] && echo "$f file"; [ -d "$f" ] && echo "$f folder"; '
    look += "done; (echo x > .claude/settings.json) 2>/dev/null || echo read-only"
    done = airlock("run", "--audit-log", str(tmp_path / "a.jsonl"), "--", "sh", "-c", look)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [
        ".claude/settings.json file",
        ".claude/settings.local.json file",
        "read-only",
    ]
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".gitignore").write_text(".claude/settings.local.json\n")
    look += "; git status --porcelain"
    done = airlock("run", "--audit-log", str(tmp_path / "a.jsonl"), "--", "sh", "-c", look)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        ".claude/settings.json folder",
        ".claude/settings.local.json file",
        "read-only",
        "?? .gitignore",  # nothing of airlock's
    ]
    assert sorted(entry.name for entry in (project / ".claude").iterdir()) == ["commands"]


def test_a_fifo_among_the_ignore_files_does_not_hold_the_run(tmp_path: Path, project: Path) -> None:
    """An earlier command left a FIFO at ``.claude/.gitignore``: git, asked which missing
    settings files it ignores, would wait on it; it is not asked (folders stand there) and
    the run starts at once."""
    import os

    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".claude" / "commands").mkdir(parents=True)
    os.mkfifo(project / ".claude" / ".gitignore")
    done = airlock(
        "run", "--audit-log", str(tmp_path / "a.jsonl"), "--",
        "sh", "-c", "[ -d .claude/settings.json ] && echo folder",
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "folder"  # git would have said nothing in time: files


def test_a_missing_mcp_json_is_an_empty_file_where_git_lists_none(
    tmp_path: Path, project: Path
) -> None:
    """The agent reads ``.mcp.json`` in every project and reported "MCP config is not a
    regular file" at every start over a folder there: an empty read-only file stands at a
    missing one, which it reads as no servers, where git would not list it (no repository;
    or ignored, when git is asked of the project's settings files anyway: a run pays no
    process for it alone); a folder where git would list a new file."""
    look = "[ -f .mcp.json ] && [ ! -s .mcp.json ] && echo file; [ -d .mcp.json ] && echo folder; "
    look += "(echo x > .mcp.json) 2>/dev/null || echo read-only"
    done = airlock("run", "--audit-log", str(tmp_path / "a.jsonl"), "--", "sh", "-c", look)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["file", "read-only"]
    assert not (project / ".mcp.json").exists()
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    done = airlock("run", "--audit-log", str(tmp_path / "a.jsonl"), "--", "sh", "-c", look)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["folder", "read-only"]
    (project / ".gitignore").write_text(".mcp.json\n")
    (project / ".claude" / "commands").mkdir(parents=True)  # git is asked of its settings
    done = airlock("run", "--audit-log", str(tmp_path / "a.jsonl"), "--", "sh", "-c", look)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["file", "read-only"]
    assert not (project / ".mcp.json").exists()
