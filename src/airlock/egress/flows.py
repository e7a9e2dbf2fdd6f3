"""Which data flow a request belongs to, and whether the policy engine lets it out.

Theory of operation
-------------------
A host alone cannot tell a model request from a metrics batch: the reference agent sends both
to ``api.anthropic.com``. Once the proxy sees a request's method, host and path (inspected
hosts only), :func:`classify` names its flow from one signature table per agent
(:data:`AGENT_SIGNATURES`), first match wins; a request no signature covers is
``unclassified``. The path is matched in its normalised form (:func:`normalize_path`: dot
segments, percent-encoded letters and doubled slashes resolved as a server resolves them) and
every other way a server might read it (:func:`readings`), a row's path on a segment boundary,
so no spelling of a request escapes the flow it reaches; a path whose readings name two flows
is ``unclassified``. On a vendor API host a path is also read below a prefix (a gateway's,
``ANTHROPIC_BASE_URL=https://gw/anthropic``: :func:`below_a_prefix`). The request itself goes
out as written. :func:`enforce` then asks the engine's :class:`~airlock.policy.Decisions`
whether that flow may leave the machine, and words the refusal from the decision's own
reasons, so the variable or setting that turned the flow off is named as the engine named it
(:func:`verdict_for` does both, and says why an unclassified request is so:
:func:`why_unclassified`).
A request is refused when any reading of its path, or of a path its query holds
(:func:`paths_in_query`) or a header names (:func:`url_overrides`), falls under a flow that
is off (:func:`off_flow`), at its host or at one a header names (:func:`host_overrides`);
the vendor API's rows are read so on every inspected host, not only on those the run names
as the vendor's (:func:`off_rows`).
The agent's start-up configuration (:data:`STARTUP_PATHS`) counts with ``model_requests``
and is refused while that decision's ``startup_config`` is false, at the hosts the run takes
for the vendor API's (not in the paths of every inspected host); so is an unclassified
request to the vendor's own API host then (:func:`_vendor_quiet`): the reference then sends
it nothing but the model's requests and the WebFetch preflight.
A model call (:data:`MODEL_CALLS`) to the vendor's own API host is refused when the engine
sends model requests elsewhere (its ``model_requests`` decision's ``vendor_api``: Bedrock,
Vertex, Foundry, or a base URL naming another host), though the flow is on.
Nothing here re-derives a rule of the engine. :func:`compare` sets the traffic seen next to
what the engine predicted, for the end-of-run report.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from airlock.egress.report import failed_before_it_left
from airlock.policy import Decisions, FlowId, State
from airlock.policy.hosts import HostError, bracketed, parse_host

UNCLASSIFIED = "unclassified"
"""The flow of a request no signature matches."""

API_HOST = "$api"
"""Stands, in a signature, for the vendor API's hosts: ``api.anthropic.com`` and any the run adds
(the host of ``ANTHROPIC_BASE_URL``, or a stand-in on loopback)."""

DEFAULT_API_HOSTS = frozenset({"api.anthropic.com"})

SENDING_STATES = frozenset({State.ON, State.UPLOAD})
"""States in which a flow's requests may leave the machine. ``otel_only`` sends to the user's
own collector only and ``local_archive`` writes here; a request of such a flow to the vendor is
refused like one of a flow that is off."""


@dataclass(frozen=True, slots=True)
class Signature:
    """One row of a signature table: requests it covers, the flow they belong to, and why.

    ``host`` is a name (case-insensitive), ``*.suffix`` for any subdomain, ``label.*`` for a
    first label followed by anything (a region), ``*`` for any host, or :data:`API_HOST`.
    ``path`` is a prefix of the normalised path (:func:`normalize_path`: the query string is
    not looked at), matched on a segment boundary (:func:`under`): ``/v1/messages`` covers
    ``/v1/messages`` and ``/v1/messages/count_tokens``, never ``/v1/messagesX``; a prefix
    ending in ``/`` or ``-`` names the start of a segment and covers whatever follows it
    (``/claude-code-dist-`` covers every release bucket). ``method`` is a method or ``*`` for
    any.
    """

    method: str
    host: str
    path: str
    flow: str
    why: str

    def matches(self, method: str, host: str, path: str, api_hosts: frozenset[str]) -> bool:
        """Whether a request with this method, host (lower case) and path (normalised) is
        covered."""
        if self.method != "*" and self.method != method:
            return False
        return under(path, self.path) and _host_matches(self.host, host, api_hosts)


def under(path: str, prefix: str) -> bool:
    """Whether ``path`` is ``prefix`` or lies under it, on a segment boundary (a ``prefix``
    ending in ``/`` or ``-`` covers whatever follows it)."""
    if not path.startswith(prefix):
        return False
    return prefix.endswith(("/", "-")) or len(path) == len(prefix) or path[len(prefix)] == "/"


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/\\")
"""Decoded where percent-encoded: RFC 3986's unreserved characters, and ``/`` and ``\\``,
which some servers decode before routing."""
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _decode_unreserved(found: re.Match[str]) -> str:
    char = chr(int(found[1], 16))
    return char if char in _UNRESERVED else found[0]


def normalize_path(target: str) -> str:
    """The path of a request target as the signatures are matched against it.

    The spellings a server reads as one path are made one path, so that no spelling of a
    request escapes the flow it reaches:

    1. the query (from ``?``) and any fragment (from ``#``) are dropped;
    2. percent-encoded unreserved characters are decoded (RFC 3986 2.3: ``ALPHA DIGIT - . _
       ~``): ``%65`` is ``e``, ``%2E`` is ``.``; so are ``%2F`` and ``%5C``, and a backslash
       is read as ``/``, as some servers read them; other encodings (``%25``) stay as they
       are, and decoding is done once (``%2565`` is ``%2565``);
    3. dot segments are removed (RFC 3986 5.2.4), the decoded ones too: ``/a/b/../c`` is
       ``/a/c``, ``/a/%2e%2e/c`` is ``/c``; ``..`` never climbs above ``/``;
    4. repeated slashes are collapsed: ``//a///b`` is ``/a/b`` (a server that merges them
       would route there).

    The result starts with ``/`` and keeps a final ``/`` (one a dot segment ended in too:
    ``/a/b/..`` is ``/a/``). Only the classification reads it: the request goes out as the
    client wrote it.

        >>> normalize_path("/v1/messages/../../api/%65vent_logging//v2/batch?x=1")
        '/api/event_logging/v2/batch'
    """
    path = target.split("?", 1)[0].split("#", 1)[0]
    path = _PERCENT.sub(_decode_unreserved, path).replace("\\", "/")
    segments: list[str] = []
    parts = path.split("/")
    for part in parts:
        if part == "..":
            if segments:
                segments.pop()
        elif part not in ("", "."):
            segments.append(part)
    trailing = bool(segments) and parts[-1] in ("", ".", "..")
    return "/" + "/".join(segments) + ("/" if trailing else "")


_ANY_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
WIDE_PERCENT = re.compile(r"%[uU]([0-9A-Fa-f]{4})")
"""IIS's ``%uXXXX``: a character by its code point (``%u002f`` is ``/``)."""
_OVERLONG = re.compile(
    r"%[fF]0%([0-9A-Fa-f]{2})%([0-9A-Fa-f]{2})%([0-9A-Fa-f]{2})"
    r"|%[eE]0%([0-9A-Fa-f]{2})%([0-9A-Fa-f]{2})"
    r"|%[cC]([01])%([0-9A-Fa-f]{2})"
)
"""A character written in more UTF-8 bytes than it needs (overlong: ``%c0%af`` is ``/``,
``%e0%80%ae`` is ``.``), which a lax decoder (IIS's, old Java's) reads as that character."""
_BLANK = "".join(map(chr, range(0x21)))
"""Control characters and the space: what Java's ``String.trim`` (Spring's path matching,
which trims each segment) takes off both ends of a segment, and what C reads a NUL as the end
of."""


