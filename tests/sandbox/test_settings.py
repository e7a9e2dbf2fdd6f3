"""The reference agent's ``sandbox`` settings, as ``airlock run`` reads them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from airlock.policy import Origin, Source
from airlock.settings import Loaded, load
from airlock.settings.sandbox import (
    SandboxEntry,
    restrictions_not_taken,
    sandbox_path,
    sandbox_settings,
)
from tests.conftest import write_json


def _load(project: Path) -> Loaded:
    return load(project, dict(os.environ))


@pytest.mark.parametrize(
    "sandbox, key",
    [
        ("yes", "sandbox"),
        ({"filesystem": []}, "sandbox.filesystem"),
        ({"filesystem": {"allowWrite": "~/x"}}, "sandbox.filesystem.allowWrite"),
        ({"filesystem": {"denyRead": [1]}}, "sandbox.filesystem.denyRead"),
        ({"filesystem": {"denyWrite": [" "]}}, "sandbox.filesystem.denyWrite"),
        ({"network": {"allowedDomains": "x.com"}}, "sandbox.network.allowedDomains"),
        (
            {"network": {"allowManagedDomainsOnly": "true"}},
            "sandbox.network.allowManagedDomainsOnly",
        ),
    ],
    ids=[
        "not_an_object",
        "filesystem_not_an_object",
        "path_list_not_a_list",
        "path_not_a_string",
        "path_blank",
        "domains_not_a_list",
        "managed_only_not_boolean",
    ],
)
def test_bad_sandbox_values_are_problems(project: Path, sandbox: Any, key: str) -> None:
    """A wrong ``sandbox`` value is reported with its file and key, like every setting."""
    path = write_json(project / ".claude" / "settings.json", {"sandbox": sandbox})
    problems = _load(project).problems
    assert [(p.path, p.key) for p in problems] == [(str(path), key)]


def test_unknown_sandbox_keys_pass_through(project: Path) -> None:
    """The agent's other sandbox keys are its own business: no problem."""
    write_json(project / ".claude" / "settings.json", {"sandbox": {"enabled": True, "x": 1}})
    assert _load(project).problems == ()


def test_lists_union_across_files_highest_first(project: Path, config_dir: Path) -> None:
    """allowWrite entries of every file count, each with the file it came from."""
    local = write_json(
        project / ".claude" / "settings.json", {"sandbox": {"filesystem": {"allowWrite": ["a"]}}}
    )
    user = write_json(
        config_dir / "settings.json", {"sandbox": {"filesystem": {"allowWrite": ["b", "a"]}}}
    )
    found = sandbox_settings(_load(project)).allow_write
    assert [(e.text, e.origin.path) for e in found] == [("a", str(local)), ("b", str(user))]


def test_a_file_with_problems_only_restricts(project: Path) -> None:
    """From a file with a problem, denyWrite/denyRead/deniedDomains count; allows do not."""
    write_json(
        project / ".claude" / "settings.json",
        {
            "cleanupPeriodDays": "bad",
            "sandbox": {
                "filesystem": {"allowWrite": ["/w"], "denyRead": ["~/secret"], "denyWrite": ["x"]},
                "network": {"allowedDomains": ["a.com"], "deniedDomains": ["b.com"]},
            },
        },
    )
    found = sandbox_settings(_load(project))
    assert found.allow_write == () and found.allowed_domains == ()
    assert [e.text for e in found.deny_read] == ["~/secret"]
    assert [e.text for e in found.deny_write] == ["x"]
    assert [e.text for e in found.denied_domains] == ["b.com"]


def test_a_lone_string_that_restricts_is_taken_one_that_widens_is_not(project: Path) -> None:
    """denyRead, denyWrite, deniedDomains and permissions.deny written as one string count as
    a list of that entry, and the problem names the file and key and says so; allowWrite,
    allowedDomains and permissions.allow written so are not taken."""
    path = write_json(
        project / ".claude" / "settings.json",
        {
            "permissions": {"allow": "WebFetch(domain:a.com)", "deny": "WebFetch(domain:b.com)"},
            "sandbox": {
                "filesystem": {"allowWrite": "/w", "denyRead": "~/secret", "denyWrite": "x"},
                "network": {"allowedDomains": "a.com", "deniedDomains": "b.com"},
            },
        },
    )
    loaded = _load(project)
    found = sandbox_settings(loaded)
    assert found.allow_write == () and found.allowed_domains == ()
    assert [(e.text, e.origin.path) for e in found.deny_read] == [("~/secret", str(path))]
    assert [e.text for e in found.deny_write] == ["x"]
    assert [e.text for e in found.denied_domains] == ["b.com"]
    assert loaded.context.permissions.allow == ()
    assert [r.text for r in loaded.context.permissions.deny] == ["WebFetch(domain:b.com)"]
    taken = {p.key for p in loaded.problems if "taken as a list of that one entry" in str(p)}
    assert taken == {
        "permissions.deny",
        "sandbox.filesystem.denyRead",
        "sandbox.filesystem.denyWrite",
        "sandbox.network.deniedDomains",
    }
    assert all(p.path == str(path) for p in loaded.problems)
    assert restrictions_not_taken(loaded) == ()


