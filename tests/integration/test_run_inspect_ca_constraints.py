"""The CA a run makes to inspect is constrained to the hosts it inspects: the bundle given
inside holds it with critical name constraints naming those hosts alone, so even a copy of it
taken out of the sandbox vouches for no other site (an inspected address leaves addresses
unbound: ``airlock.egress.ca.name_constraints``). Clients inside still trust its leaves for
the inspected host (curl and Python here; Node in ``test_run_inspect``, the reference agent
in ``test_reference_agent``)."""

from __future__ import annotations

import warnings
from pathlib import Path

from cryptography import x509

from airlock.egress.ca import NO_NAME, RunCA
from tests.cli import airlock
from tests.egress.harness import NOW, tls_origin

HOST = "127.0.0.2"


def test_the_runs_ca_signs_for_the_inspected_hosts_alone(tmp_path: Path, project: Path) -> None:
    project.mkdir(exist_ok=True)
    origin_ca = RunCA(now=NOW, name="test origin CA")
    (tmp_path / "origin.pem").write_bytes(origin_ca.certificate_pem)
    with tls_origin(origin_ca, HOST, bind=HOST) as site:
        port = site.server_address[1]
        done = airlock(
            "run", "--audit-log", str(tmp_path / "audit.jsonl"),
            "--allow", f"{HOST}:{port}", "--inspect", HOST,
            "--upstream-ca", str(tmp_path / "origin.pem"),
            "--", "sh", "-c",
            f'cp "$SSL_CERT_FILE" bundle.pem && curl -sS -o /dev/null -w "curl %{{http_code}}\\n" '
            f"https://{HOST}:{port}/api/claude_cli/bootstrap && python3 -c \"import urllib.request"
            f" as u; print('python', u.urlopen('https://{HOST}:{port}/api/claude_cli/bootstrap')"
            '.status)"',
            cwd=project, timeout=180,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "curl 200" in done.stdout and "python 200" in done.stdout, done.stdout
    with warnings.catch_warnings():  # a system CA or two has a serial RFC 5280 disallows
        warnings.simplefilter("ignore")
        bundle = x509.load_pem_x509_certificates((project / "bundle.pem").read_bytes())
    [run_ca] = [c for c in bundle if c.subject.rfc4514_string() == "CN=airlock run CA"]
    constraints = run_ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert constraints.critical
    # no name inspected: only the reserved one; an address inspected: addresses left unbound
    assert set(constraints.value.permitted_subtrees or []) == {x509.DNSName(NO_NAME)}
    assert constraints.value.excluded_subtrees is None