def _overlong(found: re.Match[str]) -> str:
    """The character an overlong UTF-8 sequence stands for, each continuation byte's low six
    bits taken whatever its high ones are (as the lax decoders that read them did)."""
    groups = [int(group, 16) for group in found.groups() if group is not None]
    if found[0][1] in "fF":
        code = (groups[0] & 0x3F) << 12 | (groups[1] & 0x3F) << 6 | groups[2] & 0x3F
    elif found[0][1] in "eE":
        code = (groups[0] & 0x3F) << 6 | groups[1] & 0x3F
    else:  # %c0 or %c1: the lead's low bit, then six more
        code = groups[0] << 6 | groups[1] & 0x3F
    return chr(code)


_ASCII_CASES = str.maketrans({"\u0131": "i", "\u0130": "i"})
"""The dotless ``ı`` and the dotted ``İ``, which case-insensitive matchers take for ``i``
though Unicode's case folding does not: Java's ``equalsIgnoreCase`` (Spring's path matcher
with case sensitivity off compares a literal segment with it) compares each character's
upper case (``ı`` is ``I``) and then its lower case (``İ`` is ``i``), and Python's ``re``
with ``IGNORECASE`` matches an ``i`` in a pattern with either (its documentation names them,
with the long s and the Kelvin sign, which case folding and NFKC already make ``s`` and
``k``)."""


def _as_text(decoded: str) -> str:
    """``decoded`` (each percent escape one character, a byte) read as UTF-8, its invalid
    bytes dropped, in Unicode's compatibility form and case-folded: what a server that
    matches paths as Unicode text, case-insensitively, reads (``%ef%bd%85`` is a full-width
    ``e``, which NFKC makes ``e``; ``%c5%bf``, the long s, folds to ``s``; ``%c4%b1``, the
    dotless ``ı``, is ``i``: :data:`_ASCII_CASES`)."""
    try:
        raw = decoded.encode("latin-1")
    except UnicodeEncodeError:  # a character past one byte (no target read as Latin-1)
        raw = decoded.encode("utf-8", "surrogatepass")
    text = raw.decode("utf-8", "ignore")
    text = WIDE_PERCENT.sub(lambda found: chr(int(found[1], 16)), text)
    return unicodedata.normalize("NFKC", text.translate(_ASCII_CASES)).casefold()


def readings(target: str) -> set[str]:
    """Every path a server might route ``target`` to, normalised: the flow check refuses a
    request when any of them belongs to a flow that is off (:func:`off_flow`).

    Servers differ: some decode every percent escape before routing (``%40`` is ``@``; IIS
    its ``%u0040`` too, and an overlong ``%c0%af`` as ``/``), others keep ``%2F`` as data;
    some resolve dot segments, others route on the raw ones
    (``/api/event_logging/%2F..%2Fv1/messages`` is under ``/api/event_logging/`` there);
    Tomcat and Spring drop ``;parameters`` from segments and read ``..;`` as ``..``; IIS
    drops a segment's trailing dots and spaces, Spring trims control characters and spaces
    off both ends of a segment, and a server written in C ends the path at a NUL
    (``%00``); many ignore case, some as Unicode does (a full-width letter, NFKC, is the
    letter); one that parses the target as a URL
    relative to its own (WHATWG's ``new URL(target, base)``) reads ``//x/api/…`` (or
    ``/\\x/api/…``) as the authority ``x`` and the path ``/api/…``. So the path is read each
    of those ways, and their combinations. (The query is not read here: a path in it is
    :func:`paths_in_query`'s.)"""
    path = target.split("?", 1)[0].split("#", 1)[0]
    if (
        path.isascii()
        and path.islower()
        and not path.startswith("//")
        and not any(c in path for c in "%;\\.")
    ):
        return {normalize_path(path)}  # one reading (the common case: no work for the rest)
    every = _ANY_PERCENT.sub(lambda found: chr(int(found[1], 16)), path)
    wide = WIDE_PERCENT.sub(lambda found: chr(int(found[1], 16)), every)
    lax = _ANY_PERCENT.sub(lambda found: chr(int(found[1], 16)), _OVERLONG.sub(_overlong, path))
    decoded = {
        path,
        _PERCENT.sub(_decode_unreserved, path),
        every,
        wide,
        lax,
        _as_text(every),
        _as_text(lax),
    }
    decoded |= {text.split("\x00", 1)[0] for text in decoded}  # C's end of a string
    found: set[str] = set()
    for text in decoded:
        slashed = text.replace("\\", "/")
        for variant in (text, slashed, without_authority(slashed)):
            segments = [part for part in variant.split("/") if part]
            bare = [part.split(";", 1)[0] for part in segments]
            undotted = [part.rstrip(". ") or part for part in bare]  # IIS drops both
            trimmed = [part.strip(_BLANK).rstrip("." + _BLANK) or part for part in bare]
            for parts in (segments, bare, undotted, trimmed):
                raw = "/" + "/".join(parts) + ("/" if variant.endswith("/") else "")
                for reading in (raw, normalize_path(raw)):
                    found.add(reading)
                    found.add(reading.lower())
    return found


