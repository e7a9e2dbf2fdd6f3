"""``airlock run -- COMMAND…``: run a command in the sandbox, its only way out the egress proxy.

Exit status: the command's own; 125 when airlock itself fails (bad arguments, a sandbox that
cannot be built, a proxy that cannot start), with the reason on stderr. Nothing ever runs
without the sandbox.
"""

from __future__ import annotations

import argparse

# ``typing`` is not imported at run time (start-up time); mypy reads the block as if true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from airlock.egress import EgressConfig, ProxyReport
    from airlock.egress.options import Prepared
    from airlock.policy import Decisions
    from airlock.sandbox import ScrubbedEnvironment
    from airlock.settings import Loaded, SandboxSettings

HELP = "run a command in the sandbox: workspace writable, no credentials, only way out the proxy"

DESCRIPTION = """\
Run COMMAND (an agent such as claude, codex, gemini, or any program) in a bubblewrap sandbox:

- the workspace (the current folder, or --workspace DIR) is writable, the rest read-only;
  /tmp, /var/tmp and /run are private; new PID, IPC, UTS and network namespaces; no
  capabilities; the command dies with airlock;
- paths that would run code outside later stay read-only even in the workspace (.git/hooks,
  .git/config, .gitmodules, shell start-up files, .envrc, .vscode/, .idea/, .mcp.json,
  .claude/settings*.json, .claude/commands/, .claude/agents/), missing ones included;
- credentials are hidden (~/.ssh, ~/.aws, ~/.config/gcloud, ~/.azure, ~/.kube, ~/.netrc,
  ~/.git-credentials, ~/.config/gh, ~/.gnupg, ~/.npmrc, ~/.pypirc, ~/.docker/config.json,
  …), so is every host Unix socket; variables that look like credentials are dropped
  unless passed with --env NAME;
- the only way out is airlock's egress proxy (HTTP_PROXY/HTTPS_PROXY inside): every
  connection is decided by rule and written to the audit log. Default rules: the hosts of
  the data flows the policy engine has on (see 'airlock flows'), then --allow, settings'
  sandbox.network.allowedDomains and WebFetch(domain:...) allow rules; deny beats allow.
  DNS does not work inside: the proxy resolves names.

At the end, what left the machine is shown on stderr (per host: connections, requests, bytes
each way, refusals and why), with the audit log and its final hash.

Exit status: the command's; 125 when airlock itself fails (the reason is on stderr).
"""

