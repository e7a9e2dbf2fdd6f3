"""``airlock run`` loses nothing of the agent's state file, ``~/.claude.json``, nor of the
user's own edits around a run: what the agent inside saved that cannot go into the file is
kept aside and named, the file as the user had it is never written over unasked, a change
made where the sandbox could not write is the user's and stays."""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import struct
import subprocess
import sys
import time
from pathlib import Path

from tests.cli import run_script
from tests.integration.started import sh_run
from tests.integration.test_run_agent_state import _saving, _while_running


def _set_aside(config_dir: Path) -> list[Path]:
    return sorted((config_dir / "airlock" / "set-aside").rglob("*"))


def test_a_state_file_that_is_no_json_is_left_as_the_user_had_it(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """A ``~/.claude.json`` cut short (a disk that was full, an edit half done) is the user's
    to mend: the run does not write the agent's new state over it; what the agent inside
    saved is kept aside, and the run says where."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1, "projects": {"/p": {"history": ["kept"')
    before = state.read_bytes()
    done = run_script(tmp_path, _saving({"numStartups": 2}))
    assert done.returncode == 0, done.stderr
    assert state.read_bytes() == before
    assert "is no JSON object" in done.stderr
    [kept] = [path for path in _set_aside(config_dir) if path.name == "agent-state"]
    assert json.loads(kept.read_text()) == {"numStartups": 2}
    assert str(kept) in done.stderr
    assert not (config_dir / ".claude.json").exists()  # the next run stages it again


def test_values_both_sides_changed_keep_the_insides_aside(
    tmp_path: Path, project: Path, home: Path, config_dir: Path
) -> None:
    """The agent outside and the agent inside both changed a value: the outside's stays in
    the file, and the state as the agent inside saved it is kept aside, named (not dropped)."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1, "tip": "a"}')
    outside = {"numStartups": 7, "tip": "a"}
    inside = {"numStartups": 2, "tip": "b"}
    done = _while_running(
        tmp_path, project, config_dir, inside, lambda: state.write_text(json.dumps(outside))
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(state.read_text()) == {"numStartups": 7, "tip": "b"}
    [kept] = [path for path in _set_aside(config_dir) if path.name == "agent-state"]
    assert json.loads(kept.read_text()) == inside
    assert f"the state as the agent inside saved it is at {kept}" in done.stderr
    assert not (config_dir / ".claude.json").exists()


def test_a_full_disk_keeps_the_state_and_frees_the_staged_path(tmp_path: Path, home: Path) -> None:
    """Code inside fills the disk after the agent saved its state: the state file cannot be
    written. It is left whole as it was; the state from inside is moved off the staged path
    (renamed: no space needed) and the run says where, so the next run stages it again and
    its agent can save (left there, every later run would find the path taken and run with
    its state read-only). The home is a small tmpfs, mounted in a private mount namespace."""
    state = {
        "numStartups": 1,
        "projects": {f"/p{n}": {"history": ["x" * 40] * 4} for n in range(1500)},
    }
    airlock = [sys.executable, "-m", "airlock", "run"]
    save = (  # as the agent saves it, the whole state (as large as it was) with one change
        'f="$CLAUDE_CONFIG_DIR/.claude.json"; mkdir "$f.lock" && '
        'sed \'s/"numStartups": 1/"numStartups": 2/\' "$f" > "$f.tmp.1" && '
        'mv "$f.tmp.1" "$f" && rmdir "$f.lock"'
    )
    fill = "dd if=/dev/zero of=$HOME/.claude/filler bs=64k 2>/dev/null; true"
    first = shlex.join(
        [*airlock, "--audit-log", str(tmp_path / "1.jsonl"), "--", "sh", "-c", f"{save}; {fill}"]
    )
    second = shlex.join(
        [
            *airlock,
            "--audit-log",
            str(tmp_path / "2.jsonl"),
            "--",
            "sh",
            "-c",
            "echo staged-in=$CLAUDE_CONFIG_DIR",
        ]
    )
    setup = " && ".join(
        [
            f"mount -t tmpfs -o size=2m airlock-test {home}",
            f"mkdir -p {home}/.claude",
            f"cat > {home}/.claude.json",
            f"cd {shlex.quote(str(tmp_path / 'project'))}",
            f"{{ {first}; true; }}",
            f"cmp -s {home}/.claude.json {shlex.quote(str(tmp_path / 'before.json'))} && echo kept-whole",
            f"test -e {home}/.claude/.claude.json || echo staged-path-free",
            f"grep -rlF '\"numStartups\": 2' {home}/.claude/airlock/set-aside {home}/.claude/.*set-aside* 2>/dev/null | head -1",
            f"rm {home}/.claude/filler",
            second,
        ]
    )
    text = json.dumps(state).encode()
    (tmp_path / "before.json").write_bytes(text)
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", setup],
        input=text,
        capture_output=True,
        timeout=240,
        check=False,
    )
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err
    assert "could not be written there (No space left on device)" in err, err + out
    lines = out.splitlines()
    assert "kept-whole" in lines and "staged-path-free" in lines, out
    [aside] = [line for line in lines if "set-aside" in line]
    assert f"the state from inside is at {aside}" in err
    assert f"staged-in={home}/.claude" in lines, out


def test_the_users_own_edit_of_a_file_read_only_inside_stays(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """A run whose agent keeps its state elsewhere (``CLAUDE_CONFIG_DIR``): ``~/.claude.json``
    is read-only inside, so a server the user adds to it outside during the run (``claude mcp
    add`` in another terminal) is the user's own: it stays, the file is not set aside, and
    nothing is said to have been changed inside."""
    folder = tmp_path / "cfg"
    folder.mkdir()
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1, "mcpServers": {}}')
    mine = {"numStartups": 1, "mcpServers": {"docs": {"command": "docs-server"}}}
    go = project / "go"
    script = "while [ ! -e go ]; do sleep 0.05; done; echo done"
    run = subprocess.Popen(
        sh_run(tmp_path / "audit.jsonl", script),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CLAUDE_CONFIG_DIR": str(folder)},
    )
    marker = folder / "airlock" / "pending"  # the run is past its start once its work is kept
    for _ in range(1200):
        if marker.is_dir() and any(marker.iterdir()):
            break
        run.poll()
        assert run.returncode is None, run.communicate()
        time.sleep(0.05)
    state.write_text(json.dumps(mine))
    go.touch()
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert json.loads(state.read_text()) == mine
    assert "changed inside the sandbox" not in err


def test_a_workspace_moved_during_the_run_keeps_no_placeholder_and_is_named(
    tmp_path: Path, project: Path
) -> None:
    """The user renames the workspace while the command runs: the empty placeholders made
    at its missing protected paths are removed where it is now (left, git would refuse the
    repository over an empty ``.git/commondir``, and ``.mcp.json`` would be a folder), and the
    run says that what the command wrote there was not made safe (it cannot be found by the
    workspace's path: nothing was set aside, nothing was looked at)."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    script = (
        "echo started; while [ ! -e go ]; do sleep 0.05; done; "
        "mkdir -p sub/.vscode && echo '{}' > sub/.vscode/tasks.json"
    )
    run = subprocess.Popen(
        sh_run(tmp_path / "audit.jsonl", script),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stdout is not None
    assert run.stdout.readline().strip() == "started"
    assert (project / ".git" / "commondir").exists()  # a placeholder, while the run goes on
    moved = tmp_path / "renamed"
    project.rename(moved)
    (moved / "go").touch()
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    left = sorted(path.name for path in moved.iterdir())
    assert left == [".git", "go", "sub"], left
    assert not (moved / ".git" / "commondir").exists()
    status = subprocess.run(["git", "status"], cwd=moved, capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    assert f"the workspace {project} is gone or another folder now" in err


IN_MOVED_FROM, IN_DELETE, IN_NONBLOCK = 0x40, 0x200, 0o4000


def _gone_names(watched: Path, action: object) -> list[str]:
    """The names that left ``watched`` (renamed away or removed) while ``action()`` ran, as
    the kernel saw them (inotify)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.inotify_init1(IN_NONBLOCK)
    assert fd >= 0
    try:
        assert libc.inotify_add_watch(fd, bytes(watched), IN_MOVED_FROM | IN_DELETE) >= 0
        action()  # type: ignore[operator]
        data = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            data += chunk
    finally:
        os.close(fd)
    names, offset = [], 0
    while offset < len(data):
        _, _, _, length = struct.unpack_from("iIII", data, offset)
        name = data[offset + 16 : offset + 16 + length].rstrip(b"\0")
        names.append(name.decode())
        offset += 16 + length
    return names


def test_the_state_file_is_never_missing_while_its_servers_are_put_back(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """A server the agent inside saved is taken out of ``~/.claude.json`` after the run, the
    file as the run left it kept aside: the file is written over in one step, never moved
    away first (an agent outside that read it in between would take itself for a new
    user's; a run killed in between would leave no file, and the next run would see nothing
    to do)."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1, "mcpServers": {}}')
    saved = {"numStartups": 2, "mcpServers": {"evil": {"command": "sh"}}}
    found: list[subprocess.CompletedProcess[str]] = []
    gone = _gone_names(home, lambda: found.append(run_script(tmp_path, _saving(saved))))
    [done] = found
    assert done.returncode == 0, done.stderr
    data = json.loads(state.read_text())
    assert data["numStartups"] == 2 and not data.get("mcpServers")
    assert ".claude.json" not in gone, gone
    [kept] = [path for path in _set_aside(config_dir) if path.name == ".claude.json.0"]
    assert json.loads(kept.read_text()) == saved
    assert f"the file as the run left it: {kept}" in done.stderr


def test_a_state_file_too_large_to_read_is_not_staged_empty(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """A ``~/.claude.json`` past what airlock reads (64 MB): its state cannot be put where
    the agent saves it inside, nor carried back; the agent inside must not be handed an empty
    config dir instead (it would start as a new user's, and its state be set aside as if the
    file had been replaced): the file stays where it is, read-only, untouched."""
    state = home / ".claude.json"
    with state.open("w") as file:
        file.write('{"numStartups": 1, "big": "')
        file.write("x" * (65 << 20))
        file.write('"}')
    size = state.stat().st_size
    done = run_script(tmp_path, 'echo "staged=$CLAUDE_CONFIG_DIR"')
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "staged=", done.stdout
    assert state.stat().st_size == size
    assert not (config_dir / ".claude.json").exists()
    assert not (config_dir / "airlock" / "set-aside").exists()


def test_a_run_that_loses_the_race_for_the_staged_state_leaves_it_to_the_winner(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """Two runs with one home start at once: another run stages the agent's state between
    this run's look and its own staging. This run stops (125), and leaves that run's staged
    state, which its agent is using, and ``~/.claude.json`` as they are."""
    state = home / ".claude.json"
    state.write_text('{"numStartups": 1}')
    before = state.read_bytes()
    inject = tmp_path / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(
        "import airlock.sandbox.agent_state as state\n"
        "_stage = state.stage\n"
        "def stage(home, staged):\n"
        '    staged.write_text(\'{"numStartups": 5, "winner": true}\')  # the other run\'s\n'
        "    return _stage(home, staged)\n"
        "state.stage = stage\n"
    )
    path = os.pathsep.join(filter(None, [str(inject), os.environ.get("PYTHONPATH")]))
    done = run_script(tmp_path, "touch ran", env={"PYTHONPATH": path})
    assert done.returncode == 125, done.stderr
    assert "cannot put the agent's state" in done.stderr
    staged = config_dir / ".claude.json"
    assert json.loads(staged.read_text()) == {"numStartups": 5, "winner": True}
    assert state.read_bytes() == before
    assert _set_aside(config_dir) == []


def test_many_placeholder_folders_hold_no_file_open_each(tmp_path: Path, project: Path) -> None:
    """Placeholders in the folders of 300 nested repositories: the run holds the workspace
    open to find them after a move, not each of their folders, so a run under a limit of 250
    open files still starts (it held one per folder: 600 and more)."""
    import resource

    for number in range(300):
        subprocess.run(["git", "init", "-q", str(project / f"r{number}")], check=True)

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (250, 250))

    done = subprocess.run(
        sh_run(tmp_path / "audit.jsonl", "echo ran"),
        cwd=project, capture_output=True, text=True, timeout=300, check=False,
        preexec_fn=limited,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran"


def test_servers_are_put_back_after_the_agent_outside_ends_its_save(tmp_path: Path) -> None:
    """The agent outside is saving ``~/.claude.json`` (its lock folder is there) when the run
    puts the file's servers back: the run waits for the save, then puts them back in what was
    saved, so neither the outside's save nor the servers' removal is lost."""
    import threading

    from airlock.sandbox.agent_state import keep_servers

    state = tmp_path / ".claude.json"
    evil = {"evil": {"command": "sh", "args": ["-c", "touch pwned"]}}
    state.write_text(json.dumps({"mcpServers": evil, "n": 1}))
    lock = tmp_path / ".claude.json.lock"
    lock.mkdir()

    def outside_save() -> None:  # as the agent saves: a new file renamed over, then unlock
        time.sleep(0.3)
        new = tmp_path / ".claude.json.tmp"
        new.write_text(json.dumps({"mcpServers": evil, "n": 1, "tip": "outside"}))
        new.replace(state)
        lock.rmdir()

    saver = threading.Thread(target=outside_save)
    saver.start()
    said = keep_servers(state, b'{"mcpServers": {}, "n": 1}', tmp_path / "aside" / "state")
    saver.join(10)
    assert said is not None and "back as they were" in said
    final = json.loads(state.read_text())
    assert (final.get("mcpServers", {}), final["n"], final["tip"]) == ({}, 1, "outside")
    assert not lock.exists()
