"""What a walkthrough of ``airlock run``'s inspection found (issue 16; the README's "Inside
``airlock run``"), each with the real command: real bubblewrap, the real proxy, curl inside,
origins on 127.0.0.2 and 127.0.0.3 (not the sandbox's ``NO_PROXY``).

- An option that does nothing alone (``--secrets`` without a host to inspect, ``--upstream-ca``
  without one nor a ``--repo``, ``--git-upstream`` and ``--git-token-file`` without a
  ``--repo``) was taken without a word: ``--secrets block`` let a key leave. It stops the run.
- ``airlock.inspect`` written as one string dropped its file and inspected nothing: it is taken
  as a list of that host, as the restricting lists are; a value that cannot be read stops
  the run.
- An inspected host that no rule lets out was found only by a ``403``: it is said at the
  start; the git gateway's own name is refused.
- The run's CA bundle replaced the user's own CA variables (``CURL_CA_BUNDLE=corp.pem``), so
  a tunnel to a host the company's CA signs failed inside: the bundle holds their
  certificates.
- ``NODE_USE_ENV_PROXY=1`` is set inside, for Node's own ``fetch`` and ``https``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from airlock.egress.ca import RunCA
from tests.cli import airlock
from tests.conftest import write_json
from tests.egress.harness import NOW, tls_origin
from tests.integration.run_servers import web_site

HOST = "127.0.0.2"  # not the sandbox's NO_PROXY: reached through the proxy, as a real host
OTHER = "127.0.0.3"
KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"  # made up, of a GitHub token's shape


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), *args,
        env=env, cwd=cwd, timeout=180,
    )  # fmt: skip


def _records(log: Path) -> list[dict[str, object]]:
    done = airlock("audit", "--json", "--audit-log", str(log))
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_secrets_block_without_a_host_to_inspect_stops_the_run(
    tmp_path: Path, project: Path
) -> None:
    """The walkthrough's run: ``--secrets block`` and a body holding a key, to a host that
    is not inspected. The origin got the key and the run exited 0, nothing said; now 125
    before anything runs, naming the option and what it needs, and the origin sees nothing."""
    (project / "body.json").write_text(json.dumps({"content": f"my key {KEY}"}))
    with web_site() as site:
        port = site.server_address[1]
        done = _run(
            tmp_path, "--secrets", "block", "--allow", f"{HOST}:{port}", "--",
            "curl", "-sS", f"http://{HOST}:{port}/", "--data-binary", "@body.json",
            cwd=project,
        )  # fmt: skip
        seen = list(site.seen)
    assert done.returncode == 125, done.stderr
    assert seen == []
    assert (
        "airlock run: --secrets block: no host is inspected (--inspect HOST, or airlock.inspect "
        "in settings), so no request would be read for secrets"
    ) in done.stderr
    assert done.stderr.rstrip().endswith("nothing ran")
    assert KEY not in done.stderr
    # with a host to inspect, from the settings here (airlock.inspect), it runs
    write_json(project / ".claude" / "settings.json", {"airlock": {"inspect": [HOST]}})
    inspecting = _run(tmp_path, "--secrets", "block", "--", "touch", "ran", cwd=project)
    assert inspecting.returncode == 0, inspecting.stderr
    assert (project / "ran").exists()


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--secrets", "report"], "--secrets report: no host is inspected"),
        (
            ["--upstream-ca", "CA"],
            "--upstream-ca CA: no host is inspected (--inspect HOST, or airlock.inspect in "
            "settings) and no repository is granted (--repo OWNER/NAME)",
        ),
        (
            ["--git-upstream", "http://127.0.0.1:9"],
            "--git-upstream http://127.0.0.1:9: no repository is granted (--repo OWNER/NAME)",
        ),
        (
            ["--git-token-file", "token"],
            "--git-token-file token: no repository is granted (--repo OWNER/NAME)",
        ),
    ],
    ids=["secrets", "upstream_ca", "git_upstream", "git_token_file"],
)
def test_an_option_that_does_nothing_alone_stops_the_run(
    tmp_path: Path, project: Path, options: list[str], said: str
) -> None:
    """Each option that acts only with a host to inspect or a repository granted: 125, named
    with what it needs, and the command never runs (``--secrets report``, the default's own
    value, too: given, it was meant to act)."""
    (project / "CA").write_bytes(RunCA(now=NOW).certificate_pem)
    (project / "token").write_text("not-a-real-token\n")
    done = _run(tmp_path, *options, "--", "touch", "ran", cwd=project)
    assert done.returncode == 125, done.stderr
    assert f"airlock run: {said}" in done.stderr
    assert "nothing ran" in done.stderr
    assert not (project / "ran").exists()


def test_airlock_inspect_as_one_string_is_that_one_host(tmp_path: Path, project: Path) -> None:
    """``"inspect": "127.0.0.2"`` in the project's settings: the host is inspected (a metrics
    request under ``DISABLE_TELEMETRY`` refused 403 by its flow, and recorded so), and the run
    says the file's entry is taken although the file has a problem. It was dropped with its
    file: the run inspected nothing, and the request went out as a tunnel."""
    origin_ca = RunCA(now=NOW, name="test origin CA")
    (project / "origin.pem").write_bytes(origin_ca.certificate_pem)
    settings = write_json(project / ".claude" / "settings.json", {"airlock": {"inspect": HOST}})
    with tls_origin(origin_ca, HOST, bind=HOST) as site:
        port = site.server_address[1]
        done = _run(
            tmp_path, "--allow", f"{HOST}:{port}", "--upstream-ca", str(project / "origin.pem"),
            "--", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}\\n",
            f"https://{HOST}:{port}/api/event_logging/v2/batch", "-d", "{}",
            env={"DISABLE_TELEMETRY": "1"}, cwd=project,
        )  # fmt: skip
        seen = [path for _, path, _ in site.seen]
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["403"], done.stdout + done.stderr
    assert seen == []
    [record] = [r for r in _records(tmp_path / "audit.jsonl") if r.get("inspected")]
    assert (record["flow"], record["decision"]) == ("metrics", "deny")
    assert f"airlock.inspect in project settings {settings} is taken" in done.stderr


@pytest.mark.parametrize("value", [5, {"host": HOST}, [HOST, 7], [HOST, " "]])
def test_airlock_inspect_that_cannot_be_read_stops_the_run(
    tmp_path: Path, project: Path, value: object
) -> None:
    """A number, an object, a list holding one, an empty entry: which hosts were meant cannot
    be told, so the run stops (125) naming the file and the key, as for a restricting list."""
    settings = write_json(project / ".claude" / "settings.json", {"airlock": {"inspect": value}})
    done = _run(tmp_path, "--", "touch", "ran", cwd=project)
    assert done.returncode == 125, done.stderr
    assert f"{settings}: airlock.inspect:" in done.stderr
    assert "nothing ran" in done.stderr
    assert not (project / "ran").exists()


def test_an_inspected_host_no_rule_lets_out_is_said_at_the_start(
    tmp_path: Path, project: Path
) -> None:
    """``--inspect llm.internal`` alone: inspection lets no host out, and the run says so
    before the command runs, with the way out; with ``--allow llm.internal`` (or one port
    of it) nothing is said."""
    done = _run(tmp_path, "--inspect", "llm.internal", "--", "true", cwd=project)
    assert done.returncode == 0, done.stderr
    assert (
        "airlock run: --inspect llm.internal: no rule lets it out, so its requests are refused "
        "403; add --allow llm.internal"
    ) in done.stderr
    for allow in ("llm.internal", "llm.internal:8443"):
        allowed = _run(
            tmp_path, "--inspect", "llm.internal", "--allow", allow, "--", "true", cwd=project
        )
        assert allowed.returncode == 0, allowed.stderr
        assert "no rule lets it out" not in allowed.stderr
    denied = _run(
        tmp_path, "--inspect", "llm.internal", "--allow", "llm.internal",
        "--deny", "llm.internal", "--", "true", cwd=project,
    )  # fmt: skip
    assert "--inspect llm.internal: denied by 'llm.internal' (--deny)" in denied.stderr


@pytest.mark.parametrize("name", ["git.airlock.internal", "GIT.airlock.internal."])
def test_inspecting_the_git_gateways_name_is_refused(
    tmp_path: Path, project: Path, name: str
) -> None:
    done = _run(tmp_path, "--inspect", name, "--", "touch", "ran", cwd=project)
    assert done.returncode == 125, done.stderr
    assert "the git gateway's own name" in done.stderr
    assert not (project / "ran").exists()


def test_the_users_own_ca_files_are_in_the_bundle(tmp_path: Path, project: Path) -> None:
    """``CURL_CA_BUNDLE=corp.pem`` outside (a company's CA, with a key beside it in the
    file), and inspection on for another host: curl inside reaches a host the company's CA
    signs through a tunnel (it failed, curl 60: the bundle had taken the variable's place
    without its certificates). No key enters the bundle; a file named with ``--env`` that
    is not there is said, and the run goes on; the variables added to the bundle's point
    at it."""
    corp = RunCA(now=NOW, name="corp CA")
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "corp.pem").write_bytes(key + corp.certificate_pem)
    with tls_origin(corp, OTHER, bind=OTHER) as site:
        port = site.server_address[1]
        script = "; ".join(
            [
                f"curl -sS -o /dev/null -w '%{{http_code}}\\n' https://{OTHER}:{port}/page",
                'grep -c "PRIVATE KEY" "$CURL_CA_BUNDLE"',
                "env",
            ]
        )
        done = _run(
            tmp_path, "--inspect", HOST, "--allow", f"{OTHER}:{port}",
            "--env", "REQUESTS_CA_BUNDLE=missing.pem", "--", "sh", "-c", script,
            env={"CURL_CA_BUNDLE": str(tmp_path / "corp.pem")}, cwd=project,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[:2] == ["200", "0"], done.stdout + done.stderr
    inside = dict(line.partition("=")[::2] for line in lines[2:] if "=" in line)
    added = (
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH",
        "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
        "HTTPLIB2_CA_CERTS",
        "NIX_SSL_CERT_FILE",
    )
    assert {inside.get(name) for name in added} == {inside["SSL_CERT_FILE"]}
    assert "--env REQUESTS_CA_BUNDLE=missing.pem: cannot be read" in done.stderr
    assert "PRIVATE KEY" not in done.stderr


def test_node_is_told_to_use_the_proxy(tmp_path: Path, project: Path) -> None:
    """``NODE_USE_ENV_PROXY=1`` inside (Node's own ``fetch`` and ``https`` read
    ``HTTPS_PROXY`` only with it); a value the user set, outside or with ``--env``, is kept."""
    script = 'echo "node=$NODE_USE_ENV_PROXY"'
    done = _run(tmp_path, "--", "sh", "-c", script, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "node=1" in done.stdout.split()
    kept = _run(tmp_path, "--", "sh", "-c", script, env={"NODE_USE_ENV_PROXY": "0"}, cwd=project)
    assert "node=0" in kept.stdout.split(), kept.stderr
    given = _run(tmp_path, "--env", "NODE_USE_ENV_PROXY=0", "--", "sh", "-c", script, cwd=project)
    assert "node=0" in given.stdout.split(), given.stderr
