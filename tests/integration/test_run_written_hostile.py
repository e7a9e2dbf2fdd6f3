"""``airlock run``: the after-run checks against a command that works against them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests.cli import run_script


def _set_aside(config_dir: Path) -> Path:
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    return run


def test_a_link_to_a_hidden_key_is_never_read_through(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """~/.codex/config.toml made a link to a hidden key: the link is set aside as a link, the
    file put back; the key is copied nowhere."""
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY-TEXT\n")
    (home / ".codex").mkdir()
    (home / ".codex" / "config.toml").write_text('model = "o4"\n')
    done = run_script(tmp_path, "ln -sf ~/.ssh/id_ed25519 ~/.codex/config.toml")
    assert done.returncode == 0, done.stderr
    assert (home / ".codex" / "config.toml").read_text() == 'model = "o4"\n'
    kept = _set_aside(config_dir) / ".codex" / "config.toml"
    assert kept.is_symlink()
    for found in (config_dir / "airlock").rglob("*"):
        if found.is_file() and not found.is_symlink():
            assert b"PRIVATE-KEY-TEXT" not in found.read_bytes(), found


def test_an_edit_that_keeps_size_and_time_is_seen(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """Overwritten in place, same size, modification time set back: still set aside (the
    change time cannot be set back)."""
    (project / "sub" / ".vscode").mkdir(parents=True)
    tasks = project / "sub" / ".vscode" / "tasks.json"
    tasks.write_text('{"tasks": ["aaaa"]}\n')
    done = run_script(
        tmp_path,
        "t=sub/.vscode/tasks.json; m=$(stat -c %Y $t); "
        'printf \'{"tasks": ["evil"]}\\n\' > $t; touch -d @$m $t',
    )
    assert done.returncode == 0, done.stderr
    assert not tasks.exists()
    assert "evil" in (_set_aside(config_dir) / "sub" / ".vscode" / "tasks.json").read_text()


def _remove_chain(top: Path) -> None:
    """Remove a chain of single folders without recursion (Python's recursive removals stop
    at about a thousand levels, pytest's clean-up of old temporary folders included)."""
    chain = [top]
    while chain[-1].is_dir() and not chain[-1].is_symlink():
        inner = [entry for entry in chain[-1].iterdir() if entry.is_dir()]
        for entry in chain[-1].iterdir():
            if not entry.is_dir():
                entry.unlink()
        if not inner:
            break
        chain.append(inner[0])
    for folder in reversed(chain):
        if folder.is_dir():
            folder.rmdir()


def test_one_failing_step_does_not_stop_the_others(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """A submodule git folder git cannot rewrite (a config.lock), a folder a thousand deep and
    a FIFO in the agent's state: airlock says so, ends normally, and the MCP server added to
    ~/.claude.json is still taken out."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (home / ".claude.json").write_text('{"mcpServers": {}}\n')
    (home / ".codex").mkdir()
    script = (
        f"{sys.executable} -c \"import json, os, pathlib; p = pathlib.Path(os.environ.get('CLAUDE_CONFIG_DIR') or pathlib.Path.home()) / '.claude.json'; "
        "p.write_text(json.dumps({'mcpServers': {'evil': {'command': 'sh'}}}))\"; "
        "mkdir -p .git/modules/x/refs .git/modules/x/objects; "
        "echo 'ref: refs/heads/main' > .git/modules/x/HEAD; "
        "printf '[user]\\n\\tname = x\\n' > .git/modules/x/config; : > .git/modules/x/config.lock; "
        f"{sys.executable} -c \"import os; os.chdir('.'); "
        "[os.makedirs('sub/.vscode/' + 'd/' * 990, exist_ok=True)]\"; "
        "mkfifo ~/.codex/config.toml"
    )
    try:
        done = run_script(tmp_path, script)
    finally:
        for deep in (project / "sub", *(config_dir / "airlock").glob("set-aside/*/sub")):
            _remove_chain(deep)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert json.loads((home / ".claude.json").read_text()).get("mcpServers", {}) == {}
    assert not (project / "sub" / ".vscode").exists()
    assert not (home / ".codex" / "config.toml").exists()


def test_the_agents_own_state_is_left_alone_in_a_workspace_holding_the_home(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """With the home as the workspace, the agent's transcripts under ~/.claude stay."""
    (config_dir / "projects" / "p").mkdir(parents=True)
    done = run_script(
        tmp_path,
        "echo '{}' > ~/.claude/projects/p/session.jsonl",
        "--workspace",
        str(home),
    )
    assert done.returncode == 0, done.stderr
    assert (config_dir / "projects" / "p" / "session.jsonl").exists()
    assert "set aside" not in done.stderr


def test_names_are_shown_without_their_escape_sequences(tmp_path: Path, project: Path) -> None:
    done = run_script(tmp_path, "mkdir -p \"$(printf 'x\\033[2Ky')/.claude\"")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "x\\x1b[2Ky" in done.stderr


def test_settings_past_the_bounds_are_set_aside_when_changed(tmp_path: Path, project: Path) -> None:
    """Past the bounded walk (here 6 folders deep) the walk of every folder finds settings
    written in the run and sets them aside; those there before and unchanged stay, as do
    those a package brings into node_modules; nothing is said to lie unchecked."""
    kept = project / "a" / "b" / "c" / "d" / "e" / "f" / ".vscode" / "settings.json"
    kept.parent.mkdir(parents=True)
    kept.write_text("{}")
    time.sleep(1.2)  # past the slack before the run's start within which a change is its own
    written = "a/b/c/d/e/.claude/settings.json"
    packaged = "node_modules/x/.vscode/settings.json"
    done = run_script(
        tmp_path,
        f"mkdir -p a/b/c/d/e/.claude node_modules/x/.vscode && echo '{{}}' > {written} && "
        f"echo '{{}}' > {packaged}",
    )
    assert done.returncode == 0, done.stderr
    assert "set aside" in done.stderr and written in done.stderr
    assert not (project / written).exists()
    assert (project / packaged).exists() and packaged not in done.stderr
    assert kept.read_text() == "{}"
    assert "not checked after the run" not in done.stderr


def test_a_state_file_no_json_reader_here_takes_is_put_back(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """~/.claude.json left with a byte that is not UTF-8 (Node reads it anyway) and a server
    added: the file is put back as it was, what the run left kept aside."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1}\n')
    done = run_script(
        tmp_path,
        'printf \'{"n": "\\377", "mcpServers": {"evil": {"command": "sh"}}}\' '
        '> "${CLAUDE_CONFIG_DIR:-$HOME}/.claude.json"',
    )
    assert done.returncode == 0, done.stderr
    assert state.read_text() == '{"numStartups": 1}\n'
    assert b"evil" in (_set_aside(config_dir) / ".claude.json.0").read_bytes()


def test_a_fifo_in_the_agents_state_neither_hangs_nor_stops_a_run(
    tmp_path: Path, home: Path
) -> None:
    """A FIFO where ~/.claude.json goes, there before the run: airlock neither blocks on it
    at the start nor after the run."""
    import os
    import stat

    os.mkfifo(home / ".claude.json")
    done = run_script(tmp_path, "echo ok")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    assert stat.S_ISFIFO(os.lstat(home / ".claude.json").st_mode)  # the user's own: left


def test_a_mercurial_hook_written_past_the_bounds_is_set_aside(
    tmp_path: Path, project: Path
) -> None:
    """A Mercurial repository six folders deep whose hgrc the run wrote: set aside."""
    hgrc = project / "a" / "b" / "c" / "d" / "e" / "r" / ".hg" / "hgrc"
    hgrc.parent.mkdir(parents=True)
    (hgrc.parent / "requires").write_text("store\n")
    time.sleep(1.2)  # past the slack before the run's start within which a change is its own
    done = run_script(tmp_path, f"printf '[hooks]\\npre-status = touch x\\n' > {hgrc}")
    assert done.returncode == 0, done.stderr
    assert not hgrc.exists()
    assert "a/b/c/d/e/r/.hg/hgrc" in done.stderr and "set aside" in done.stderr


def test_settings_in_node_modules_reached_by_a_deep_link_are_set_aside(
    tmp_path: Path, project: Path
) -> None:
    """Settings written in node_modules (passed over there) but reached through a link made
    deep in the project, where an editor opens them, are set aside."""
    script = (
        "mkdir -p node_modules/x/.vscode a/b/c/d/e/f && echo '{}' > node_modules/x/.vscode/tasks.json"
        " && ln -s ../../../../../../node_modules/x a/b/c/d/e/f/app"
    )
    done = run_script(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert not (project / "node_modules" / "x" / ".vscode" / "tasks.json").exists()
    assert "app/.vscode/tasks.json" in done.stderr
