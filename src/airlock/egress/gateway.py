"""The git credential gateway: git inside the sandbox reaches the run's repositories, never the token.

Theory of operation
-------------------
Inside the sandbox, git is told (through ``GIT_CONFIG_*`` variables, :func:`git_environment`)
to fetch ``https://github.com/OWNER/NAME`` from ``http://git.airlock.internal/OWNER/NAME``
instead, through the run's proxy. Plain HTTP to the proxy needs no CA inside. The proxy sends
requests for that host to the :class:`Gateway`, a small HTTP server on a Unix socket in a
folder only airlock's user can enter, outside the sandbox (no other user's process, and no web
page through the host's loopback, can reach it). For each request the gateway:

1. reads the repository and the git service from the path (smart HTTP only: ``GET
   …/info/refs``, ``POST …/git-upload-pack`` or ``…/git-receive-pack``; another method is
   refused ``405``);
2. refuses a repository not granted with ``--repo``, and a push (``git-receive-pack``) to one
   granted ``:ro``: git shows the refusal to its user as ``fatal: remote error: …`` (an ``ERR``
   packet line);
3. sends the request on to the code host (``--git-upstream``, GitHub by default) with the token
   in an ``Authorization`` header added here, for the path and service it checked alone (no
   other query; the repository as ``--repo`` spells it, whatever case git asked in), streaming
   both ways (the body read by llhttp too, as the proxy reads one), and asks for an answer
   that is not compressed (one that is anyway is refused); the answer is
   streamed back with every occurrence of the token, of its ``Basic`` form and of their usual
   encodings (:func:`secret_pattern`) replaced, in its status line, header names and values,
   and body alike, and in git's progress and error messages and a push's report across their
   packets (:class:`_Sideband`). An answer cut off upstream is cut off for git too: the
   connection is closed at once. A redirect to the code host is made one through the gateway
   (a renamed repository's new name is checked as any other); a ``401`` (the token refused)
   becomes a refusal git shows, naming where the token was read.

The token is read outside (``GH_TOKEN``, ``GITHUB_TOKEN``, or ``--git-token-file``: one word of
printable ASCII, :data:`SHORTEST_TOKEN` characters or more; :func:`load_token`); it is held
by :class:`GitToken`, whose ``repr`` and ``str`` never show it, and is never put in a message.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import re
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

import httpx

from airlock.egress.config import GATEWAY_HOST
from airlock.egress.framing import (
    MAX_HEAD,
    Framing,
    Head,
    HttpError,
    RequestCheck,
    body_pieces,
    read_head,
    refuse_a_body_on_get,
)
from airlock.egress.http1 import REASONS, header_safe
from airlock.egress.report import count_reason
from airlock.errors import UsageError

DEFAULT_UPSTREAM = "https://github.com"
SERVICES = frozenset({"git-upload-pack", "git-receive-pack"})
_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,99})$")
"""An owner: a letter or digit first."""
_NAME = re.compile(r"^(?!\.\.?$)[A-Za-z0-9._-]{1,100}$")
"""A repository's name: it may start with ``.``, ``_`` or ``-`` (GitHub's ``OWNER/.github``),
but is not ``.`` or ``..`` (a path's own segments)."""
_PATH = re.compile(
    r"^/(?P<owner>[^/]+)/(?P<name>[^/]+?)(?i:\.git)?/"
    r"(?P<rest>info/refs|git-upload-pack|git-receive-pack)$"
)
"""A smart-HTTP path; ``.git`` is dropped in any case, as owner and name are matched in any."""
_METHODS = {"info/refs": "GET", "git-upload-pack": "POST", "git-receive-pack": "POST"}
"""The one method git's smart HTTP uses on each path; any other is refused, for every grant."""
_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "authorization",
        "proxy-authorization",
        "host",
        "content-length",
        "trailer",
    }
)
PIECE = 64 * 1024
_PRINTABLE = re.compile(r"[\t\x20-\x7e]*")
"""A request header's value that goes on: printable ASCII (httpx sends no other)."""
GIT_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "content-encoding",
        "git-protocol",
        "pragma",
        "user-agent",
    }
)
"""The request headers that go on to the code host: those git's smart HTTP sends. Others
(``Range``, ``If-Range``, cookies) could have the code host answer in pieces that a scrub
for the whole token would not find."""


@dataclass(frozen=True, slots=True)
class RepoGrant:
    """One ``--repo OWNER/NAME[:ro]``."""

    owner: str
    name: str
    read_only: bool = False

    @property
    def key(self) -> str:
        return f"{self.owner}/{self.name}".lower()

    @classmethod
    def parse(cls, text: str) -> RepoGrant:
        """Read ``OWNER/NAME`` or ``OWNER/NAME:ro``.

        Raises:
            UsageError: Not of that form; the message shows the value and the valid form.
        """
        spec, colon, mode = text.partition(":")
        owner, slash, name = spec.partition("/")
        if name.lower().endswith(".git"):  # in any case, as the gateway reads paths
            name = name[:-4]
        if not slash or not _REPO.match(owner) or not _NAME.match(name) or (colon and mode != "ro"):
            raise UsageError(
                f"--repo {text!r}: expected OWNER/NAME or OWNER/NAME:ro (letters, digits, '.', "
                "'-', '_'), e.g. --repo octo-org/widgets:ro"
            )
        return cls(owner, name, read_only=bool(colon))


class _NotAllowed(HttpError):
    """A method git does not use on that path: ``405``, with the one it does."""

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(405, message)
        self.allow = allow


