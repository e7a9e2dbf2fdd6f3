"""What the egress proxy is told: host rules, limits, the audit log. Parsed once, frozen.

A :class:`HostRule` is one pattern with where it came from (``--allow``, a settings key and
its file, the policy engine's flow). The pattern is the web-fetch guard's domain syntax
(:func:`airlock.policy.rules.parse_host_pattern`: ``example.com``, ``*.example.com``,
``cdn*.x.org``, ``*``, an IPv6 address in brackets ``[2001:db8::1]``) with an optional
``:PORT``; a ``WebFetch(domain:…)`` rule is read by the same engine
(:func:`airlock.policy.rules.parse_rule`). No second matcher exists here: a rule holds the
engine's :class:`~airlock.policy.rules.DomainPattern` and the port, nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from airlock.errors import UsageError
from airlock.policy.hosts import host_port
from airlock.policy.rules import DomainPattern, matches, parse_host_pattern, parse_rule

TYPE_CHECKING = False
if TYPE_CHECKING:
    from airlock.egress.inspect import InspectionConfig

ALLOW = "allow"
DENY = "deny"
ALLOW_OPTION = "--allow"
"""The origin of the allow rules given on the command line: the only ones that may let a host
reach a private address (settings files can come with a cloned project)."""


GATEWAY_HOST = "git.airlock.internal"
"""The name git inside uses for the git credential gateway (:mod:`airlock.egress.gateway`);
it never resolves: the proxy routes it to the gateway."""


def is_gateway(host: str) -> bool:
    """Whether ``host`` names the git gateway, in any case, with or without a final dot."""
    return host.lower().rstrip(".") == GATEWAY_HOST


@dataclass(frozen=True, slots=True)
class HostRule:
    """One allow or deny pattern, parsed, with where it came from.

    Build with :meth:`parse`; ``origin`` is shown in refusals and the audit log, e.g.
    ``"--deny"`` or ``"sandbox.network.deniedDomains in /home/me/.claude/settings.json"``.
    """

    text: str
    origin: str
    pattern: DomainPattern
    port: int | None = None

    @classmethod
    def parse(cls, text: str, origin: str) -> HostRule:
        """Parse ``HOST``, ``HOST:PORT`` or ``WebFetch(domain:HOST)``.

        Raises:
            UsageError: the pattern cannot be read; the message says what is valid.
        """
        try:
            pattern = parse_rule(text)
            if pattern is not None:
                return cls(text, origin, pattern)
            domain, port = parse_host_pattern(text)
            return cls(text, origin, domain, port)
        except ValueError as error:
            if text.lstrip().startswith("WebFetch("):
                valid = (
                    "WebFetch(domain:…) takes a host such as example.com or *.example.com, "
                    "without a port; a port is limited with --allow or --deny HOST:PORT"
                )
            elif "such as" in str(error):  # the error shows the host forms already
                valid = "a port may follow: example.com:443 or [2001:db8::1]:443"
            else:
                valid = (
                    "a host such as example.com, *.example.com, example.com:443 or "
                    "[2001:db8::1]:443"
                )
            raise UsageError(f"{origin} {text!r}: {error} ({valid})") from error

    def covers(self, host: str, port: int) -> bool:
        """Whether this rule matches ``host`` (normalised) on ``port``."""
        return (self.port is None or self.port == port) and matches(self.pattern, host)

    @property
    def names_host(self) -> bool:
        """An explicit rule: one host, no wildcard."""
        return not (self.pattern.any_host or self.pattern.wildcard or self.pattern.subdomains_only)

    @property
    def reaches_private(self) -> bool:
        """Whether this rule lets its host reach a loopback, private, link-local or this
        machine's address: a rule naming one host, given by the user on the command line
        (``--allow``). A rule from a settings file never does: a project's
        ``.claude/settings.json`` comes with the project, and may name ``localhost``."""
        return self.origin == ALLOW_OPTION and self.names_host

    def describe(self) -> str:
        return f"{self.text!r} ({self.origin})"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one run may do through the proxy. ``None`` means no bound."""

    max_connections: int = 512
    """Client connections open at once; one more is answered ``503`` and closed."""
    max_header_bytes: int = 64 * 1024
    """Request line and headers of one request; larger is answered ``431``."""
    idle_seconds: float = 300.0
    """A connection (or tunnel) with no byte either way for this long is closed."""
    head_seconds: float = 30.0
    """A request's line and headers must be whole this long after the connection opened, or
    after the answer before on a kept connection, whatever bytes came meanwhile; else the
    client is answered ``408`` (closed without a word if it sent nothing) and the connection
    closed. ``idle_seconds`` bounds the rest: bodies, answers, tunnels."""
    connect_timeout: float = 30.0
    """Seconds to reach a destination (or the upstream proxy)."""
    new_connections_per_second: float | None = None
    """Per destination host: upstream connections opened per second (burst of the same size)."""
    max_upload_mb: float | None = None
    """Bytes sent out by the whole run, a cap: a piece that would pass it does not leave, and
    transfers under way (tunnels, request bodies) are cut there; new connections are refused;
    the report says so."""

    max_log_bytes: int = 1 << 30
    """The audit records one run may write (its lines, in bytes), a cap: once they pass it,
    traffic stops as when the log cannot be written (each connection under way ended, its
    record written; each new one answered ``503``, counted), and the run says why. Code inside
    chooses how many requests it makes and how long their heads are: refused ones alone, each
    a record with a path of up to 64 KB, grew the log by 38 MB a second with no end."""

    @property
    def max_upload_bytes(self) -> int | None:
        return None if self.max_upload_mb is None else int(self.max_upload_mb * 1024 * 1024)