def paths_in_query(target: str) -> list[str]:
    """What in ``target``'s query could be a path a framework routes by, to be read as one
    (:func:`off_flow`): the query itself (``/index.php?/api/…``, CodeIgniter's way), and
    each field's value (``?_url=/api/…``, Phalcon's), when it starts with ``/`` or ``\\``
    (percent-encoded or not). The flow a request is named by is its path's; a path in its
    query can only get it refused."""
    query = target.partition("?")[2].split("#", 1)[0]
    if not any(mark in query for mark in "/\\%"):  # no path can start in it (the common case)
        return []
    fields = [query, *(field.partition("=")[2] for field in re.split(r"[&;]", query))]
    paths = []
    for field in fields:
        start = _ANY_PERCENT.sub(lambda found: chr(int(found[1], 16)), field[:9]).lstrip(_BLANK)
        if start.startswith(("/", "\\")):
            paths.append(field)
    return paths


def without_authority(path: str) -> str:
    """``path`` as a URL parser reads a target that starts with ``//`` (network-path
    reference): the slashes and the authority after them dropped (``//x/api/y`` is ``/api/y``,
    ``///api/y`` is ``/y``); any other path as it is."""
    if not path.startswith("//"):
        return path
    rest = path.lstrip("/")
    cut = rest.find("/")
    return "/" if cut < 0 else rest[cut:]


def _host_matches(pattern: str, host: str, api_hosts: frozenset[str]) -> bool:
    """``$api``, ``*`` (any), ``*.suffix`` (the name itself or any subdomain: Sentry's older
    DSNs post to ``sentry.io``), ``label.*`` (any region), ``start*.suffix`` (a first label
    that starts so: a bucket named by its host), or a name."""
    if pattern == API_HOST:
        return host in api_hosts
    if pattern == "*":
        return True
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) or host == pattern[2:]
    if pattern.endswith(".*"):
        return host.startswith(pattern[:-1])
    start, star, suffix = pattern.partition("*")
    if star:
        label = host.removesuffix(suffix)
        return label != host and label.startswith(start) and "." not in label
    return host == pattern


_STARTUP = (
    "start-up configuration (bootstrap, feature availability, server URLs): observed still "
    "sent with DISABLE_TELEMETRY, so not metrics, and never with "
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC nor on Bedrock, Vertex or Foundry; it counts "
    "with model_requests (account and version facts, no conversation), whose decision's "
    "startup_config says whether it goes"
)
_POLICY = (
    "the organisation's remote managed settings and policy limits: seen sent to the vendor's "
    "API by Claude Code 2.1.328 with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC too (through "
    "airlock's inspection, without ANTHROPIC_BASE_URL), so essential: the organisation's "
    "policy reaches the agent by them, and refusing them would let it silently stop applying; "
    "they count with model_requests, which is always on (account and organisation facts, no "
    "conversation)"
)

CLAUDE_CODE: tuple[Signature, ...] = (
    Signature("POST", API_HOST, "/v1/messages", FlowId.MODEL_REQUESTS, "the model (observed)"),
    Signature("GET", API_HOST, "/v1/models", FlowId.MODEL_REQUESTS, "the model list"),
    Signature(
        "POST",
        API_HOST,
        "/v1/complete",
        FlowId.MODEL_REQUESTS,
        "the model's older text-completion endpoint (in the agent's program, with its SDK)",
    ),
    Signature(
        "*",
        API_HOST,
        "/v1/files",
        FlowId.MODEL_REQUESTS,
        "files given to the model (the Files API, in the agent's program, with its SDK)",
    ),
    Signature("*", API_HOST, "/api/oauth/", FlowId.MODEL_REQUESTS, "sign-in for the model API"),
    Signature("GET", API_HOST, "/api/claude_code/settings", FlowId.MODEL_REQUESTS, _POLICY),
    Signature("GET", API_HOST, "/api/claude_code/policy_limits", FlowId.MODEL_REQUESTS, _POLICY),
    Signature("GET", API_HOST, "/api/claude_cli/bootstrap", FlowId.MODEL_REQUESTS, _STARTUP),
    Signature("GET", API_HOST, "/api/claude_code_penguin_mode", FlowId.MODEL_REQUESTS, _STARTUP),
    Signature("GET", API_HOST, "/api/directory/server-urls", FlowId.MODEL_REQUESTS, _STARTUP),
    Signature(
        "GET",
        API_HOST,
        "/mcp-registry/",
        FlowId.MODEL_REQUESTS,
        "the MCP server registry listing, fetched at start-up (seen through airlock's inspection "
        "with Claude Code 2.1.197 on 2026-12-02: still sent with DISABLE_TELEMETRY, gone with "
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC, like the rest of the start-up configuration)",
    ),
    Signature(
        "*",
        API_HOST,
        "/api/event_logging/",
        FlowId.METRICS,
        "metrics batches (observed: ~3 KB and ~270 KB a turn; gone with DISABLE_TELEMETRY)",
    ),
    Signature(
        "*",
        API_HOST,
        "/api/eval/",
        FlowId.METRICS,
        "feature flags: observed gone with DISABLE_TELEMETRY or DO_NOT_TRACK=1 like metrics, and "
        "the engine's metrics flow names feature-flag requests as part of it",
    ),
    Signature(
        "GET",
        API_HOST,
        "/api/claude_code/organizations/metrics_enabled",
        FlowId.METRICS,
        "asks whether the organisation collects metrics (observed right before the batches)",
    ),
    Signature(
        "*",
        API_HOST,
        "/api/claude_code/metrics",
        FlowId.METRICS,
        "the organisation's metrics export (an OpenTelemetry exporter the agent's program calls "
        "'BigQuery metrics', posting to the API's /api/claude_code/metrics: read in Claude Code "
        "2.1.328's program)",
    ),
    Signature(
        "*", "statsig.anthropic.com", "/", FlowId.METRICS, "metrics host of earlier versions"
    ),
    Signature(
        "GET",
        "*",
        "/api/web/domain_info",
        FlowId.WEBFETCH_PREFLIGHT,
        "the WebFetch preflight: the hostname alone (observed), on the vendor API or the "
        "configured domain-safety service",
    ),
    Signature(
        "GET",
        "*",
        "/api/web/domain_hashes",
        FlowId.WEBFETCH_PREFLIGHT,
        "the WebFetch preflight in airlock's private mode (hash prefixes)",
    ),
    Signature(
        "POST",
        API_HOST,
        "/api/claude_cli_feedback",
        FlowId.FEEDBACK_COMMAND,
        "a /feedback (/bug) report with its transcript",
    ),
    Signature(
        "POST",
        API_HOST,
        "/api/claude_code_shared_session_transcripts",
        FlowId.TRANSCRIPT_SHARE,
        "the transcript shared after a survey rating",
    ),
    Signature(
        "POST",
        API_HOST,
        "/api/claude_code/feedback_survey",
        FlowId.SURVEY_RATING,
        "a survey rating sent on its own (the reference also logs ratings inside metrics "
        "batches, which then count as metrics)",
    ),
    Signature(
        "POST",
        "*.sentry.io",
        "/api/",
        FlowId.ERROR_REPORTING,
        "Sentry envelopes and events: the engine's error-reporting destination",
    ),
    Signature(
        "GET",
        "registry.npmjs.org",
        "/@anthropic-ai",
        FlowId.AUTO_UPDATE,
        "the npm install's update check and download",
    ),
    Signature(
        "GET",
        "registry.npmjs.org",
        "/-/package/@anthropic-ai",
        FlowId.AUTO_UPDATE,
        "the npm install's dist-tags check",
    ),
    Signature(
        "GET",
        "storage.googleapis.com",
        "/claude-code-dist-",
        FlowId.AUTO_UPDATE,
        "the native installer's release bucket",
    ),
    Signature(
        "GET",
        "claude-code-dist-*.storage.googleapis.com",
        "/",
        FlowId.AUTO_UPDATE,
        "the native installer's release bucket, named by its host (Cloud Storage's "
        "virtual-hosted URLs)",
    ),
    *(
        Signature(
            "GET",
            host,
            path,
            FlowId.AUTO_UPDATE,
            "the native installer's release bucket, through Cloud Storage's JSON API",
        )
        for host in ("storage.googleapis.com", "www.googleapis.com")
        for path in ("/storage/v1/b/claude-code-dist-", "/download/storage/v1/b/claude-code-dist-")
    ),
    Signature(
        "GET",
        "storage.cloud.google.com",
        "/claude-code-dist-",
        FlowId.AUTO_UPDATE,
        "the native installer's release bucket, through Cloud Storage's signed-in downloads",
    ),
    Signature(
        "GET",
        "downloads.claude.ai",
        "/claude-code-releases/",
        FlowId.AUTO_UPDATE,
        "the native installer's release host",
    ),
    Signature(
        "POST",
        API_HOST,
        "/model/",
        FlowId.MODEL_REQUESTS,
        "the model on Amazon Bedrock through a gateway (ANTHROPIC_BEDROCK_BASE_URL: the "
        "engine's model host, one of the vendor API's here)",
    ),
    Signature(
        "POST",
        API_HOST,
        "/projects/",
        FlowId.MODEL_REQUESTS,
        "the model on Vertex AI through a gateway (ANTHROPIC_VERTEX_BASE_URL), below /v1 or not",
    ),
    Signature(
        "POST",
        "bedrock-runtime.*",
        "/model/",
        FlowId.MODEL_REQUESTS,
        "the model on Amazon Bedrock",
    ),
    Signature(
        "GET",
        "bedrock.*",
        "/inference-profiles",
        FlowId.MODEL_REQUESTS,
        "Amazon Bedrock's inference profiles, asked for by the reference before its first model "
        "request (seen with Claude Code 2.1.328 through airlock's inspection)",
    ),
    Signature(
        "GET",
        API_HOST,
        "/inference-profiles",
        FlowId.MODEL_REQUESTS,
        "Amazon Bedrock's inference profiles through a gateway (ANTHROPIC_BEDROCK_BASE_URL)",
    ),
    Signature(
        "POST",
        "*.googleapis.com",
        "/v1/projects/",
        FlowId.MODEL_REQUESTS,
        "the model on Google Cloud Vertex AI",
    ),
    Signature(
        "POST",
        "oauth2.googleapis.com",
        "/token",
        FlowId.MODEL_REQUESTS,
        "Google's token endpoint: the Vertex AI credentials exchanged for an access token before "
        "the first model request (seen with Claude Code 2.1.328 through airlock's proxy)",
    ),
)
"""The reference agent's (Claude Code's) requests, from ``reference/observed.md`` and its docs."""

