"""A local code host: git's own ``http-backend`` behind a web server that requires a token."""

from __future__ import annotations

import base64
import gzip
import os
import subprocess
import time
from contextlib import AbstractContextManager
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote

from tests.serving import Handler, in_thread

TOKEN = "ghp_" + "Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


class _Handler(Handler):
    server: CodeHost

    def _handle(self) -> None:
        if "/early.git/" in self.path:  # answers ahead of a request, then resets it unread
            self._early()
            return
        body = self.read_body()
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization", "")))
        self.server.connection.append(self.headers.get("Connection", ""))
        expected = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.answer(401, [("WWW-Authenticate", 'Basic realm="code host"')], b"token required\n")
        elif "/leaky.git/" in self.path:  # a code host that echoes the credential back
            answer = f"debug: you sent {self.headers['Authorization']} i.e. {TOKEN}\n".encode()
            self.answer(200, [("X-Debug-Token", TOKEN)], answer)
        elif "/sly.git/" in self.path:  # echoes it where a plain search would not look
            self._sly()
        elif "/echo.git/" in self.path:  # echoes it in the encoding the body names
            self._echo(body)
        elif "/sideband.git/" in self.path:  # its messages cut the token between packets
            self._sideband(body)
        elif "/bodiless.git/" in self.path:  # an answer without a body: body status=204 or 304
            self.send_response(int(parse_qs(body.decode())["status"][0]))
            self.send_header("ETag", '"1"')
            self.end_headers()
        elif "/renamed.git/" in self.path or "/gone.git/" in self.path:  # renamed since
            self._moved()
        elif "/cutoff.git/" in self.path:  # an answer cut off: part of its body, then a close
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"the first part of the answer\n")
            self.close_connection = True
        else:
            self.git_backend(self.server.root, body, REMOTE_USER="token-user")

    def _moved(self) -> None:
        """A repository renamed, as GitHub answers for its old name: a redirect to the same
        request on its new name, on this code host (``renamed`` is ``allowed`` now, ``gone``
        is ``other``)."""
        host, port = self.server.server_address[:2]
        moved = self.path.replace("/renamed.git/", "/allowed.git/").replace(
            "/gone.git/", "/other.git/"
        )
        self.answer(301, [("Location", f"http://{host}:{port}{moved}")], b"moved\n")

    def _sly(self) -> None:
        """The credential in the reason phrase, a header's name, base64 and URL-encoded forms,
        and, when the client accepts gzip, a compressed body."""
        sent = self.headers["Authorization"].removeprefix("Basic ")
        body = (
            f"b64 {base64.b64encode(TOKEN.encode()).decode()} url {quote(sent, safe='')}\n"
        ).encode()
        headers = [(f"X-{TOKEN}", "1"), ("X-Airlock-Refused", "forged by the code host")]
        if "gzip" in self.headers.get("Accept-Encoding", ""):
            body = gzip.compress(f"gzipped {sent} {TOKEN}\n".encode())
            headers.append(("Content-Encoding", "gzip"))
        self.send_response(200, f"OK {TOKEN}")
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _sideband(self, body: bytes) -> None:
        """octo/allowed's refs; then, to a fetch, a progress message (side band 2) and an
        error (side band 3), each with the token cut in two packets; to a push, a report (side
        band 1) refusing it with the token, its status line cut in two packets."""
        if self.command == "GET":
            self.path = self.path.replace("/sideband.git/", "/allowed.git/")
            self.git_backend(self.server.root, body)
            return
        if self.path.endswith("/git-receive-pack"):
            report = packets(b"unpack ok\n", b"ng refs/heads/main denied to " + TOKEN.encode())
            cut = report.index(TOKEN.encode()) + 15
            answer = packets(b"\x01" + report[:cut], b"\x01" + report[cut:] + b"0000") + b"0000"
            kind = "application/x-git-receive-pack-result"
            self.answer(200, [("Content-Type", kind)], answer)
            return
        answer = packets(
            b"NAK\n",
            b"\x02remote says: " + TOKEN[:12].encode(),
            b"\x02" + TOKEN[12:].encode() + b" ok\n",
            b"\x03error " + TOKEN[:20].encode(),
            b"\x03" + TOKEN[20:].encode() + b"\n",
        )
        self.answer(200, [("Content-Type", "application/x-git-upload-pack-result")], answer)

    def _echo(self, asked: bytes) -> None:
        """``ECHO[…]`` in the body and an ``X-Echo`` header: the credential in the encoding
        ``form=`` in the request's body names (:func:`echoed`); with ``cut=N`` the body's first
        N bytes are sent a moment before the rest."""
        query = parse_qs(asked.decode())
        form = echoed(query["form"][0], self.headers["Authorization"])
        body = f"ECHO[{form}]\n".encode()
        cut = int(query.get("cut", ["0"])[0])
        self.send_response(200)
        self.send_header("X-Echo", form)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if cut:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            time.sleep(0.2)
        self.wfile.write(body[cut:])

    def _early(self) -> None:
        """To a GET, its answer and, in the same write, an answer to a request not yet made;
        to the next request, nothing: the connection is closed with its body unread (a reset,
        while the rest of the body is on its way)."""
        if self.command == "GET":
            ahead = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nahead\n"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nrefs\n" + ahead)
        self.close_connection = self.command != "GET"

    do_GET = do_POST = _handle