class GitToken:
    """The code host's token; never shown by ``repr`` or ``str``."""

    __slots__ = ("_value", "source")

    def __init__(self, value: str, source: str) -> None:
        self._value = value
        self.source = source

    def reveal(self) -> str:
        """The token itself, for the one header that carries it."""
        return self._value

    def __repr__(self) -> str:
        return f"GitToken(from {self.source})"

    __str__ = __repr__


CLOSE_WAIT = 2.0
"""How long :meth:`Gateway.close` waits for the connections it cut to end (each ends at
once: this bounds a surprise, so the run's end never waits on the gateway)."""

TOKEN_FILE_LIMIT = 4096
"""The most bytes a ``--git-token-file`` may hold: a token is tens of characters; a larger
file (another file named by mistake, ``/dev/zero``) is refused unread past this."""

SHORTEST_TOKEN = 8
"""The fewest characters of a token. The gateway replaces the token wherever it stands in
the code host's answers, and a run stops on a git config line or variable that holds it: a
character or two would be found in every answer (a pack broken) and every file. The code
hosts' tokens are far longer (GitHub's 40 and more, GitLab's 26)."""

_TOKEN = re.compile(r"[\x21-\x7e]+")
"""A token: printable ASCII, no space."""


def _checked_token(value: str, where: str) -> str:
    """``value`` (what ``where`` holds, spaces around it dropped) as a token.

    Raises:
        UsageError: It is empty, too short, or holds a space, a line break or a character
            that is not printable ASCII; the message names ``where``, never the value.
    """
    value = value.strip()
    if not value:
        raise UsageError(f"{where} is empty")
    if not _TOKEN.fullmatch(value):
        raise UsageError(
            f"{where} holds a space, a line break or a character that is not printable ASCII "
            "inside the token: give the code host's token alone (one line, nothing else)"
        )
    if len(value) < SHORTEST_TOKEN:
        raise UsageError(
            f"{where} holds {len(value)} characters, fewer than a code host's token "
            f"({SHORTEST_TOKEN} at least): give the token itself"
        )
    return value


def _read_token_file(token_file: Path) -> str:
    """What ``token_file`` holds, :data:`TOKEN_FILE_LIMIT` bytes at most, as text.

    Raises:
        UsageError: It cannot be read, is larger, or is not text.
    """
    where = f"--git-token-file {token_file}"
    try:
        with token_file.open("rb") as handle:  # a pipe (``<(pass show …)``) too
            data = handle.read(TOKEN_FILE_LIMIT + 1)
    except OSError as error:
        raise UsageError(f"{where}: cannot read it ({error.strerror or error})") from None
    if len(data) > TOKEN_FILE_LIMIT:
        raise UsageError(
            f"{where} holds more than {TOKEN_FILE_LIMIT} bytes: not a token file (give the "
            "file that holds the code host's token alone)"
        )
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise UsageError(
            f"{where} holds a byte that is not ASCII: not a token file (give the file that "
            "holds the code host's token alone)"
        ) from None