AGENT_SIGNATURES: Mapping[str, tuple[Signature, ...]] = {"claude-code": CLAUDE_CODE}
"""One signature table per agent."""

DEFAULT_AGENT = "claude-code"


_ANY_PREFIX = frozenset({API_HOST, "*"})
"""Hosts of the rows whose paths a gateway may serve under a prefix of its own: the vendor
API's, and those of any host (the WebFetch preflight, on the API or its own service)."""

MODEL_CALLS = frozenset(
    {
        "/v1/messages",
        "/v1/models",
        "/v1/complete",
        "/v1/files",
        "/model/",
        "/projects/",
        "/inference-profiles",
    }
)
"""The paths of the vendor API's rows that are the model itself (prompts and outputs, the
models' lists: Bedrock's inference profiles too, a gateway's row), not sign-in: on the
vendor's own host (:data:`DEFAULT_API_HOSTS`) a request of one is refused
when the engine sends model requests elsewhere (its ``model_requests`` decision's
``vendor_api`` is false: Bedrock, Vertex, Foundry, or a base URL naming another host)."""


def _model_elsewhere(row: Signature, hosts: Iterable[str], decisions: Decisions) -> bool:
    """Whether ``row`` is a model call (:data:`MODEL_CALLS`) that the engine's decision does
    not let go to any of ``hosts`` (lower case, no final dot): one of them is the vendor's own
    API host, and the engine sends model requests elsewhere."""
    return (
        row.host == API_HOST
        and row.path in MODEL_CALLS
        and decisions[FlowId.MODEL_REQUESTS].parameters.get("vendor_api") is False
        and any(host in DEFAULT_API_HOSTS for host in hosts)
    )


STARTUP_PATHS = frozenset(
    {
        "/api/claude_cli/bootstrap",
        "/api/claude_code_penguin_mode",
        "/api/directory/server-urls",
        "/mcp-registry/",
    }
)
"""The paths of the vendor API's rows that are the agent's start-up configuration: they count
with ``model_requests``, and a request of one is refused when that decision's
``startup_config`` is false (``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``; Bedrock, Vertex,
Foundry; failing closed)."""

STARTUP_OFF = "on; start-up configuration off"
"""The state a refusal under :data:`STARTUP_PATHS` shows: the flow is on, that part is not."""


def _startup_off(row: Signature, decisions: Decisions) -> bool:
    """Whether ``row`` is one of the agent's start-up configuration requests
    (:data:`STARTUP_PATHS`) and the engine has them off."""
    return (
        row.host == API_HOST
        and row.path in STARTUP_PATHS
        and decisions[FlowId.MODEL_REQUESTS].parameters.get("startup_config") is False
    )


