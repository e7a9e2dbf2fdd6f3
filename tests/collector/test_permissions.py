"""The collector's data folders are 0700 and its files 0600, whatever the umask."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.collector.harness import running

AIRLOCK = [sys.executable, "-m", "airlock"]


def _modes(root: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _private(root: Path) -> None:
    for name, mode in _modes(root).items():
        path = root / name
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{name}: {mode:o}, expected {expected:o}"


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000])
def test_store_private_under_any_umask(tmp_path: Path, umask: int) -> None:
    """Folders, the database (and its WAL), bundles and ratings are private under a lax umask."""
    previous = os.umask(umask)
    try:
        data = tmp_path / "data"
        with running(f"sqlite:///{data / 'collector.sqlite3'}", data) as served:
            key = served.key("acme")
            body = b"bundle bytes" * 10
            headers = {
                "Authorization": f"Bearer {key}",
                "Idempotency-Key": "b1",
                "X-Airlock-Bundle-Sha256": hashlib.sha256(body).hexdigest(),
            }
            response = httpx.post(
                f"{served.url}/v1/feedback-bundles", content=body, headers=headers
            )
            assert response.status_code == 201
            rated = httpx.post(
                f"{served.url}/v1/survey-ratings",
                json={"r": 1},
                headers={"Authorization": f"Bearer {key}", "Idempotency-Key": "r1"},
            )
            assert rated.status_code == 201
            modes = _modes(data)
            assert "bundles" in modes and "collector.sqlite3-wal" in modes
            _private(data)
    finally:
        os.umask(previous)


def test_serve_tightens_an_existing_open_folder(tmp_path: Path) -> None:
    """`airlock serve --sweep` under umask 022 makes an existing 0755 data folder 0700, its files 0600."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "bundles").mkdir(mode=0o755)
    (data / "bundles").chmod(0o755)
    blocklist = tmp_path / "b.txt"
    blocklist.write_text("x.test\n")
    done = subprocess.run(
        [*AIRLOCK, "serve", "--blocklist", str(blocklist), "--data-dir", str(data), "--sweep"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        umask=0o022,
    )
    assert done.returncode == 0, done.stderr
    _private(data)
