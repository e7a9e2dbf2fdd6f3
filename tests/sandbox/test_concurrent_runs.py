"""Real ``airlock run`` processes at once: one at a time in a workspace (the next waits, then
is told), beside each other with one home (taking turns only to set up), nothing left
behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TIMEOUT = 120.0


def _start(workspace: Path, script: str) -> subprocess.Popen[str]:
    """``airlock run -- sh -c SCRIPT`` in ``workspace``, with the test's HOME."""
    return subprocess.Popen(
        [sys.executable, "-m", "airlock", "run", "--", "sh", "-c", script],
        cwd=workspace,
        env={**os.environ, "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ended(process: subprocess.Popen[str]) -> tuple[int, str]:
    """The exit status and stderr of a run, once it ends (bounded)."""
    _, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, err


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


@pytest.mark.parametrize(
    "separate", [False, True], ids=["one_workspace", "one_home_four_workspaces"]
)
def test_runs_at_once_all_end_well_and_leave_nothing(
    project: Path, home: Path, tmp_path: Path, separate: bool
) -> None:
    """Four runs started together, in one workspace (one after the other) or in four with one
    home (at once): each runs and exits 0; no bubblewrap failure (a placeholder removed between another run's look at the
    paths and its ledger: "Can't find source path"), no other run's placeholder taken for a
    repository, and no placeholder left in a workspace or the home."""
    workspaces = [project] * 4
    if separate:
        workspaces = [tmp_path / f"ws{number}" for number in range(4)]
        for workspace in workspaces:
            workspace.mkdir()
    runs = [_start(workspace, "sleep 0.3") for workspace in workspaces]
    ended = [_ended(run) for run in runs]
    for code, err in ended:
        assert "Can't find source path" not in err
        assert "a git repository was made inside" not in err
        assert code == 0, err
    for workspace in set(workspaces):
        assert _entries(workspace) == []
    assert _entries(home / ".claude") == ["airlock"]


def test_a_second_run_with_the_same_home_runs_beside_it(
    project: Path, home: Path, tmp_path: Path
) -> None:
    """Runs with one home take turns only to set up: a second run in another workspace runs
    while the first goes on, and each cleans up after itself (the home's placeholders both
    stand on last until the second of them ends)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = _start(project, "touch started; sleep 60")
    try:
        _wait_for(project / "started")
        code, err = _ended(_start(elsewhere, "touch second-ran"))
        assert code == 0, err
        assert (elsewhere / "second-ran").exists()
        assert first.poll() is None  # the first run goes on
    finally:
        first.send_signal(signal.SIGTERM)
        first_code, first_err = _ended(first)
    assert first_code != 125, first_err
    assert _entries(project) == ["started"]
    assert _entries(elsewhere) == ["second-ran"]
    assert _entries(home / ".claude") == ["airlock"]


def test_a_second_run_in_the_same_workspace_is_refused_naming_the_first(
    project: Path, home: Path
) -> None:
    """One run at a time in a workspace: what one makes safe after its command (a repository
    made inside, renamed aside) may be what the other's sandbox stands on (its read-only
    mounts went with it: a hook written inside ran on the host). The second waits a few
    seconds, then exits 125 naming the first, having made and run nothing."""
    first = _start(project, "touch started; sleep 60")
    try:
        _wait_for(project / "started")
        code, err = _ended(_start(project, "touch second-ran"))
        assert code == 125, err
        assert f"another airlock run (pid {first.pid}, started " in err
        assert "is running in this workspace" in err and "nothing was run" in err
        assert not (project / "second-ran").exists()
        assert first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first_code, first_err = _ended(first)
    assert first_code != 125, first_err
    assert _entries(project) == ["started"]
    assert _entries(home / ".claude") == ["airlock"]


def test_a_killed_run_lets_the_next_one_in_at_once(project: Path, home: Path) -> None:
    """A run killed with SIGKILL holds nothing: the next one runs without waiting, and
    removes what the killed one left."""
    first = _start(project, "touch started; sleep 60")
    _wait_for(project / "started")
    first.kill()
    first.communicate(timeout=TIMEOUT)
    code, err = _ended(_start(project, "true"))
    assert code == 0, err
    assert "waiting for another" not in err
    assert _entries(project) == ["started"]
    assert _entries(home / ".claude") == ["airlock"]


def test_a_run_that_holds_the_setup_lock_past_the_wait_is_named(tmp_path: Path, home: Path) -> None:
    """The set-up lock held past the wait (a stuck run): the next run is refused, naming the
    holder's process id, before anything is made."""
    from airlock.errors import SandboxError
    from airlock.sandbox.setup_lock import take

    ledgers = tmp_path / "state" / "placeholders"
    said: list[str] = []
    held = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from airlock.sandbox.setup_lock import take; "
            f"take(__import__('pathlib').Path({str(ledgers)!r}), time.time(), print); "
            "print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert held.stdout is not None and held.stdout.readline().strip() == "held"
        with pytest.raises(SandboxError, match=rf"another airlock run \(pid {held.pid}, started "):
            take(ledgers, time.time(), said.append, wait=1.5)
        assert said and "waiting for another airlock run" in said[0]
    finally:
        held.kill()
        held.communicate(timeout=TIMEOUT)
    take(ledgers, time.time(), said.append, wait=1.5).release()  # the kernel let it go


@pytest.mark.parametrize(
    ("written", "made"),
    [
        pytest.param(
            ("config.worktree", "hooks/"), False, id="mount_points_alone_are_no_repository"
        ),
        pytest.param(("HEAD", "config.worktree"), True, id="a_head_is_a_repository_made_inside"),
        pytest.param(("hooks/pre-commit",), True, id="content_is_kept_held"),
    ],
)
def test_a_holding_folder_is_taken_for_a_repository_only_when_one_was_made(
    tmp_path: Path, written: tuple[str, ...], made: bool
) -> None:
    """Empty files and folders bubblewrap made in the holding folder (rules under a ``.git``
    that appeared meanwhile: another run's placeholder) are removed with it, and no
    repository is said to be made; a ``HEAD``, or anything written, stays held."""
    from airlock.sandbox.repositories import bring_in, hold

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    held = hold(workspace, tmp_path / "state", "run")
    assert held is not None
    for name in written:
        path = held.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir()
        elif name == "hooks/pre-commit":
            path.write_text("#!/bin/sh\n")
        else:
            path.touch()
    (workspace / ".git").mkdir()  # another run's placeholder, still there
    said = bring_in(held)
    assert (said is not None) is made
    assert held.folder.exists() is made
    if made:
        assert said is not None and "exists now" in said


def test_placeholders_are_left_listed_when_the_setup_lock_cannot_be_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped mid-set-up (``Ctrl-Z``) holds the lock: a run ending meanwhile leaves its
    placeholders listed for the next run's sweep (removing them without the lock reopened the
    window the lock closes), and says so."""
    from airlock.sandbox import setup_lock
    from airlock.sandbox.placeholders import Placeholders

    ledgers = tmp_path / "state" / "placeholders"
    placeholder = tmp_path / "ws" / ".vscode"
    placeholder.mkdir(parents=True)
    held = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from airlock.sandbox.setup_lock import take; "
            f"take(__import__('pathlib').Path({str(ledgers)!r}), time.time(), print); "
            "print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    said: list[str] = []
    monkeypatch.setattr(setup_lock, "WAIT", 0.5)
    monkeypatch.setattr(setup_lock, "_say", said.append)
    try:
        assert held.stdout is not None and held.stdout.readline().strip() == "held"
        ours = Placeholders([placeholder], ledgers / "run.json")
        ours.record()
        ours.remove()
    finally:
        held.kill()
        held.communicate(timeout=TIMEOUT)
    assert placeholder.is_dir() and (ledgers / "run.json").exists()  # left for the sweep
    assert said and "left for the next run to remove" in said[0]


def test_the_workspace_lock_does_not_stand_for_the_setup_lock(tmp_path: Path) -> None:
    """A run holds its workspace for the whole run; at its end it still takes the set-up lock
    to remove its placeholders (holding the workspace's is no reason to skip it)."""
    from airlock.sandbox import setup_lock

    whole = setup_lock.take_workspace(tmp_path / "ws", tmp_path / "state", time.time(), print)
    try:
        ledgers = tmp_path / "state" / "placeholders"
        with setup_lock.removing(ledgers) as now:
            assert now
            tried = subprocess.run(  # another process: the set-up lock is held now
                [
                    sys.executable,
                    "-c",
                    "import fcntl, os, sys; "
                    f"fd = os.open({str(setup_lock.lock_path(ledgers))!r}, os.O_RDWR); "
                    "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
                ],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            assert "BlockingIOError" in tried.stderr
    finally:
        whole.release()
    assert not setup_lock._held


def test_runs_with_other_config_dirs_keep_each_others_home_placeholders(
    project: Path, home: Path, tmp_path: Path
) -> None:
    """A run with ``CLAUDE_CONFIG_DIR`` elsewhere makes the placeholder at the missing
    ``~/.claude/.git``; a run with the default config dir, in another workspace, binds it
    meanwhile. The first ending leaves it while the second goes on (each kept its list of
    placeholders apart, so the first removed it, and the second's mount went with it), and
    nothing is left once both ended."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    alternative = home / "alt-config"
    alternative.mkdir()
    wait = "touch started; while [ ! -e go ]; do sleep 0.05; done"
    maker = subprocess.Popen(
        [sys.executable, "-m", "airlock", "run", "--", "sh", "-c", wait],
        cwd=elsewhere,
        env={**os.environ, "CLAUDE_CONFIG_DIR": str(alternative), "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    mounted = f"grep -c ' {home}/.claude/.git ' /proc/self/mountinfo"
    binder = None
    try:
        _wait_for(elsewhere / "started")
        binder = _start(project, f"{mounted} > before; {wait}; {mounted} > after")
        _wait_for(project / "started")
        (elsewhere / "go").touch()
        made, made_err = _ended(maker)
        assert made == 0, made_err
        (project / "go").touch()
        code, err = _ended(binder)
    finally:
        for process in (maker, binder):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate(timeout=TIMEOUT)
    assert code == 0, err
    before = (project / "before").read_text().strip()
    assert before != "0" and (project / "after").read_text().strip() == before
    assert not (home / ".claude" / ".git").exists()


def test_two_runs_ending_together_leave_no_placeholder_both_stood_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs stand on one placeholder (``~/.claude/settings.json``, missing) and end
    together: the first leaves it to the second, which takes the lock the moment the first
    lets it go. The first's ledger is gone by then, so the second removes it; neither ledger
    is left."""
    import contextlib
    from collections.abc import Iterator

    import airlock.sandbox.placeholders as placeholders

    ledgers = tmp_path / "ledgers"
    shared = tmp_path / "home" / ".claude" / "settings.json"
    shared.mkdir(parents=True)  # the empty folder bubblewrap made there
    first = placeholders.Placeholders([shared], ledgers / "first.json")
    second = placeholders.Placeholders([shared], ledgers / "second.json")
    first.record()
    second.record()
    real = placeholders.removing
    waiting = [second]

    @contextlib.contextmanager
    def then_the_second(folder: Path | None) -> Iterator[bool]:
        with real(folder) as now:
            yield now
        while waiting:  # the second run had waited for the lock: it takes it now
            waiting.pop().remove()

    monkeypatch.setattr(placeholders, "removing", then_the_second)
    first.remove()
    assert not shared.exists()
    assert list(ledgers.iterdir()) == []