def _part_off(
    row: Signature, hosts: Iterable[str], decisions: Decisions, api_hosts: frozenset[str]
) -> bool:
    """Whether ``row``'s flow is on but the engine refuses its part of it at ``hosts``: a
    model call to the vendor's own host while model requests go elsewhere
    (:func:`_model_elsewhere`), or the start-up configuration while it is off
    (:func:`_startup_off`) at a host the run takes for the vendor API's (``api_hosts``):
    read on every host, its paths (``/mcp-registry/``) anywhere in a path refused a download
    from a code or package host of a repository or package of that name."""
    return _model_elsewhere(row, hosts, decisions) or (
        _startup_off(row, decisions) and any(host in api_hosts for host in hosts)
    )


def some_part_off(decisions: Decisions) -> bool:
    """Whether the engine refuses a part of ``model_requests`` anywhere (its ``vendor_api``
    or ``startup_config`` is false); else no model request is refused as one, and its rows
    are not read again for it."""
    parameters = decisions[FlowId.MODEL_REQUESTS].parameters
    return parameters.get("vendor_api") is False or parameters.get("startup_config") is False


def _startup_refusal(decisions: Decisions) -> Verdict:
    """The refusal of a start-up configuration request while the engine has it off, in the
    engine's words."""
    decision = decisions[FlowId.MODEL_REQUESTS]
    said = "; ".join(decision.reasons)
    return Verdict(
        str(decision.id),
        False,
        STARTUP_OFF,
        f"flow {decision.id} is on, but not the agent's start-up configuration, so airlock "
        f"refused this request: {said}",
    )


def _model_refusal(host: str, decisions: Decisions) -> Verdict:
    """The refusal of a model call to the vendor's own API host while the engine sends model
    requests elsewhere, in the engine's words."""
    decision = decisions[FlowId.MODEL_REQUESTS]
    said = "; ".join(decision.reasons)
    return Verdict(
        str(decision.id),
        False,
        str(decision.state),
        f"flow {decision.id} goes to {decision.destination}, not to {host}, so airlock refused "
        f"this request: {said}",
    )


def classify(
    method: str,
    host: str,
    path: str,
    *,
    agent: str = DEFAULT_AGENT,
    api_hosts: Iterable[str] = DEFAULT_API_HOSTS,
) -> str:
    """The flow id a request belongs to, or :data:`UNCLASSIFIED`.

    Args:
        method: The request's method.
        host: The host it was sent to (a trailing ``.`` and case do not matter).
        path: The request target's path; matched read every way a server might
            (:func:`readings`, :func:`normalize_path` among them), so a query string after
            ``?`` is ignored, and dot segments, percent-encoded letters and doubled slashes
            change nothing. When those readings name more than one flow (a server that
            reads ``..;`` as ``..`` sends ``/v1/messages/..;/../api/event_logging/v2/batch``
            to the metrics batch, one that resolves dot segments first to the model), the
            request is :data:`UNCLASSIFIED`: it is not recorded as either. Whether any of them
            is a flow that is off is :func:`off_flow`'s to say, which refuses it as that
            flow.
        agent: Whose signature table to use (a key of :data:`AGENT_SIGNATURES`).
        api_hosts: The hosts that stand for the vendor API (:data:`API_HOST`).

    Raises:
        KeyError: ``agent`` has no table.
    """
    return _read(method, host, path, agent, api_hosts).flow


@dataclass(frozen=True, slots=True)
class _Read:
    """A request read against ``agent``'s table: every reading of its path and the flows
    they name, for :func:`classify` to name its flow and :func:`why_unclassified` to say why
    it names none, from one reading."""

    table: tuple[Signature, ...]
    method: str
    host: str
    hosts: frozenset[str]
    found: tuple[str, ...]
    """Every reading of the path, sorted (:func:`readings`)."""
    rows: tuple[Signature | None, ...]
    """The first row that covers each reading (:func:`_first_row`), in their order."""
    named: frozenset[str]
    """The flows the readings name (a reading no row covers names none)."""

    @property
    def flow(self) -> str:
        """The one flow the readings name, or :data:`UNCLASSIFIED` (none, or two)."""
        return next(iter(self.named)) if len(self.named) == 1 else UNCLASSIFIED


def _read(method: str, host: str, path: str, agent: str, api_hosts: Iterable[str]) -> _Read:
    """The request read against ``agent``'s table (see :class:`_Read`)."""
    table = AGENT_SIGNATURES[agent]
    method = method.upper()
    host = host.lower().rstrip(".")
    hosts = api_hosts if isinstance(api_hosts, frozenset) else frozenset(api_hosts)
    found = tuple(sorted(readings(path)))
    rows = tuple(_first_row(table, method, host, reading, hosts) for reading in found)
    named = frozenset(str(row.flow) for row in rows if row is not None)  # None: no flow
    return _Read(table, method, host, hosts, found, rows, named)


def flows_at(
    host: str, *, agent: str = DEFAULT_AGENT, api_hosts: Iterable[str] = DEFAULT_API_HOSTS
) -> tuple[str, ...]:
    """The flows ``agent``'s table names at ``host`` by that host (its rows for any host,
    such as the web-fetch preflight's, left out), sorted: what connections to ``host`` may
    carry, for a report to say of those it could not read. Empty for a host no row names."""
    host = host.lower().rstrip(".")
    hosts = api_hosts if isinstance(api_hosts, frozenset) else frozenset(api_hosts)
    return tuple(
        sorted(
            {
                str(row.flow)
                for row in AGENT_SIGNATURES[agent]
                if row.host != "*" and _host_matches(row.host, host, hosts)
            }
        )
    )


def _first_row(
    table: Iterable[Signature], method: str, host: str, path: str, api_hosts: frozenset[str]
) -> Signature | None:
    """The first row of ``table`` that covers one reading of a path; on a vendor API host,
    when none does, the first row of the API's (or of any host's) that covers the path below
    a prefix (:func:`below_a_prefix`); ``None`` when no row covers it."""
    table = tuple(table)
    for row in table:
        if row.matches(method, host, path, api_hosts):
            return row
    if host not in api_hosts:
        return None
    found: list[tuple[int, int, Signature]] = []  # (where the row's path starts, row order, row)
    for order, row in enumerate(table):
        if row.host not in _ANY_PREFIX or not row.matches(method, host, row.path, api_hosts):
            continue  # another host's row, or another method's (its own path always matches)
        start = below_a_prefix(path, row.path)
        if start:
            found.append((start, order, row))
    return min(found, key=lambda place: place[:2])[2] if found else None


def below_a_prefix(path: str, prefix: str) -> int:
    """Where, past the first segment, ``prefix`` (a row's path) first covers the rest of
    ``path`` (:func:`under`), or ``0``: a gateway that serves the vendor's API under a
    prefix of its own (``ANTHROPIC_BASE_URL=https://gw/anthropic``) sends
    ``/anthropic/v1/messages`` on as ``/v1/messages``. The earliest place is the one a
    gateway strips the least to reach.

        >>> below_a_prefix("/gw/anthropic/v1/messages", "/v1/messages")
        13
    """
    start = path.find(prefix, 1)
    while start > 0:
        if under(path[start:], prefix):
            return start
        start = path.find(prefix, start + 1)
    return 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request of a flow may leave, and why, in the engine's words."""

    flow: str
    allowed: bool
    state: str
    reason: str


