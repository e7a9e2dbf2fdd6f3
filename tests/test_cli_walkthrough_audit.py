"""``airlock audit`` as the README's walkthrough uses it: options given twice, what a listing
line shows (a request's flow, its secrets, why its body was not all checked), a new machine
with no log yet, a named log that is not there, rotate's way forward, verify's JSON verdict."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from airlock.egress.audit import AuditLog, heads_path
from tests.cli import airlock


def _log(config_dir: Path, *records: dict[str, object], run: str = "r1") -> Path:
    """A log of one run at ``config_dir/../audit.jsonl`` holding ``records``, its heads file
    where ``airlock audit`` looks for it (under ``config_dir``)."""
    log = config_dir.parent / "audit.jsonl"
    audit = AuditLog(log, heads_path(log, config_dir), run, flush_interval=3600)
    audit.open()
    for record in records:
        audit.append({"time": time.time(), "run": run, **record})
    audit.close()
    return log


def _env(config_dir: Path) -> dict[str, str]:
    return {"CLAUDE_CONFIG_DIR": str(config_dir)}


@pytest.mark.parametrize(
    "options",
    [
        pytest.param(("--run", "a", "--run", "b"), id="run"),
        pytest.param(("--host", "a.test", "--host", "b.test"), id="host"),
        pytest.param(("--settings", "{}", "--settings", '{"env": {}}'), id="settings"),
    ],
)
def test_an_option_of_one_value_given_twice_is_refused(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    """``--run a --run b`` listed only run b without a word: refused, naming both."""
    config_dir = tmp_path / "config"
    log = _log(config_dir, {"type": "start"}, run="a1")
    done = airlock("audit", "--audit-log", str(log), "--json", *options, env=_env(config_dir))
    assert done.returncode == 2, done.stderr
    assert f"{options[0]} given twice, {options[1]} and {options[3]}: give it once" in done.stderr
    assert done.stdout == ""
    same = airlock(
        "audit", "--audit-log", str(log), "--json", *options[:2], *options[:2],
        env=_env(config_dir),
    )  # fmt: skip
    assert same.returncode == 0, same.stderr


def test_a_listing_line_shows_flow_secrets_and_unchecked(tmp_path: Path) -> None:
    """A secret that left was visible only with --json: the line names the request's flow,
    each kind of secret with its count and why the body was not all read; a kind holding an
    escape sequence (a hand's edit) is shown as text."""
    config_dir = tmp_path / "config"
    request = {
        "type": "request",
        "inspected": True,
        "method": "POST",
        "host": "localhost",
        "port": 18443,
        "path": "/v1/messages",
        "status": 200,
        "flow": "model_requests",
        "decision": "allow",
        "reason": "model_requests is on",
        "bytes_out": 249,
        "bytes_in": 118,
        "secrets": {"github_token": 2, "aws\x1b[2J": 1},
        "unchecked": "Content-Encoding br not decoded",
        "error": None,
    }
    log = _log(config_dir, request)
    done = airlock("audit", "--audit-log", str(log), env=_env(config_dir))
    assert done.returncode == 0, done.stderr
    assert (
        "allow  POST localhost:18443/v1/messages  status 200  out 249 in 118  flow "
        "model_requests  secrets github_token×2, aws\\x1b[2J×1  model_requests is on  "
        "unchecked: Content-Encoding br not decoded\n"
    ) in done.stdout
    assert "\x1b" not in done.stdout


def test_a_cut_transfer_an_error_that_is_the_reason_and_a_command_read_well(
    tmp_path: Path,
) -> None:
    """``status None`` is ``status -``; an error that says what the reason says is shown
    once; a run's command is shown as a shell takes it (one backslash, not a Python list's
    two), its control characters still escaped."""
    config_dir = tmp_path / "config"
    cut = {
        "type": "tunnel",
        "method": "CONNECT",
        "host": "x.test",
        "port": 443,
        "status": None,
        "decision": "allow",
        "reason": "upload limit reached",
        "error": "upload limit reached",
        "bytes_out": 5,
        "bytes_in": 0,
    }
    command = ["sh", "-c", "printf 'a\\b' \x1b[2J"]
    log = _log(
        config_dir, cut, {"type": "run", "duration": 1.5, "exit_code": 0, "command": command}
    )
    done = airlock("audit", "--audit-log", str(log), env=_env(config_dir))
    assert done.returncode == 0, done.stderr
    assert "CONNECT x.test:443  status -  out 5 in 0  upload limit reached\n" in done.stdout
    assert done.stdout.count("upload limit reached") == 1
    assert "exit 0, command sh -c 'printf '\"'\"'a\\b'\"'\"' \\x1b[2J'\n" in done.stdout


@pytest.mark.parametrize("as_json", [False, True], ids=["lines", "json"])
def test_a_run_that_is_not_in_the_log_is_an_error(tmp_path: Path, as_json: bool) -> None:
    """``--run`` naming no run of the log (a typo, another log's run) exited 0 with an empty
    listing, which a script took for a run that sent nothing: exit 1, said on stderr; with
    ``--json`` the array is still printed, empty. A prefix of a run's name still finds it."""
    config_dir = tmp_path / "config"
    log = _log(config_dir, {"type": "start"}, run="20261205T101010Z-42")
    flags = ["--json"] if as_json else []
    done = airlock(
        "audit", "--audit-log", str(log), "--run", "20261205T2", *flags, env=_env(config_dir)
    )
    assert done.returncode == 1, done.stderr
    assert f"no run in {log} starts with '20261205T2'" in done.stderr
    assert json.loads(done.stdout) == [] if as_json else done.stdout == ""
    found = airlock(
        "audit", "--audit-log", str(log), "--run", "20261205T1", *flags, env=_env(config_dir)
    )
    assert found.returncode == 0, found.stderr
    assert "20261205T101010Z-42" in found.stdout
    assert "no run" not in found.stderr


def test_rotate_of_a_log_not_intact_says_how_to_go_on(tmp_path: Path) -> None:
    """A log that fails verification is not moved, and the message says what to do: move it
    aside by hand with its heads file, named (as a run's own refusal does)."""
    config_dir = tmp_path / "config"
    log = _log(config_dir, {"type": "request", "bytes_out": 1}, {"type": "request"})
    lines = log.read_bytes().splitlines()
    edited = json.loads(lines[0])
    edited["bytes_out"] = 2
    log.write_bytes(b"\n".join([json.dumps(edited).encode(), *lines[1:]]) + b"\n")
    done = airlock("audit", "rotate", "--audit-log", str(log), env=_env(config_dir))
    assert done.returncode == 1, done.stderr
    assert f"{log} is not intact (record " in done.stderr
    heads = heads_path(log, config_dir)
    assert f"move the file aside, with its heads file {heads}" in done.stderr
    assert log.exists()


@pytest.mark.parametrize("how", [("verify", "--audit-log"), ("verify",), ("--audit-log",)])
def test_a_named_log_that_is_not_there_is_said_so_for_the_case(
    tmp_path: Path, how: tuple[str, ...]
) -> None:
    """``--audit-log a.jsonl`` (or ``verify a.jsonl``) of a file not there was told to "pass
    the file, or --audit-log FILE", which the user did: it says why there may be none."""
    missing = tmp_path / "a.jsonl"
    done = airlock("audit", *how, str(missing), "--json")
    assert done.returncode == 2, done.stderr
    assert (
        f"no audit log at {missing}: no run has written one there yet, or it was moved or rotated"
    ) in done.stderr
    assert "pass the file" not in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("as_json", [True, False])
def test_no_log_at_the_default_place_yet_lists_nothing(home: Path, as_json: bool) -> None:
    """On a new machine (nothing run yet) ``airlock audit --json`` prints an empty array, as
    scripts expect, and the listing nothing; both say so on stderr and exit 0."""
    default = home / ".claude" / "airlock" / "audit.jsonl"
    done = airlock("audit", *(("--json",) if as_json else ()))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ("[]\n" if as_json else "")
    assert f"no audit log at {default} yet" in done.stderr


def test_verify_json_gives_the_verdict(tmp_path: Path) -> None:
    """``verify --json``: one JSON object, exit 0 when intact and 1 naming the problem when
    not; with --hash, the record the hash names."""
    config_dir = tmp_path / "config"
    log = _log(config_dir, {"type": "start"}, {"type": "request"}, {"type": "run"})
    final = heads_path(log, config_dir).read_bytes().splitlines()[-1]
    final_hash = json.loads(final)["hash"]
    done = airlock("audit", "verify", str(log), "--json", env=_env(config_dir))
    assert done.returncode == 0, done.stderr
    verdict = json.loads(done.stdout)
    assert verdict["intact"] is True and verdict["problem"] is None
    assert (verdict["records"], verdict["runs"], verdict["log"]) == (3, 1, str(log))
    hashed = airlock(
        "audit", "verify", str(log), "--json", "--hash", final_hash, env=_env(config_dir)
    )
    assert json.loads(hashed.stdout)["final_hash_record"] == 2, hashed.stderr
    log.write_bytes(log.read_bytes().replace(b'"request"', b'"tunnel"'))
    bad = airlock("audit", "verify", str(log), "--json", env=_env(config_dir))
    assert bad.returncode == 1, bad.stderr
    verdict = json.loads(bad.stdout)
    assert verdict["intact"] is False and "record 1" in verdict["problem"]


def test_rotate_while_a_run_goes_on_says_so(tmp_path: Path) -> None:
    """A log rotated while a run writes to it: the run stops its traffic at its next write
    (exit 125, saying the log was moved away); ``rotate`` says so, naming the run, where it
    said nothing."""
    from tests.integration.started import start_run

    run = start_run(tmp_path, "echo started; sleep 60")
    try:
        deadline = time.monotonic() + 30
        log = tmp_path / "a.jsonl"
        while (not log.exists() or not log.read_bytes()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the run's start record, flushed
        done = airlock("audit", "rotate", "--audit-log", str(log))
    finally:
        run.kill()
        run.wait(30)
        assert run.stdout is not None
        run.stdout.close()
    assert done.returncode == 0, done.stderr
    run_id = json.loads(next(tmp_path.glob("a.*.jsonl")).read_text().splitlines()[0])["run"]
    assert f"run {run_id} began in the log and has not ended in it" in done.stderr
    assert "still going on" in done.stderr
