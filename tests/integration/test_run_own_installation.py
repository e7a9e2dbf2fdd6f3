"""airlock installed where the sandbox writes (a project's ``.venv``, an editable install of a
checkout, the quick start run in its own checkout): code inside cannot change the airlock
that runs outside. airlock imports the modules of its report after the command ends, so a
change to one of them would run outside the sandbox in the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import airlock
from airlock.sandbox.launcher import own_installation
from airlock.sandbox.paths import Kind, Mount
from tests.sandbox.unprivileged import as_nobody

PLANT = """
import pathlib, sys
planted = f"\\nimport pathlib\\npathlib.Path({sys.argv[1]!r}).write_text('ran outside')\\n"
for module in pathlib.Path("src/airlock").rglob("*.py"):
    try:
        with module.open("a") as file:
            file.write(planted)
    except OSError as error:
        print("refused", error.strerror)
        break
else:
    print("PLANTED")
"""


OUTSIDE_TMP = (
    "mount -t tmpfs -o mode=0755 airlock-test /mnt && mkdir -p /mnt/ws/src "
    '&& cp -r "$1" /mnt/ws/src/airlock && cd /mnt/ws && shift && exec "$@"'
)
"""A workspace outside ``/tmp`` (whose private copy inside would hide the package and bind it
back read-only anyway): a tmpfs on ``/mnt`` in a mount namespace of the test's own, holding a
copy of airlock's package."""

NOBODY = """
import json, os, shutil, subprocess, sys
shutil.copytree("/mnt/repo/src/airlock", "src/airlock", ignore=shutil.ignore_patterns("*.pyc"))
environ = {{**os.environ, "PYTHONPATH": os.path.abspath("src") + ":/mnt/site"}}
done = subprocess.run(
    [sys.executable, "-m", "airlock", "run", "--", sys.executable, "-c", {plant!r}, {marker!r}],
    capture_output=True, text=True, env=environ, timeout=120,
)
print(json.dumps({{"code": done.returncode, "out": done.stdout, "err": done.stderr,
                  "outside": os.path.exists({marker!r})}}))
"""


def test_airlocks_own_code_in_the_workspace_is_read_only_inside(tmp_path: Path) -> None:
    """airlock run from a copy of its package in the workspace: every module of it refuses
    the write, and nothing the command tried runs outside (the marker is a path of the
    host's /tmp, which the sandbox's private /tmp hides from the command)."""
    marker = tmp_path / "ran-outside"
    run = [sys.executable, "-m", "airlock", "run", "--audit-log", str(tmp_path / "audit.jsonl")]
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            OUTSIDE_TMP,
            "sh",
            str(Path(airlock.__file__).parent),
            *run,
            "--",
            sys.executable,
            "-c",
            PLANT,
            str(marker),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": "/mnt/ws/src", "COLUMNS": "200"},
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused Read-only file system"), done.stdout
    assert not marker.exists(), marker.read_text()


def test_an_unprivileged_users_airlock_in_the_workspace_is_read_only_inside() -> None:
    """The same as ``nobody``, whose workspace is outside ``/tmp`` (``/mnt/work/ws``)."""
    found = as_nobody(NOBODY.format(plant=PLANT, marker="/mnt/work/home/ran-outside"))
    assert found.returncode == 0, found.stderr
    result = json.loads(found.stdout.splitlines()[-1])
    assert result["code"] == 0, result["err"]
    assert result["out"].startswith("refused Read-only file system"), result["out"]
    assert not result["outside"]


def test_only_what_a_rule_lets_the_command_write_is_bound_read_only() -> None:
    """A folder opened for writing above the Python's virtual environment gets a read-only
    bind of it; one opened at that very path is left as the user asked (the workspace on the
    import path); a folder not opened for writing gets nothing (read-only already)."""
    prefix = Path(sys.prefix).resolve()
    above = Mount(Kind.WRITE, prefix.parent, "the workspace", True, True)
    found = own_installation([above])
    assert any(rule.path == prefix and rule.kind is Kind.READ for rule in found)
    assert not any(rule.path.is_relative_to(prefix) and rule.path != prefix for rule in found)
    at = Mount(Kind.WRITE, prefix, "--rw", True, True)
    assert not any(rule.path == prefix for rule in own_installation([at]))
    elsewhere = Mount(Kind.WRITE, Path("/nonexistent/workspace"), "the workspace", True, True)
    assert own_installation([elsewhere]) == []