NO_SIGNATURE = "no flow signature matches: the host rules decide"
"""The reason of an unclassified request that no row of the table covers in any way
(:func:`why_unclassified` says when one nearly does)."""


def enforce(flow: str, decisions: Decisions, *, unclassified: str = NO_SIGNATURE) -> Verdict:
    """Whether a request classified as ``flow`` may leave, according to ``decisions``.

    An unclassified request is not the engine's to decide (the proxy's host rules still
    apply); its reason is ``unclassified`` (:func:`why_unclassified` words one for the
    request: :func:`verdict_for`). A flow whose state is not one that sends
    (:data:`SENDING_STATES`) is refused, and the reason carries every reason the engine gave,
    which name the variables and settings (and the files they came from) that turned it off.
    """
    if flow == UNCLASSIFIED:
        return Verdict(flow, True, "", unclassified)
    decision = decisions[flow]
    said = "; ".join(decision.reasons)
    if decision.state in SENDING_STATES:
        return Verdict(flow, True, str(decision.state), f"flow {flow} is {decision.state}: {said}")
    return Verdict(
        flow,
        False,
        str(decision.state),
        f"flow {flow} is {decision.state}, so airlock refused this request: {said}",
    )


def verdict_for(
    method: str,
    host: str,
    path: str,
    decisions: Decisions,
    *,
    agent: str = DEFAULT_AGENT,
    api_hosts: Iterable[str] = DEFAULT_API_HOSTS,
) -> Verdict:
    """:func:`classify` and :func:`enforce` in one: the request's flow and whether it may
    leave; an unclassified request's reason says why no row named it
    (:func:`why_unclassified`), so the audit record does not say "no signature matches" of
    a vendor API path sent to another host."""
    read = _read(method, host, path, agent, api_hosts)
    flow = read.flow
    if flow == FlowId.MODEL_REQUESTS and some_part_off(decisions):
        for row in read.rows:  # as :func:`_read` found them, not looked for again
            if row is not None and _model_elsewhere(row, (read.host,), decisions):
                return _model_refusal(read.host, decisions)
            if row is not None and _startup_off(row, decisions):
                return _startup_refusal(decisions)
    if flow != UNCLASSIFIED:
        return enforce(flow, decisions)
    quiet = _vendor_quiet(read.host, decisions)
    if quiet is not None:
        return quiet
    return enforce(UNCLASSIFIED, decisions, unclassified=_why(read))


def _vendor_quiet(host: str, decisions: Decisions) -> Verdict | None:
    """The refusal of an unclassified request to the vendor's own API host while the engine
    has the agent's start-up configuration off (``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``:
    "no request at all besides the model's"; Bedrock, Vertex, Foundry: "no request to the
    vendor besides the model's", as observed): the host is let out then for the model, the
    WebFetch preflight and the flows that are on, whose requests the table names, and for
    nothing else. ``None`` on any other host, or while the start-up configuration is on."""
    decision = decisions[FlowId.MODEL_REQUESTS]
    if host not in DEFAULT_API_HOSTS or decision.parameters.get("startup_config") is not False:
        return None
    said = "; ".join(decision.reasons)
    return Verdict(
        UNCLASSIFIED,
        False,
        "start-up configuration off",
        f"no flow signature matches, and the engine expects no request to {host} but those "
        f"of the flows it has on (the agent's start-up configuration is off in flow "
        f"{decision.id}), so airlock refused this request: {said}",
    )


def why_unclassified(
    method: str,
    host: str,
    path: str,
    *,
    agent: str = DEFAULT_AGENT,
    api_hosts: Iterable[str] = DEFAULT_API_HOSTS,
) -> str:
    """Why :func:`classify` names a request :data:`UNCLASSIFIED`, for its audit record.

    The table's vendor API rows (:data:`API_HOST`) cover a path on the vendor API's hosts
    alone (``api_hosts``: ``api.anthropic.com`` and the host of ``ANTHROPIC_BASE_URL``, as
    the engine reads them): the same path on another host (a stand-in the run does not name
    as the vendor's) is said to be one of the vendor's paths on a host that is not the
    vendor's, so the reader knows which variable makes it count. A path whose readings name
    two flows is said to be so. Otherwise :data:`NO_SIGNATURE`.

        >>> why_unclassified("POST", "127.0.0.2", "/api/event_logging/batch")  # doctest: +ELLIPSIS
        "/api/event_logging/… is the vendor API's metrics path, but 127.0.0.2 is not ..."
    """
    return _why(_read(method, host, path, agent, api_hosts))


def _why(read: _Read) -> str:
    """:func:`why_unclassified` of a request already read."""
    if len(read.named) > 1:
        return (
            f"its path reads as more than one flow's ({', '.join(sorted(read.named))}) as "
            "servers differ in how they read a path: unclassified"
        )
    if read.host in read.hosts:
        return NO_SIGNATURE
    as_api = frozenset({read.host})  # the rows read as if this host were the vendor API's
    for reading in read.found:
        row = _first_row(read.table, read.method, read.host, reading, as_api)
        if row is not None and row.host == API_HOST:
            return (
                f"{_covered(row.path, reading)} is the vendor API's {row.flow} path, but "
                f"{read.host} is not the vendor API's host ({_vendor_hosts(read.hosts)}): "
                "unclassified"
            )
    return NO_SIGNATURE


def _covered(prefix: str, path: str) -> str:
    """A row's path ``prefix`` as it covers ``path``: ``…`` where ``path`` has more before or
    after it (``/api/event_logging/…``, ``/v1/messages/…``)."""
    before = "" if path.startswith(prefix) else "…"
    if path.endswith(prefix):
        return before + prefix
    return before + prefix + ("…" if prefix.endswith(("/", "-")) else "/…")


def _vendor_hosts(api_hosts: frozenset[str]) -> str:
    """What the engine takes as the vendor API's hosts, in words: ``api.anthropic.com, or
    ANTHROPIC_BASE_URL's``, and the hosts this run adds."""
    said = "api.anthropic.com, or ANTHROPIC_BASE_URL's"
    added = sorted(api_hosts - DEFAULT_API_HOSTS)
    return f"{said}: {', '.join(added)}" if added else said


