"""A killed run's ledger names its process by id and start: a process that took the id over
later (after a reboot, or once ids went round) does not keep its placeholders."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from airlock._process import BOOT_ID, alive, start_of
from airlock.sandbox.placeholders import Placeholders, claimed_by_others, sweep

SRC = str(Path(__file__).parents[2] / "src")


@contextlib.contextmanager
def _other() -> Iterator[int]:
    """A process of this user's that runs on: the one that took a killed run's id over,
    started later (at least a clock tick: a start is counted in them)."""
    time.sleep(0.05)
    process = subprocess.Popen(["sleep", "60"])
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()


def _recorded_by_a_process_gone(paths: list[Path], ledger: Path) -> dict[str, object]:
    """The ledger a run writes (:meth:`Placeholders.record`), written by a process that then
    ended without removing anything (as ``kill -9`` leaves it)."""
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from airlock.sandbox.placeholders import Placeholders\n"
        "Placeholders([Path(p) for p in sys.argv[2:]], Path(sys.argv[1])).record()\n"
    )
    subprocess.run(
        [sys.executable, "-c", script, str(ledger), *map(str, paths)],
        check=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    data: dict[str, object] = json.loads(ledger.read_text())
    return data


def test_the_start_is_the_boots_id_and_the_ticks_after_it() -> None:
    """Field 22 of /proc/PID/stat, after the boot's id; alive() tells another start apart."""
    boot = Path(BOOT_ID).read_text().strip()
    stat = Path(f"/proc/{os.getpid()}/stat").read_text()
    ticks = stat[stat.rindex(")") + 2 :].split()[19]
    start = start_of(os.getpid())
    assert start == f"{boot}:{ticks}"
    assert alive(os.getpid(), start)
    assert alive(os.getpid())  # without a start: by the id alone, as before
    assert not alive(os.getpid(), f"{boot}:{int(ticks) + 1}")  # the id taken over later
    assert not alive(os.getpid(), f"another-boot:{ticks}")  # the same ticks, another boot


def test_a_ledger_whose_process_id_another_process_took_is_swept(tmp_path: Path) -> None:
    """A killed run's id now names another process: its placeholder is removed (git works
    again), and no run takes it for a placeholder that run stands on."""
    ledgers = tmp_path / "ledgers"
    commondir = tmp_path / "commondir"
    commondir.touch()  # what the killed run left: an empty .git/commondir
    ledger = ledgers / "killed.json"
    data = _recorded_by_a_process_gone([commondir], ledger)
    assert isinstance(data["start"], str)
    with _other() as other:
        data["pid"] = other  # its id, taken over by a process that runs on
        ledger.write_text(json.dumps(data))
        assert claimed_by_others(ledgers / "mine.json") == set()
        assert sweep(ledgers) == [ledger]
    assert not commondir.exists()
    assert not ledger.exists()


def test_a_ledger_without_a_start_is_read_by_its_process_id(tmp_path: Path) -> None:
    """A ledger written before the start was kept: the process with its id counts as the run
    (its placeholders stay, as before)."""
    ledgers = tmp_path / "ledgers"
    ledgers.mkdir()
    commondir = tmp_path / "commondir"
    commondir.touch()
    ledger = ledgers / "old.json"
    with _other() as other:
        ledger.write_text(json.dumps({"pid": other, "paths": [str(commondir)], "scratch": None}))
        assert claimed_by_others(ledgers / "mine.json") == {commondir}
        assert sweep(ledgers) == []
    assert commondir.exists() and ledger.exists()


def test_a_running_runs_ledger_with_its_start_is_kept(tmp_path: Path) -> None:
    """This process's own ledger, its start as written: still going."""
    ledgers = tmp_path / "ledgers"
    commondir = tmp_path / "commondir"
    commondir.touch()
    Placeholders([commondir], ledgers / "running.json").record()
    assert json.loads((ledgers / "running.json").read_text())["start"] == start_of(os.getpid())
    assert claimed_by_others(ledgers / "mine.json") == {commondir}
    assert sweep(ledgers) == []
    assert commondir.exists()
