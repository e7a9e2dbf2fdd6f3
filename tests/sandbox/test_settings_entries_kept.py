"""``airlock run`` and the same ``sandbox.filesystem`` entry in two settings files, and the
settings a run cannot go ahead without: each with a real run in a real sandbox.

An entry repeated in a cloned project's settings must not take the user's own entry's place
(the project's ``allowWrite`` may open what is below the project's own ``denyWrite``, never
below the user's), and ``/x`` in two files names two paths (each file's folder). A
``permissions.ask`` or ``env`` block of the wrong kind holds restrictions the run cannot read:
it does not go ahead without them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from airlock.policy import Origin, Source
from airlock.settings import load
from airlock.settings.sandbox import sandbox_path, sandbox_settings
from tests.cli import airlock
from tests.conftest import write_json


def _run(tmp_path: Path, *command: str) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), "--", *command, timeout=90)


@pytest.mark.parametrize("key", ["denyWrite", "denyRead"])
def test_a_project_repeating_the_users_deny_cannot_open_below_it(
    tmp_path: Path, config_dir: Path, project: Path, key: str
) -> None:
    """The user keeps ./secrets from writes (or from sight); a cloned project's settings say
    the same entry and open ./secrets/x for writing: ./secrets/x stays as the user keeps it,
    and the run names the user's rule."""
    (project / "secrets" / "x").mkdir(parents=True)
    (project / "secrets" / "x" / "f").write_text("the-secret-value\n")
    user = write_json(
        config_dir / "settings.json", {"sandbox": {"filesystem": {key: ["./secrets"]}}}
    )
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {key: ["./secrets"], "allowWrite": ["./secrets/x"]}}},
    )
    done = _run(tmp_path, "sh", "-c", "cat secrets/x/f; echo changed > secrets/x/f")
    if key == "denyRead":
        assert "the-secret-value" not in done.stdout, done.stderr
    assert (project / "secrets" / "x" / "f").read_text() == "the-secret-value\n", done.stderr
    assert f"sandbox.filesystem.{key} in user settings {user}" in done.stderr


def test_slash_entries_of_two_files_name_two_paths(
    tmp_path: Path, home: Path, config_dir: Path, project: Path
) -> None:
    """``/secrets`` in the user's settings is ~/.claude/secrets; the same text in the
    project's is .claude/secrets there: both are hidden, neither stands for the other."""
    (config_dir / "secrets").mkdir()
    (config_dir / "secrets" / "k").write_text("the-user-secret\n")
    (project / ".claude" / "secrets").mkdir(parents=True)
    (project / ".claude" / "secrets" / "k").write_text("the-project-secret\n")
    deny = {"sandbox": {"filesystem": {"denyRead": ["/secrets"]}}}
    user = write_json(config_dir / "settings.json", deny)
    ours = write_json(project / ".claude" / "settings.json", deny)
    loaded = load(project, dict(os.environ))
    found = sandbox_settings(loaded).deny_read
    assert [(entry.text, entry.origin.path) for entry in found] == [
        ("/secrets", str(ours)),
        ("/secrets", str(user)),
    ]
    assert [sandbox_path(entry, home, project, {}) for entry in found] == [
        project / ".claude" / "secrets",
        config_dir / "secrets",
    ]
    done = _run(tmp_path, "sh", "-c", "cat ~/.claude/secrets/k .claude/secrets/k")
    assert "the-user-secret" not in done.stdout, done.stderr
    assert "the-project-secret" not in done.stdout, done.stderr


def test_the_same_entry_of_trusted_files_is_kept_once(project: Path, config_dir: Path) -> None:
    """One entry said by the user's settings and by --settings (neither a project's) is kept
    once, with the higher file; so is one said twice in one file."""
    write_json(config_dir / "settings.json", {"sandbox": {"filesystem": {"denyRead": ["~/a"]}}})
    given = write_json(
        project.parent / "given.json", {"sandbox": {"filesystem": {"denyRead": ["~/a", "~/a"]}}}
    )
    found = sandbox_settings(load(project, dict(os.environ), str(given))).deny_read
    assert [(entry.text, entry.origin) for entry in found] == [
        ("~/a", Origin(Source.COMMAND_LINE, str(given)))
    ]


@pytest.mark.parametrize(
    "ask",
    [{"web": "WebFetch(domain:asked.example)"}, ["WebFetch(domain:asked.example)", 5], None],
    ids=["object", "list_holding_a_number", "null"],
)
def test_an_ask_list_that_cannot_be_read_stops_the_run(
    tmp_path: Path, config_dir: Path, project: Path, ask: object
) -> None:
    """The proxy refuses the hosts an ask rule covers, even those a project's settings allow:
    an ask list of the wrong kind is a restriction the run cannot read, so nothing runs, as
    for permissions.deny."""
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"network": {"allowedDomains": ["*.example"]}}},
    )
    user = write_json(config_dir / "settings.json", {"permissions": {"ask": ask}})
    refused = _run(tmp_path, "touch", "ran")
    assert refused.returncode == 125, refused.stderr
    assert f"{user}: permissions.ask: expected a list of strings" in refused.stderr
    assert "nothing ran" in refused.stderr
    assert not (project / "ran").exists()


def test_an_env_block_that_is_no_object_stops_the_run(
    tmp_path: Path, config_dir: Path, project: Path
) -> None:
    """``"env": ["DISABLE_TELEMETRY=1"]``: the opt-out cannot be read, and without it the
    proxy would let the metrics flow's host out; nothing runs."""
    user = write_json(config_dir / "settings.json", {"env": ["DISABLE_TELEMETRY=1"]})
    refused = _run(tmp_path, "touch", "ran")
    assert refused.returncode == 125, refused.stderr
    assert f"{user}: env: expected an object of variables" in refused.stderr
    assert not (project / "ran").exists()