def packets(*payloads: bytes) -> bytes:
    """``payloads`` as git's packet lines, each after its length (4 hex digits)."""
    return b"".join(b"%04x" % (len(payload) + 4) + payload for payload in payloads)


def echoed(form: str, authorization: str) -> str:
    """The token, or the ``Authorization`` header git sent, in the encoding ``form`` names."""
    sent = authorization.removeprefix("Basic ")
    token = TOKEN.encode()
    forms = {
        "plain": TOKEN,
        "upper": TOKEN.upper(),
        "lower": TOKEN.lower(),
        "swapped": TOKEN.swapcase(),
        "basic_unpadded": sent.rstrip("="),
        "basic_url_lowercase": quote(sent, safe="").replace("%3D", "%3d").replace("%2B", "%2b"),
        "basic_urlsafe": base64.urlsafe_b64encode(base64.b64decode(sent)).decode(),
        "b64_unpadded": base64.b64encode(token).decode().rstrip("="),
        "b64_offset1": base64.b64encode(b"A" + token).decode(),
        "b64_offset2": base64.b64encode(b"AB" + token).decode(),
        "b64_header": base64.b64encode(f"Authorization: {authorization}".encode()).decode(),
        "b64_header1": base64.b64encode(f" Authorization: {authorization}".encode()).decode(),
        "b64_header2": base64.b64encode(f"  Authorization: {authorization}".encode()).decode(),
        "hex": token.hex(),
        "hex_upper": token.hex().upper(),
        "json_escapes": "".join(f"\\u{ord(c):04x}" for c in TOKEN),
        "json_escapes_upper": "".join(f"\\u{ord(c):04X}" for c in TOKEN),
        "percent_escapes": "".join(f"%{ord(c):02x}" for c in TOKEN),
        "x_escapes": "".join(f"\\x{ord(c):02x}" for c in TOKEN),
        "html_decimal": "".join(f"&#{ord(c)};" for c in TOKEN),
        "html_hex": "".join(f"&#X{ord(c):04x};" for c in TOKEN),
    }
    return forms[form]


class CodeHost(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    seen: list[tuple[str, str, str]]
    connection: list[str]
    """Each request's ``Connection`` header, in order."""


def git(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run git with a clean configuration."""
    full = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd or "/"),
        **GIT_ENV,
        **(env or {}),
    }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=60, check=check
    )


def make_repo(root: Path, owner: str, name: str) -> Path:
    """A bare repository ``root/owner/name.git`` with one commit on ``main``, pushes allowed."""
    bare = root / owner / f"{name}.git"
    bare.parent.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("config", "http.receivepack", "true", cwd=bare)
    work = root / f"seed-{owner}-{name}"
    git("init", "-q", "-b", "main", str(work))
    (work / "README").write_text(f"{owner}/{name}\n")
    git("add", "README", cwd=work)
    git("commit", "-q", "-m", "first", cwd=work)
    git("push", "-q", str(bare), "main", cwd=work)
    return bare


def code_host(root: Path, bind: str = "127.0.0.1") -> AbstractContextManager[CodeHost]:
    """The code host on ``bind`` serving the bare repositories under ``root``."""
    server = CodeHost((bind, 0), _Handler)
    server.root = root
    server.seen, server.connection = [], []
    return in_thread(server)
