"""The git gateway verifies a code host over HTTPS as inspection verifies an origin: its name
is read from the certificate's subject alternative names alone. A certificate naming the host
only in its subject's common name (CN) was trusted, as Python still does by default; RFC 9525,
browsers and Go do not."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from airlock.egress.gateway import GatewayConfig, RepoGrant, git_environment, load_token
from tests.egress.codehost import TOKEN, code_host, git, make_repo
from tests.egress.origin import config, running
from tests.egress.test_gateway import gateway_running
from tests.egress.test_tls_review_upstream import ROOT, SIGNED, _certificate, _key, _pem


@pytest.mark.parametrize(("names", "cloned"), [(["localhost"], True), (None, False)])
def test_a_code_host_named_only_in_its_common_name_is_refused(
    tmp_path: Path, names: list[str] | None, cloned: bool
) -> None:
    key = _key()
    (tmp_path / "host.pem").write_bytes(
        _pem(_certificate("localhost", key, SIGNED, names=names), key)
    )
    (tmp_path / "root.pem").write_bytes(_pem(ROOT))
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(tmp_path / "host.pem")
    root = tmp_path / "repos"
    make_repo(root, "octo", "allowed")
    with code_host(root) as host:
        host.socket = served.wrap_socket(host.socket, server_side=True)
        upstream = f"https://localhost:{host.server_address[1]}"
        cfg = GatewayConfig(
            (RepoGrant.parse("octo/allowed"),),
            load_token({"GH_TOKEN": TOKEN}),
            upstream,
            upstream_ca=tmp_path / "root.pem",
        )
        with (
            gateway_running(cfg) as (_gate, address),
            running(config(tmp_path, gateway=address)) as (proxy_url, _proxy),
        ):
            done = git(
                "clone", "-q", "https://github.com/octo/allowed", str(tmp_path / "clone"),
                env=git_environment(proxy_url), check=False,
            )  # fmt: skip
        seen = list(host.seen)
    if cloned:
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "clone" / "README").read_text() == "octo/allowed\n"
    else:
        assert done.returncode != 0 and seen == [], (done.stderr, seen)
        assert "localhost" in done.stderr, done.stderr
