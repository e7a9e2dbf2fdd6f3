"""A run that holds the run's CA key (``--inspect``) or reads a git token (``--repo``) writes
no core file: a crash would put the key, which is gone when the run ends, in a file or in the
system's crash collector. airlock's own limit is lowered, and the command inherits it; airlock
itself is not dumpable, so the user's other processes cannot read its memory either. A run
without either leaves both as they were."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airlock.egress.ca import RunCA
from tests.egress.harness import NOW, tls_origin
from tests.integration.run_servers import HOST
from tests.sandbox.unprivileged import as_nobody


def _core_limit(pid: int) -> str:
    """The soft core-file limit in ``/proc/PID/limits`` (``0``, ``unlimited``, …)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4]
    raise AssertionError(f"no core-file limit for process {pid}")


@pytest.mark.parametrize(
    ("options", "inside"),
    [
        (["--inspect", "api.anthropic.com"], "0"),
        (["--repo", "owner/name", "--git-token-file", "TOKEN"], "0"),
        ([], "unlimited"),
    ],
)
def test_a_run_holding_a_key_or_a_token_writes_no_core_file(
    tmp_path: Path, options: list[str], inside: str
) -> None:
    token = tmp_path / "token"
    token.write_text("not-a-real-token\n")
    token.chmod(0o600)
    options = [str(token) if option == "TOKEN" else option for option in options]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    ready = workspace / "ready"
    process = subprocess.Popen(
        [
            "prlimit", "--core=unlimited",
            sys.executable, "-m", "airlock", "run", "--audit-log", str(tmp_path / "a.jsonl"),
            *options,
            "--", "sh", "-c", f"ulimit -Sc; touch {ready}; sleep 30",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        cwd=workspace,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), process.communicate(timeout=30)
        own = _core_limit(process.pid)  # prlimit execs airlock: the same process
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert out.split()[:1] == [inside], err
    assert own == inside


NOBODY_INSPECTED = """
import json, os, subprocess, sys, time
from pathlib import Path
Path("origin.pem").write_text({pem!r})
inspect = {inspect!r}
process = subprocess.Popen(
    [sys.executable, "-m", "airlock", "run", "--allow", "{host}:{port}", "--report-json",
     "report.json",
     *(["--inspect", "{host}", "--upstream-ca", "origin.pem"] if inspect else []),
     "--", "sh", "-c",
     ("curl -sS " if inspect else "curl -sS --cacert origin.pem ")  # inside: the run's CA
     + "https://{host}:{port}/v1/messages -d '{{}}'; echo; "
     "touch ready; sleep 30"],
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
)
deadline = time.monotonic() + 60
while not Path("ready").exists() and process.poll() is None and time.monotonic() < deadline:
    time.sleep(0.05)
owner = os.stat(f"/proc/{{process.pid}}/mem").st_uid  # root's while it is not dumpable
try:
    environ = len(Path(f"/proc/{{process.pid}}/environ").read_bytes())  # as a debugger would
except PermissionError:
    environ = None
process.terminate()
out, err = process.communicate(timeout=60)
print(json.dumps({{"uid": os.getuid(), "owner": owner, "environ": environ, "out": out,
                  "err": err, "report": json.loads(Path("report.json").read_text())}}))
"""


@pytest.mark.parametrize("inspect", [True, False], ids=["inspected", "plain"])
def test_an_inspecting_run_keeps_its_memory_from_the_users_other_processes(inspect: bool) -> None:
    """As ``nobody``, a run that holds the CA key is not dumpable: its ``/proc`` files are
    root's, so another process of the same user can neither read its memory nor get a core
    of it, and the inspected request goes through all the same (the leaf's key is loaded
    through the run's own ``/proc/self/fd``). A plain run's stay the user's."""
    origin_ca = RunCA(now=NOW, name="test origin CA")
    with tls_origin(origin_ca, HOST, bind=HOST) as site:
        port = site.server_address[1]
        pem = origin_ca.certificate_pem.decode()
        done = as_nobody(NOBODY_INSPECTED.format(pem=pem, inspect=inspect, host=HOST, port=port))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["uid"] != 0
    assert '"received"' in found["out"], found["err"]
    assert found["owner"] == (0 if inspect else found["uid"]), found["err"]
    assert (found["environ"] is None) == inspect, found["err"]  # its memory likewise
    assert found["report"]["complete"], found["err"]  # written as ever (through /proc/self/fd)