@dataclass(frozen=True, slots=True)
class UpstreamProxy:
    """An upstream proxy, read from its URL (:func:`upstream_proxy`): where it listens, and
    the ``Proxy-Authorization`` its URL's user and password make (``None``: none given)."""

    host: str
    port: int
    authorization: bytes | None = field(default=None, repr=False)
    """``Basic …`` (the user and password percent-decoded, in UTF-8): sent to the upstream
    proxy only, in each ``CONNECT``; kept out of every message and record."""

    @property
    def address(self) -> tuple[str, int]:
        """Where to connect: its host and port."""
        return self.host, self.port

    @property
    def shown(self) -> str:
        """``HOST:PORT``, as messages name it (never its credentials)."""
        return host_port(self.host, self.port)

    def wants_credentials(self, answer: str) -> str:
        """Why the upstream proxy answered ``407`` (``answer``: its status line, shown), and
        the way on: its ``407`` is about airlock's credentials (the URL's), never the
        client's, so the client is told this, in a ``502``, rather than asked for its own."""
        where = "--upstream-proxy (or HTTPS_PROXY in airlock's environment)"
        if self.authorization is None:
            return (
                f"the upstream proxy {self.shown} asks for credentials ({answer}): give them "
                f"in its URL, http://USER:PASSWORD@HOST:PORT each percent-encoded, in {where}"
            )
        return (
            f"the upstream proxy {self.shown} refused the credentials its URL gives "
            f"({answer}): check the user and password in {where}"
        )


MAX_SHOWN_ANSWER = 200
"""Characters of an upstream proxy's status line a refusal shows (it may send anything)."""


def shown_answer(status_line: bytes) -> str:
    """An upstream proxy's status line as a message shows it: its first
    :data:`MAX_SHOWN_ANSWER` characters, each control character made visible."""
    from airlock._visible import visible

    shown = visible(status_line[:MAX_SHOWN_ANSWER].decode("latin-1"))
    if len(status_line) > MAX_SHOWN_ANSWER:
        shown += f"… ({len(status_line)} bytes)"
    return shown


def shown_url(url: str) -> str:
    """``url`` with all before its last ``@`` (after its ``scheme://``) shown as ``…``: an
    upstream proxy's URL as messages and the audit log show it, without its user and
    password, even when the password holds a ``/``, ``?`` or ``#`` left unencoded."""
    scheme, mark, rest = url.partition("://") if "://" in url else ("", "", url)
    at = rest.rfind("@")
    if at < 0:
        return url
    return f"{scheme}{mark}…{rest[at:]}"


