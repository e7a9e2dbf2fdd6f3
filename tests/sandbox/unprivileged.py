"""Run a Python program as an unprivileged user (``nobody``), for the sandbox tests.

The test process is root; ``nobody`` cannot reach this checkout or its Python when they live
under ``/root``. So the program runs in a private mount namespace of its own (``unshare -m``)
where a fresh tmpfs on ``/mnt`` holds bind mounts of the interpreter (``/mnt/py``), the
virtual environment's packages (``/mnt/site``) and the checkout (``/mnt/repo``), and an empty
workspace and home owned by ``nobody`` (``/mnt/work/ws``, ``/mnt/work/home``). Nothing changes outside
that namespace, and it is gone when the program ends.
"""

from __future__ import annotations

import os
import shlex
import site
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]
WORKSPACE = "/mnt/work/ws"
HOME = "/mnt/work/home"


def as_nobody(code: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` as ``nobody`` (see the module's docstring); cwd is :data:`WORKSPACE`."""
    if os.geteuid() != 0:
        environ = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environ,
        )
    python = Path(sys.executable).resolve()
    relative = python.relative_to(Path(sys.base_prefix).resolve())
    packages = site.getsitepackages()[0]
    setup = " && ".join(
        [
            "mount -t tmpfs -o mode=0755 airlock-test /mnt",
            "mkdir -p /mnt/py /mnt/site /mnt/repo /mnt/work/ws /mnt/work/home",
            f"mount --bind {shlex.quote(sys.base_prefix)} /mnt/py",
            f"mount --bind {shlex.quote(packages)} /mnt/site",
            f"mount --bind {shlex.quote(str(REPO))} /mnt/repo",
            "chown -R nobody:nogroup /mnt/work",
            f"cd {WORKSPACE}",
            "exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "
            + shlex.join(
                [
                    "env",
                    "-i",
                    f"PATH={os.environ.get('PATH', '/usr/bin:/bin')}",
                    f"HOME={HOME}",
                    "LD_LIBRARY_PATH=/mnt/py/lib",
                    "PYTHONPATH=/mnt/repo/src:/mnt/repo:/mnt/site",
                    "PYTHONDONTWRITEBYTECODE=1",
                    f"/mnt/py/{relative}",
                    "-c",
                    code,
                ]
            ),
        ]
    )
    return subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c", setup],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
