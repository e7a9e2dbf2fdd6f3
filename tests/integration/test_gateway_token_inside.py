"""With ``--repo``, the git gateway's token is in no git config file and no variable inside."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from tests.cli import airlock

TOKEN = "ghp_InsideTokenAbcdefghijklmnopqrstuvwxyz"
HEX_TOKEN = "3f1c9a0b7e2d4c6f8a1b3c5d7e9f0a2b4c6d8e0f"
EXTRAHEADER = "http.https://github.com/.extraheader"


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _run(tmp_path: Path, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    return airlock(
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        "--repo",
        "octo/allowed",
        *args,
        env={"GH_TOKEN": token},
        timeout=180,
    )


def _checkout_extraheader(project: Path, home: Path) -> tuple[Path, str]:
    """actions/checkout's way, with ``persist-credentials: true`` (its default)."""
    _git("init", "-q", cwd=project)
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    _git("config", "--local", EXTRAHEADER, f"AUTHORIZATION: basic {basic}", cwd=project)
    return project / ".git" / "config", EXTRAHEADER


def _remote_url(project: Path, home: Path) -> tuple[Path, str]:
    """``git clone https://TOKEN@github.com/…``."""
    _git("init", "-q", cwd=project)
    _git("remote", "add", "origin", f"https://{TOKEN}@github.com/octo/allowed", cwd=project)
    return project / ".git" / "config", "remote.origin.url"


def _global_insteadof(project: Path, home: Path) -> tuple[Path, str]:
    """The CI recipe for private modules, in ``~/.gitconfig`` (the key holds the token: the
    line alone is named)."""
    (home / ".gitconfig").write_text(
        f'[url "https://{TOKEN}@github.com/"]\n\tinsteadOf = https://github.com/\n'
    )
    return home / ".gitconfig", ""


def _included_from_the_home(project: Path, home: Path) -> tuple[Path, str]:
    """A file ``~/.gitconfig`` includes, with the token in git's credential store's URL form."""
    (home / "work.gitconfig").write_text(
        f'[credential "https://github.com"]\n\thelper = "!echo password={TOKEN}"\n'
    )
    (home / ".gitconfig").write_text("[include]\n\tpath = ~/work.gitconfig\n")
    return home / "work.gitconfig", "credential.https://github.com.helper"


def _worktree_config(project: Path, home: Path) -> tuple[Path, str]:
    """``config.worktree``, read with ``extensions.worktreeConfig``."""
    _git("init", "-q", cwd=project)
    _git("config", "extensions.worktreeConfig", "true", cwd=project)
    _git(
        "config",
        "--worktree",
        "remote.origin.url",
        f"https://x:{TOKEN}@github.com/o/r",
        cwd=project,
    )
    return project / ".git" / "config.worktree", "remote.origin.url"


@pytest.mark.parametrize(
    "place",
    [
        _checkout_extraheader,
        _remote_url,
        _global_insteadof,
        _included_from_the_home,
        _worktree_config,
    ],
    ids=["checkout_extraheader", "remote_url", "global_insteadof", "included", "config_worktree"],
)
def test_a_git_config_holding_the_token_stops_the_run(
    tmp_path: Path, project: Path, home: Path, place: object
) -> None:
    """The token in a git config file the sandbox shows (in the form actions/checkout writes
    it too) stops the run before the command starts (125), naming the file, the line and the
    key (never the token), and how to take it out."""
    config, key = place(project, home)  # type: ignore[operator]
    done = _run(tmp_path, "--", "touch", "ran")
    assert done.returncode == 125, done.stderr
    assert not (project / "ran").exists()
    assert f"  {config}, line " in done.stderr, done.stderr
    assert f"({key})" in done.stderr if key else "line 1\n" in done.stderr
    assert "persist-credentials: false" in done.stderr and "--unset-all" in done.stderr
    assert TOKEN not in done.stderr and TOKEN not in done.stdout


def test_a_repository_without_the_token_runs(tmp_path: Path, project: Path, home: Path) -> None:
    """A checkout whose config holds another token, and a global config without one, do not
    stop the run."""
    _git("init", "-q", cwd=project)
    _git("remote", "add", "origin", "https://github.com/octo/allowed", cwd=project)
    other = "ghp_" + "Z" * 36
    _git("config", "--local", EXTRAHEADER, f"AUTHORIZATION: bearer {other}", cwd=project)
    (home / ".gitconfig").write_text("[user]\n\tname = Someone\n")
    done = _run(tmp_path, "--", "sh", "-c", "echo ran")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ran"


def test_a_copy_of_the_token_under_any_name_is_dropped(tmp_path: Path) -> None:
    """A token of no known kind (40 hex digits) in ``GH_TOKEN`` and in a variable named like
    no credential: the copy is dropped from the sandbox's environment, and named among the
    dropped ones in the report (never its value)."""
    done = airlock(
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        "--repo",
        "octo/allowed",
        "--",
        "sh",
        "-c",
        'env; echo "copy=${FORGEJO_ACCESS:-unset}"',
        env={"GH_TOKEN": HEX_TOKEN, "FORGEJO_ACCESS": HEX_TOKEN, "PLAIN": "kept"},
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert "copy=unset" in done.stdout and "PLAIN=kept" in done.stdout
    assert HEX_TOKEN not in done.stdout and HEX_TOKEN not in done.stderr
    assert "FORGEJO_ACCESS (its value: the token the git gateway uses for --repo" in done.stderr


def test_a_copy_of_the_token_passed_with_env_stops_the_run(tmp_path: Path, project: Path) -> None:
    """``--env FORGEJO_ACCESS`` holding the token's ``Basic`` form is refused (125), named."""
    basic = base64.b64encode(f"x-access-token:{HEX_TOKEN}".encode()).decode()
    done = airlock(
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        "--repo",
        "octo/allowed",
        "--env",
        "FORGEJO_ACCESS",
        "--",
        "touch",
        "ran",
        env={"GH_TOKEN": HEX_TOKEN, "FORGEJO_ACCESS": f"basic {basic}"},
        timeout=180,
    )
    assert done.returncode == 125, done.stderr
    assert "--env FORGEJO_ACCESS: holds the token the git gateway uses" in done.stderr
    assert not (project / "ran").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--git-token-file", "BINARY"], "holds a byte that is not ASCII"),
        (["--git-upstream", "https://[::1"], "--git-upstream 'https://[::1': not a URL"),
    ],
    ids=["binary_token_file", "unreadable_upstream"],
)
def test_a_token_file_or_upstream_airlock_cannot_use_stops_the_run(
    tmp_path: Path, project: Path, args: list[str], said: str
) -> None:
    """A token file that is not text and a --git-upstream that is not a URL stop the run
    before the command starts (125) with a message naming the option (they used to stop
    airlock with a Python traceback, exit 1), never the token."""
    token_file = tmp_path / "token"
    token_file.write_bytes(b"\xff\xfe" + TOKEN.encode())
    args = [str(token_file) if arg == "BINARY" else arg for arg in args]
    done = _run(tmp_path, *args, "--", "touch", "ran")
    assert done.returncode == 125, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert not (project / "ran").exists()
    assert TOKEN not in done.stderr + done.stdout