def load_token(environ: Mapping[str, str], token_file: Path | None = None) -> GitToken:
    """The token from ``--git-token-file``, else ``GH_TOKEN``, else ``GITHUB_TOKEN``
    (:func:`_checked_token`: one word of printable ASCII, :data:`SHORTEST_TOKEN` characters
    or more).

    Raises:
        UsageError: None is set, or the file cannot be read, or what it or the variable
            holds is not a token.
    """
    if token_file is not None:
        where = f"--git-token-file {token_file}"
        value = _checked_token(_read_token_file(token_file), where)
        if token_file.stat().st_nlink > 1:
            raise UsageError(
                f"{where} has other hard links, which airlock cannot "
                "hide inside the sandbox: keep the token in a file of its own"
            )
        return GitToken(value, where)
    for name in ("GH_TOKEN", "GITHUB_TOKEN"):
        if environ.get(name, "").strip():
            return GitToken(_checked_token(environ[name], name), name)
    raise UsageError(
        "--repo needs a token for the code host: set GH_TOKEN or GITHUB_TOKEN in airlock's "
        "environment, or give --git-token-file FILE (it never enters the sandbox)"
    )


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The repositories a run may reach, the code host and its token."""

    repos: tuple[RepoGrant, ...]
    token: GitToken
    upstream: str = DEFAULT_UPSTREAM
    upstream_ca: Path | None = None
    proxy: str | None = None
    """The upstream proxy the gateway reaches the code host through (the run's, as the
    proxy's own connections: :func:`~airlock.egress.config.chosen_upstream`), ``None`` for
    none; never read from the environment here."""
    grants: dict[str, RepoGrant] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_upstream(self.upstream)
        check_upstream_proxy(self.upstream, self.proxy)
        grants: dict[str, RepoGrant] = {}
        for grant in self.repos:
            given = grants.setdefault(grant.key, grant)
            if given.read_only != grant.read_only:
                raise UsageError(
                    f"--repo {given.owner}/{given.name}"
                    f"{':ro' if given.read_only else ''} and --repo {grant.owner}/{grant.name}"
                    f"{':ro' if grant.read_only else ''} name the same repository: give it once"
                )
        object.__setattr__(self, "grants", grants)


_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


def check_upstream(url: str) -> None:
    """Refuse a ``--git-upstream`` the gateway cannot use as the code host's base URL, or
    that would expose the token: not ``http://`` or ``https://``; a user or password before
    the host; a space or control character; not a URL; no host; a port that is not a number
    from 1 to 65535; a query or fragment (the repository's path would be appended to it);
    plain ``http://`` to a host that is not this machine's loopback (the token would cross
    the network unencrypted). A path (a code host under a prefix) is kept.

    Raises:
        UsageError: The URL as given (its user and password left out) and what to give.
    """
    shown = without_userinfo(url)

    def refused(why: str) -> UsageError:
        return UsageError(f"--git-upstream {shown!r}: {why}")

    if not url.startswith(("http://", "https://")):
        raise refused("expected an http:// or https:// URL, e.g. https://github.com")
    if has_userinfo(url):
        raise refused(
            "the URL holds a user name or password (before '@'), which would reach the sandbox "
            "and the gateway's messages: give the code host's URL alone, and the token in "
            "GH_TOKEN or GITHUB_TOKEN in airlock's environment or in --git-token-file FILE"
        )
    if any(char <= " " or char == "\x7f" for char in url):
        raise refused("the URL holds a space or a control character")
    try:
        parts = urlsplit(url)
        port = parts.port  # a port that is not a number from 0 to 65535 raises
    except ValueError as error:
        raise refused(f"not a URL ({error}), e.g. https://github.com") from None
    host = parts.hostname or ""
    if not host:
        raise refused("the URL names no host, e.g. https://github.com")
    if port == 0:
        raise refused("port 0 is no port to reach the code host on")
    if "?" in url or "#" in url:
        raise refused(
            "the URL holds a query or fragment ('?' or '#'), which the repositories' paths "
            "would be added after: give the code host's URL alone, e.g. https://github.com"
        )
    if parts.scheme == "http" and not _is_loopback(host):
        raise refused(
            "plain http:// would send the token across the network unencrypted: give the "
            "code host's https:// URL (http:// is for a code host on this machine's loopback: "
            "127.0.0.0/8, ::1, localhost)"
        )


def check_upstream_proxy(upstream: str, proxy: str | None) -> None:
    """Refuse to reach a plain ``http://`` code host (one on the loopback,
    :func:`check_upstream`) through an upstream ``proxy`` that is not on the loopback too: the
    request goes to that proxy as it is, ``Authorization`` header and all, unencrypted across
    the network (and the proxy would reach its own loopback, not this machine's code host).

    Raises:
        UsageError: Naming the code host and the proxy, and what to give instead.
    """
    if proxy is None or not upstream.startswith("http://"):
        return
    try:
        proxy_host = urlsplit(proxy).hostname or ""
    except ValueError:
        proxy_host = ""
    if _is_loopback(proxy_host):
        return
    host = urlsplit(upstream).hostname or ""
    raise UsageError(
        f"--git-upstream {upstream!r} is plain http:// and the run's upstream proxy "
        f"{without_userinfo(proxy)!r} (--upstream-proxy, else HTTPS_PROXY in airlock's "
        "environment) is not on this machine: the gateway would send it the token "
        "unencrypted across the network. Give the code host's https:// URL, or add "
        f"{host} to NO_PROXY in airlock's environment to reach it directly"
    )


def _is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's, without brackets) is this machine's loopback: an address
    of ``127.0.0.0/8``, ``::1``, or ``localhost`` (any case, a final ``.`` or not)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def has_userinfo(url: str) -> bool:
    """Whether ``url`` names a user (and password) before its host: ``https://USER:PASS@HOST``
    (any ``@`` when it cannot be read as a URL)."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "@" in url
    return "@" in netloc or ("://" not in url and "@" in url)


def without_userinfo(url: str) -> str:
    """``url`` without what stands before ``@`` in its host part, to be shown in a message."""
    if not has_userinfo(url):
        return url
    try:
        parts = urlsplit(url) if "://" in url else None
    except ValueError:
        parts = None
    if parts is None:
        scheme, sep, _ = url.partition("://")
        return (scheme + sep if sep else "") + "…@" + url.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc="…@" + parts.netloc.rpartition("@")[2]))


def git_environment(proxy_url: str, upstream: str = DEFAULT_UPSTREAM) -> dict[str, str]:
    """Variables that send git inside to the gateway, through ``proxy_url``; no secret in them.

    ``url.<gateway>.insteadOf`` rewrites ``https://github.com/`` (and the SSH forms) to the
    gateway; ``http.<gateway>.proxy`` sends it through the proxy whatever ``http_proxy`` says.
    """
    gateway = f"http://{GATEWAY_HOST}/"
    # SSH names the host alone: not the web's port, nor the path a code host may be under
    netloc = urlsplit(upstream).netloc
    host = netloc[: netloc.index("]") + 1] if netloc.startswith("[") else netloc.partition(":")[0]
    pairs = [
        (f"url.{gateway}.insteadOf", upstream.rstrip("/") + "/"),
        (f"url.{gateway}.insteadOf", f"git@{host}:"),
        (f"url.{gateway}.insteadOf", f"ssh://git@{host}/"),
        (f"http.{gateway}.proxy", proxy_url),
        ("credential.helper", ""),
    ]
    env = {"GIT_CONFIG_COUNT": str(len(pairs)), "GIT_TERMINAL_PROMPT": "0"}
    for index, (key, value) in enumerate(pairs):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


_DROPPED = _HOP | {"set-cookie", "x-airlock-refused", "x-airlock-failed"}
"""Response headers not passed back (``X-Airlock-Refused`` and ``X-Airlock-Failed`` are the
gateway's own words)."""


HEADER_WORDS = 300
"""The most characters of a reason the gateway's headers carry (:func:`header_safe`'s cut)."""


def _refused_header(reason: str, note: str = "") -> bytes:
    """The header that tells the proxy's audit log this answer is a refusal, and why: the
    reason alone, whole (a hint goes to git only, after it; what the reason quotes from the
    request is quoted, so it cannot pass for more of the reason), then ``note``
    (:func:`_service_note`), kept whole: a reason too long for both is cut before it."""
    reason = reason.removeprefix("airlock: ").removeprefix("airlock git gateway: ")
    words, after = _header_words(reason), _header_words(note)
    if len(words) + len(after) > HEADER_WORDS:
        words = words[: HEADER_WORDS - len(after) - 3] + "..."
    return f"X-Airlock-Refused: git gateway: {words}{after}\r\n".encode()