def upstream_proxy(url: str, source: str = "--upstream-proxy") -> UpstreamProxy:
    """An upstream proxy's URL read: ``http://[USER:PASSWORD@]HOST[:PORT]`` (port 8080 when
    none), or ``[USER:PASSWORD@]HOST:PORT`` (a bare ``HOST`` is refused: more often a typo
    than a proxy). The user and password, percent-encoded in the URL, become its
    ``Proxy-Authorization``. An IPv6 zone may be written ``%25``, as a URL spells ``%``.

    Raises:
        UsageError: not such a URL (another scheme, no host, a port that is no port), naming
            ``source``, where it came from (``--upstream-proxy``, ``HTTPS_PROXY``), and the
            URL without its user and password.
    """
    import base64
    from urllib.parse import unquote, urlsplit

    shown = shown_url(url)
    expected = "expected http://HOST:PORT"
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        port = parts.port
    except ValueError as error:  # its words may quote a password cut at a '/', '?' or '#'
        why = "not a URL with a host and a port from 1 to 65535" if "@" in url else error
        raise UsageError(f"{source} {shown!r}: {why}; {expected}") from None
    scheme = parts.scheme.lower()
    if scheme != "http":
        why = {
            "https": "a proxy reached over TLS (https://) is not supported",
            "socks4": "a SOCKS proxy is not supported",
            "socks4a": "a SOCKS proxy is not supported",
            "socks5": "a SOCKS proxy is not supported",
            "socks5h": "a SOCKS proxy is not supported",
        }.get(scheme, f"the scheme {scheme}:// is not a proxy's")
        raise UsageError(f"{source} {shown!r}: {expected} ({why})")
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"{source} {shown!r}: {expected}")
    if "://" not in url and port is None:  # a bare word: a typo more often than a host
        raise UsageError(f"{source} {shown!r}: expected http://HOST[:PORT] or HOST:PORT")
    if port == 0:
        raise UsageError(f"{source} {shown!r}: port 0 is no port; {expected}")
    host = parts.hostname.replace("%25", "%", 1) if ":" in parts.hostname else parts.hostname
    if any(char <= " " or char == "\x7f" for char in host):
        raise UsageError(f"{source} {shown!r}: the host holds a space or a control character")
    authorization = None
    if parts.username is not None or parts.password is not None:
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        if ":" in user:  # Basic authentication cannot carry it: the server would split there
            raise UsageError(
                f"{source} {shown!r}: the user name holds ':' once decoded, which "
                "Proxy-Authorization cannot carry"
            )
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        authorization = f"Basic {token}".encode("ascii")
    return UpstreamProxy(host, port or 8080, authorization)


def upstream_address(url: str, source: str = "--upstream-proxy") -> tuple[str, int]:
    """The host and port of an upstream proxy's URL (:func:`upstream_proxy`).

    Raises:
        UsageError: not such a URL, naming ``source``.
    """
    proxy = upstream_proxy(url, source)
    return proxy.host, proxy.port


def chosen_upstream(given: str | None, environ: Mapping[str, str]) -> str | None:
    """The upstream proxy a run chains through: ``--upstream-proxy`` (``given``), else
    ``HTTPS_PROXY`` or ``https_proxy`` in airlock's own environment; ``None``: none. Checked
    (:func:`upstream_proxy`) before the run, naming where it came from (a user and password
    in it left out). The proxy and the git gateway chain through the same one.

    Raises:
        UsageError: it is not ``http://HOST[:PORT]`` or ``HOST:PORT``.
    """
    for source, url in (
        ("--upstream-proxy", given),
        ("HTTPS_PROXY", environ.get("HTTPS_PROXY")),
        ("https_proxy", environ.get("https_proxy")),
    ):
        if not url:
            continue
        if source == "--upstream-proxy":
            upstream_address(url, source)
            return url
        try:
            upstream_address(url, f"{source} in airlock's environment")
        except UsageError as error:  # not of the user's asking here: say what to do instead
            raise UsageError(
                f"{error}; the egress proxy chains only to an HTTP proxy: give one with "
                f"--upstream-proxy http://HOST:PORT (it takes the place of {source}), or "
                f"unset {source} for the run"
            ) from None
        return url
    return None


