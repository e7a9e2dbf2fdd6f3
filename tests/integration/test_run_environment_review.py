"""``airlock run``'s environment, end to end (real bubblewrap, the real proxy and audit log):
a credential whose name is no shell identifier (``db-pass``, ``stripe.api-key``), which
airlock drops, can be passed in with ``--env`` and is named as passed; a credential written
inside another variable's value (``PGPASSWORD=… pg_dump``) or under a bare name (``key``) is
dropped and reported, its value nowhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.cli import airlock

SECRET = "hunter2-Zq81"


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``airlock run ARGS… -- env -0``: the command's whole environment, NUL-separated (the
    command is ``env`` itself: a shell would drop names that are no identifiers)."""
    return airlock(
        "run",
        "--audit-log", str(tmp_path / "audit.jsonl"),
        "--report-json", str(tmp_path / "report.json"),
        *args,
        "--", "env", "-0",
        env=env,
        timeout=180,
    )  # fmt: skip


def _inside(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    pairs = (entry.partition("=") for entry in done.stdout.split("\0") if entry)
    return {name: value for name, _, value in pairs}


def _run_record(tmp_path: Path) -> dict[str, object]:
    listed = airlock("audit", "--json", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert listed.returncode == 0, listed.stderr
    [record] = [r for r in json.loads(listed.stdout) if r.get("type") == "run"]
    return dict(record)


def test_env_passes_in_a_credential_whose_name_is_no_identifier(tmp_path: Path) -> None:
    """``db-pass`` (airlock's) and ``stripe.api-key`` (set) are passed in by ``--env``, named
    among the variables passed, not the dropped; ``1X`` and ``odd name`` are set too. They
    were refused (125: "NAME made of letters, digits and _"), so a credential airlock drops
    for its name could not be given to the command at all."""
    done = _run(
        tmp_path,
        "--env", "db-pass",
        "--env", f"stripe.api-key=sk_{SECRET}",
        "--env", "1X=one",
        "--env", "odd name=two",
        env={"db-pass": SECRET, "mysql.pwd": SECRET},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    inside = _inside(done)
    assert inside["db-pass"] == SECRET
    assert inside["stripe.api-key"] == f"sk_{SECRET}"
    assert inside["1X"] == "one" and inside["odd name"] == "two"
    assert "mysql.pwd" not in inside  # not asked for: dropped as before
    record = _run_record(tmp_path)
    assert record["variables_passed"] == ["db-pass", "stripe.api-key"]
    assert record["variables_dropped"] == ["mysql.pwd"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["variables_dropped"] == ["mysql.pwd"]
    assert SECRET not in done.stderr
    assert SECRET not in (tmp_path / "audit.jsonl").read_text()


def test_an_empty_env_name_is_refused_without_its_value(tmp_path: Path) -> None:
    """``--env =VALUE``: 125, nothing run, the option named and its value never shown."""
    done = _run(tmp_path, "--env", f"={SECRET}")
    assert done.returncode == 125
    assert "--env =…: no variable name before the =" in done.stderr
    assert SECRET not in done.stderr and done.stdout == ""


def test_a_credential_set_inside_a_value_or_named_bare_is_dropped(tmp_path: Path) -> None:
    """A command line kept in a variable that sets a password (``PGPASSWORD=… pg_dump``), a
    container's ``-e API_TOKEN=…``, and variables named just ``key`` or ``PASS``: left out,
    each named in the report and the run's record, its value nowhere. They all went in."""
    env = {
        "BACKUP_CMD": f"PGPASSWORD={SECRET} pg_dump -h db",
        "DOCKER_ARGS": f"--rm -e API_TOKEN={SECRET} -p 8080:80",
        "key": SECRET,
        "PASS": SECRET,
        "MAKEFLAGS": " -j4 --jobserver-auth=fifo:/tmp/GMfifo1",  # no variable: stays
        "RUN_ARGS": "TOKEN=$GITHUB_TOKEN MAX_TOKENS=4096",  # a reference and a count: stay
    }
    done = _run(tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    inside = _inside(done)
    for name in ("BACKUP_CMD", "DOCKER_ARGS", "key", "PASS"):
        assert name not in inside
    assert inside["MAKEFLAGS"] == env["MAKEFLAGS"]
    assert inside["RUN_ARGS"] == env["RUN_ARGS"]
    assert SECRET not in done.stdout
    dropped = ["BACKUP_CMD", "DOCKER_ARGS", "PASS", "key"]
    assert _run_record(tmp_path)["variables_dropped"] == dropped
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["variables_dropped"] == dropped
    assert "credential variable set in it" in report["variables_dropped_why"]["BACKUP_CMD"]
    assert "BACKUP_CMD (its value: a credential variable set in it)" in done.stderr
    assert SECRET not in done.stderr
    assert SECRET not in (tmp_path / "audit.jsonl").read_text()


def test_env_notes_an_unset_odd_name_escaped_and_a_proxy_variable_not_taken(
    tmp_path: Path,
) -> None:
    """An ``--env`` name airlock does not have is named with its escape sequence shown, not
    sent to the terminal; an ``--env HTTPS_PROXY=…`` (which the sandbox's own proxy variables
    replace) is said not to be taken, pointing at ``--upstream-proxy``: it went unsaid."""
    done = _run(
        tmp_path,
        "--env", "X\x1b[2J",
        "--env", "HTTPS_PROXY=http://corp.example:3128",
        env={},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr
    assert "X\\x1b[2J" in done.stderr and "not set in airlock's environment" in done.stderr
    assert "--env HTTPS_PROXY: not taken" in done.stderr and "--upstream-proxy" in done.stderr
    assert _inside(done)["HTTPS_PROXY"] != "http://corp.example:3128"


def test_the_loaders_variables_reach_the_command_alone(tmp_path: Path) -> None:
    """``--env LD_DEBUG=files`` (a loader variable, as ``LD_PRELOAD`` is): the loader reports
    starting the command only. It started the sandbox's own first Python with them too, so a
    library ``LD_PRELOAD`` named (one an earlier run left in the workspace) ran there before
    that Python set the audit login uid, which an unset one lets any process set once."""
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"),
        "--env", "LD_DEBUG=files", "--", "true",
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    started = [line.split("transferring control:", 1)[1].strip()
               for line in done.stderr.splitlines() if "transferring control:" in line]  # fmt: skip
    assert started == ["true"], started
