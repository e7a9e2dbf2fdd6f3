"""``airlock run``: the agent saves its state (``~/.claude.json``) inside, as it does outside.

The agent saves it by making ``~/.claude.json.lock`` and a new file beside it, renamed over
it: the home is read-only inside, so the run puts the state in the agent's config dir
(``~/.claude/.claude.json``, where the agent keeps it when ``CLAUDE_CONFIG_DIR`` names that
dir) and carries it back to ``~/.claude.json`` after the run."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from airlock.sandbox.agent_state import merged, staging
from tests.cli import run_script
from tests.integration.started import sh_run

SAVE = (
    # as the agent saves it: a lock folder, a new file beside it, renamed over it
    'f="${CLAUDE_CONFIG_DIR:-$HOME}/.claude.json"; mkdir "$f.lock" && '
    'printf \'%s\' "$STATE" > "$f.tmp.1" && mv "$f.tmp.1" "$f" && rmdir "$f.lock"'
)


def _saving(state: dict[str, object]) -> str:
    return f"STATE='{json.dumps(state)}'; {SAVE}"


def test_the_state_the_agent_saves_inside_is_in_the_home_after_the_run(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """The agent inside reads the user's state and saves it in its config dir; after the run
    ``~/.claude.json`` holds what it saved, with its own mode, and nothing is left beside;
    ``~/.claude.json`` itself is read-only inside."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 5}')
    state.chmod(0o640)
    script = (
        'test "$CLAUDE_CONFIG_DIR" = "$HOME/.claude" && cat "$CLAUDE_CONFIG_DIR/.claude.json" '
        "&& echo && (echo x >> ~/.claude.json) 2>/dev/null || echo home-file-read-only; "
        + _saving({"numStartups": 6, "projects": {"/p": {"history": [1]}}})
    )
    done = run_script(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ['{"numStartups": 5}', "home-file-read-only"]
    assert json.loads(state.read_text()) == {"numStartups": 6, "projects": {"/p": {"history": [1]}}}
    assert stat.S_IMODE(state.stat().st_mode) == 0o640
    assert not (config_dir / ".claude.json").exists()
    assert not (config_dir / ".claude.json.lock").exists()


def test_a_new_homes_state_is_made_where_the_agent_reads_it(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    done = run_script(tmp_path, _saving({"hasCompletedOnboarding": True}))
    assert done.returncode == 0, done.stderr
    state = home / ".claude.json"
    assert json.loads(state.read_text()) == {"hasCompletedOnboarding": True}
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert not (config_dir / ".claude.json").exists()


def test_an_mcp_server_the_agent_saves_inside_is_taken_out(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """What the state says runs outside later comes back as it was, as for the file itself;
    the rest of what the agent saved stays."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1, "mcpServers": {}}')
    saved = {"numStartups": 2, "mcpServers": {"evil": {"command": "sh"}}}
    done = run_script(tmp_path, _saving(saved))
    assert done.returncode == 0, done.stderr
    data = json.loads(state.read_text())
    assert data["numStartups"] == 2 and not data.get("mcpServers")
    assert "MCP servers" in done.stderr
    assert not (config_dir / ".claude.json").exists()


def _while_running(
    tmp_path: Path, project: Path, config_dir: Path, state: dict[str, object], meanwhile: object
) -> subprocess.CompletedProcess[str]:
    """A run whose command saves ``state`` as the agent does once the test, after the run
    has put the state where the agent saves it, has done ``meanwhile()`` outside."""
    script = "while [ ! -e go ]; do sleep 0.05; done; " + _saving(state)
    run = subprocess.Popen(
        sh_run(tmp_path / "audit.jsonl", script), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not (config_dir / ".claude.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    meanwhile()  # type: ignore[operator]
    (project / "go").touch()
    _, stderr = run.communicate(timeout=120)
    return subprocess.CompletedProcess(run.args, run.returncode, "", stderr)


def test_a_state_saved_outside_meanwhile_gets_what_the_agent_inside_saved_merged_in(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """The agent run outside at the same time saved its state: what the agent inside changed
    is merged in, key by key; a value both changed keeps the outside's; said."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1, "projects": {"/a": {"n": 1}, "/b": {"n": 1}}}')
    outside = {"numStartups": 7, "outside": True, "projects": {"/a": {"n": 2}, "/b": {"n": 1}}}
    inside = {"numStartups": 2, "inside": True, "projects": {"/a": {"n": 1}, "/b": {"n": 3}}}
    done = _while_running(
        tmp_path, project, config_dir, inside, lambda: state.write_text(json.dumps(outside))
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(state.read_text()) == {
        "numStartups": 7,
        "outside": True,
        "inside": True,
        "projects": {"/a": {"n": 2}, "/b": {"n": 3}},
    }
    assert "changed outside while the run went on: what the agent inside saved is merged in" in (
        done.stderr
    )
    assert "(1 value both changed: the outside's kept; the state as the agent inside" in done.stderr
    assert not (config_dir / ".claude.json").exists()


def test_servers_come_back_as_the_agent_outside_saved_them_meanwhile(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """An MCP server the user added outside during the run is theirs and stays; one the
    agent inside added is taken out."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1, "mcpServers": {}}')
    outside = {"numStartups": 1, "mcpServers": {"mine": {"command": "docs"}}}
    inside = {"numStartups": 2, "mcpServers": {"evil": {"command": "sh"}}}
    done = _while_running(
        tmp_path, project, config_dir, inside, lambda: state.write_text(json.dumps(outside))
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(state.read_text())
    assert data["mcpServers"] == {"mine": {"command": "docs"}}
    assert data["numStartups"] == 2


def test_a_state_the_agent_outside_is_saving_is_left_and_the_runs_kept_aside(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """The agent outside holds its lock (it is saving the file): left as it is, the state
    from inside kept aside, said; the lock is the agent's, left too."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1}')
    lock = home / ".claude.json.lock"
    done = _while_running(tmp_path, project, config_dir, {"numStartups": 2}, lock.mkdir)
    assert done.returncode == 0, done.stderr
    assert json.loads(state.read_text()) == {"numStartups": 1} and lock.is_dir()
    assert "the agent outside was saving it" in done.stderr
    [kept] = (config_dir / "airlock" / "set-aside").glob("*/agent-state")
    assert json.loads(kept.read_text()) == {"numStartups": 2}
    assert not (config_dir / ".claude.json").exists()


@pytest.mark.parametrize(
    ("before", "inside", "outside", "expected", "kept"),
    [
        ({"a": 1}, {"a": 2}, {"a": 1}, {"a": 2}, 0),
        ({"a": 1}, {"a": 2}, {"a": 3}, {"a": 3}, 1),
        ({"a": 1, "b": 1}, {"b": 1}, {"a": 1, "b": 2}, {"b": 2}, 0),  # removed inside
        ({"a": 1}, {"a": 1}, {"a": 1, "c": 5}, {"a": 1, "c": 5}, 0),  # nothing saved inside
        ({"p": {"x": {"n": 1}}}, {"p": {"x": {"n": 2}}}, {"p": {"y": {}}}, {"p": {"y": {}}}, 1),
        ({}, {"p": {"x": 1}}, {"p": {"y": 2}}, {"p": {"y": 2, "x": 1}}, 0),
    ],
    ids=["changed_inside", "both_changed", "removed_inside", "unchanged", "removed_outside",
         "added_both_sides"],
)  # fmt: skip
def test_merged_takes_what_changed_inside_alone(
    before: dict[str, object],
    inside: dict[str, object],
    outside: dict[str, object],
    expected: dict[str, object],
    kept: int,
) -> None:
    found = merged(*(json.dumps(side).encode() for side in (before, inside, outside)))
    assert found is not None
    assert (json.loads(found[0]), found[1]) == (expected, kept)
    assert merged(b"{}", b"[1]", b"{}") is None and merged(b"{}", b"{}", b"no json") is None


def test_where_the_state_is_not_moved(tmp_path: Path) -> None:
    """Not when ``CLAUDE_CONFIG_DIR`` is set inside (it names a writable folder), the config
    dir is another, a file is at the staged path (the user's own), or ``~/.claude.json`` is a
    link (written through as it was); otherwise ``~/.claude/.claude.json``."""
    home = tmp_path / "h"
    folder = home / ".claude"
    folder.mkdir(parents=True)
    assert staging(home, folder, {}) == folder / ".claude.json"
    assert staging(home, folder, {"CLAUDE_CONFIG_DIR": str(folder)}) is None
    assert staging(home, tmp_path / "elsewhere", {}) is None
    (home / ".claude.json").symlink_to(tmp_path / "dotfiles.json")
    assert staging(home, folder, {}) is None
    (home / ".claude.json").unlink()
    (folder / ".claude.json").write_text("{}")
    assert staging(home, folder, {}) is None


@pytest.mark.parametrize("given", ["env", "environ"])
def test_a_config_dir_the_user_names_keeps_its_own_state_file(
    tmp_path: Path, project: Path, home: Path, given: str
) -> None:
    """With ``CLAUDE_CONFIG_DIR`` (airlock's own, or set inside with ``--env``: a folder of
    the workspace here) the agent keeps its state in that dir, writable; nothing is moved."""
    folder = (project if given == "env" else tmp_path) / "cfg"
    folder.mkdir()
    options = ["--env", f"CLAUDE_CONFIG_DIR={folder}"] if given == "env" else []
    env = {"CLAUDE_CONFIG_DIR": str(folder)} if given == "environ" else {}
    (home / ".claude").mkdir(exist_ok=True)
    done = run_script(
        tmp_path, _saving({"n": 1}) + ' && echo "$CLAUDE_CONFIG_DIR"', *options, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(folder)
    assert json.loads((folder / ".claude.json").read_text()) == {"n": 1}
    assert not (home / ".claude.json").exists()
    assert not os.path.lexists(home / ".claude" / ".claude.json")


@pytest.mark.parametrize("writable", ["rw_home", "workspace_is_home"])
def test_the_state_file_stays_read_only_in_a_writable_home(
    tmp_path: Path, home: Path, config_dir: Path, writable: str
) -> None:
    """Under ``--rw ~`` or with the home as the workspace, ``~/.claude.json`` is still
    read-only (written there, a server would be taken for the agent outside's and kept), and
    the agent's state of earlier versions, ``~/.claude/.config.json``, which it reads
    instead when there, cannot be made."""
    state = home / ".claude.json"
    state.write_text('{"mcpServers": {}}')
    script = (
        '(echo \'{"mcpServers": {"evil": {"command": "sh"}}}\' > ~/.claude.json) '
        "2>/dev/null || echo state-read-only; "
        "(echo '{}' > ~/.claude/.config.json) 2>/dev/null || echo legacy-read-only"
    )
    options = ["--rw", str(home)] if writable == "rw_home" else []
    cwd = home if writable == "workspace_is_home" else None
    done = run_script(tmp_path, script, *options, cwd=cwd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["state-read-only", "legacy-read-only"]
    assert json.loads(state.read_text()) == {"mcpServers": {}}
    assert not (config_dir / ".config.json").exists()


def test_a_named_config_dir_that_is_claudes_own_is_watched(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """``CLAUDE_CONFIG_DIR=~/.claude``: the agent keeps its state in ``~/.claude/.claude.json``
    (writable); a server added there inside is taken out after the run."""
    done = run_script(
        tmp_path,
        _saving({"n": 1, "mcpServers": {"evil": {"command": "sh"}}}),
        env={"CLAUDE_CONFIG_DIR": str(config_dir)},
    )
    assert done.returncode == 0, done.stderr
    assert not json.loads((config_dir / ".claude.json").read_text()).get("mcpServers")


def test_a_stale_lock_of_the_agents_does_not_keep_the_state_out(tmp_path: Path, home: Path) -> None:
    """A lock folder a crashed agent left (untouched for minutes) is not the agent saving."""
    state = home / ".claude.json"
    state.write_text('{"n": 1}')
    lock = home / ".claude.json.lock"
    lock.mkdir()
    os.utime(lock, (time.time() - 3600, time.time() - 3600))
    done = run_script(tmp_path, _saving({"n": 2}))
    assert done.returncode == 0, done.stderr
    assert json.loads(state.read_text()) == {"n": 2}
    assert not lock.exists()


def test_merged_keeps_types_and_lone_surrogates() -> None:
    """``true`` is not ``1``; a lone surrogate the agent wrote as an escape stays one."""
    found = merged(b'{"a": 1}', b'{"a": true, "p": "\\ud83d"}', b'{"a": 1, "b": 2}')
    assert found is not None
    text, kept = found
    assert json.loads(text) == {"a": True, "b": 2, "p": "\ud83d"} and kept == 0
    assert b"\\ud83d" in text


def test_a_killed_runs_state_is_carried_back_though_its_workspace_is_gone(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """Killed after the agent inside saved its state, its workspace removed since: the next
    run, elsewhere, still carries the state back (the home's part needs no workspace) and
    takes out the server the agent inside added."""
    import shutil

    from tests.integration.started import start_run

    state = home / ".claude.json"
    state.write_text('{"n": 1}')
    saved = {"n": 2, "mcpServers": {"evil": {"command": "sh"}}}
    process = start_run(tmp_path, _saving(saved) + " && echo started && exec sleep 60")
    process.kill()
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    time.sleep(0.5)  # bubblewrap dies with airlock
    assert json.loads((config_dir / ".claude.json").read_text()) == saved
    shutil.rmtree(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_script(tmp_path, "true", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert "that workspace is gone or another folder now" in done.stderr
    data = json.loads(state.read_text())
    assert data["n"] == 2 and not data.get("mcpServers")
    assert not (config_dir / ".claude.json").exists()


def test_an_agents_state_kept_in_git_keeps_its_hooks_and_config(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """``~/.claude`` kept in a git repository: writable inside, but its ``.git`` hooks and
    config are not (``core.fsmonitor`` written there would run at the next ``git status``
    outside); the agent's own files there still are."""
    config_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", str(config_dir)], check=True)
    config = config_dir / ".git" / "config"
    before = config.read_bytes()
    script = (
        "(printf '[core]\\n\\tfsmonitor = touch /tmp/x\\n' >> ~/.claude/.git/config) "
        "2>/dev/null || echo config-read-only; "
        "(echo x > ~/.claude/.git/hooks/post-checkout) 2>/dev/null || echo hooks-read-only; "
        "echo saved > ~/.claude/notes && echo state-writable"
    )
    done = run_script(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["config-read-only", "hooks-read-only", "state-writable"]
    assert config.read_bytes() == before
    assert not (config_dir / ".git" / "hooks" / "post-checkout").exists()


def test_no_repository_can_be_made_in_an_agents_state(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """``git init ~/.claude`` inside fails, and so does making ``~/.claude`` a git folder
    itself (a ``HEAD`` at its top): a repository made there would have its
    ``core.fsmonitor`` run at the user's next ``git status`` in it (dotfiles kept in git);
    nothing is left there after the run."""
    config_dir.mkdir(parents=True, exist_ok=True)
    script = (
        "(cd ~/.claude && git init -q) 2>/dev/null || echo refused; "
        "(echo 'ref: refs/heads/main' > ~/.claude/HEAD) 2>/dev/null || echo no-head; "
        "echo x > ~/.claude/notes"
    )
    done = run_script(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "no-head"]
    assert not os.path.lexists(config_dir / ".git")
    assert not os.path.lexists(config_dir / "HEAD")
    assert (config_dir / "notes").read_text() == "x\n"
