"""``airlock run``: what the proxy's rules are told, and what its refusals say lets a host
through: numeric options that are no number, the managed settings' ``allowManagedDomainsOnly``,
``WebFetch`` ask rules, a private host's hint. Real bubblewrap, the real proxy, curl inside."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.cli import run_script
from tests.conftest import write_json
from tests.integration.run_servers import HOST, web_site


def _run(tmp_path: Path, *args: str, script: str) -> subprocess.CompletedProcess[str]:
    return run_script(tmp_path, script, *args)


def _refusals(log: Path) -> list[dict[str, object]]:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    return [r for r in records if r.get("type") == "request" and r["decision"] == "deny"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--max-upload-mb", "nan"),
        ("--max-upload-mb", "inf"),
        ("--max-upload-mb", "1e999"),
        ("--max-upload-mb", "1e300"),
        ("--max-upload-mb", "-1"),
        ("--new-connections-per-second", "nan"),
        ("--new-connections-per-second", "inf"),
        ("--new-connections-per-second", "1e300"),
    ],
)
def test_a_number_option_that_is_no_usable_number_stops_the_run(
    tmp_path: Path, option: str, value: str
) -> None:
    """``float()`` reads ``nan`` and ``inf``, which passed the check (``nan <= 0`` is false) and
    then failed the proxy at the command's first connection, with a traceback: now 125 before
    anything runs, naming the option and the value."""
    marker = tmp_path / "ran"
    done = _run(tmp_path, option, value, script=f"touch {marker}")
    assert done.returncode == 125, done.stderr
    assert f"{option} must be a positive number" in done.stderr
    assert "Traceback" not in done.stderr
    assert not marker.exists()


def _lock(managed_dir: Path, config_dir: Path) -> None:
    """Managed settings that allow only their own domains; the user's own allow entries."""
    write_json(
        managed_dir / "managed-settings.json",
        {"sandbox": {"network": {"allowManagedDomainsOnly": True, "allowedDomains": ["a.test"]}}},
    )
    write_json(
        config_dir / "settings.json",
        {
            "sandbox": {"network": {"allowedDomains": ["example.org"]}},
            "permissions": {"allow": ["WebFetch(domain:example.net)"]},
        },
    )


def test_the_managed_lock_says_what_it_sets_aside_and_what_can_allow(
    tmp_path: Path, managed_dir: Path, config_dir: Path
) -> None:
    """Under ``allowManagedDomainsOnly`` the user's allow entries are said to be set aside at
    the start, naming the managed file; a host they named is refused, and neither the answer
    nor the report offers a settings entry or ``--allow`` (neither can work)."""
    _lock(managed_dir, config_dir)
    done = _run(tmp_path, script="curl -sS http://example.org/x")
    assert done.returncode == 0, done.stderr
    managed = str(managed_dir / "managed-settings.json")
    start = done.stderr.split("airlock: ")[0]  # before the report
    assert f"allowManagedDomainsOnly in managed settings {managed}" in start
    assert "'example.org' (sandbox.network.allowedDomains in user settings" in start
    assert "'WebFetch(domain:example.net)' (permissions.allow in user settings" in start
    assert "'a.test'" not in start
    assert "refused" in done.stdout and managed in done.stdout
    assert "run again" not in done.stdout and ".claude/settings.json" not in done.stdout
    assert "run again" not in done.stderr
    [refusal] = _refusals(tmp_path / "audit.jsonl")
    assert "allowManagedDomainsOnly" in str(refusal["reason"])


@pytest.mark.parametrize("flag", [["--allow", "example.org"], ["--allow-all"]])
def test_the_command_line_cannot_widen_the_managed_lock(
    tmp_path: Path, managed_dir: Path, config_dir: Path, flag: list[str]
) -> None:
    """``--allow`` and ``--allow-all`` would widen what the administrator locked: 125, the
    setting and its file named, nothing ran."""
    _lock(managed_dir, config_dir)
    marker = tmp_path / "ran"
    done = _run(tmp_path, *flag, script=f"touch {marker}")
    assert done.returncode == 125, done.stderr
    assert "allowManagedDomainsOnly" in done.stderr
    assert str(managed_dir / "managed-settings.json") in done.stderr
    assert not marker.exists()


def test_an_ask_rule_is_refused_and_the_users_allow_passes_it(
    tmp_path: Path, config_dir: Path
) -> None:
    """``WebFetch(domain:*)`` allowed and ``WebFetch(domain:…)`` asked: the guard asks; the
    proxy cannot, so it refuses the asked host (answer and record name the ask rule and its
    file, and that ``--allow`` lets it through); with ``--allow`` the request reaches it."""
    write_json(
        config_dir / "settings.json",
        {
            "permissions": {
                "allow": ["WebFetch(domain:*)"],
                "ask": ["WebFetch(domain:example.org)", f"WebFetch(domain:{HOST})"],
            }
        },
    )
    refused = _run(tmp_path, script="curl -sS http://example.org/x")
    assert refused.returncode == 0, refused.stderr
    assert "permissions.ask in user settings" in refused.stdout
    assert "--allow example.org" in refused.stdout
    [record] = _refusals(tmp_path / "audit.jsonl")
    assert "WebFetch(domain:example.org)" in str(record["reason"])
    again = tmp_path / "again"
    again.mkdir()
    with web_site() as site:
        port = site.server_address[1]
        script = f"curl -sS http://{HOST}:{port}/asked"
        reached = _run(again, "--allow", f"{HOST}:{port}", script=script)
    assert reached.returncode == 0, reached.stderr
    assert "hello from the origin: GET /asked" in reached.stdout
    assert site.seen == ["GET /asked"]


def test_a_loopback_host_is_offered_only_allow(tmp_path: Path) -> None:
    """A loopback host no rule names: the answer and the report offer ``--allow`` alone, as a
    settings entry never reaches such an address."""
    done = _run(tmp_path, script="curl -sS http://127.0.0.3:18080/")
    assert done.returncode == 0, done.stderr
    assert "--allow 127.0.0.3:18080" in done.stdout
    assert "allowedDomains" not in done.stdout
    [note] = [line for line in done.stderr.splitlines() if "run again with" in line]
    assert "--allow 127.0.0.3" in note and "allowedDomains" not in note
