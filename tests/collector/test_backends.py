"""The test run's throwaway PostgreSQL cluster ends with the run, even a run killed outright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.collector.backends import pg_program, postgres_cluster

REPO = Path(__file__).resolve().parents[2]
RUN = """
import sys, time
from tests.collector.backends import postgres_cluster
with postgres_cluster() as url:
    print(url, flush=True)
    time.sleep(600)
"""


def _naming(folder: Path) -> list[str]:
    """The command lines of the processes that name ``folder`` (the server, the watchdog)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = " ".join(word.decode(errors="replace") for word in words)
        if str(folder) in line:
            found.append(line)
    return found


def _folder(url: str) -> Path:
    """The cluster's folder (its data directory's parent), asked of the server."""
    with psycopg.connect(f"{url}/postgres") as connection:
        row = connection.execute("SHOW data_directory").fetchone()
    assert row is not None
    return Path(row[0]).parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_killed_run_takes_its_cluster_with_it() -> None:
    """SIGKILL to the process that started a cluster: its server stops and its folder goes."""
    run = subprocess.Popen([sys.executable, "-c", RUN], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert run.stdout is not None
    folder: Path | None = None
    try:
        url = run.stdout.readline().strip()
        assert url.startswith("postgresql://"), url
        folder = _folder(url)
        server = int((folder / "data" / "postmaster.pid").read_text().split()[0])
        assert _alive(server)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        deadline = time.monotonic() + 60
        while (_alive(server) or folder.exists()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(server), "the server outlived the run that started it"
        assert not folder.exists()
        assert _naming(folder) == []
    finally:
        run.kill()
        run.wait(timeout=30)
        run.stdout.close()
        if folder is not None and (folder / "data").exists():  # the test failed: stop it here
            as_user = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []
            data = str(folder / "data")
            stop = [*as_user, pg_program("pg_ctl"), "-D", data, "-m", "immediate", "stop"]
            subprocess.run(stop, check=False, capture_output=True, timeout=60)
            shutil.rmtree(folder, ignore_errors=True)


def test_finished_run_leaves_nothing_behind() -> None:
    """A run that ends normally stops its cluster, removes its folder and ends its watchdog."""
    with postgres_cluster() as url:
        folder = _folder(url)
        assert any("pg_watchdog.py" in line for line in _naming(folder))
    assert not folder.exists()
    assert _naming(folder) == []
