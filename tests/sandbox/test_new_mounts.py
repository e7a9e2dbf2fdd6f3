"""A file system mounted on the host while ``airlock run`` runs (a USB stick under ``/media``, an
automount, sshfs or NFS) does not reach the sandbox: the rest of the system stays read-only.

Each test runs in a private mount namespace of its own (``unshare -m``), so nothing changes on
the machine: a fresh tmpfs on ``/mnt`` holds the interpreter, the packages and the checkout
(bound there, as :mod:`tests.sandbox.unprivileged` does, so ``nobody`` can run them), an empty
workspace and home, and ``/mnt/media``, a file system of its own made a shared mount, as the
host's ``/`` is on a systemd machine. ``airlock run`` starts a command that waits; once it
runs, a tmpfs anyone may write is mounted on ``/mnt/media/usb`` from outside, and the command
is told to look and to write there.
"""

from __future__ import annotations

import os
import shlex
import site
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.errors import SandboxError
from airlock.sandbox import check
from airlock.sandbox.launcher import SYSTEM_PROGRAMS
from tests.sandbox.unprivileged import REPO

WORKSPACE = "/mnt/work/ws"
USB = "/mnt/media/usb"

COMMAND = f"""
touch started
i=0; while [ ! -e go ] && [ $i -lt 600 ]; do i=$((i+1)); sleep 0.1; done
[ -d /mnt/media ] && echo MEDIA-THERE
grep -q ' {USB} ' /proc/self/mountinfo && echo SEEN-INSIDE
if {{ echo x > {USB}/from-sandbox; }} 2>/dev/null; then echo WROTE; else echo REFUSED; fi
"""
"""Inside: says it started, waits for ``go`` (the new mount made), then looks and writes."""


def _run_with_new_mount(user: str | None) -> subprocess.CompletedProcess[str]:
    """``airlock run -- sh -c COMMAND`` as root (``user`` None) or as ``user``, with a new
    file system mounted on :data:`USB` outside once the command runs."""
    python = Path(sys.executable).resolve()
    relative = python.relative_to(Path(sys.base_prefix).resolve())
    as_user = (
        f"setpriv --reuid={user} --regid=nogroup --clear-groups -- " if user is not None else ""
    )
    airlock = shlex.join(
        [
            "env",
            "-i",
            f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME=/mnt/work/home",
            "AIRLOCK_MANAGED_SETTINGS_DIR=/mnt/work/managed",
            "LD_LIBRARY_PATH=/mnt/py/lib",
            "PYTHONPATH=/mnt/repo/src:/mnt/site",
            "PYTHONDONTWRITEBYTECODE=1",
            f"/mnt/py/{relative}",
            "-m",
            "airlock",
            "run",
            "--",
            "sh",
            "-c",
            COMMAND,
        ]
    )
    script = f"""
set -e
mount -t tmpfs -o mode=0755 airlock-test /mnt
mkdir -p /mnt/py /mnt/site /mnt/repo {WORKSPACE} /mnt/work/home/.claude /mnt/work/managed /mnt/media
mount --bind {shlex.quote(sys.base_prefix)} /mnt/py
mount --bind {shlex.quote(site.getsitepackages()[0])} /mnt/site
mount --bind {shlex.quote(str(REPO))} /mnt/repo
mount -t tmpfs -o mode=0755 media /mnt/media
mkdir {USB}
mount --make-shared /mnt/media
{f"chown -R {user} /mnt/work" if user is not None else ":"}
cd {WORKSPACE}
{as_user}{airlock} &
i=0; while [ ! -e started ]; do
    i=$((i+1)); [ $i -lt 600 ] || {{ echo "the command did not start" >&2; exit 3; }}
    sleep 0.1
done
mount -t tmpfs -o mode=0777 usb {USB}
echo MOUNTED-OUTSIDE
touch go
status=0; wait $! || status=$?
echo "exit=$status"
echo "on-the-usb-stick=$(ls -A {USB})"
"""
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.mark.parametrize("user", [None, "nobody"], ids=["root", "unprivileged"])
def test_a_file_system_mounted_during_the_run_does_not_reach_the_sandbox(
    user: str | None,
) -> None:
    """A tmpfs mounted under a shared folder while the command runs: the command does not see
    it and cannot write there (before, it arrived writable: ``rw … master:N``)."""
    done = _run_with_new_mount(user)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "MOUNTED-OUTSIDE" in out and "exit=0" in out, out + done.stderr
    assert "MEDIA-THERE" in out, out + done.stderr  # the folder itself is in sight, read-only
    assert "SEEN-INSIDE" not in out, out
    assert "WROTE" not in out and "REFUSED" in out, out
    assert "on-the-usb-stick=\n" in out, out


def test_no_unshare_is_an_error_saying_what_to_install(tmp_path: Path) -> None:
    """bubblewrap is started through util-linux's ``unshare``: without one in the system's
    folders, the error says what to install (a ``bwrap`` there alone is not enough)."""
    (tmp_path / "bwrap").write_text("#!/bin/sh\n")
    (tmp_path / "bwrap").chmod(0o755)
    with pytest.raises(SandboxError, match=r"unshare is not installed.*apt-get install util-linux"):
        check({"PATH": os.environ["PATH"]}, places=(str(tmp_path),))


def test_airlock_run_without_unshare_runs_nothing(tmp_path: Path) -> None:
    """``airlock run`` with no ``unshare`` in the system's folders (covered, in a mount
    namespace of the test's own, by ``/dev/null``, which is no program): 125, the reason, and
    the command never ran."""
    workspace, marker = tmp_path / "ws", tmp_path / "ws" / "ran"
    workspace.mkdir()
    found = {os.path.realpath(Path(place) / "unshare") for place in SYSTEM_PROGRAMS}
    covered = [path for path in sorted(found) if Path(path).is_file()]
    assert covered  # the test itself runs unshare
    script = "".join(f"mount --bind /dev/null {shlex.quote(path)} && " for path in covered)
    script += shlex.join([sys.executable, "-m", "airlock", "run", "--", "touch", str(marker)])
    done = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        cwd=workspace,
        timeout=120,
    )
    assert done.returncode == 125, done.stdout + done.stderr
    assert "unshare is not installed" in done.stderr
    assert "apt-get install util-linux" in done.stderr
    assert not marker.exists()
