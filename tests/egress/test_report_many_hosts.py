"""The report's note on what lets refused hosts out, past the hosts it counts apart: the
entry the rest are counted under is no host, and is not offered to ``--allow``."""

from __future__ import annotations

import shlex
import socket
from pathlib import Path

from airlock.egress import HostReport, ProxyReport
from airlock.egress.report import MAX_HOSTS, OTHER_HOSTS
from tests.egress.origin import config, running


def _connect(proxy_url: str, host: str) -> bytes:
    port = int(proxy_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
        return sock.recv(200)


def test_hosts_past_those_counted_apart_are_said_refused_not_offered_to_allow(
    tmp_path: Path,
) -> None:
    """1,012 hosts no rule names: the note offers ``--allow`` for the first ten hosts (and
    says how many more), never for ``(other hosts)``, whose parentheses broke the pasted
    command line; it says how many times the hosts past the first 1,000 were refused."""
    with running(config(tmp_path)) as (url, proxy):
        for number in range(MAX_HOSTS + 12):
            assert _connect(url, f"host{number}.example.test").startswith(b"HTTP/1.1 403 ")
        report = proxy.close({})
    others = [host for host in report.hosts if host.host == OTHER_HOSTS]
    assert len(report.hosts) == MAX_HOSTS + 1 and sum(n for _, n in others[0].refused) == 12
    [note] = [line for line in report.notes() if "run again with" in line]
    assert OTHER_HOSTS not in note.split(";")[0]
    command = note.split("run again with ", 1)[1].split(" (and ", 1)[0]
    words = shlex.split(command)
    assert words[0::2] == ["--allow"] * 10
    assert all(word.startswith("host") and word.endswith(".example.test") for word in words[1::2])
    assert f"(and {MAX_HOSTS - 10} more), or name them in sandbox.network.allowedDomains" in note
    assert note.endswith(
        f"; hosts past the first {MAX_HOSTS} were refused 12 more times (counted together "
        f"as {OTHER_HOSTS}; the audit log names each)"
    )


def _refused(*hosts: tuple[str, str, int]) -> ProxyReport:
    return ProxyReport(
        run_id="run",
        hosts=tuple(HostReport(host, 0, 0, 0, 0, ((why, n),)) for host, why, n in hosts),
        final_hash=None,
        audit_log=None,
    )


def test_the_entry_of_the_others_alone_is_said_refused() -> None:
    """No host counted apart was refused for want of a rule, only hosts past them: the note
    says so and how often, with no ``--allow`` to paste."""
    report = _refused(
        ("a.test", "denied by 'a.test' (--deny)", 1),
        (OTHER_HOSTS, "no allow rule matches b.test:443 (default: deny)", 3),
    )
    assert [note for note in report.notes() if "no rule names them" in note] == [
        f"refused as no rule names them: hosts past the first {MAX_HOSTS} were refused 3 "
        f"times (counted together as {OTHER_HOSTS}; the audit log names each)"
    ]


def test_under_the_managed_lock_the_others_are_not_named_as_a_host() -> None:
    """Under ``allowManagedDomainsOnly``: the hosts counted apart are named, the others said
    refused, once."""
    lock = "no managed allow rule matches {} (allowManagedDomainsOnly in /m.json)"
    report = _refused(
        ("a.test", lock.format("a.test:443"), 1),
        (OTHER_HOSTS, lock.format("b.test:443"), 1),
        ("(no host)", "no request line", 1),
    )
    notes = [note for note in report.notes() if "managed settings" in note]
    assert notes[0].startswith(
        "refused as only the managed settings allow hosts here (allowManagedDomainsOnly): a.test; "
    )
    assert OTHER_HOSTS not in notes[0]
    assert notes[1] == (
        "refused as only the managed settings allow hosts here (allowManagedDomainsOnly): hosts "
        f"past the first {MAX_HOSTS} were refused 1 more time (counted together as "
        f"{OTHER_HOSTS}; the audit log names each)"
    )
    assert len(notes) == 2
