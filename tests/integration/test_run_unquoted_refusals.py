"""``airlock run``: a plain-HTTP request the proxy refuses as malformed is refused without
quoting what it holds. A password in a URL, a ``CONNECT`` authority or a ``Transfer-Encoding``
may have any characters, which no pattern finds: it must reach neither the hash-chained audit
log, the report (stderr and ``--report-json``) nor the answer. Real bubblewrap, the real
proxy, raw requests sent from inside."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import airlock

PASSWORD = "Pw!$&'()*+,;=~x9Z"
"""Punctuation a URL's user information, path and query may hold, and short digit runs:
nothing :func:`airlock.egress.framing.withheld` takes for a token."""

REQUESTS = [
    # (what is wrong, the request, the status answered)
    ("a coding", f"GET http://h.test/ HTTP/1.1\r\nTransfer-Encoding: gzip;q={PASSWORD}", 501),
    (
        "a coding list",
        f"GET http://h.test/ HTTP/1.1\r\nTransfer-Encoding: {PASSWORD}, chunked",
        501,
    ),
    ("a malformed URL", f"GET http://:80/{PASSWORD} HTTP/1.1", 400),
    ("a malformed URL with _", f"GET http://h_x:99999/?pw={PASSWORD} HTTP/1.1", 400),
    ("port 0", f"GET http://h.test:0/?pw={PASSWORD} HTTP/1.1", 400),
    ("a colon in the host", f"CONNECT svc:{PASSWORD}:443 HTTP/1.1", 400),
    ("brackets", f"CONNECT [{PASSWORD}]:443 HTTP/1.1", 400),
    ("no number port", f"CONNECT h.test:{PASSWORD} HTTP/1.1", 400),
    ("no port", f"CONNECT {PASSWORD} HTTP/1.1", 400),
]

SCRIPT = """
import json, os, socket, sys
from urllib.parse import urlsplit

proxy = urlsplit(os.environ["HTTP_PROXY"])
for line in json.load(open(sys.argv[1])):
    with socket.create_connection((proxy.hostname, proxy.port)) as sock:
        sock.sendall(line.encode("latin-1") + b"\\r\\nHost: h.test\\r\\n\\r\\n")
        answer = b""
        while data := sock.recv(65536):
            answer += data
    print(answer.decode("latin-1"))
    print("=====")
"""


def test_a_password_in_a_refused_plain_request_is_never_quoted(
    tmp_path: Path, project: Path
) -> None:
    (project / "send.py").write_text(SCRIPT)
    (project / "requests.json").write_text(json.dumps([request for _, request, _ in REQUESTS]))
    log, report = tmp_path / "audit.jsonl", tmp_path / "report.json"
    done = airlock(
        "run", "--audit-log", str(log), "--report-json", str(report),
        "--", "python3", "send.py", "requests.json",
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    answers = done.stdout.split("=====\n")[:-1]
    assert [answer.split(" ")[1] for answer in answers] == [
        str(status) for _, _, status in REQUESTS
    ], done.stdout
    refusals = [
        json.loads(line)
        for line in log.read_text().splitlines()
        if '"decision": "deny"' in line or '"decision":"deny"' in line
    ]
    assert len(refusals) == len(REQUESTS), refusals
    for where, text in (
        ("the audit log", log.read_text()),
        ("the report file", report.read_text()),
        ("stderr", done.stderr),
        ("the answers", done.stdout),
    ):
        for shown in (PASSWORD, json.dumps(PASSWORD)[1:-1], PASSWORD[:8]):
            assert shown not in text, f"{where}: {text}"
    said = "\n".join(str(record["reason"]) for record in refusals)
    for what in ("not quoted", "only chunked", "port 0", "no port", "a colon in the host"):
        assert what in said, said
    verified = airlock("audit", "verify", "--audit-log", str(log))
    assert verified.returncode == 0, verified.stdout + verified.stderr