@pytest.mark.parametrize(
    "settings, key",
    [
        ({"sandbox": {"filesystem": {"denyRead": 5}}}, "sandbox.filesystem.denyRead"),
        ({"sandbox": {"filesystem": {"denyWrite": {"p": "x"}}}}, "sandbox.filesystem.denyWrite"),
        (
            {"sandbox": {"network": {"deniedDomains": ["a.com", 1]}}},
            "sandbox.network.deniedDomains",
        ),
        ({"permissions": {"deny": None}}, "permissions.deny"),
    ],
    ids=["number", "object", "list_holding_a_number", "null"],
)
def test_a_restriction_that_cannot_be_read_is_named(
    project: Path, settings: dict[str, Any], key: str
) -> None:
    """A restricting key holding neither a string nor a list of strings is named with its
    file, for ``airlock run`` to refuse; a widening one holding the same is only a problem."""
    path = write_json(project / ".claude" / "settings.json", settings)
    widening = write_json(
        project / ".claude" / "settings.local.json",
        {"sandbox": {"filesystem": {"allowWrite": 5}, "network": {"allowedDomains": 5}}},
    )
    not_taken = restrictions_not_taken(_load(project))
    assert [(p.path, p.key) for p in not_taken] == [(str(path), key)]
    assert "expected a list of strings" in str(not_taken[0])
    assert str(widening) not in {p.path for p in not_taken}


def test_managed_domains_only_keeps_managed_allows(project: Path, managed_dir: Path) -> None:
    """allowManagedDomainsOnly in managed settings drops other files' allowedDomains, not their denies."""
    write_json(
        managed_dir / "managed-settings.json",
        {"sandbox": {"network": {"allowManagedDomainsOnly": True, "allowedDomains": ["corp.com"]}}},
    )
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"network": {"allowedDomains": ["evil.com"], "deniedDomains": ["x.com"]}}},
    )
    found = sandbox_settings(_load(project))
    assert found.managed_domains_only
    assert [e.text for e in found.allowed_domains] == ["corp.com"]
    assert [e.text for e in found.denied_domains] == ["x.com"]


def test_managed_only_outside_managed_settings_is_ignored(project: Path) -> None:
    """Only managed settings can say allowManagedDomainsOnly."""
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"network": {"allowManagedDomainsOnly": True, "allowedDomains": ["a.com"]}}},
    )
    found = sandbox_settings(_load(project))
    assert not found.managed_domains_only
    assert [e.text for e in found.allowed_domains] == ["a.com"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("//etc/x", "/etc/x"),
        ("///etc/x", "/etc/x"),
        ("~/.kube", "HOME/.kube"),
        ("~", "HOME"),
        ("/build", "SETTINGS/build"),
        ("./out", "CWD/out"),
        ("out", "CWD/out"),
    ],
    ids=[
        "absolute",
        "absolute_extra_slash",
        "home",
        "home_itself",
        "settings_dir",
        "dot_relative",
        "relative",
    ],
)
def test_path_prefixes(tmp_path: Path, text: str, expected: str) -> None:
    """``//`` absolute, ``~/`` home, ``/`` the settings file's folder, else the project."""
    settings = tmp_path / "proj" / ".claude" / "settings.json"
    entry = SandboxEntry(text, Origin(Source.PROJECT, str(settings)))
    got = sandbox_path(entry, tmp_path / "home", tmp_path / "proj", {})
    want = (
        expected.replace("HOME", str(tmp_path / "home"))
        .replace("SETTINGS", str(settings.parent))
        .replace("CWD", str(tmp_path / "proj"))
    )
    assert os.path.normpath(got) == want


def test_settings_dir_of_managed_and_inline_settings(tmp_path: Path) -> None:
    """``/x`` in managed settings is under the managed folder; in inline --settings, the project."""
    managed = SandboxEntry("/x", Origin(Source.MANAGED, "a.json, b.json"))
    inline = SandboxEntry("/x", Origin(Source.COMMAND_LINE, "--settings (inline JSON)"))
    environ = {"AIRLOCK_MANAGED_SETTINGS_DIR": str(tmp_path / "m")}
    assert sandbox_path(managed, tmp_path, tmp_path / "p", environ) == tmp_path / "m" / "x"
    assert sandbox_path(inline, tmp_path, tmp_path / "p", environ) == tmp_path / "p" / "x"