def _failed_header(message: str) -> bytes:
    """The header that tells the proxy's audit log this answer is the gateway's ``502``, and
    why (scrubbed of the token): the record says the request failed, and the report counts
    it, as for any destination that could not be reached."""
    message = message.removeprefix("airlock: ").removeprefix("airlock git gateway: ")
    return f"X-Airlock-Failed: git gateway: {_header_words(message)}\r\n".encode()


def _header_words(text: str) -> str:
    """``text`` for a header the audit log reads: its ``…`` (a name cut short, a path's
    elided part) written ``...``, as a header holds ASCII alone (:func:`header_safe` writes
    ``?`` for any other character), so the log and the report read as git's message does."""
    return header_safe(text.replace("…", "..."))[:HEADER_WORDS]


_SERVICE_WORDS = {"git-upload-pack": "a fetch or clone", "git-receive-pack": "a push"}


def _service_note(service: str, advertisement: bool) -> str:
    """What the audit log gets after a refusal's reason: the git ``service`` refused (one of
    :data:`SERVICES`, checked: the record's path shows ``info/refs?service=…``, its value
    dropped as every query value is, which hides a fetch from a push), and, on ``info/refs``
    (``advertisement``), that the refusal is git's error packet in an answer whose HTTP
    status, the record's, is ``200``."""
    said = f" [{service}: {_SERVICE_WORDS.get(service, service)}"
    if advertisement:
        said += "; refused by git's error packet (ERR), the HTTP status 200"
    return said + "]"


SHOWN = 100
"""How many characters of a repository name or a path from the request a message quotes."""


def _shortened(text: str) -> str:
    """``text`` (a repository name or a path as asked) cut to :data:`SHOWN` characters and
    ``…``, for a message: code inside chooses its length."""
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def _pkt(text: str) -> bytes:
    data = text.encode()
    return f"{len(data) + 4:04x}".encode() + data


UPSTREAM_CA_HINT = "; if the code host uses its own CA, pass it with --upstream-ca FILE"
"""Said after a code host's certificate that does not verify against the system's CAs (and
those ``--upstream-ca`` gave), as an inspected origin's ``502`` says it: a company's or a
test server's own CA is the usual cause."""


def _certificate_refused(error: BaseException) -> bool:
    """Whether ``error`` (httpx's, which wraps httpcore's, which wraps the TLS error) comes
    from a certificate that did not verify."""
    seen: BaseException | None = error
    for _ in range(10):  # a chain of causes is short; a loop in one is not followed
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _said(error: Exception) -> str:
    """What ``error`` says, or its kind when it says nothing (httpx's ``ReadError('')``)."""
    return str(error) or type(error).__name__


_MARK = b"[REDACTED:git_token]"
_B64_ALSO = {"+": ("-", "%2B"), "/": ("_", "%2F"), "=": ("%3D",)}
"""Other spellings of base64's own characters: base64url's, and percent escapes."""


