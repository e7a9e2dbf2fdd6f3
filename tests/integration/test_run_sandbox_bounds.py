"""``airlock run``: what no rule may open, whoever gives it.

A bind of ``/``, or of a folder holding the sandbox's own ``/proc``, ``/dev``, ``/tmp``,
``/var/tmp`` or ``/run``, would put the host's in their place; a project's settings file may
make only paths inside the workspace writable (it came with the project, or was written by
code inside an earlier sandbox, in a subfolder a later run starts from).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import airlock
from tests.conftest import write_json


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, timeout=180)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        pytest.param(["--rw", "/"], "/dev, /proc, /tmp, /var/tmp, /run", id="rw_root"),
        pytest.param(["--ro", "/"], "/dev, /proc", id="ro_root"),
        pytest.param(["--rw", "/proc"], "/proc", id="rw_proc"),
        pytest.param(["--rw", "/tmp"], "/tmp", id="rw_tmp"),
        pytest.param(["--ro", "/var"], "/var/tmp", id="ro_var"),
        pytest.param(["--workspace", "/"], "/proc", id="workspace_root"),
        pytest.param(["--workspace", "/run"], "/run", id="workspace_run"),
    ],
)
def test_a_bind_over_the_sandboxs_own_folders_is_refused(
    tmp_path: Path, args: list[str], named: str
) -> None:
    """Refused with exit 125 naming what it would uncover; the command never runs."""
    marker = tmp_path / "ran"
    done = _run(tmp_path, *args, "--", "touch", str(marker))
    assert done.returncode == 125, done.stdout + done.stderr
    assert named in done.stderr and "in place of the sandbox's own" in done.stderr
    assert not marker.exists()
    assert "nested git repositories" not in done.stderr  # refused before any folder is walked


def test_a_folder_under_tmp_is_still_a_workspace(tmp_path: Path, project: Path) -> None:
    """The check is on folders holding the sandbox's own, not on folders inside them."""
    done = _run(tmp_path, "--workspace", str(project), "--", "sh", "-c", "echo ok > made")
    assert done.returncode == 0, done.stderr
    assert (project / "made").read_text() == "ok\n"


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param("//", id="the_root"),
        pytest.param("~/", id="the_home"),
        pytest.param("../", id="the_parent"),
        pytest.param("//etc", id="an_absolute_path"),
    ],
)
def test_a_projects_settings_open_nothing_outside_the_workspace(
    tmp_path: Path, project: Path, home: Path, entry: str
) -> None:
    """allowWrite in the project's settings (here a subfolder's, the way code inside an earlier
    run could write it) naming a path outside the workspace stops the run, naming the file."""
    workspace = project / "sub"
    settings = write_json(
        workspace / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"allowWrite": [entry]}}},
    )
    marker = home / "ran"
    done = airlock(
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        "--",
        "touch",
        str(marker),
        cwd=workspace,
        timeout=180,
    )
    assert done.returncode == 125, done.stdout + done.stderr
    assert str(settings) in done.stderr and "outside the workspace" in done.stderr
    assert not marker.exists()


def test_a_projects_settings_open_a_path_inside_the_workspace(
    tmp_path: Path, project: Path
) -> None:
    """Inside the workspace, the project's allowWrite still counts (here under a denyWrite)."""
    (project / "out").mkdir()
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyWrite": ["./out"], "allowWrite": ["./out/cache"]}}},
    )
    (project / "out" / "cache").mkdir()
    done = _run(
        tmp_path,
        "--",
        "sh",
        "-c",
        "touch out/cache/x && echo cache-ok; touch out/y 2>/dev/null && echo WROTE-OUT; true",
    )
    assert done.returncode == 0, done.stderr
    assert "cache-ok" in done.stdout and "WROTE-OUT" not in done.stdout


@pytest.mark.parametrize("kept_by", ["--hide", "denyRead"])
def test_a_projects_settings_open_nothing_kept_above_it(
    tmp_path: Path, project: Path, home: Path, kept_by: str
) -> None:
    """A project's allowWrite of a path under a hook folder airlock keeps, or under a folder
    the user hides (with --hide, or denyRead in their own settings), opens nothing: deny beats
    allow, and the run says which rule kept each path."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    hook = project / ".git" / "hooks" / "pre-commit"
    hook.write_text("#!/bin/sh\n")
    (project / "private").mkdir()
    (project / "private" / "key").write_text("TOPSECRET\n")
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"allowWrite": [".git/hooks/pre-commit", "private/key"]}}},
    )
    args = ["--hide", "private"] if kept_by == "--hide" else []
    if kept_by == "denyRead":
        write_json(
            home / ".claude" / "settings.json",
            {"sandbox": {"filesystem": {"denyRead": [f"/{project / 'private'}"]}}},
        )
    done = _run(
        tmp_path,
        *args,
        "--",
        "sh",
        "-c",
        "cat private/key 2>/dev/null; (echo x >> .git/hooks/pre-commit) 2>/dev/null && echo WROTE; true",
    )
    assert done.returncode == 0, done.stderr
    assert "TOPSECRET" not in done.stdout and "WROTE" not in done.stdout
    assert hook.read_text() == "#!/bin/sh\n"
    assert done.stderr.count("not opened, as") == 2, done.stderr
    assert "stays read-only (runs code outside later" in done.stderr
    assert "stays hidden (" in done.stderr


def test_the_hosts_own_secrets_are_not_readable_inside(tmp_path: Path) -> None:
    """/etc/shadow (and the host's SSH keys, where there are) read as empty inside."""
    done = _run(tmp_path, "--", "sh", "-c", "cat /etc/shadow 2>/dev/null | wc -c")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"
