"""Real databases for the collector's tests: SQLite in a temporary folder, and a throwaway
PostgreSQL cluster the test run creates (initdb, pg_ctl; as the user ``nobody`` when run as
root, since PostgreSQL refuses root) on a free loopback port, and stops at the end.

A run killed before its end (``kill -9``, a timeout) cannot stop its cluster itself, so each
cluster has a watchdog (``pg_watchdog.py``, in a session of its own so that signals to the
run's process group spare it) that stops the cluster and removes its folder as soon as the
process that started it is gone. It knows by a pipe, not by a process id that could be
reused: the run holds the only write end, which the kernel closes when the run ends.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def pg_program(name: str) -> str:
    """The path of a PostgreSQL server program (``initdb``, ``pg_ctl``)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).is_file():
            return str(folder / name)
    raise RuntimeError(
        f"{name} not found: the collector's tests need PostgreSQL's server programs "
        "(bash scripts/setup.sh --dev installs the postgresql package)"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A PostgreSQL cluster on 127.0.0.1 for this run; yields ``postgresql://airlock@HOST:PORT``."""
    root = Path(tempfile.mkdtemp(prefix="airlock-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "nobody")
        as_user = ["runuser", "-u", "nobody", "--"]
    data = root / "data"
    port = _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    stop = [*as_user, pg_program("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    watchdog = _watchdog(root, stop)
    try:
        subprocess.run(
            [
                *as_user,
                pg_program("initdb"),
                "-D",
                str(data),
                "-U",
                "airlock",
                "--auth=trust",
                "-E",
                "UTF8",
                "-N",
            ],
            **run,  # type: ignore[call-overload]
        )
        options = (
            f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        subprocess.run(
            [
                *as_user,
                pg_program("pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "start",
            ],
            **run,  # type: ignore[call-overload]
        )
        try:
            yield f"postgresql://airlock@127.0.0.1:{port}"
        finally:
            subprocess.run(stop, check=False, capture_output=True, timeout=60)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        assert watchdog.stdin is not None
        watchdog.stdin.close()  # end of input: the watchdog finds the folder gone and exits
        watchdog.wait(timeout=60)


def _watchdog(root: Path, stop: list[str]) -> subprocess.Popen[bytes]:
    """The process that runs ``stop`` and removes ``root`` once this process has ended."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("pg_watchdog.py")), str(root), "--", *stop],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


_numbers = itertools.count(1)


def fresh_database(cluster: str) -> str:
    """A new, empty database in ``cluster``; its URL."""
    import psycopg

    name = f"t{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(f"{cluster}/postgres", autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{cluster}/{name}"