def off_rows(
    host: str,
    decisions: Decisions,
    *,
    agent: str = DEFAULT_AGENT,
    api_hosts: Iterable[str] = DEFAULT_API_HOSTS,
) -> tuple[Signature, ...]:
    """The rows of ``agent``'s table for ``host`` whose flow is off (for :func:`off_flow`).

    A row of the vendor API's (:data:`API_HOST`) is one of them whatever ``host`` is, not
    only on the hosts the engine names as the vendor API's: ``host`` is inspected, so the
    agent's requests may go there, and the engine names the vendor API's hosts from the
    run's configuration only. An agent pointed elsewhere from inside the sandbox
    (``ANTHROPIC_BASE_URL`` set by the command itself, a gateway the settings do not name)
    sent its metrics batches there, named ``unclassified`` and let out with metrics off.
    :func:`classify` still names a request's flow on the vendor API's hosts alone: what
    this adds can only refuse. A part of a flow that is on (:func:`_part_off`) is refused
    at the hosts the run takes for the vendor API's (``api_hosts``) alone."""
    host = host.lower().rstrip(".")
    as_api = frozenset({host})  # whatever the engine named, read as one of the vendor API's
    vendor = frozenset(api_hosts)
    return tuple(
        row
        for row in AGENT_SIGNATURES[agent]
        if (
            decisions[row.flow].state not in SENDING_STATES
            or _part_off(row, (host,), decisions, vendor)
        )
        and _host_matches(row.host, host, as_api)
    )


def off_rows_at(
    hosts: Iterable[str],
    decisions: Decisions,
    *,
    agent: str = DEFAULT_AGENT,
    api_hosts: Iterable[str] = DEFAULT_API_HOSTS,
) -> tuple[Signature, ...]:
    """:func:`off_rows` of every host of ``hosts`` at once, each row once, in the table's
    order: the hosts a request's headers name (:func:`host_overrides`), as many as its head
    holds, cost one pass of the table (a name is looked up, a pattern matched against each
    name) and one reading of the path, not one of each per host."""
    names = {host.lower().rstrip(".") for host in hosts}
    if not names:
        return ()
    vendor = frozenset(api_hosts)
    return tuple(
        row
        for row in AGENT_SIGNATURES[agent]
        if (
            decisions[row.flow].state not in SENDING_STATES
            or _part_off(row, names, decisions, vendor)
        )
        and (
            row.host in _ANY_PREFIX  # the vendor API's and any host's: at every host
            or row.host in names
            or ("*" in row.host and any(_host_matches(row.host, n, frozenset()) for n in names))
        )
    )


URL_OVERRIDES = frozenset({b"x-original-url", b"x-rewrite-url", b"x-override-url"})
"""Request headers some servers route by instead of the request's own path (IIS's URL
Rewrite, frameworks that trust them): a request for an allowed path carrying one is judged by
the path it names too."""


def url_overrides(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The paths a request's :data:`URL_OVERRIDES` headers name, in the order sent: a name
    with ``_`` for ``-`` too (WSGI servers read both as ``HTTP_X_ORIGINAL_URL``), and a
    value that is a whole URL cut to its path."""
    paths = []
    for name, value in headers:
        if name.strip().lower().replace(b"_", b"-") not in URL_OVERRIDES:
            continue
        text = value.decode("latin-1").strip()
        scheme, found, rest = text.partition("://")
        if found and "/" not in scheme:
            text = "/" + rest.partition("/")[2]
        paths.append(text)
    return paths


HOST_OVERRIDES = frozenset(
    {b"x-forwarded-host", b"x-host", b"x-original-host", b"x-http-host-override"}
)
"""Request headers some front ends and frameworks route by instead of ``Host`` when they
trust the proxy before them (Django's ``USE_X_FORWARDED_HOST``, the trusted proxies of
Symfony, Laravel and Express, a load balancer's host rules); ``Forwarded``'s ``host=``
(RFC 7239) too: a request carrying one is judged as a request to the host it names too."""


_QUOTED_PAIR = re.compile(r"\\(.)")
"""A quoted-pair of a quoted string (RFC 9110 §5.6.4): the character after ``\\``."""


def host_overrides(headers: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """The hosts a request's :data:`HOST_OVERRIDES` headers and ``Forwarded``'s ``host=``
    parameters name, each in its canonical form (:func:`~airlock.policy.hosts.parse_host`),
    in the order sent: every member of a list (``a, b``: a server may take the first or the
    last), a name with ``_`` for ``-`` too (WSGI servers read both alike), what follows a
    name's first ``:`` left out, a port or not (Express's ``req.hostname`` cuts there), a
    quoted ``Forwarded`` value's escapes read (``"a\\.b"`` is ``a.b``, as Symfony reads it).
    A value that is no host is passed over: no server routes by it to another name."""
    named = []
    for name, value in headers:
        lowered = name.strip().lower().replace(b"_", b"-")
        if lowered in HOST_OVERRIDES:
            named.extend(value.decode("latin-1").split(","))
        elif lowered == b"forwarded":
            for element in value.decode("latin-1").split(","):
                for pair in element.split(";"):
                    key, equals, given = pair.partition("=")
                    if equals and key.strip().lower() == "host":
                        given = given.strip()
                        if given.startswith('"'):
                            given = _QUOTED_PAIR.sub(r"\1", given.strip('"'))
                        named.append(given)
    hosts = []
    for given in named:
        given = given.strip()
        readings = [given.partition("]")[0] + "]"] if given.startswith("[") else [given]
        if ":" in given and not given.startswith("["):  # an address (::1), or a name and
            readings.append(given.partition(":")[0])  # what follows it: a port, or not
        for reading in readings:
            try:
                hosts.append(parse_host(reading).text)
            except HostError:
                continue
            break
    return hosts


def off_flow(rows: Iterable[Signature], target: str, decisions: Decisions) -> Verdict | None:
    """The refusal of a request whose path, read any way a server might (:func:`readings`),
    with or without a final ``/``, in any case, and by any method, falls under one of
    ``rows`` (:func:`off_rows`: those of a flow that is off); ``None`` when none does. A row
    that names a method covers every method here: an origin may take
    ``X-HTTP-Method-Override``, or answer another method at the same path. A row's path is
    matched as a bare prefix here, wider than :func:`under`: a refusal covers
    ``/api/event_loggingX`` too (fail closed), and a row of the vendor API's (or of any
    host's) anywhere in the path, below any prefix (a gateway's: :func:`below_a_prefix`).
    A path in the query (:func:`paths_in_query`) is read the same ways."""
    rows = tuple(rows)
    if not rows:  # no flow to this host is off: nothing to read twice
        return None
    found = readings(target)
    for routed in paths_in_query(target):
        found |= readings(routed)
    for reading in sorted(found):
        for path in {reading, reading.rstrip("/") + "/", reading.lower()}:
            for row in rows:
                if path.startswith(row.path) or path.startswith(row.path.lower()):
                    return _row_refusal(row, decisions)
                # The vendor API's paths anywhere in the path: a gateway serves them under
                # a prefix of its own (ANTHROPIC_BASE_URL=https://gw/anthropic), which a
                # request may name or not (below_a_prefix).
                if row.host in _ANY_PREFIX and (row.path in path or row.path.lower() in path):
                    return _row_refusal(row, decisions)
    return None


def _row_refusal(row: Signature, decisions: Decisions) -> Verdict:
    """The refusal for a request under ``row``, one of :func:`off_rows`: its flow's, or, for a
    model call at the vendor's own host while the engine sends model requests elsewhere
    (:func:`_model_elsewhere`), that one's; for the start-up configuration while it is off
    (:func:`_startup_off`), that one's."""
    if decisions[row.flow].state in SENDING_STATES:
        if _startup_off(row, decisions):
            return _startup_refusal(decisions)
        return _model_refusal(", ".join(sorted(DEFAULT_API_HOSTS)), decisions)
    return enforce(row.flow, decisions)


