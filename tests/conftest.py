"""Shared fixtures: every test runs with a clean environment and its own HOME, project and
managed-settings directory, so nothing on the machine running the tests leaks in."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.policy.variables import VARIABLES

PREFIXES = ("AIRLOCK_", "CLAUDE_", "OTEL_", "ANTHROPIC_", "DISABLE_")
EXTRA = (
    "DO_NOT_TRACK",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Strip every variable airlock reads; give the test a HOME, a project and a managed dir."""
    for name in list(os.environ):
        if name in VARIABLES or name.startswith(PREFIXES) or name in EXTRA:
            monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    project = tmp_path / "project"
    managed = tmp_path / "managed"
    for directory in (home, project, managed):
        directory.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("AIRLOCK_MANAGED_SETTINGS_DIR", str(managed))
    monkeypatch.chdir(project)
    yield
    ledgers = home / ".claude" / "airlock" / "placeholders"
    if ledgers.is_dir():  # a run the test killed left its scratch folder (in /tmp): swept as
        # the next run with this home would sweep it, since none comes after the test
        from airlock.sandbox.placeholders import sweep

        sweep(ledgers)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def config_dir(home: Path) -> Path:
    path = home / ".claude"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture
def managed_dir(tmp_path: Path) -> Path:
    return tmp_path / "managed"


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as JSON at ``path``, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path
