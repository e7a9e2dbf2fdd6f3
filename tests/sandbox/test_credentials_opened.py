"""The user's own ``--ro`` and ``--rw`` (and ``allowWrite`` of their own settings) naming a
credential folder airlock hides (``~/.ssh``), or a path in it, open it as asked, and the run
says so; a project's settings never open one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli import airlock


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, timeout=120)


def _ssh(home: Path) -> Path:
    ssh = home / ".ssh"
    ssh.mkdir(parents=True)
    (ssh / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (ssh / "id_ed25519").write_text("the-private-key\n")
    return ssh


READ_AND_WRITE = (
    "cat ~/.ssh/known_hosts ~/.ssh/id_ed25519 2>/dev/null; "
    "echo more >> ~/.ssh/known_hosts 2>/dev/null && echo WROTE; true"
)


@pytest.mark.parametrize("option", ["--ro", "--rw"])
def test_the_users_own_option_opens_a_hidden_credential_folder(
    tmp_path: Path, home: Path, option: str
) -> None:
    """``--ro ~/.ssh`` shows it read-only, ``--rw ~/.ssh`` writable (both were ignored: the
    folder stayed hidden, empty), each said on stderr."""
    ssh = _ssh(home)
    done = _run(tmp_path, option, "~/.ssh", "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "github.com" in done.stdout and "the-private-key" in done.stdout, done.stderr
    assert ("WROTE" in done.stdout) is (option == "--rw")
    said = f"{option} ~/.ssh: opens {ssh}, which airlock hides as credentials, at your request"
    assert said in done.stderr
    access = "writable" if option == "--rw" else "read-only"
    assert f"({access} inside)" in done.stderr


def test_a_path_in_a_hidden_credential_folder_is_shown_alone(tmp_path: Path, home: Path) -> None:
    """``--ro ~/.ssh/known_hosts``: that file is there, read-only; the rest of ``~/.ssh``
    stays hidden (a read-only rule under the hidden folder was dropped)."""
    ssh = _ssh(home)
    done = _run(tmp_path, "--ro", "~/.ssh/known_hosts", "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "github.com" in done.stdout, done.stderr
    assert "the-private-key" not in done.stdout and "WROTE" not in done.stdout
    assert f"opens {ssh / 'known_hosts'} in {ssh}, which airlock hides" in done.stderr


def test_the_users_own_allow_write_opens_one(tmp_path: Path, home: Path) -> None:
    """``allowWrite: ["~/.ssh"]`` in ``~/.claude/settings.json``: writable inside, said."""
    ssh = _ssh(home)
    settings = home / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"sandbox": {"filesystem": {"allowWrite": ["~/.ssh"]}}}))
    done = _run(tmp_path, "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "the-private-key" in done.stdout and "WROTE" in done.stdout, done.stderr
    assert f"opens {ssh}, which airlock hides as credentials" in done.stderr


def test_a_projects_settings_never_open_one(tmp_path: Path, home: Path, project: Path) -> None:
    """A project's ``denyWrite`` of ``~/.ssh`` (read-only, were it not hidden) leaves it
    hidden; its ``allowWrite`` of it is refused (outside the workspace); nothing said opened."""
    _ssh(home)
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"sandbox": {"filesystem": {"denyWrite": ["~/.ssh"]}}}))
    done = _run(tmp_path, "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "github.com" not in done.stdout and "the-private-key" not in done.stdout
    assert "at your request" not in done.stderr
    settings.write_text(json.dumps({"sandbox": {"filesystem": {"allowWrite": ["~/.ssh"]}}}))
    refused = _run(tmp_path, "--", "sh", "-c", READ_AND_WRITE)
    assert refused.returncode == 125, refused.stderr
    assert "the-private-key" not in refused.stdout


def test_the_users_own_hide_still_wins_at_the_same_path(tmp_path: Path, home: Path) -> None:
    """``--hide ~/.ssh --ro ~/.ssh``: hidden, and not said opened."""
    _ssh(home)
    done = _run(tmp_path, "--hide", "~/.ssh", "--ro", "~/.ssh", "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "github.com" not in done.stdout
    assert "at your request" not in done.stderr


@pytest.mark.parametrize("option", ["--ro", "--rw"])
def test_a_link_in_the_workspace_to_a_store_opens_nothing(
    tmp_path: Path, home: Path, project: Path, option: str
) -> None:
    """Code inside an earlier run made ``docs/vendor -> ~/.ssh`` in the workspace; a later
    ``--ro ./docs/vendor`` named a workspace path, not the store: ``~/.ssh`` stays hidden
    (it was opened, its key printed, and writable under ``--rw``), and the run says why."""
    ssh = _ssh(home)
    (project / "docs").mkdir()
    (project / "docs" / "vendor").symlink_to(ssh)
    done = _run(tmp_path, option, "./docs/vendor", "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "the-private-key" not in done.stdout and "github.com" not in done.stdout
    assert "WROTE" not in done.stdout
    assert f"through the link {project / 'docs' / 'vendor'} in a folder the sandbox" in done.stderr
    assert "at your request" not in done.stderr


def test_a_link_of_the_users_own_outside_writable_folders_opens_the_store(
    tmp_path: Path, home: Path
) -> None:
    """A link in the home, read-only inside (``~/keys -> ~/.ssh``, the user's own): naming it
    opens the store as asked."""
    ssh = _ssh(home)
    (home / "keys").symlink_to(ssh)
    done = _run(tmp_path, "--ro", "~/keys", "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "the-private-key" in done.stdout, done.stderr
    assert "which airlock hides as credentials, at your request (read-only inside)" in done.stderr


def test_a_link_in_the_workspace_named_by_the_users_own_settings_opens_nothing(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """``allowWrite: ["./docs/vendor"]`` in the user's own settings, read in a project where
    ``docs/vendor -> ~/.ssh`` was made inside: the store stays hidden."""
    ssh = _ssh(home)
    (project / "docs").mkdir()
    (project / "docs" / "vendor").symlink_to(ssh)
    settings = {"sandbox": {"filesystem": {"allowWrite": ["./docs/vendor"]}}}
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text(json.dumps(settings))
    done = _run(tmp_path, "--", "sh", "-c", READ_AND_WRITE)
    assert done.returncode == 0, done.stderr
    assert "the-private-key" not in done.stdout and "WROTE" not in done.stdout
    assert "through the link" in done.stderr