def redact_query(target: str) -> str:
    """``target`` with each query value replaced by ``…`` (names kept): ``/a?k=…&q=…``."""
    path, mark, query = target.partition("?")
    if not mark:
        return target
    fields = [name.partition("=")[0] + ("=…" if "=" in name else "") for name in query.split("&")]
    return f"{path}?{'&'.join(fields)}"


def refusal_body(
    verdict: Verdict,
    method: str,
    host: str,
    path: str,
    *,
    scheme: str = "https",
    port: int | None = None,
) -> bytes:
    """The text of the ``403`` a refused request gets, for the agent to show its user: the
    URL it asked for (``port`` written when it is not the scheme's own), its flow, and why."""
    authority = bracketed(host)
    if port is not None and port != {"https": 443, "http": 80}.get(scheme):
        authority += f":{port}"
    named, explained = f"{verdict.flow} ({verdict.state})", verdict.flow
    if verdict.flow == UNCLASSIFIED:  # refused at the vendor's host: _vendor_quiet
        named = f"{UNCLASSIFIED} ({verdict.state})"
        explained = str(FlowId.MODEL_REQUESTS)
    return (
        f"airlock refused {method} {scheme}://{authority}{path.split('?', 1)[0]}\n"
        f"data flow: {named}\n"
        f"why: {verdict.reason}\n"
        "To let it through, change the variable or setting named above "
        "(`airlock flows --explain " + explained + "` shows them all).\n"
    ).encode()


@dataclass(frozen=True, slots=True)
class FlowSummary:
    """Traffic of one flow in a run, next to the engine's prediction."""

    flow: str
    predicted: str
    """The engine's state for the flow, or ``""`` for unclassified traffic."""
    allowed: int
    refused: int
    bytes_out: int
    bytes_in: int
    difference: str
    """Empty when the traffic is what the engine predicted; else what differs, in words."""
    failed: int = 0
    """Requests allowed that failed before any of them left (the origin could not be
    reached, its certificate did not verify): not counted in :attr:`allowed`."""

    def to_json(self) -> dict[str, object]:
        return {
            "flow": self.flow,
            "predicted": self.predicted,
            "allowed": self.allowed,
            "refused": self.refused,
            "failed": self.failed,
            "bytes_out": self.bytes_out,
            "bytes_in": self.bytes_in,
            "difference": self.difference,
        }


def compare(records: Iterable[Mapping[str, object]], decisions: Decisions) -> list[FlowSummary]:
    """Group inspected requests by flow, next to what the engine predicted, flagging differences.

    ``records`` are audit records with ``flow``, ``decision``, ``bytes_out`` and ``bytes_in``
    (records without ``flow`` are not inspected requests and are skipped); a record with
    ``count`` stands for that many requests (a tally); one that failed before it left
    (:func:`failed_before_it_left`) is counted as failed, not sent. A difference is a
    request of a flow the engine says does not send (the agent ignored the setting, whether or
    not airlock refused it: "tried N request(s) (M refused)", :func:`_tried`) or traffic no
    signature covers (a path none of the table's rows has, or a vendor API path on another
    host: :func:`why_unclassified`). Every flow the engine decides is listed, with zero
    counts when nothing was seen.
    """
    totals: dict[str, list[int]] = {}
    for record in records:
        flow = record.get("flow")
        if not isinstance(flow, str):
            continue
        row = totals.setdefault(flow, [0, 0, 0, 0, 0])
        place = (
            4 if failed_before_it_left(record) else 0 if record.get("decision") == "allow" else 1
        )
        row[place] += _count(record.get("count", 1))
        row[2] += _count(record.get("bytes_out"))
        row[3] += _count(record.get("bytes_in"))
    summaries = []
    for decision in decisions:
        if decision.id is FlowId.LOCAL_TRANSCRIPTS:
            continue  # stays on this machine: never on the wire
        flow = str(decision.id)
        allowed, refused, out, in_, failed = totals.pop(flow, [0, 0, 0, 0, 0])
        difference = ""
        if decision.state not in SENDING_STATES and allowed + refused + failed:
            difference = f"the engine predicted {decision.state}, yet the agent " + _tried(
                allowed, refused, failed
            )
        summaries.append(
            FlowSummary(flow, str(decision.state), allowed, refused, out, in_, difference, failed)
        )
    for flow, (allowed, refused, out, in_, failed) in sorted(totals.items()):
        difference = (
            "requests no data flow covers (a path none of the agent's known endpoints has, or "
            "one of the vendor API's paths on a host that is not the vendor API's: "
            "api.anthropic.com, or ANTHROPIC_BASE_URL's): the engine could not predict them "
            f"(airlock audit --flow {UNCLASSIFIED} lists them, each with why)"
        )
        summaries.append(FlowSummary(flow, "", allowed, refused, out, in_, difference, failed))
    return summaries


def _tried(allowed: int, refused: int, failed: int) -> str:
    """What the agent did with a flow's requests, in the report's words (``sent`` for those
    allowed and sent, the JSON's ``allowed``): ``sent 2 request(s)`` when all were sent, else
    ``tried 3 request(s) (1 sent, 2 refused)``, naming only the counts that are not 0."""
    total = allowed + refused + failed
    if not (refused or failed):
        return f"sent {total} request(s)"
    parts = [f"{allowed} sent"] if allowed else []
    parts += [f"{refused} refused"] if refused else []
    parts += [f"{failed} failed before leaving"] if failed else []
    return f"tried {total} request(s) ({', '.join(parts)})"


def _count(value: object) -> int:
    return value if isinstance(value, int) else 0