def _either_case(text: str) -> str:
    """A pattern for ``text`` (ASCII) with its letters in either case."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in text)


def _ways(char: str, kind: str) -> list[tuple[str, str]]:
    """Each way one character of a form of the token may be written, as its first character
    and a pattern for the rest: a character of the token in either case, or as a percent
    escape, a JSON ``\\u00XX`` or a ``\\xXX`` escape (hex digits in either case), or an HTML
    character reference (``&#103;``, ``&#x67;``, up to three leading zeros: an error page's);
    of base64, itself, or for ``+ / =`` base64url's character or a percent escape; of hex,
    either case."""
    if kind == "b64":
        others = _B64_ALSO.get(char, ())
        return [(char, "")] + [(other[0], _either_case(other[1:])) for other in others]
    firsts = [(case, "") for case in sorted({char.lower(), char.upper()})]
    if kind == "hex":
        return firsts
    code = _either_case(f"{ord(char):02X}")
    entities = [("&", f"#0{{0,3}}{ord(char)};"), ("&", "#[xX]0{0,3}" + code + ";")]
    return [*firsts, ("%", code), ("\\", "u00" + code), ("\\", "[xX]" + code), *entities]


def _spelled(char: str, kind: str) -> str:
    ways = [re.escape(first) + rest for first, rest in _ways(char, kind)]
    return ways[0] if len(ways) == 1 else "(?:" + "|".join(ways) + ")"


def _b64_cores(secret: bytes) -> list[str]:
    """The base64 of ``secret`` as it stands in the base64 of anything holding it: for each
    of the three offsets it may start at, the characters made of its bits alone (no padding)."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(bytes(offset) + secret).decode()
        first = -(-8 * offset // 6)  # the first character with none of the bytes before
        last = 8 * (offset + len(secret)) // 6  # the end of the last with none after
        cores.append(encoded[first:last])
    return cores


def secret_pattern(token: str) -> tuple[bytes, int]:
    """A pattern for every form of ``token`` the gateway replaces, and the longest it matches.

    The forms: the token with its letters in any case, and with any of its characters as a
    percent escape, a JSON ``\\u00XX`` or ``\\xXX`` escape (hex digits in either case) or an
    HTML character reference; the ``Basic``
    credential git's ``Authorization`` header carries (base64 of ``x-access-token:TOKEN``,
    padded or not); the base64 of the token and of that credential at each of the three
    offsets they may start at in a longer text (which covers the base64 of a whole
    ``Authorization: Basic …`` line); base64 in base64url too, and with its ``+ / =`` as
    percent escapes in either case; the hex of the token in either case.

    Each way of the pattern starts with a character of its own (so a search skips quickly to
    where one of them stands).
    """
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode().rstrip("=")
    forms = [(token, "token"), (basic, "b64"), (token.encode().hex(), "hex")]
    forms += [(core, "b64") for core in _b64_cores(token.encode()) + _b64_cores(basic.encode())]
    forms = sorted({form for form in forms if form[0]}, key=lambda form: (-len(form[0]), form))
    after: dict[str, list[str]] = {}  # by first character
    for form, kind in forms:
        rest = "".join(_spelled(char, kind) for char in form[1:])
        for first, more in _ways(form[0], kind):
            after.setdefault(first, []).append(more + rest)
    pattern = "|".join(f"{re.escape(c)}(?:{'|'.join(ways)})" for c, ways in sorted(after.items()))
    widest = {"token": 10, "b64": 3, "hex": 1}  # bytes of a character's longest way
    return pattern.encode(), max(len(form) * widest[kind] for form, kind in forms)


class _Scrubber:
    """Replaces the token's forms (:func:`secret_pattern`) in a stream of bytes, wherever the
    pieces are cut: what could be the start of a form is held back until it is whole."""

    def __init__(self, pattern: re.Pattern[bytes], longest: int) -> None:
        self.pattern = pattern
        self.keep = longest - 1
        self.carry = b""

    def feed(self, data: bytes) -> bytes:
        text = self.carry + data
        safe = len(text) - self.keep  # a form starting before this is whole in text
        out, done = [], 0
        for found in self.pattern.finditer(text):
            if found.start() >= safe:
                break
            out += [text[done : found.start()], _MARK]
            done = found.end()
        cut = max(done, safe)
        out.append(text[done:cut])
        self.carry = text[cut:]
        return b"".join(out)

    def finish(self) -> bytes:
        out, self.carry = self.pattern.sub(_MARK, self.carry), b""
        return out


_PUSH_RESULT = "application/x-git-receive-pack-result"
_PACKET_RESULTS = frozenset({"application/x-git-upload-pack-result", _PUSH_RESULT})
"""The answers in git's packet lines whose progress and error messages may come in pieces."""
_PACKET_LENGTH = re.compile(rb"[0-9a-fA-F]{4}")
_MAX_PACKET = 65520


def _packet_end(data: bytes, at: int) -> int:
    """Where the packet line at ``at`` in ``data`` ends: ``at`` while it is not all there,
    ``-1`` when what stands there is not a packet line (a flush, delimiter or end of response
    packet is its 4 bytes)."""
    if len(data) - at < 4:
        return at
    length = data[at : at + 4]
    size = int(length, 16) if _PACKET_LENGTH.fullmatch(length) else -1
    if size in (0, 1, 2):
        return at + 4
    if not 4 <= size <= _MAX_PACKET:
        return -1
    return at + size if len(data) - at >= size else at


def _split_packets(data: bytes) -> tuple[list[bytes], bytes, bytes | None]:
    """The whole packet lines ``data`` begins with (:func:`_packet_end`), what follows them
    that is not all there yet, and, when what follows is no packet line, all of it instead
    (``None`` otherwise)."""
    packets: list[bytes] = []
    at = 0
    while (end := _packet_end(data, at)) != at:
        if end < 0:
            return packets, b"", data[at:]
        packets.append(data[at:end])
        at = end
    return packets, data[at:], None


class _PacketReader:
    """Reads git's packet lines as they come, across reads: a packet line not all there yet is
    held for the next; what is not a packet line ends the reading, and it and all after it go
    on as they came. Subclasses say what each whole packet line becomes (:meth:`_took`) and
    what goes before the bytes that ended the reading (:meth:`_ending`)."""

    def __init__(self) -> None:
        self.held = b""
        self.reading = True

    def feed(self, data: bytes) -> bytes:
        if not self.reading:
            return data
        packets, self.held, rest = _split_packets(self.held + data)
        out = self._took(packets)
        if rest is not None:
            self.reading = False
            out += [*self._ending(), rest]
        return b"".join(out)

    def _took(self, packets: list[bytes]) -> list[bytes]:
        return packets

    def _ending(self) -> list[bytes]:
        return []


class _Report(_PacketReader):
    """Scrubs a push's report: channel 1 of ``git-receive-pack``'s answer, which holds git's
    status lines (``ok``/``ng REF REASON``) as packet lines of their own, read by git as one
    stream across the side band's packets. Each line is scrubbed whole once all of it has come
    (git shows each on its own), and framed again with its new length.

    It feeds as :class:`_Scrubber` does, so :class:`_Sideband` takes it for channel 1.
    """

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        super().__init__()
        self.pattern = pattern

    def _took(self, packets: list[bytes]) -> list[bytes]:
        return [self._scrubbed(packet) for packet in packets]

    def _scrubbed(self, packet: bytes) -> bytes:
        if len(packet) <= 4:  # flush, delimiter
            return packet
        line = self.pattern.sub(_MARK, packet[4:])[: _MAX_PACKET - 4]
        return f"{len(line) + 4:04x}".encode() + line

    def finish(self) -> bytes:
        out, self.held = self.held, b""
        return out


class _Sideband(_PacketReader):
    """Scrubs the progress and error messages in git's packet lines (channels 2 and 3 of the
    side band) each as one stream across its packets: git joins a message's pieces before it
    shows them (``remote: …``), so a token cut between two packets would be whole there. With
    ``report`` (the answer to a push), channel 1 too, as the packet lines it holds
    (:class:`_Report`).

    Each such packet goes on with what its channel's scrubber gives (another length, held-back
    bytes in the next one of that channel, all of it before a flush or delimiter packet and at
    the end); every other packet (the pack, on channel 1 of a fetch's answer) goes on as it
    came. Bytes that are not packet lines (a pack sent without the side band) end the reading:
    they and all after them go on as they came, for the scrub of the whole answer alone.
    """

    def __init__(self, scrubber: Callable[[], _Scrubber], *, report: bool = False) -> None:
        super().__init__()
        self.bands: dict[int, _Scrubber | _Report] = {2: scrubber(), 3: scrubber()}
        if report:
            self.bands[1] = _Report(scrubber().pattern)

    def _took(self, packets: list[bytes]) -> list[bytes]:
        out: list[bytes] = []
        for packet in packets:
            if len(packet) == 4 and packet != b"0004":  # flush, delimiter, end of response
                out += [self._flush(), packet]
                continue
            band = packet[4] if len(packet) > 4 else 0
            if band in self.bands:
                packet = self._packets(band, self.bands[band].feed(packet[5:]))
            out.append(packet)
        return out

    def _ending(self) -> list[bytes]:
        return [self._flush()]

    def finish(self) -> bytes:
        out = self._flush() + self.held
        self.held = b""
        return out

    def _flush(self) -> bytes:
        return b"".join(self._packets(band, bands.finish()) for band, bands in self.bands.items())

    @staticmethod
    def _packets(band: int, data: bytes) -> bytes:
        most = _MAX_PACKET - 5
        return b"".join(
            f"{len(piece) + 5:04x}".encode() + bytes([band]) + piece
            for piece in (data[at : at + most] for at in range(0, len(data), most))
        )


class Gateway:
    """The gateway's HTTP server on the host's loopback.

    Args:
        config: Repositories, code host and token.
        record: Optional; takes a small dict per request (repository, service, decision).

    Raises:
        UsageError: ``--upstream-ca`` cannot be read or holds no certificate.
    """

    def __init__(self, config: GatewayConfig, record: object = None) -> None:
        self.config = config
        self.record = record
        self.server: asyncio.Server | None = None
        token = config.token.reveal()
        pattern, self._longest = secret_pattern(token)
        self._secret = re.compile(pattern)
        self._auth = "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
        verify = ssl.create_default_context()  # the system's CAs, as for inspected origins
        verify.hostname_checks_common_name = False  # a name in the subject alone is no name
        if config.upstream_ca is not None:
            try:
                verify.load_verify_locations(cafile=str(config.upstream_ca))
            except (OSError, ssl.SSLError) as error:  # in the words inspection's own check uses
                raise UsageError(
                    f"--upstream-ca {config.upstream_ca}: cannot load it as PEM certificates "
                    f"({error}); give a file of one or more PEM certificates"
                ) from None
        self._client = httpx.AsyncClient(  # the environment's proxies are not airlock's choice
            verify=verify, timeout=httpx.Timeout(60.0), trust_env=False, proxy=config.proxy
        )
        self.errors: Counter[str] = Counter()
        """Why the code host's answers failed (a ``502``, or one cut off), scrubbed, counted by
        reason within :func:`~airlock.egress.report.count_reason`'s bounds (code inside makes
        as many as it likes); the audit log records each such request as failed too (``502``)."""
        self._serving: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        """Each connection being served, by the task serving it, for :meth:`close` to end."""

    async def start(self, path: Path) -> str:
        """Listen on the Unix socket ``path`` (its folder: airlock's user's alone); return it,
        for the proxy's ``gateway`` setting."""
        self.server = await asyncio.start_unix_server(self._serve, str(path), limit=MAX_HEAD)
        path.chmod(0o600)
        return str(path)

    async def close(self) -> None:
        """Stop listening, and end every connection still served before waiting for them.

        Since Python 3.12, ``wait_closed`` waits for every connection to end; one that waited
        on the code host (a slow answer, a large fetch being packed) held the run's end for
        10 s, which then failed with ``TimeoutError``, leaving the gateway's folder behind.
        So each connection is cut here, and the client to the code host closed (a request
        waiting on it fails at once), before waiting, for :data:`CLOSE_WAIT` seconds at most.
        """
        if self.server is not None:
            self.server.close()
        for writer in list(self._serving.values()):
            writer.transport.abort()
        await self._client.aclose()
        handlers = list(self._serving)
        if handlers:
            await asyncio.wait(handlers, timeout=CLOSE_WAIT)
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), CLOSE_WAIT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._serving[task] = writer
        try:
            while True:
                try:
                    head = await read_head(reader, request=True)
                except HttpError as error:
                    await self._text(
                        writer, error.status, error.message, close=True, refused=error.message
                    )
                    return
                if head is None or not await self._one(head, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self._serving.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def holds_token(self, data: bytes) -> bool:
        """Whether ``data`` holds the token in one of the forms the gateway replaces in answers
        (:func:`secret_pattern`: plain, its ``Basic`` credential, their base64, …)."""
        return self._secret.search(data) is not None

    def _scrub(self, text: str) -> str:
        data = text.encode("utf-8", "surrogateescape")  # the pattern is ASCII: none cut
        return self._secret.sub(_MARK, data).decode("utf-8", "surrogateescape")

    def _scrubber(self) -> _Scrubber:
        return _Scrubber(self._secret, self._longest)

    def _header_text(self, text: str) -> str:
        """``text`` scrubbed and fit for a header line (printable Latin-1, no line break)."""
        return "".join(
            c if " " <= c <= "~" or "\xa0" <= c <= "\xff" else "?" for c in self._scrub(text)
        )

    async def _text(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        message: str,
        *,
        close: bool = False,
        refused: str | None = None,
        refused_note: str = "",
        failed: bool = False,
        allow: str = "",
        head_only: bool = False,
    ) -> None:
        """A plain text answer; ``head_only`` (an answer to ``HEAD``): without its body;
        ``refused``: marked as a refusal, for this reason (then ``refused_note``:
        :func:`_refused_header`); ``failed``: marked as the gateway's failure, ``message``
        its error."""
        body = (self._scrub(message) + "\n").encode()
        writer.write(
            f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n".encode()
            + (f"Allow: {allow}\r\n".encode() if allow else b"")
            + (_refused_header(refused, refused_note) if refused else b"")
            + (_failed_header(self._scrub(message)) if failed else b"")
            + (b"Connection: close\r\n" if close else b"")
            + b"\r\n"
            + (b"" if head_only else body)
        )
        await writer.drain()

    async def _refuse(
        self,
        writer: asyncio.StreamWriter,
        service: str,
        reason: str,
        hint: str,
        advertisement: bool,
    ) -> None:
        """A refusal git prints (``reason; hint``): an ``ERR`` packet on ``info/refs``, else a
        ``403``. The audit log gets the reason alone, with the service
        (:func:`_service_note`)."""
        message = f"{reason}; {hint}"
        if not advertisement:
            note = _service_note(service, False)
            await self._text(writer, 403, message, refused=reason, refused_note=note)
            return
        body = _pkt(f"ERR {message}")
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/x-{service}-advertisement\r\n"
            f"Cache-Control: no-cache\r\nContent-Length: {len(body)}\r\n".encode()
            + _refused_header(reason, _service_note(service, True))
            + b"\r\n"
            + body
        )
        await writer.drain()

    def _route(self, head: Head) -> tuple[RepoGrant | None, str, str, str]:
        """The grant (or ``None``), service, repository as asked (:func:`_shortened`) and path on
        the code host."""
        target = head.first[1].decode("latin-1")
        if target.startswith("http://"):
            target = "/" + target.split("/", 3)[-1]
        path, _, query = target.partition("?")
        found = _PATH.match(path)
        if found is None:
            raise HttpError(
                404,
                f"airlock git gateway: {_shortened(path)!r} is not a smart-HTTP git request "
                "(…/OWNER/NAME.git/info/refs, git-upload-pack or git-receive-pack)",
            )
        owner, name, rest = found["owner"], found["name"], found["rest"]
        method = head.first[0].decode("latin-1")
        if method != _METHODS[rest]:
            raise _NotAllowed(
                f"airlock git gateway: {method} {_shortened(path)!r} refused: git's requests alone go on "
                "(GET …/info/refs?service=…, POST …/git-upload-pack or …/git-receive-pack)",
                _METHODS[rest],
            )
        service = rest
        if rest == "info/refs":
            asked_for = parse_qs(query, keep_blank_values=True).get("service", [])
            service = asked_for[0] if len(asked_for) == 1 else ""  # as the code host reads it
            if service not in SERVICES:
                raise HttpError(
                    403, "airlock git gateway: only smart HTTP (git-upload-pack, git-receive-pack)"
                )
        asked = f"{owner}/{name}"
        grant = self.config.grants.get(asked.lower())
        # Built from what was checked alone: the query's other parameters (another spelling
        # of ``service``, anything a code host might read) never reach it with the token; and
        # the repository as ``--repo`` spells it, not as asked: a code host that tells names
        # apart by case (git's own http-backend, cgit) would serve ``OCTO/WIDGETS``, another
        # repository, to a grant of ``octo/widgets`` (a grant is matched in any case).
        if grant is not None:
            owner, name = grant.owner, grant.name
        upstream_path = f"/{owner}/{name}.git/{rest}"
        if rest == "info/refs":
            upstream_path += f"?service={service}"
        return grant, service, _shortened(asked), upstream_path

    async def _one(
        self, head: Head, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        try:
            framing = head.framing()
            grant, service, asked, upstream_path = self._route(head)
            refuse_a_body_on_get(head.first[0].decode("latin-1"), framing)
        except HttpError as error:
            await self._text(
                writer,
                error.status,
                error.message,
                close=True,
                refused=error.message,
                allow=error.allow if isinstance(error, _NotAllowed) else "",
                head_only=head.first[0] == b"HEAD",
            )
            return False
        advertisement = upstream_path.split("?", 1)[0].endswith("/info/refs")
        if grant is None:
            allowed = ", ".join(g.key + (":ro" if g.read_only else "") for g in self.config.repos)
            await self._refuse(
                writer,
                service,
                f"airlock: repository {asked!r} is not granted to this run "
                f"(granted: {allowed or 'none'})",
                f"add --repo {asked} to reach it",
                advertisement,
            )
            return await self._drained(reader, framing, head.check)
        if service == "git-receive-pack" and grant.read_only:
            await self._refuse(
                writer,
                service,
                f"airlock: {asked!r} is read-only in this run (--repo {grant.owner}/{grant.name}:ro): "
                "push refused",
                "grant it without :ro to push",
                advertisement,
            )
            return await self._drained(reader, framing, head.check)
        refusal = (service, asked, advertisement)
        return await self._forward(head, framing, reader, writer, upstream_path, refusal)

    async def _drained(
        self, reader: asyncio.StreamReader, framing: Framing, check: RequestCheck | None
    ) -> bool:
        """Read a refused request's body (by llhttp too, ``check``, as a forwarded one is);
        whether the connection can serve the next request."""
        if framing[0] == "none":
            return True
        with contextlib.suppress(HttpError):
            async for _ in body_pieces(reader, framing, check):
                pass
            return True
        return False

    async def _forward(
        self,
        head: Head,
        framing: Framing,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        upstream_path: str,
        refusal: tuple[str, str, bool],
    ) -> bool:
        """Send the request on with the token and relay the answer; whether the connection
        to git goes on. ``refusal``: the git service, the repository as asked and whether
        the request is an advertisement (``info/refs``), for a refusal git shows."""
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in head.headers
            if k.decode("latin-1").lower() in GIT_REQUEST_HEADERS
        ]
        for name, value in headers:
            if not _PRINTABLE.fullmatch(value):
                reason = (
                    f"airlock git gateway: the request's {name} header holds a byte that is not "
                    "printable ASCII"
                )
                await self._text(
                    writer, 400, f"{reason}; the code host is not asked", close=True, refused=reason
                )
                return False
        headers += [("Authorization", self._auth), ("Accept-Encoding", "identity")]
        if framing[0] == "length":
            headers.append(("Content-Length", str(framing[1])))
        if framing[0] != "none":
            # the code host may answer before it reads all of a body the sandbox wrote, and
            # read the rest as a request of its own on a kept connection, ahead of the next
            # request the token goes on: a connection that carried a body is not kept
            headers.append(("Connection", "close"))

        consumed = framing[0] == "none"

        async def body() -> AsyncIterator[bytes]:
            nonlocal consumed
            async for _, payload in body_pieces(reader, framing, head.check):
                yield payload
            consumed = True

        url = self.config.upstream.rstrip("/") + upstream_path
        method = head.first[0].decode("latin-1")
        request = self._client.build_request(
            method, url, headers=headers, content=body() if framing[0] != "none" else None
        )
        try:
            response = await self._client.send(request, stream=True)
        except HttpError as error:  # the body, as its framing or llhttp refuses it
            await self._text(writer, error.status, error.message, close=True, refused=error.message)
            return False
        except httpx.HTTPError as error:
            hint = UPSTREAM_CA_HINT if _certificate_refused(error) else ""
            await self._failed(
                writer, f"airlock git gateway: {self.config.upstream}: {_said(error)}{hint}"
            )
            return False
        try:
            if response.status_code == 401:
                await self._token_refused(writer, *refusal)
                return consumed
            coding = response.headers.get("content-encoding", "identity").strip().lower()
            if coding != "identity":
                await self._failed(
                    writer,
                    f"airlock git gateway: {self.config.upstream} answered compressed "
                    f"({coding!r}) though asked not to: the token could not be looked for in it",
                )
                return False
            # A body not read whole (the code host answered before it took all of it): what
            # is left of it must not be read as the next request, so the connection ends.
            await self._relay(response, writer, close=not consumed)
        except (httpx.HTTPError, OSError) as error:
            # Its head is gone: git is told by the connection closed, mid-body, at once.
            count_reason(
                self.errors,
                self._scrub(
                    f"airlock git gateway: the answer from {self.config.upstream} was cut off: "
                    f"{_said(error)}"
                ),
            )
            return False
        finally:
            await response.aclose()
        return consumed

    async def _token_refused(
        self, writer: asyncio.StreamWriter, service: str, asked: str, advertisement: bool
    ) -> None:
        """The code host answered ``401``: it refused the token. Its answer (and its
        ``WWW-Authenticate``) would have git inside ask for a user name, and say only
        ``could not read Username``; git is told instead that the token the gateway adds was
        refused, and where it was read (outside)."""
        await self._refuse(
            writer,
            service,
            f"airlock: {self.config.upstream} refused the token the git gateway adds for "
            f"{asked!r} (401 Unauthorized; the token from {self.config.token.source})",
            "check that it is valid and may reach that repository",
            advertisement=advertisement,
        )

    async def _failed(self, writer: asyncio.StreamWriter, message: str) -> None:
        """A ``502`` that closes the connection, marked so for the audit log; ``message`` is
        counted in :attr:`errors`."""
        count_reason(self.errors, self._scrub(message))
        await self._text(writer, 502, message, close=True, failed=True)

    async def _relay(
        self, response: httpx.Response, writer: asyncio.StreamWriter, *, close: bool
    ) -> None:
        """Send ``response`` on, scrubbed; ``close``: saying the connection ends after it."""
        lines = [f"HTTP/1.1 {response.status_code} {self._header_text(response.reason_phrase)}"]
        for key, value in response.headers.multi_items():
            lowered = key.lower()
            if lowered in _DROPPED or self._secret.search(key.encode("utf-8", "surrogateescape")):
                continue  # a header named with the token is dropped whole
            value = self._header_text(value)
            if lowered == "location":
                value = self._through_gateway(value)
            lines.append(f"{key}: {value}")
        bodiless = response.status_code in (204, 304)  # no body, and no framing for one
        if not bodiless:
            lines.append("Transfer-Encoding: chunked")
        if close:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        if bodiless:
            await writer.drain()
            return
        scrubber = self._scrubber()
        kind = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        bands = None
        if kind in _PACKET_RESULTS:
            bands = _Sideband(self._scrubber, report=kind == _PUSH_RESULT)
        async for data in response.aiter_raw(PIECE):
            self._chunk(writer, scrubber.feed(bands.feed(data) if bands else data))
            await writer.drain()
        self._chunk(writer, scrubber.feed(bands.finish() if bands else b"") + scrubber.finish())
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    def _through_gateway(self, location: str) -> str:
        """A redirect to a place on the code host (a renamed repository's new name), made
        one to that place through the gateway: git follows it there, where the repository is
        checked as any other, rather than to the code host itself, past the gateway (no
        token, or no grant checked). A redirect elsewhere goes on as it came: the gateway
        never follows one, so the token never goes with it."""
        base = self.config.upstream.rstrip("/") + "/"
        if location[: len(base)].lower() != base.lower():
            return location
        return f"http://{GATEWAY_HOST}/" + location[len(base) :]

    @staticmethod
    def _chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
        if data:
            writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
