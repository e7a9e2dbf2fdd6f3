"""``airlock run``'s options for inspection and the git gateway, parsed once and prepared.

:func:`airlock.cli._egress_options.add_arguments` adds ``--inspect``, ``--upstream-ca``,
``--secrets``, ``--repo``, ``--git-upstream`` and ``--git-token-file`` to the run command's
parser (there, so building the parser imports nothing of the proxy). :func:`prepare` turns
them (with ``airlock.inspect`` from settings and the engine's decisions) into a
:class:`Prepared`: the proxy's :class:`~airlock.egress.inspect.InspectionConfig` and gateway
address, the variables and the one read-only file (the CA bundle) the sandbox gets, and what to
close when the run ends. The CA's key and the token stay in this process.

The CA bundle's folder and the gateway socket's are made in the temporary folder, each listed
in a ledger of its own where the placeholders' ledgers are (:mod:`airlock.sandbox.placeholders`):
a run killed with ``SIGKILL`` cannot remove them, and the next run's sweep does.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from airlock.errors import SandboxError, UsageError

# The CA, the inspector and the gateway are imported by :func:`prepare`, only when a run
# asks for them (they bring cryptography and httpx).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import asyncio
    import datetime as dt
    import threading
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

    from airlock.egress.gateway import Gateway
    from airlock.egress.inspect import InspectionConfig
    from airlock.policy import Decisions
    from airlock.sandbox.environment import ScrubbedEnvironment


def inspected_hosts(
    flags: Sequence[str], setting: Any, sources: Mapping[str, str] | None = None
) -> frozenset[str]:
    """``--inspect`` hosts plus ``airlock.inspect`` (a list of host names) from settings, in
    the canonical form the rules give a request's host (:func:`~airlock.policy.hosts.parse_host`).

    Inspection reads the hosts named, each exactly (the run's CA makes a certificate per host
    the client asks for, and the proxy inspects a connection by its host): a pattern such as
    ``*.example.com`` would match none, and inspect nothing without a word, so it is refused,
    as is a value that is no host name at all.

    ``sources``: where each host of ``setting`` is written, in words, for a refusal to name
    the file.

    Raises:
        UsageError: a value that is not one host name; it names the option or setting (and
            the file).
    """
    from airlock.egress.config import is_gateway
    from airlock.policy.hosts import HostError, parse_host

    given = [("--inspect", name) for name in flags]
    if isinstance(setting, list):
        where = sources or {}
        given += [
            (f"airlock.inspect in {where.get(str(item), 'settings')}", str(item))
            for item in setting
        ]
    hosts = set()
    for source, name in given:
        expected = "expected a host name such as api.anthropic.com"
        if "*" in name:
            raise UsageError(
                f"{source} {name!r}: a pattern; inspection reads the hosts named, each exactly: "
                "name each host to inspect (api.example.com, uploads.example.com)"
            )
        no_more = f"{source} {name!r}: {expected} (no scheme, path or port)"
        if "/" in name:
            raise UsageError(no_more)
        try:
            host = parse_host(name)
        except HostError as error:
            why = no_more if ":" in name else f"{source} {name!r}: {expected} ({error})"
            raise UsageError(why) from None
        if ":" in name and host.address is None:
            raise UsageError(no_more)  # a colon: an IPv6 address's (``::1``, ``[::1]``) alone
        if is_gateway(host.text):
            raise UsageError(
                f"{source} {name!r}: the git gateway's own name, which git inside reaches in "
                "plain HTTP with --repo, never over TLS: there is nothing to inspect (what "
                "goes there is the gateway's to judge); leave it out (nothing ran)"
            )
        hosts.add(host.text)
    return frozenset(hosts)


class Prepared:
    """What the run needs for inspection and the gateway; :meth:`close` ends it all."""

    def __init__(self, ledgers: Path | None = None) -> None:
        self.inspection: InspectionConfig | None = None
        self.gateway_address: str | None = None
        """The gateway's Unix socket, in a folder of airlock's user's alone."""
        self.environ: dict[str, str] = {}
        """Variables for the sandbox: the CA bundle's, git's (no secret in any)."""
        self.read_only_files: tuple[Path, ...] = ()
        """Files the sandbox must see read-only at the same path (the CA bundle)."""
        self.notes: list[str] = []
        """What to tell the user before the command runs, a line each (a CA file of theirs
        that could not be put in the bundle)."""
        self._gateway: Gateway | None = None
        self._token_source = ""
        """Where the gateway's token was read (``GH_TOKEN``, …), for messages."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ledgers = ledgers
        """Where the placeholders' ledgers are (``None``: no ledger kept, as in tests)."""
        self._folders: list[tuple[Path, Path | None]] = []
        """The folders made in the temporary folder, each with its ledger."""

    def _make_folder(self, prefix: str) -> Path:
        """A new folder (mode 0700) in the temporary folder, named ``prefix``…, listed in a
        ledger of its own where the next run's sweep looks: a run killed with ``SIGKILL``
        leaves it (:mod:`airlock.sandbox.placeholders`); :meth:`close` removes both.

        Raises:
            SandboxError: the ledger cannot be written.
        """
        from airlock.sandbox.placeholders import Placeholders

        folder = Path(tempfile.mkdtemp(prefix=prefix))
        ledger = None if self._ledgers is None else self._ledgers / f"{folder.name}.json"
        self._folders.append((folder, ledger))
        try:
            Placeholders((), ledger, folder).record()
        except OSError as error:
            raise SandboxError(
                f"cannot list the run's folder {folder} in {ledger} "
                f"({error.strerror or error}): nothing was run"
            ) from error
        return folder

    def refuse_token_inside(self, inside: Mapping[str, str], passed: Iterable[str]) -> None:
        """Refuse a variable passed on by ``--env`` whose value in ``inside`` (the sandbox's
        environment) holds the git gateway's token, whatever its name, in any form the gateway
        scrubs from answers (:meth:`~airlock.egress.gateway.Gateway.holds_token`).

        Raises:
            UsageError: One does; it names the variables, never the value.
        """
        if self._gateway is None:
            return
        holding = sorted(name for name in passed if self._holds_token(inside.get(name, "")))
        if holding:
            from airlock._visible import visible

            names = ", ".join(f"--env {visible(name)}" for name in holding)
            raise UsageError(
                f"{names}: {'holds' if len(holding) == 1 else 'hold'} the token the git "
                f"gateway uses for --repo (from "
                f"{self._token_source}), which would then be readable inside the sandbox: leave "
                "it out (the gateway adds the token to git's requests outside)"
            )

    def keep_token_out(self, scrubbed: ScrubbedEnvironment, workspace: Path) -> ScrubbedEnvironment:
        """With the git gateway on, refuse a git config file the sandbox shows that holds its
        token (:func:`~airlock.egress.git_token_check.token_in_git_configs`, looked for as the
        sandbox's environment, ``scrubbed``, finds them), and drop every variable whose value
        holds it from ``scrubbed``, whatever its name (named among the dropped ones).

        Raises:
            UsageError: A config file holds it; the message names each file, line and key,
                never the value, and says how to take it out.
        """
        if self._gateway is None:
            return scrubbed
        from airlock.egress.git_token_check import token_in_git_configs
        from airlock.sandbox.environment import drop_holding

        found = token_in_git_configs(workspace, scrubbed.environ, self._gateway.holds_token)
        if found:
            listed = "\n".join(f"  {where}" for where in found)
            raise UsageError(
                f"the token the git gateway uses for --repo (from {self._token_source}) is in "
                "git config the sandbox shows, where code inside could read it, or a file there "
                f"cannot be searched for it (nothing ran):\n{listed}\nTake it out before the run (the "
                "gateway adds the token to git's requests outside): an http.<URL>.extraheader "
                "(actions/checkout's, with persist-credentials: true, its default): set "
                "persist-credentials: false on the checkout step, or run git config --file FILE "
                "--unset-all KEY (git config --unset-all http.https://github.com/.extraheader in "
                "the repository); a URL with the token in it (a remote's, a url.<URL>.insteadOf "
                "section): write it without the token (git remote set-url origin "
                "https://github.com/OWNER/NAME; git config --global --remove-section "
                "'url.<URL>')"
            )
        return drop_holding(
            scrubbed,
            self._holds_token,
            f"the token the git gateway uses for --repo (from {self._token_source})",
        )

    def _holds_token(self, value: str) -> bool:
        """Whether ``value`` holds the gateway's token, in a form its answers are scrubbed of."""
        gateway = self._gateway
        return gateway is not None and gateway.holds_token(value.encode("utf-8", "surrogateescape"))

    def close(self) -> None:
        """Stop the gateway and remove the bundle; the CA's key goes with this object."""
        if self._gateway is not None and self._loop is not None and self._thread is not None:
            import asyncio

            asyncio.run_coroutine_threadsafe(self._gateway.close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._gateway = None
        for folder, ledger in self._folders:
            shutil.rmtree(folder, ignore_errors=True)
            if ledger is not None:
                with contextlib.suppress(OSError):
                    ledger.unlink()
        self._folders = []


def prepare(
    args: argparse.Namespace,
    *,
    decisions: Decisions,
    environ: Mapping[str, str],
    proxy_url: str,
    inspect_setting: Any = None,
    inspect_sources: Mapping[str, str] | None = None,
    now: dt.datetime,
    model_hosts: Iterable[str] = (),
    upstream_proxy: str | None = None,
    user_ca: Iterable[tuple[str, str]] = (),
) -> Prepared:
    """Make the run's CA and bundle for inspected hosts, and start the git gateway.

    Args:
        args: The parsed options (:func:`add_arguments`).
        decisions: The engine's decisions for this run (enforced per request).
        environ: airlock's own environment (the token is read from it, never passed on).
        proxy_url: The proxy as seen from inside the sandbox (``http://127.0.0.1:3128``).
        inspect_setting: The value of ``airlock.inspect`` in settings.
        inspect_sources: Where each of its hosts is written, in words (a refusal names it).
        now: The run's start.
        model_hosts: The hosts the engine says model requests go to
            (:func:`airlock.policy.endpoints.flow_hosts`: ``ANTHROPIC_BASE_URL`` from the
            settings' ``env`` too); requests to them are matched as the vendor API's.
        upstream_proxy: ``--upstream-proxy``, if given: the git gateway reaches the code host
            through the same upstream proxy as the run's proxy (:func:`_gateway_proxy`).
        user_ca: The values the user gave the CA variables the bundle takes over
            (:data:`~airlock.egress.ca.CA_VARIABLES`), each with how it was given in words:
            their files' certificates go in the bundle (:func:`~airlock.egress.ca.user_certificates`).

    Raises:
        UsageError: A bad host, repository, URL or token source; what to write instead.
        SandboxError: The ledger of a folder made cannot be written.
    """
    from airlock.sandbox.paths import default_state

    # the placeholders' ledgers, as airlock.cli.run keeps them: the home's default state
    home = Path(environ.get("HOME") or Path.home())
    prepared = Prepared(default_state(home) / "placeholders")
    try:
        hosts = inspected_hosts(args.inspect, inspect_setting, inspect_sources)
        if hosts:
            _prepare_inspection(prepared, hosts, args, decisions, now, model_hosts, user_ca)
        if args.repo:
            proxy = _gateway_proxy(upstream_proxy, args.git_upstream, environ)
            _prepare_gateway(prepared, args, environ, proxy_url, proxy)
    except BaseException:
        prepared.close()
        raise
    return prepared


def _prepare_inspection(
    prepared: Prepared,
    hosts: frozenset[str],
    args: argparse.Namespace,
    decisions: Decisions,
    now: dt.datetime,
    model_hosts: Iterable[str],
    user_ca: Iterable[tuple[str, str]],
) -> None:
    from airlock.egress.ca import (
        RunCA,
        ca_environment,
        upstream_context,
        user_certificates,
        write_bundle,
    )
    from airlock.egress.flows import DEFAULT_API_HOSTS
    from airlock.egress.inspect import InspectionConfig
    from airlock.egress.scan import SecretsMode
    from airlock.policy.hosts import normalize_host
    from airlock.sandbox.placeholders import CA_PREFIX

    ca = RunCA(now=now, hosts=hosts)
    users, prepared.notes = user_certificates(user_ca, Path.cwd())
    folder = prepared._make_folder(CA_PREFIX)
    bundle = write_bundle(ca, folder / "ca-bundle.pem", extra=users)
    folder.chmod(0o755)
    api_hosts = set(DEFAULT_API_HOSTS)
    for host in model_hosts:  # the engine's: its provider's base URL, wherever it is set
        api_hosts.add(normalize_host(host))
    prepared.inspection = InspectionConfig(
        hosts=hosts,
        ca=ca,
        upstream=upstream_context(args.upstream_ca),
        decisions=decisions,
        secrets=SecretsMode(args.secrets),
        api_hosts=frozenset(api_hosts),
    )
    prepared.environ.update(ca_environment(bundle))
    prepared.read_only_files = (bundle,)


def _gateway_proxy(
    upstream_proxy: str | None, git_upstream: str, environ: Mapping[str, str]
) -> str | None:
    """The upstream proxy the git gateway reaches the code host (``git_upstream``) through:
    the run's (``--upstream-proxy``, else airlock's own ``HTTPS_PROXY``), unless the code host
    is in airlock's own ``NO_PROXY``, as for the proxy's own connections; as a URL, with the
    user and password the URL gives, percent-encoded as given (the gateway's HTTP client sends
    them as ``Proxy-Authorization``; messages show the URL without them).

    Raises:
        UsageError: the upstream proxy is not ``http://HOST[:PORT]`` or ``HOST:PORT``.
    """
    from urllib.parse import urlsplit

    from airlock.egress.config import chosen_no_proxy, chosen_upstream, upstream_address
    from airlock.policy.hosts import bypasses_proxy, host_port

    upstream = chosen_upstream(upstream_proxy, environ)
    try:
        code_host = urlsplit(git_upstream).hostname or ""
    except ValueError:  # the gateway's own check says what is wrong with it
        code_host = ""
    if upstream is None or bypasses_proxy(code_host, chosen_no_proxy(environ)):
        return None
    host, port = upstream_address(upstream)
    where = host_port(host, port)
    userinfo, at, _ = upstream.split("://", 1)[-1].rpartition("@")  # after any scheme
    return f"http://{userinfo}@{where}" if at else f"http://{where}"


def _prepare_gateway(
    prepared: Prepared,
    args: argparse.Namespace,
    environ: Mapping[str, str],
    proxy_url: str,
    proxy: str | None,
) -> None:
    import asyncio
    import threading

    from airlock.egress.gateway import (
        Gateway,
        GatewayConfig,
        RepoGrant,
        git_environment,
        load_token,
    )
    from airlock.sandbox.placeholders import GATEWAY_PREFIX

    grants = tuple(RepoGrant.parse(text) for text in args.repo)
    config = GatewayConfig(
        grants,
        load_token(environ, args.git_token_file),
        args.git_upstream,
        args.upstream_ca,
        proxy=proxy,
    )
    gateway = Gateway(config)  # may refuse --upstream-ca: before a thread is started
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="airlock git gateway", daemon=True)
    thread.start()
    prepared._gateway, prepared._loop, prepared._thread = gateway, loop, thread
    prepared._token_source = config.token.source
    folder = prepared._make_folder(GATEWAY_PREFIX)  # mode 0700
    socket_path = folder / "gateway.sock"
    started = asyncio.run_coroutine_threadsafe(gateway.start(socket_path), loop)
    prepared.gateway_address = started.result(10)
    prepared.environ.update(git_environment(proxy_url, args.git_upstream))
