"""``airlock run`` where ``/etc/resolv.conf`` is a link into ``/run``, as systemd-resolved makes
it (Ubuntu's default, GitHub's runners'): the sandbox is built, and a lookup inside still
fails at once with the run's own ``resolv.conf``.

The link is made in a mount namespace of the test's own, on an overlay over ``/etc`` whose
changes go to the test's temporary folder: the machine's ``/etc`` is left as it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

STUB = "../run/systemd/resolve/stub-resolv.conf"

INSIDE = """
readlink /etc/resolv.conf
grep -c 'there is no DNS inside the sandbox' /etc/resolv.conf
getent hosts example.com >/dev/null; echo "lookup exit $?"
"""


def test_a_resolv_conf_linked_into_run_still_builds_the_sandbox(tmp_path: Path) -> None:
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    run = [
        sys.executable,
        "-m",
        "airlock",
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        "--",
        "sh",
        "-c",
        INSIDE,
    ]
    done = subprocess.run(
        [
            "unshare",
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc '
            '&& rm /etc/resolv.conf && ln -s "$3" /etc/resolv.conf && shift 3 && exec "$@"',
            "sh",
            str(upper),
            str(work),
            STUB,
            *run,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:3] == [STUB, "1", "lookup exit 2"], done.stdout