USAGE_EXIT_CODE = 125
"""Exit status when airlock itself fails, arguments included (as ``env`` and ``timeout`` do)."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from airlock.cli._egress_options import add_arguments as add_egress_arguments

    parser = subparsers.add_parser(
        "run",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        usage="airlock run [OPTIONS] -- COMMAND [ARG...]",
    )
    network = parser.add_argument_group("network")
    network.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="P",
        help="allow host P (example.com, *.example.com, example.com:443); repeatable",
    )
    network.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="P",
        help="refuse host P; beats every allow; repeatable",
    )
    network.add_argument(
        "--allow-all",
        action="store_true",
        help="let every host through, still audited (audit-only runs)",
    )
    network.add_argument(
        "--upstream-proxy",
        metavar="URL",
        help="chain every connection through this proxy (default: airlock's own HTTPS_PROXY)",
    )
    network.add_argument(
        "--max-upload-mb",
        type=float,
        metavar="N",
        help="refuse new connections once N MB have been sent out",
    )
    network.add_argument(
        "--audit-log",
        metavar="FILE",
        help="the audit log (default: <config dir>/airlock/audit.jsonl)",
    )
    files = parser.add_argument_group("sandbox")
    files.add_argument(
        "--workspace", metavar="DIR", help="the writable workspace (default: the current folder)"
    )
    files.add_argument(
        "--rw", action="append", default=[], metavar="PATH", help="also writable; repeatable"
    )
    files.add_argument(
        "--ro",
        action="append",
        default=[],
        metavar="PATH",
        help="read-only, even inside a writable path; repeatable",
    )
    files.add_argument(
        "--hide",
        action="append",
        default=[],
        metavar="PATH",
        help="hidden (an empty placeholder stands there); repeatable",
    )
    files.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="pass variable NAME in although it looks like a credential, or set it; repeatable",
    )
    add_egress_arguments(parser)
    parser.add_argument(
        "--report-json", metavar="FILE", help="also write the end-of-run report as JSON to FILE"
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="what to run")


def run(args: argparse.Namespace) -> int:
    import sys

    from airlock.errors import AirlockError

    try:
        return _run(args)
    except AirlockError as error:
        print(f"airlock run: {error}", file=sys.stderr)
        return USAGE_EXIT_CODE
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        print(f"airlock run: {error.strerror or error}{where}", file=sys.stderr)
        return USAGE_EXIT_CODE


def _run(args: argparse.Namespace) -> int:
    import os
    import time
    from datetime import UTC, datetime
    from pathlib import Path

    from airlock.cli._common import load_reported
    from airlock.errors import UsageError
    from airlock.policy import decide
    from airlock.sandbox import parse_env_options, scrub
    from airlock.sandbox.launcher import PROXY_PORT, Spec, check, start

    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("nothing to run: give the command after --, e.g. airlock run -- claude")
    if args.max_upload_mb is not None and args.max_upload_mb <= 0:
        raise UsageError(
            f"--max-upload-mb must be a positive number of MB (got {args.max_upload_mb})"
        )
    environ = dict(os.environ)
    cwd = Path.cwd()
    workspace = Path(args.workspace).expanduser().resolve() if args.workspace else cwd.resolve()
    if not workspace.is_dir():
        raise UsageError(f"--workspace {args.workspace}: not a folder")
    inside_cwd = cwd if cwd.resolve().is_relative_to(workspace) else workspace
    wanted = parse_env_options(args.env)
    loaded = load_reported(args)
    decisions = decide(loaded.context)
    bwrap = check(environ)
    proxy_url = f"http://127.0.0.1:{PROXY_PORT}"
    started = time.time()

    def prepared_now() -> Prepared:
        from airlock.egress.options import prepare  # loads the proxy's modules

        return prepare(
            args,
            decisions=decisions,
            environ=environ,
            proxy_url=proxy_url,
            inspect_setting=list(loaded.inspect_hosts),
            now=datetime.fromtimestamp(started, UTC),
        )

    # Inspection and the git gateway put variables and a CA bundle in the sandbox: prepared
    # before it is built. Without them, the proxy's modules load while bubblewrap works.
    early = bool(args.inspect or args.repo or loaded.inspect_hosts)
    prepared = prepared_now() if early else None
    try:
        scrubbed = scrub(environ, wanted, proxy_url)
        extra = prepared.environ if prepared is not None else {}
        inside = {**scrubbed.environ, **extra}  # the CA bundle's and git's variables; no secret
        given_log = Path(args.audit_log).expanduser().absolute() if args.audit_log else None
        state = [loaded.config_dir / "airlock", *([given_log] if given_log else [])]
        bundle = prepared.read_only_files if prepared is not None else ()
        mounts = _mounts(args, loaded, environ, workspace, state, bundle)
        spec = Spec(tuple(command), inside_cwd, inside, tuple(mounts))
        with _ForwardedSignals() as signals:
            starting = start(spec, bwrap)
            try:  # the proxy's rules are read while bubblewrap builds the sandbox
                prepared = prepared or prepared_now()
                config = _egress_config(args, loaded, environ, decisions, prepared)
                _check_state_covered(config, state)
                sandbox = starting.ready()
            except BaseException:
                starting.abandon()  # the command never ran
                raise
            try:
                proxy = _start_proxy(config, sandbox)
                code = USAGE_EXIT_CODE
                try:
                    signals.attach(sandbox)
                    sandbox.go()
                    code = sandbox.wait()
                finally:
                    sandbox.kill()
                    record = _run_record(command, workspace, config, scrubbed, code, started)
                    report = proxy.close(record)
            finally:
                sandbox.close()
    finally:
        if prepared is not None:
            prepared.close()
    _show(report, scrubbed, args.report_json, code)
    return code


def _egress_config(
    args: argparse.Namespace,
    loaded: Loaded,
    environ: dict[str, str],
    decisions: Decisions,
    prepared: Prepared,
) -> EgressConfig:
    """The proxy's rules and limits: the command line, then the settings, then the policy;
    inspection and the git gateway as :func:`airlock.egress.options.prepare` made them."""
    from pathlib import Path

    from airlock.egress import EgressConfig, Limits, audit_paths, default_rules
    from airlock.settings import sandbox_settings

    network = sandbox_settings(loaded)
    allow = EgressConfig.rules(args.allow, "--allow")
    deny = EgressConfig.rules(args.deny, "--deny")
    for entry in network.allowed_domains:
        allow += EgressConfig.rules(
            [entry.text], f"sandbox.network.allowedDomains in {entry.origin.describe()}"
        )
    for entry in network.denied_domains:
        deny += EgressConfig.rules(
            [entry.text], f"sandbox.network.deniedDomains in {entry.origin.describe()}"
        )
    allow += _webfetch_allow_rules(loaded, network)
    deny += _webfetch_deny_rules(loaded)
    upstream = (
        args.upstream_proxy or environ.get("HTTPS_PROXY") or environ.get("https_proxy") or None
    )
    given = Path(args.audit_log).expanduser().absolute() if args.audit_log else None
    audit_log, heads = audit_paths(environ, given)
    return EgressConfig(
        allow=allow,
        deny=deny,
        default_allow=default_rules(loaded.context, decisions),
        allow_all=args.allow_all,
        allow_private=any(rule.names_host for rule in EgressConfig.rules(args.allow, "--allow")),
        upstream_proxy=upstream,
        limits=Limits(max_upload_mb=args.max_upload_mb),
        audit_log=audit_log,
        heads_file=heads,
        gateway=prepared.gateway_address,
        inspection=prepared.inspection,
    )


def _check_state_covered(config: EgressConfig, state: list[Path]) -> None:
    """The audit log and its heads must be read-only inside: under a folder of ``state``."""
    from airlock.errors import SandboxError

    for path in (config.audit_log, config.heads_file):
        if path is not None and not any(path.is_relative_to(folder) for folder in state):
            raise SandboxError(
                f"{path} would be writable inside the sandbox; give --audit-log a file "
                "outside the workspace"
            )


def _webfetch_allow_rules(loaded: Loaded, network: SandboxSettings) -> tuple[Any, ...]:
    """``WebFetch(domain:…)`` allow rules (managed ones only under ``allowManagedDomainsOnly``)."""
    from airlock.egress import EgressConfig
    from airlock.policy import Source

    rules: tuple[Any, ...] = ()
    for rule in loaded.context.permissions.allow:
        if not rule.text.startswith("WebFetch(domain:"):
            continue
        if network.managed_domains_only and rule.origin.source is not Source.MANAGED:
            continue
        rules += EgressConfig.rules([rule.text], f"permissions.allow in {rule.origin.describe()}")
    return rules


def _webfetch_deny_rules(loaded: Loaded) -> tuple[Any, ...]:
    from airlock.egress import EgressConfig

    rules: tuple[Any, ...] = ()
    for rule in loaded.context.permissions.deny:
        if rule.text.startswith("WebFetch(domain:"):
            rules += EgressConfig.rules(
                [rule.text], f"permissions.deny in {rule.origin.describe()}"
            )
    return rules


def _mounts(
    args: argparse.Namespace,
    loaded: Loaded,
    environ: dict[str, str],
    workspace: Path,
    state: list[Path],
    read_only: tuple[Path, ...],
) -> list[Any]:
    """Every path rule: the built-in ones, the command line's, the settings'.

    ``state`` is airlock's folder in the config dir, then the ``--audit-log`` file if given:
    both read-only inside.
    """
    import os
    from pathlib import Path

    from airlock.errors import SandboxError
    from airlock.sandbox.paths import (
        Kind,
        home_rules,
        mount,
        plan,
        socket_rules,
        user_rules,
        visible,
        workspace_rules,
    )
    from airlock.settings import sandbox_path, sandbox_settings

    home = Path(environ.get("HOME") or Path.home())
    cwd = Path.cwd()
    state[0].mkdir(parents=True, exist_ok=True)  # airlock's folder: the default log, the heads
    for log in state[1:]:  # a --audit-log file, made now so that it is bound read-only inside
        log.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    try:
        sockets = Path("/proc/net/unix").read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise SandboxError(
            f"cannot list the host's Unix sockets (/proc/net/unix): {error.strerror}"
        ) from error
    rules = [
        *workspace_rules(workspace),
        *home_rules(home, loaded.config_dir, state),
        *socket_rules(sockets),
        *visible(read_only, "the run's CA bundle"),
        *user_rules(Kind.WRITE, args.rw, "--rw", home, cwd),
        *user_rules(Kind.READ, args.ro, "--ro", home, cwd),
        *user_rules(Kind.HIDE, args.hide, "--hide", home, cwd),
    ]
    files = sandbox_settings(loaded)
    for kind, entries, key in (
        (Kind.WRITE, files.allow_write, "allowWrite"),
        (Kind.READ, files.deny_write, "denyWrite"),
        (Kind.HIDE, files.deny_read, "denyRead"),
    ):
        for entry in entries:
            if any(c in entry.text for c in "*?["):
                raise SandboxError(
                    f"sandbox.filesystem.{key} {entry.text!r} in {entry.origin.describe()}: "
                    "airlock run binds paths and cannot apply a pattern; name the paths"
                )
            path = sandbox_path(entry, home, workspace, environ)
            if path.exists() or kind is Kind.READ:
                rules.append(
                    mount(kind, path, f"sandbox.filesystem.{key} in {entry.origin.describe()}")
                )
    return plan(rules)


def _start_proxy(config: EgressConfig, sandbox: Any) -> Any:
    from airlock.egress import start_proxy
    from airlock.errors import SandboxError

    try:
        return start_proxy(config, [sandbox.listener])
    except OSError as error:
        raise SandboxError(f"the egress proxy could not start: {error}") from error


class _ForwardedSignals:
    """While airlock runs, SIGINT, SIGTERM, SIGHUP and SIGQUIT go to the command's process group
    (one that comes before the command has started is passed on once it has); a second one
    within :data:`GRACE` seconds ends the sandbox at once."""

    GRACE = 5.0

    def __init__(self) -> None:
        self.sandbox: Any = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}
        self.last = -1e9

    def __enter__(self) -> _ForwardedSignals:
        import signal

        from airlock.sandbox.launcher import forwarded_signals

        for number in forwarded_signals():
            self.previous[number] = signal.signal(number, self._forward)
        return self

    def attach(self, sandbox: Any) -> None:
        """From now on signals go to ``sandbox``; those that came before go now."""
        self.sandbox = sandbox
        for number in self.pending:
            sandbox.signal(number)
        self.pending.clear()

    def _forward(self, number: int, _frame: object) -> None:
        import time

        if self.sandbox is None:
            self.pending.append(number)
            return
        now = time.monotonic()
        if now - self.last < self.GRACE:
            self.sandbox.kill()
        self.last = now
        self.sandbox.signal(number)

    def __exit__(self, *_exc: object) -> None:
        import signal

        for number, handler in self.previous.items():
            signal.signal(number, handler)


def _run_record(
    command: list[str],
    workspace: Path,
    config: EgressConfig,
    scrubbed: ScrubbedEnvironment,
    code: int,
    started: float,
) -> dict[str, Any]:
    import time

    return {
        "type": "run",
        "command": command,
        "workspace": str(workspace),
        "started": started,
        "duration": round(time.time() - started, 3),
        "rules": {
            "allow": [rule.text for rule in config.allow],
            "deny": [rule.text for rule in config.deny],
            "default_allow": [rule.text for rule in config.default_allow],
            "allow_all": config.allow_all,
        },
        "variables_dropped": list(scrubbed.dropped),
        "variables_passed": list(scrubbed.kept),
        "exit_code": code,
    }


def _show(
    report: ProxyReport, scrubbed: ScrubbedEnvironment, report_json: str | None, code: int
) -> None:
    import json
    import sys

    data = {**report.to_json(), "variables_dropped": list(scrubbed.dropped), "exit_code": code}
    if report_json:
        from pathlib import Path

        Path(report_json).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if sys.stderr.isatty():
        _show_table(report, scrubbed)
        return
    lines = report.lines()
    if scrubbed.dropped:
        lines.append(
            f"  variables not passed in (they look like credentials; --env NAME passes one): {', '.join(scrubbed.dropped)}"
        )
    print("\n".join(lines), file=sys.stderr)


def _show_table(report: ProxyReport, scrubbed: ScrubbedEnvironment) -> None:
    from rich.table import Table

    from airlock.cli._common import stderr_console

    console = stderr_console()
    table = Table(title="what left the machine", title_justify="left")
    for heading in ("host", "connections", "requests", "sent", "received", "refused"):
        table.add_column(heading, justify="right" if heading not in ("host", "refused") else "left")
    for host in report.hosts:
        refused = "\n".join(f"{count}× {reason}" for reason, count in host.refused)
        table.add_row(
            host.host,
            str(host.connections),
            str(host.requests),
            _size(host.bytes_out),
            _size(host.bytes_in),
            refused,
        )
    if report.hosts:
        console.print(table)
    else:
        console.print("airlock: nothing left the machine")
    for line in report.flow_lines():
        console.print(line, markup=False)
    if report.upload_budget_exhausted:
        console.print("the upload budget ran out: later connections were refused", style="yellow")
    if report.error:
        console.print(f"traffic was stopped: {report.error}", style="bold red", markup=False)
    if scrubbed.dropped:
        console.print(
            "variables not passed in (they look like credentials; --env NAME passes one): "
            + ", ".join(scrubbed.dropped),
            markup=False,
        )
    if report.audit_log is not None:
        console.print(f"audit log {report.audit_log}, final hash {report.final_hash}", markup=False)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{count} B"
