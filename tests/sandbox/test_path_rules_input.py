"""Path rules that cannot be applied as written: a ``sandbox.filesystem`` entry holding a NUL
character stops ``airlock run`` with 125, naming the file and the key (a restricting entry
is never dropped, and no traceback), as does a path option holding one."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from airlock.errors import SandboxError
from airlock.sandbox.paths import Kind, user_rules
from tests.cli import airlock


def _settings(folder: Path, key: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    settings = folder / "settings.json"
    settings.write_text(json.dumps({"sandbox": {"filesystem": {key: ["./x\u0000"]}}}))
    return settings


def _run(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    audit = str(tmp_path / "audit.jsonl")
    return airlock("run", "--audit-log", audit, "--", "sh", "-c", script, timeout=60)


@pytest.mark.parametrize("key", ["denyWrite", "denyRead"])
@pytest.mark.parametrize("where", ["project", "user"])
def test_a_nul_in_a_restricting_entry_stops_the_run(
    tmp_path: Path, home: Path, project: Path, key: str, where: str
) -> None:
    """``./x\\0`` in a project's or the user's ``denyWrite`` or ``denyRead``: 125 with the
    file and the key, the command not run (a ``denyWrite`` crashed with a traceback, a
    ``denyRead`` was dropped and the command ran)."""
    settings = _settings(project / ".claude" if where == "project" else home / ".claude", key)
    done = _run(tmp_path, "touch ran")
    assert done.returncode == 125, done.stderr
    assert "Traceback" not in done.stderr
    assert f"sandbox.filesystem.{key} './x\\x00'" in done.stderr, done.stderr
    assert str(settings) in done.stderr
    assert "holds a NUL character" in done.stderr
    assert not (project / "ran").exists()


def test_a_nul_in_an_allow_write_entry_opens_nothing(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """``./x\\0`` in the user's ``allowWrite``: the file is one with a problem, named, whose
    widening lists count for nothing (as the README says); the run goes on, nothing opened."""
    settings = _settings(home / ".claude", "allowWrite")
    done = _run(tmp_path, "touch ran")
    assert done.returncode == 0, done.stderr
    assert f"{settings}: sandbox.filesystem.allowWrite: entry './x\\x00'" in done.stderr
    assert (project / "ran").exists()


@pytest.mark.parametrize(
    "kind, option", [(Kind.WRITE, "--rw"), (Kind.READ, "--ro"), (Kind.HIDE, "--hide")]
)
def test_a_nul_in_a_path_option_is_refused(tmp_path: Path, kind: Kind, option: str) -> None:
    """A path option cannot hold a NUL from the command line (the system's arguments end at
    one); one given otherwise is refused, never taken as a missing path (a ``--hide`` of one
    would hide nothing, silently)."""
    (tmp_path / "x").mkdir()
    with pytest.raises(SandboxError, match=f"{option} 'x\\\\x00': holds a NUL character"):
        list(user_rules(kind, ["x\0"], option, tmp_path, tmp_path))