def chosen_no_proxy(environ: Mapping[str, str]) -> str:
    """The hosts reached past the upstream proxy: airlock's own ``no_proxy`` or ``NO_PROXY``."""
    return environ.get("no_proxy") or environ.get("NO_PROXY") or ""


@dataclass(frozen=True, slots=True)
class EgressConfig:
    """Everything a run's proxy needs; built at the edge (the CLI), never from raw dicts inside.

    Precedence, written once in :mod:`airlock.egress.rules`: a deny rule beats any allow rule;
    then an ask rule refuses, unless ``--allow`` or ``allow_all`` passes it; then ``allow``
    (the user's and the settings'), then ``default_allow`` (the destinations of the flows the
    policy engine says are on); ``allow_all`` lets everything else through, still audited;
    otherwise the connection is refused.
    """

    allow: tuple[HostRule, ...] = ()
    deny: tuple[HostRule, ...] = ()
    default_allow: tuple[HostRule, ...] = ()
    allow_all: bool = False
    ask: tuple[HostRule, ...] = ()
    """``WebFetch(domain:…)`` rules of ``permissions.ask``: the web-fetch guard asks the user
    first; the proxy cannot, so it refuses what they cover, saying so, unless the user's own
    command line lets the host through (``--allow``, ``--allow-all``)."""
    managed_lock: str | None = None
    """The managed settings that set ``sandbox.network.allowManagedDomainsOnly``, in words
    (their file), or ``None``: then only their allow rules (and the policy's flows) count, and
    a refusal's hint says that only those settings can allow a host."""
    allow_private: bool = False
    """Hosts a rule of ``allow`` that :attr:`HostRule.reaches_private` names (``--allow HOST``,
    no wildcard) may resolve to loopback, private, link-local or this host's addresses (a test
    server, an intranet host). Off: such addresses are always refused."""
    upstream_proxy: str | None = field(default=None, repr=False)
    """``http://[USER:PASSWORD@]HOST:PORT`` of a proxy to chain every connection through (no
    address check then but for addresses and this machine's own names: the upstream proxy
    resolves). Not in the repr: it may hold a password (:func:`shown_url` shows it)."""
    no_proxy: str = ""
    """Hosts reached directly, not through ``upstream_proxy`` (airlock's own ``NO_PROXY``: names,
    ``.suffix``, ``*``; :func:`airlock.policy.hosts.bypasses_proxy`); the address check applies
    to them as to any direct connection."""
    limits: Limits = field(default_factory=Limits)
    audit_log: Path | None = None
    """The JSON-lines audit log; ``None`` keeps no log (a benchmark's "audit off" row)."""
    heads_file: Path | None = None
    """Where each run's checkpoints and final hash go, apart from the log; ``None``: under the
    config dir of the process's environment (:func:`airlock.egress.audit.audit_paths`)."""
    flush_interval: float = 0.05
    """Seconds between durable flushes of the audit log."""
    gateway: str | None = None
    """The Unix socket the git credential gateway listens on (``egress.gateway``), in a folder
    only airlock's user can enter: plain-HTTP requests for ``git.airlock.internal`` go there,
    past the host rules and address check; ``None``: no gateway (that name is refused)."""
    inspection: InspectionConfig | None = None
    """Hosts whose TLS is read (``--inspect``), with the run's CA and the engine's decisions;
    ``None``: every CONNECT stays an opaque tunnel."""

    @staticmethod
    def rules(texts: list[str] | tuple[str, ...], origin: str) -> tuple[HostRule, ...]:
        """Parse many patterns from one origin (e.g. every ``--allow``).

        Raises:
            UsageError: the first pattern that cannot be read.
        """
        return tuple(HostRule.parse(text, origin) for text in texts)
