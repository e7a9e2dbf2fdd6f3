"""``airlock run``: the agent saves its state (``~/.claude.json``) inside, as it does outside.

The agent saves it by making ``~/.claude.json.lock`` and a new file beside it, renamed over
it: the home is read-only inside, so the run puts the state in the agent's config dir
(``~/.claude/.claude.json``, where the agent keeps it when ``CLAUDE_CONFIG_DIR`` names that
dir) and carries it back to ``~/.claude.json`` after the run."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from airlock.sandbox.agent_state import staging
from tests.cli import run_script

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


def test_a_state_changed_outside_meanwhile_is_left_and_the_runs_kept_aside(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """The agent run outside at the same time saved its state: it is left as it is, and what
    the agent inside saved is kept aside, said."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1}')
    script = "while [ ! -e go ]; do sleep 0.05; done; " + _saving(
        {"numStartups": 2, "inside": True}
    )
    import subprocess
    import sys
    import time

    log = str(tmp_path / "audit.jsonl")
    command = [sys.executable, "-m", "airlock", "run", "--audit-log", log, "--", "sh", "-c"]
    run = subprocess.Popen([*command, script], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (config_dir / ".claude.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    state.write_text('{"numStartups": 7, "outside": true}')
    (project / "go").touch()
    _, stderr = run.communicate(timeout=120)
    assert run.returncode == 0, stderr
    assert json.loads(state.read_text()) == {"numStartups": 7, "outside": True}
    assert "changed outside while the run went on" in stderr
    [kept] = (config_dir / "airlock" / "set-aside").glob("*/agent-state")
    assert json.loads(kept.read_text()) == {"numStartups": 2, "inside": True}
    assert not (config_dir / ".claude.json").exists()


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
