"""``airlock run`` killed before it made safe what its command wrote: the next run does it."""

from __future__ import annotations

import fcntl
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

from airlock.sandbox.pending import Pending, join_runs, keep, read, recover
from airlock.sandbox.written import Watch
from tests.cli import airlock
from tests.integration.started import start_run

SERVERS = {"docs": {"command": "docs-server"}}


def test_the_next_run_makes_safe_what_a_killed_one_left(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """Killed with SIGKILL while its command runs: the MCP server added inside, the hook of a
    repository made in a subfolder and the repository made at the root (held outside) are
    as the command left them; the next run takes the server out, empties the hook, brings
    the repository in without its hook, and says so."""
    state = home / ".claude.json"
    state.write_text(json.dumps({"mcpServers": SERVERS}))
    state.chmod(0o600)
    script = (
        "git init -q . && git init -q sub && "
        "printf '#!/bin/sh\\necho ran\\n' > sub/.git/hooks/post-checkout && "
        "printf '#!/bin/sh\\necho ran\\n' > .git/hooks/pre-commit && "
        "python3 -c \"import json, os, pathlib; p = pathlib.Path(os.environ.get('CLAUDE_CONFIG_DIR') or pathlib.Path.home()) / '.claude.json'; "
        "d = json.loads(p.read_text()); d['mcpServers']['evil'] = {'command': 'sh'}; "
        'p.write_text(json.dumps(d))" && echo started && exec sleep 60'
    )
    process = start_run(tmp_path, script)
    process.kill()
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    time.sleep(0.5)  # bubblewrap dies with airlock
    hook = project / "sub" / ".git" / "hooks" / "post-checkout"
    assert hook.exists()  # what the killed run left
    staged = config_dir / ".claude.json"  # where the agent inside saves its state
    assert "evil" in json.loads(staged.read_text())["mcpServers"]
    assert list((config_dir / "airlock" / "pending").iterdir())

    done = airlock("run", "--audit-log", str(tmp_path / "b.jsonl"), "--", "true", timeout=180)

    assert done.returncode == 0, done.stderr
    assert "was killed before it made safe what its command wrote; done now" in done.stderr
    assert not hook.exists()
    assert json.loads(state.read_text())["mcpServers"] == SERVERS
    assert not staged.exists()
    assert (project / ".git" / "HEAD").is_file()  # brought in, without its hook
    assert not (project / ".git" / "hooks" / "pre-commit").exists()
    assert list((config_dir / "airlock" / "pending").iterdir()) == []
    again = airlock("run", "--audit-log", str(tmp_path / "c.jsonl"), "--", "true", timeout=180)
    assert again.returncode == 0, again.stderr
    assert "killed" not in again.stderr


def _pending(tmp_path: Path, workspace: Path, run: str) -> Pending:
    workspace.mkdir(exist_ok=True)
    watch = Watch(workspace, tmp_path / "home", tmp_path / "home" / ".claude")
    found = workspace.stat()
    return Pending(run, workspace, watch, None, {workspace: False}, (found.st_dev, found.st_ino))


def _killed_keeper(folder: Path, workspace: Path, run: str) -> None:
    """A process that keeps a pending file, then ends without saying it is done."""
    workspace.mkdir(exist_ok=True)
    code = (
        "import sys; from pathlib import Path; "
        "from airlock.sandbox.pending import Pending, keep; "
        "from airlock.sandbox.written import Watch; "
        "w = Path(sys.argv[2]); home = w.parent / 'home'; "
        "found = w.stat(); "
        "keep(Path(sys.argv[1]), Pending(sys.argv[3], w, Watch(w, home, home / '.claude'), "
        "None, {w: False}, (found.st_dev, found.st_ino)))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(folder), str(workspace), run],
        check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def test_killed_runs_work_waits_while_another_run_is_going(tmp_path: Path) -> None:
    """While another run holds the runs' lock (its sandbox may stand in any workspace, under
    any config dir), no killed run's work is done, and the run says so; once none is going,
    each is done and its file removed, one whose run still holds its file left alone."""
    folder, state = tmp_path / "pending", tmp_path / "state"
    other = tmp_path / "other"
    live = keep(folder, _pending(tmp_path, tmp_path / "live", "live"))
    going = join_runs(tmp_path / "runs")
    fcntl.flock(going, fcntl.LOCK_SH)  # another run, going
    mine = join_runs(tmp_path / "runs")
    try:
        _killed_keeper(folder, other, "dead-other")
        (other / ".mcp.json").write_text('{"mcpServers": {"evil": {"command": "sh"}}}')

        [waits] = recover(folder, state, mine)

        assert "other runs are going" in waits
        assert (other / ".mcp.json").exists()
        os.close(going)  # that run ended
        os.close(mine)
        mine = join_runs(tmp_path / "runs")
        lines = recover(folder, state, mine)

        assert any("run dead-other" in line for line in lines), lines
        assert sorted(path.name for path in folder.iterdir()) == ["live.pending"]
        assert not (other / ".mcp.json").exists()  # made inside: set aside
        assert list((state / "set-aside" / "dead-other").rglob(".mcp.json*"))
    finally:
        os.close(mine)
        live.done()


def test_a_workspace_that_is_another_folder_now_is_left_alone(tmp_path: Path) -> None:
    """The killed run's workspace moved away and another folder made at its path: nothing
    is set aside in the new folder, and the run says why."""
    folder = tmp_path / "pending"
    workspace = tmp_path / "w"
    _killed_keeper(folder, workspace, "dead")
    workspace.rename(tmp_path / "w-moved")  # moved away by the user; a new project there
    workspace.mkdir()
    (workspace / ".mcp.json").write_text('{"mcpServers": {}}')
    runs = join_runs(tmp_path / "runs")
    try:
        lines = recover(folder, tmp_path / "state", runs)
    finally:
        os.close(runs)
    assert any("another folder now" in line for line in lines), lines
    assert (workspace / ".mcp.json").exists()


class _Planted:
    """Unpickled, it would run a command (what a hostile pending file would hold)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_pending_file_naming_anything_else_is_not_loaded(tmp_path: Path) -> None:
    """A pending file that names a class outside airlock's own (here ``os.system``) is named
    as unreadable and left; what it names is never called."""
    folder = tmp_path / "pending"
    folder.mkdir()
    marker = tmp_path / "ran"
    hostile = folder / "x.pending"
    hostile.write_bytes(pickle.dumps(_Planted(marker)))
    hostile.chmod(0o600)

    runs = join_runs(tmp_path / "runs")
    lines = recover(folder, tmp_path / "state", runs)
    os.close(runs)

    assert not marker.exists()
    assert len(lines) == 1 and "cannot be read" in lines[0] and "posix.system" in lines[0]
    assert hostile.exists()


def test_a_pending_file_others_may_write_is_not_loaded(tmp_path: Path) -> None:
    folder = tmp_path / "pending"
    kept = keep(folder, _pending(tmp_path, tmp_path / "w", "r"))
    os.close(kept._fd)  # the run is gone; its file stays
    kept.path.chmod(0o622)

    runs = join_runs(tmp_path / "runs")
    [line] = recover(folder, tmp_path / "state", runs)
    os.close(runs)

    assert "not a private regular file of this user" in line
    assert kept.path.exists()


def test_a_pending_file_reads_back_as_written(tmp_path: Path, project: Path) -> None:
    """Everything a Watch holds (links, nested repositories, .envrc folders) is among the
    classes a pending file may name."""
    subprocess.run(["git", "init", "-q", str(project / "sub")], check=True)
    (project / ".envrc").write_text("PATH_add bin\n")
    (project / "tools").mkdir()
    (project / "hooks").symlink_to("tools")
    watch = Watch(
        project,
        tmp_path / "home",
        tmp_path / "home" / ".claude",
        links={project / "hooks": "tools"},
        hooks_folder=project / "tools",
    )
    assert watch.on_path is not None and watch.nested and watch.links
    kept = keep(tmp_path / "pending", Pending("r", project, watch, None, {project: False}))
    try:
        back = read(kept.path)
    finally:
        kept.done()
    assert back.run == "r" and back.workspace == project
    assert back.watch is not None and vars(back.watch).keys() == vars(watch).keys()
    assert back.watch.nested == watch.nested and back.watch.links == watch.links


def test_only_the_work_of_runs_that_are_gone_is_spoken_of(tmp_path: Path) -> None:
    """With another run going and no run ever killed, a run says nothing of killed runs (the
    going run's own file is not one)."""
    folder = tmp_path / "pending"
    live = keep(folder, _pending(tmp_path, tmp_path / "w", "live"))
    going = join_runs(tmp_path / "runs")
    fcntl.flock(going, fcntl.LOCK_SH)
    mine = join_runs(tmp_path / "runs")
    try:
        assert recover(folder, tmp_path / "state", mine) == []
    finally:
        os.close(mine)
        os.close(going)
        live.done()


def test_a_run_says_it_waits_while_another_does_killed_runs_work(tmp_path: Path) -> None:
    """Another run holding the runs' lock alone (doing killed runs' work): this one says it
    waits before it waits, and goes on once that run lets go."""
    import threading

    busy = join_runs(tmp_path / "runs")
    fcntl.flock(busy, fcntl.LOCK_EX)
    mine = join_runs(tmp_path / "runs")
    said: list[str] = []
    letting_go = threading.Timer(0.3, lambda: os.close(busy))
    letting_go.start()
    try:
        assert (
            recover(tmp_path / "pending", tmp_path / "state", mine, lambda: said.append("w")) == []
        )
    finally:
        letting_go.join()
        os.close(mine)
    assert said == ["w"]
