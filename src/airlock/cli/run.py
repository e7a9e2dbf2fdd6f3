"""``airlock run -- COMMAND…``: run a command in the sandbox, its only way out the egress proxy.

Exit status: the command's own; 125 when airlock itself fails (bad arguments, a sandbox that
cannot be built, a proxy that cannot start, an audit log that could not be written), with the
reason on stderr. Nothing ever runs without the sandbox.
"""

from __future__ import annotations

import argparse

# ``typing`` is not imported at run time (start-up time); mypy reads the block as if true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from airlock.egress import EgressConfig
    from airlock.egress.config import HostRule
    from airlock.egress.options import Prepared
    from airlock.policy.model import Context, Decisions
    from airlock.sandbox.environment import ScrubbedEnvironment
    from airlock.settings import Loaded

HELP = "run a command in the sandbox: workspace writable, no credentials, only way out the proxy"

DESCRIPTION = """\
Run COMMAND (an agent such as claude, codex, gemini, or any program) in a bubblewrap sandbox:

- the workspace (the current folder, or --workspace DIR) is writable, the rest read-only;
  /tmp, /var/tmp and /run are private; new PID, IPC, UTS and network namespaces; no
  capabilities; the command dies with airlock;
- paths that would run code outside later stay read-only even in the workspace (.git/hooks,
  .git/config, .gitmodules, shell start-up files, .envrc, .vscode/, .idea/, .mcp.json,
  .claude/settings*.json, .claude/commands/, .claude/agents/, .claude/hooks/), missing
  ones included, and
  the hooks and config of nested git repositories; with no repository, git init works: the
  new .git is held outside and reaches the workspace without hooks or commands in its config;
- read-only too: the agent's settings*.json, commands/, agents/, plugins/, skills/, hooks/ (in
  its config dir, and in ~/.claude when CLAUDE_CONFIG_DIR is elsewhere); in the home, even
  when it is writable (--rw ~), the shell start-up files (.bash_aliases too), .gitconfig,
  .config/git/, .config/fish/, .config/autostart/, .config/systemd/, bin/, .local/bin/ and
  the other folders of PATH there, .local/lib/ (Python's user site), .mcp.json, the
  editors' start-up files (.vimrc, .config/nvim/, .emacs.d/, VS Code's user settings),
  direnv's, tmux's, cargo's config.toml, Gradle's init scripts, .yarnrc.yml;
- credentials are hidden (~/.ssh, ~/.aws, ~/.config/gcloud, ~/.azure, ~/.kube, ~/.netrc,
  ~/.git-credentials, ~/.config/gh, ~/.gnupg, ~/.npmrc, ~/.pypirc, ~/.docker/config.json,
  …), a missing one cannot be created in a writable home (~/.ssh/authorized_keys), and
  every host Unix socket is hidden; variables that look like credentials (by name, or a
  value holding a password: redis://:secret@host) are dropped unless passed with --env NAME
  (one the policy engine needs, such as ANTHROPIC_BASE_URL naming a gateway with its
  password, stops the run instead: without it the agent would send its data elsewhere);
- the only way out is airlock's egress proxy (HTTP_PROXY/HTTPS_PROXY inside): every
  connection is decided by rule and written to the audit log. Default rules: the hosts of
  the data flows the policy engine has on, read with the variables the command gets
  (--env's included; see 'airlock flows'), then --allow, settings'
  sandbox.network.allowedDomains and WebFetch(domain:...) allow rules; deny beats allow.
  A loopback or private address is reached only when your own --allow names that host.
  DNS does not work inside: the proxy resolves names. The audit log is open before the
  command runs; the proxy itself loads at the command's first connection (which waits
  meanwhile) or 50 ms after it starts, so a short command that connects nowhere never
  needs it.

At the end, what left the machine is shown on stderr (per host: connections, requests, bytes
each way, refusals and why), with the audit log and its final hash; an audit log that could
not be written stops the traffic there, and the command's own exit status is then said on
stderr. What the command wrote that would steer an agent or editor later and that no rule
could stop (a subfolder's .claude/ or .vscode/, a new repository's .hg/hgrc, MCP servers
added to ~/.claude.json) is set aside under <config dir>/airlock/set-aside/ and named.
"""

USAGE_EXIT_CODE = 125
"""Exit status when airlock itself fails, arguments included (as ``env`` and ``timeout`` do)."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    from airlock.cli._run_arguments import add_arguments

    parser = subparsers.add_parser(
        "run",
        parents=[common],
        allow_abbrev=False,  # --allow-a is no --allow-all: a typo never widens what is let out
        help=HELP,
        description=DESCRIPTION,
        usage="airlock run [OPTIONS] -- COMMAND [ARG...]",
    )
    add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from airlock._visible import visible
    from airlock.cli._run_build import Stopped, stopping_signals
    from airlock.errors import AirlockError

    try:
        with stopping_signals():
            return _run(args)
    except Stopped as stop:  # before the command ran, or while the run's end was said
        import signal

        print(f"airlock run: stopped by {signal.Signals(stop.number).name}", file=sys.stderr)
        return 128 + stop.number
    except AirlockError as error:  # a path or value given may hold a terminal's escapes: shown
        print(f"airlock run: {visible(error, keep=chr(10))}", file=sys.stderr)
        return USAGE_EXIT_CODE
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        print(f"airlock run: {visible(f'{error.strerror or error}{where}')}", file=sys.stderr)
        return USAGE_EXIT_CODE


OPEN_FILES = 4096
"""The soft open-files limit a run raises its own to (within the hard limit): the proxy's 512
connections at once are a client's and a destination's socket each, with the log, the
sandbox's and Python's own files besides; at the usual 1,024 the proxy ran out past about
500 tunnels and reset connections with no answer. The command inherits it."""


def _room_for_connections() -> None:
    """Raise the soft open-files limit to :data:`OPEN_FILES` when it is lower and the hard
    limit allows (never lowered; a limit that cannot be raised is left as it is)."""
    import contextlib
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= OPEN_FILES:
        return
    wanted = OPEN_FILES if hard == resource.RLIM_INFINITY else min(OPEN_FILES, hard)
    if wanted > soft:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _no_core_files() -> None:
    """Keep what the run holds that must not outlive it out of core files and out of other
    processes' reach: the run's CA key (inspection: it signs for the inspected hosts, and is
    gone when the run ends) and the git token (the gateway).

    - This process is made not dumpable (``PR_SET_DUMPABLE`` 0): a crash writes no core,
      not even to a crash collector the system pipes cores to (which the core-file limit
      alone does not stop), and another process of the same user can no longer read its
      memory (``/proc/PID/mem``, a debugger): its ``/proc`` files become root's. The command
      is not affected: every program bubblewrap starts is dumpable again.
    - The core-file limit is 0 too, and the command inherits it: its own crash is not written
      to the workspace or handed to the host's collector either.

    Raises:
        SandboxError: the process could not be made not dumpable (the run does not start
            holding a key that a crash could write out).
    """
    import contextlib
    import ctypes
    import os
    import resource

    from airlock.errors import SandboxError

    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    with contextlib.suppress(ValueError, OSError):  # lowering the soft limit is always allowed
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        error = ctypes.get_errno()
        raise SandboxError(
            f"cannot keep the run's CA key and token out of core files: prctl(PR_SET_DUMPABLE) "
            f"failed ({os.strerror(error)}); nothing ran"
        )


PR_SET_DUMPABLE = 4
"""``prctl``'s option that sets whether a process may be dumped (``<linux/prctl.h>``)."""


def _run(args: argparse.Namespace) -> int:
    import os
    import shlex
    import sys
    import time
    from functools import partial
    from pathlib import Path

    from airlock.cli._common import load_reported
    from airlock.cli._run_build import (
        ForwardedSignals,
        check_state_covered,
        egress_config,
        mounts,
        nested_sandbox_note,
        notice,
        other_roots,
        projects_allowing_every_host,
        projects_bringing_hosts,
        run_record,
        serve_until_done,
        standby_proxy,
        start_now,
    )
    from airlock.cli._run_report import ReportFile, show
    from airlock.errors import SandboxError, SettingsError, UsageError
    from airlock.policy import decide
    from airlock.sandbox import parse_env_options, scrub
    from airlock.sandbox.agent_state import STATE_FILE, stage, staging, state_files
    from airlock.sandbox.environment import PROXY_VARIABLES
    from airlock.sandbox.files import folder_identity
    from airlock.sandbox.launcher import (
        PROXY_PORT,
        Spec,
        check,
        relative_library_paths,
        start,
    )
    from airlock.sandbox.paths import (
        Kind,
        agent_state_paths,
        codex_folder,
        default_state,
        in_own_state,
        linked_elsewhere,
        links_on_the_way,
        read_only_at,
        read_only_map,
        resolve,
        sandbox_own_in,
    )
    from airlock.sandbox.pending import Pending, join_runs, keep, recover
    from airlock.sandbox.placeholders import sweep
    from airlock.sandbox.repositories import (
        hold,
        hooks_folder_holding,
        scan_workspace,
    )
    from airlock.sandbox.setup_lock import take, take_workspace
    from airlock.sandbox.terminal import Terminal
    from airlock.sandbox.written import DEPTH, FOLDERS, WATCHED, Watch, agent_skip
    from airlock.settings.sandbox import (
        inspect_setting,
        restrictions_not_taken,
        sandbox_settings,
        set_aside_by_lock,
    )

    command = list(args.argv)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("nothing to run: give the command after --, e.g. airlock run -- claude")
    if not command[0]:
        raise UsageError("the command's name is empty (''): give the program to run after --")
    _check_number("--new-connections-per-second", args.new_connections_per_second, MOST_PER_SECOND)
    _check_number("--max-upload-mb", args.max_upload_mb, MOST_UPLOAD_MB, " of MiB")
    _room_for_connections()
    for option, texts in (("--rw", args.rw), ("--ro", args.ro), ("--hide", args.hide)):
        if any(not text.strip() for text in texts):  # it read as the current folder
            raise UsageError(f"{option} '': an empty path; give the path, or . for this folder")
    environ = dict(os.environ)
    cwd = Path.cwd()
    workspace = Path(args.workspace).expanduser().resolve() if args.workspace else cwd.resolve()
    if args.workspace is not None and not args.workspace.strip():
        raise UsageError("--workspace '': an empty path; give the folder, or . for this one")
    if not workspace.is_dir():
        why = "not a folder" if workspace.exists() else "no such folder"
        raise UsageError(f"--workspace {args.workspace}: {why}")
    covered = sandbox_own_in(workspace)
    if covered:  # told before the workspace is walked (the whole system, for /)
        shown = f"--workspace {args.workspace}" if args.workspace else f"this folder ({workspace})"
        raise UsageError(
            f"{shown}: binding the workspace would put the host's {', '.join(covered)} in "
            "place of the sandbox's own (the host's processes, sockets and temporary files); "
            "run from, or name, the project's folder"
        )
    inside_cwd = cwd if cwd.resolve().is_relative_to(workspace) else workspace
    wanted = parse_env_options(args.env)
    _say_settings_read_elsewhere(wanted, environ)
    unset = [name for name, value in wanted.items() if value is None and name not in environ]
    if unset:  # a forgotten export: said, as the command may need it
        from airlock._visible import visible

        print(
            f"airlock run: --env {', --env '.join(visible(name) for name in unset)}: not set "
            "in airlock's environment, so not passed in (--env NAME=VALUE sets one)",
            file=sys.stderr,
        )
    proxies = [name for name in wanted if name in PROXY_VARIABLES and name.upper() != "NO_PROXY"]
    if proxies:  # the way out is airlock's proxy: one meant for a corporate proxy says where
        print(
            f"airlock run: --env {', --env '.join(proxies)}: not taken; inside, the proxy "
            "variables name airlock's proxy, the sandbox's one way out (to chain it to another "
            "proxy, use --upstream-proxy URL)",
            file=sys.stderr,
        )
    proxy_url = f"http://127.0.0.1:{PROXY_PORT}"
    scrubbed = scrub(environ, wanted, proxy_url)
    # The settings of the folder the command runs in, as the agent there reads them: with
    # --workspace from elsewhere, the workspace's own .claude/ settings, not the caller's;
    # and the variables the command will have there (--env's, none dropped), not airlock's.
    engine_environ = as_inside(environ, scrubbed.environ)
    loaded = load_reported(args, inside_cwd, engine_environ)
    if loaded.managed_invalid:  # its path rules, deny lists and domain limits are unknown
        raise SettingsError(
            "the organisation's managed settings are invalid (above): the sandbox and network "
            "restrictions they hold cannot be known, so airlock run does not run until they "
            "are fixed (nothing ran)"
        )
    not_taken = restrictions_not_taken(loaded)
    if not_taken:  # what it would take away is unknown: never run without it
        listed = "\n".join(f"  {problem}" for problem in not_taken)
        raise SettingsError(
            "a settings file, or a setting in it that can only restrict, cannot be read: what "
            f"it would take away cannot be told, so nothing ran; fix the file:\n{listed}"
        )
    inspecting = inspect_setting(loaded)
    for where in inspecting.with_problems:  # its other settings are not in effect: said above
        print(
            f"airlock run: airlock.inspect in {where} is taken although that file has problems "
            "(above), as the restricting lists are: it lets no host out, it has their requests "
            "read (a lone string is the list of that one host)",
            file=sys.stderr,
        )
    check_options_needed(args, bool(args.inspect or inspecting.hosts))
    network = sandbox_settings(loaded)
    decisions = decide(loaded.context)
    if network.managed_lock is not None:  # the administrator's: said, and not widened
        from airlock.egress.rules import flow_hosts_set_aside

        set_aside = [
            *set_aside_by_lock(loaded, network),
            *flow_hosts_set_aside(loaded.context, decisions),
        ]
        managed_lock(args, network.managed_lock.describe(), set_aside)
    check_nothing_lost(args, loaded, decisions, environ, engine_environ, scrubbed)
    bwrap = check(environ)
    started = time.time()

    def prepared_now() -> Prepared:
        from datetime import UTC, datetime

        from airlock.egress.options import prepare  # loads the proxy's modules
        from airlock.policy import FlowId
        from airlock.policy.endpoints import flow_hosts

        model_hosts = [
            host
            for flow, host in flow_hosts(loaded.context, decisions)
            if flow is FlowId.MODEL_REQUESTS
        ]
        return prepare(
            args,
            decisions=decisions,
            environ=engine_environ,  # the token, and the upstream proxy, are airlock's
            proxy_url=proxy_url,
            inspect_setting=list(inspecting.hosts),
            inspect_sources=inspecting.sources,
            now=datetime.fromtimestamp(started, UTC),
            model_hosts=model_hosts,
            upstream_proxy=args.upstream_proxy,
            user_ca=user_ca() if early else [],  # a bundle is made only to inspect
        )

    def user_ca() -> list[tuple[str, str]]:
        """The user's own CA files, each with how it was given: their certificates go in
        the run's bundle. (``airlock.egress.ca`` loads ``cryptography``: not for a plain
        run.)"""
        from airlock.egress.ca import CA_VARIABLES

        return [
            *((name, environ[name]) for name in CA_VARIABLES if environ.get(name)),
            *((f"--env {name}", wanted[name] or "") for name in CA_VARIABLES if wanted.get(name)),
        ]

    # Inspection and the git gateway put variables and a CA bundle in the sandbox: prepared
    # before it is built, and the proxy started before the command. Without them, the proxy's
    # rules are read while bubblewrap works, and the proxy itself loads while the command runs
    # (at its first connection, or soon after it started: see airlock.egress.standby).
    early = bool(args.inspect or args.repo or inspecting.hosts)
    if early:
        _no_core_files()
    prepared = None
    lock = whole = None
    held = None
    watch = None
    report_file = None
    read_only: dict[Path, bool] = {}
    pending = None
    kept = None
    runs = -1
    given_log = Path(args.audit_log).expanduser().absolute() if args.audit_log else None
    # by its real path, found now: a link to it replaced inside changes nothing after
    state = [Path(os.path.realpath(loaded.config_dir / "airlock"))]
    state += [given_log] if given_log else []
    home = Path(environ.get("HOME") or Path.home())
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    run = f"{stamp}-{os.getpid()}"
    if args.report_json:  # its folder found and held now: nothing left there redirects it
        agent_saves = [  # wherever the agent keeps its state, staged here too
            *state_files(home, loaded.config_dir, named=True),
            home / ".claude" / STATE_FILE,
        ]
        report_file = ReportFile(args.report_json, state, agent_saves, given_log)
        not_written = report_file.started(run)  # no earlier run's report left there now
        if not_written:
            report_file.close()
            raise UsageError(not_written)
    try:
        prepared = prepared_now() if early else None
        if prepared is not None:
            for note in prepared.notes:  # a CA file of the user's left out of the bundle
                print(f"airlock run: {note}", file=sys.stderr)
            prepared.refuse_token_inside(scrubbed.environ, wanted)
            scrubbed = prepared.keep_token_out(scrubbed, workspace)
        extra = prepared.environ if prepared is not None else {}
        inside = {**scrubbed.environ, **extra}  # the CA bundle's and git's variables; no secret
        if in_own_state(workspace, state[0], home):
            raise UsageError(
                f"the workspace {workspace} is inside airlock's own state: the "
                "audit log and its heads must stay out of the command's reach; choose another "
                "workspace"
            )
        if given_log is not None and any(  # as given (a link there is refused), and resolved
            Path(spelling).is_relative_to(workspace)
            for spelling in (os.path.normpath(given_log), os.path.realpath(given_log))
        ):
            print(
                f"airlock run: the audit log {given_log} is in the workspace: read-only in this "
                "run, but a run that does not name it can change or remove it (the next run "
                "naming it then refuses to go on); keep it outside the workspace",
                file=sys.stderr,
            )
        bundle = prepared.read_only_files if prepared is not None else ()
        say = partial(print, "airlock run:", file=sys.stderr)
        # one run at a time in a workspace; runs with one home set up in turn (until listed)
        whole = take_workspace(resolve(workspace), default_state(home), started, say)
        # the placeholders' lists: the home's default state, where runs of every config dir
        # meet (the home's placeholders are the same for them)
        ledgers = default_state(home) / "placeholders"
        lock = take(ledgers, started, say)
        old_ledgers = state[0] / "placeholders"  # where a config dir's runs kept them before
        if sweep(ledgers) + (sweep(old_ledgers) if old_ledgers != ledgers else []):
            print(
                "airlock run: removed the empty placeholders that a run killed earlier left "
                "at the missing protected paths it kept from being made",
                file=sys.stderr,
            )
        try:  # runs of every config dir of this home meet there
            runs = join_runs(default_state(home))
        except OSError:
            runs = join_runs(state[0])
        waiting = partial(
            print,
            "airlock run: another run is making safe what killed runs left; waiting for it",
            file=sys.stderr,
        )
        for line in recover(state[0] / "pending", state[0], runs, waiting):
            print(line, file=sys.stderr)
        held = hold(workspace, state[0], run)
        codex, codex_problem = codex_folder(home, environ, inside_cwd, workspace)
        if codex_problem:  # CODEX_HOME
            print(f"airlock run: {codex_problem}: not taken as Codex's folder", file=sys.stderr)
        agent_state = agent_state_paths(home, loaded.config_dir, codex)
        skip = agent_skip(workspace, agent_state)
        scan = scan_workspace(workspace, WATCHED, skip=skip)  # nested repositories; for Watch
        staged = staging(home, loaded.config_dir, inside)  # the agent's state, saved inside
        if staged is not None:
            inside = {**inside, "CLAUDE_CONFIG_DIR": str(staged.parent)}
        named = bool(environ.get("CLAUDE_CONFIG_DIR"))  # the agent's state is there then
        agent_files = state_files(home, loaded.config_dir, named)
        rules = mounts(
            args, loaded, environ, workspace, state, bundle, held, scan, agent_state, agent_files,
            codex,
        )  # fmt: skip
        read_only = read_only_map(rules)
        if codex is not None and read_only_at(resolve(codex), read_only):  # not opened
            print(
                f"airlock run: CODEX_HOME {codex} is not opened inside (it is outside the home, "
                "or holds what stays read-only there), so Codex cannot keep its state there; "
                f"--rw {codex} opens it",
                file=sys.stderr,
            )
        if read_only_at(workspace, read_only):
            holding = [rule for rule in rules if workspace.is_relative_to(rule.path)]
            why = max(holding, key=lambda rule: len(rule.path.parts)).why if holding else "?"
            print(
                f"airlock run: the workspace {workspace} is read-only inside ({why}): the "
                "command can read it but not change it",
                file=sys.stderr,
            )
        if not args.allow_mounts:
            nested = nested_sandbox_note(loaded, inside)
            if nested is not None:
                print(f"airlock run: {nested}", file=sys.stderr)
        ledger = ledgers / f"{run}.json"
        spec = Spec(
            tuple(command),
            inside_cwd,
            inside,
            tuple(rules),
            ledger=ledger,
            workspace=resolve(workspace),
            restrict_writes=not args.allow_mounts,
        )
        with ForwardedSignals() as signals, Terminal() as terminal:
            starting = start(spec, bwrap, terminal.stdout, terminal.stderr, terminal.stdin)
            lock.release()  # its placeholders are listed: other runs may set up and end
            try:  # while bubblewrap builds the sandbox, and before the command runs:
                # what is there, to make safe after the run (the empty placeholders bubblewrap
                # may be making meanwhile cannot be written inside, and are gone before the
                # after-run look: one noted now is only an entry gone, never set aside)
                links = {  # those code inside could replace; a change of others is the user's
                    link: target
                    for link, target in links_on_the_way(rules).items()
                    if not read_only_at(link.parent, read_only)
                }
                hooks = hooks_folder_holding(workspace)
                roots = other_roots(rules, workspace, home)  # their settings: looked at after
                watch = Watch(
                    workspace,
                    home,
                    loaded.config_dir,
                    agent_state,
                    scan,
                    links,
                    hooks,
                    roots,
                    inside_cwd,
                    codex,
                    agent_files,
                )
                watch.staged = staged
                try:  # before the command runs: a kill from now on leaves it to the next run
                    identity = folder_identity(workspace)
                    pending = Pending(run, workspace, watch, held, read_only, identity)
                    kept = keep(state[0] / "pending", pending)
                except OSError as error:
                    raise SandboxError(
                        f"cannot keep what the run will make safe after its command, in "
                        f"{state[0] / 'pending'} ({error.strerror or error}): nothing was run"
                    ) from error
                if staged is not None:
                    try:
                        stage(home, staged)
                    except OSError as error:  # another run's, made since staging() looked:
                        watch.staged = None  # not this run's to carry back, nor to remove
                        raise SandboxError(
                            f"cannot put the agent's state where it can save it inside, "
                            f"{staged} ({error.strerror or error}): nothing was run"
                        ) from error
                for name in relative_library_paths(environ):
                    print(
                        f"airlock run: {name} has the loader look in the current folder (an "
                        "empty or relative entry): bubblewrap is started without it, but a "
                        "program you start in the workspace later loads libraries the command "
                        "could write there; give it absolute folders only",
                        file=sys.stderr,
                    )
                for path, rule, names in linked_elsewhere(rules):  # names from the workspace
                    notice(
                        f"{path} ({rule.why}) has {names - 1} other "
                        f"name{'s' if names > 2 else ''} (hard links): the command "
                        f"{'reads' if rule.kind is Kind.HIDE else 'changes'} it through any "
                        "of them it can reach; find them with: find / -xdev -samefile "
                        f"{shlex.quote(str(path))}"
                    )
                for link in links:  # a clone's link may point at a terminal's escapes
                    notice(
                        f"{link} is a link (to {links[link]}) in a folder the command can "
                        "write, on the way to a protected path: the rule stands on what it "
                        "names, so code inside could replace the link while it runs (it is put "
                        "back after the run)"
                    )
                settings_seen = watch.settings
                if any(line not in settings_seen.covered for line in settings_seen.unseen):
                    # what the walk after the run reads past is no news: said only otherwise
                    print(
                        f"airlock run: agent and editor settings (.claude, .mcp.json, .vscode, "
                        f"…) are noted now in the first {FOLDERS} folders of the workspace (at "
                        f"most {DEPTH} deep); past them, those the run changes are found after "
                        "it by their change time",
                        file=sys.stderr,
                    )
                prepared = prepared or prepared_now()  # and the proxy's rules
                config = egress_config(args, loaded, environ, decisions, prepared)
                told = wanted.get("NO_PROXY", wanted.get("no_proxy")) is not None
                for note in [] if told else loopback_notes(config.allow):  # --env NO_PROXY=…
                    print(f"airlock run: {note}", file=sys.stderr)
                for note in inspected_not_let_out(config, args.inspect):
                    print(f"airlock run: {note}", file=sys.stderr)
                for note in projects_allowing_every_host(loaded):
                    print(f"airlock run: {note}", file=sys.stderr)
                for note in projects_bringing_hosts(loaded, decisions):
                    notice(note)
                check_state_covered(config, state)
                sandbox = starting.ready()
            except BaseException:
                starting.abandon()  # the command never ran
                raise
            try:
                proxy = standby_proxy(
                    config, sandbox, run, args
                )  # the log: open before anything runs
                if early:  # inspection or the gateway loaded the proxy's modules already
                    try:
                        start_now(proxy)
                    except BaseException:
                        proxy.abandon()  # nothing ran: the log ends without a run record
                        raise
                code = USAGE_EXIT_CODE
                try:
                    signals.attach(sandbox)
                    terminal.running()
                    sandbox.go()
                    code = serve_until_done(proxy, sandbox)
                finally:
                    sandbox.kill()
                    record = run_record(command, workspace, config, scrubbed, code, started)
                    report = proxy.close(record)
            finally:
                sandbox.close()
    except BaseException as error:
        if report_file is not None:
            report_file.stopped(error)
            report_file.close()
        raise
    finally:
        made_safe = after_the_run(
            ("close the run's CA", prepared.close if prepared is not None else None)
        )
        if held is not None or watch is not None:  # as kept, or what was there before it
            pending = pending or Pending(run, workspace, watch, held, read_only)
            made_safe += pending.make_safe(state[0])
        if kept is not None:
            kept.done()
        if runs >= 0:
            os.close(runs)  # the runs' lock: this run no longer holds it
        if lock is not None:
            lock.release()
        if whole is not None:
            whole.release()  # after what the run made safe: the next run may start here
    not_written = show(report, scrubbed, code, report_file, made_safe)  # written, and closed
    if signals.killed:
        _say(
            f"airlock run: a second signal within {signals.GRACE:g} s: the command was killed "
            "(SIGKILL) without waiting for it to end"
        )
    for line in made_safe:
        _say(line)
    failed = [why for why in (report.error, not_written) if why]
    if failed:  # the log failed (what the run did is not all on record), or the report file
        _say(
            f"airlock run: {'; '.join(failed)}; the command exited {code}, airlock exits "
            f"{USAGE_EXIT_CODE}"
        )
        return USAGE_EXIT_CODE
    return code


def _say_settings_read_elsewhere(
    wanted: Mapping[str, str | None], environ: Mapping[str, str]
) -> None:
    """Say so when an ``--env`` has the agent inside read its settings elsewhere than airlock
    does: ``CLAUDE_CONFIG_DIR``, or ``HOME`` when no config dir is set (the agent then reads
    ``HOME/.claude``). airlock decides the data flows and the proxy's rules from the settings
    of its own (a rule only there is not applied: the proxy lets out no more than those say),
    and its report's prediction is theirs."""
    import sys

    from airlock._visible import visible

    config_dir = wanted.get("CLAUDE_CONFIG_DIR") or environ.get("CLAUDE_CONFIG_DIR")
    for name in ("CLAUDE_CONFIG_DIR", "HOME"):
        given = wanted.get(name)
        if given is None or given == environ.get(name, "") or (name == "HOME" and config_dir):
            continue
        print(
            f"airlock run: --env {name}={visible(given)}: the agent inside reads its settings "
            "there, while airlock decides the data flows and the proxy's rules from those its "
            f"own {name} names (the report predicts from those); set {name} in airlock's "
            "environment too for both to read the same",
            file=sys.stderr,
        )


def as_inside(environ: Mapping[str, str], inside: Mapping[str, str]) -> dict[str, str]:
    """What the policy engine reads: airlock's environment ``environ``, with every variable
    of the engine's (:data:`~airlock.policy.variables.VARIABLES`) as the command will have it,
    ``inside`` (``--env``'s values; none that looks like a credential and was dropped). Its
    decisions, the proxy's default hosts and the report then speak of what the agent sees.
    The rest stays airlock's: ``HOME``, ``CLAUDE_CONFIG_DIR`` and the managed settings'
    folder say where the settings files and airlock's own state are."""
    from airlock.policy.variables import VARIABLES

    seen = {name: value for name, value in environ.items() if name not in VARIABLES}
    seen.update((name, value) for name, value in inside.items() if name in VARIABLES)
    return seen


def check_nothing_lost(
    args: argparse.Namespace,
    loaded: Loaded,
    decisions: Decisions,
    environ: Mapping[str, str],
    engine_environ: Mapping[str, str],
    scrubbed: ScrubbedEnvironment,
) -> None:
    """Stop the run when a variable of the engine's that looks like a credential (in
    ``scrubbed.dropped``: ``ANTHROPIC_BASE_URL=https://svc:pw@gateway``) is not passed in and
    the engine decides otherwise without it: the agent inside would not see it, and would send
    its data elsewhere than the user meant (to the vendor's API rather than the gateway). One
    whose loss changes nothing (``AWS_REGION`` without Bedrock, a value a settings file's
    ``env`` block sets too) is dropped as before.

    Raises:
        UsageError: naming each such variable, why it looks like a credential, and the ways
            out (``--env NAME``, or the secret taken out of it).
    """
    from airlock.policy.variables import VARIABLES

    dropped = [name for name in scrubbed.dropped if name in VARIABLES]
    if not dropped:
        return
    from airlock.errors import UsageError
    from airlock.policy import decide
    from airlock.policy.endpoints import flow_hosts
    from airlock.sandbox.environment import credential_reason
    from airlock.settings import load

    def seen(context: Context, decided: Decisions) -> object:
        return decided.to_json(), flow_hosts(context, decided)

    now = seen(loaded.context, decisions)
    said = []
    for name in dropped:
        given = {**engine_environ, name: environ[name]}
        restored = load(loaded.project_dir, given, getattr(args, "settings", None))
        if seen(restored.context, decide(restored.context)) == now:
            continue  # nothing the engine decides hangs on it
        way = f"pass it in with --env {name}"
        if credential_reason(name) is None:  # its value, not its name: that can change
            way += ", or remove the secret from it"
        said.append(
            f"{name} in airlock's environment looks like a credential "
            f"({scrubbed.reasons.get(name, 'by its name')}), so it would not be passed into "
            "the sandbox, and without it the agent there would send its data elsewhere than "
            f"{name} says (the policy engine reads it): {way}"
        )
    if said:
        raise UsageError("; ".join(said) + " (nothing ran)")


def managed_lock(args: argparse.Namespace, where: str, set_aside: Iterable[str]) -> None:
    """Under the managed settings' ``sandbox.network.allowManagedDomainsOnly`` (in ``where``):
    only their allowed domains count. The allow entries of other files it sets aside
    (``set_aside``, in words) are said, and the command line may not widen what the
    administrator locked: ``--allow`` and ``--allow-all`` stop the run.

    Raises:
        UsageError: ``--allow`` or ``--allow-all`` was given.
    """
    import sys

    from airlock.errors import UsageError

    given = [f"--allow {text}" for text in args.allow] + ["--allow-all"] * args.allow_all
    if given:
        raise UsageError(
            f"{', '.join(given)}: sandbox.network.allowManagedDomainsOnly in {where} lets only "
            "the hosts those managed settings allow out, and the command line cannot widen "
            "that; run without it, or ask their administrator to allow the host there "
            "(nothing ran)"
        )
    listed = "\n".join(f"  {entry}" for entry in set_aside)
    if listed:
        print(
            f"airlock run: sandbox.network.allowManagedDomainsOnly in {where}: only the hosts "
            f"those managed settings allow go out; these allow entries are set aside:\n{listed}",
            file=sys.stderr,
        )


MOST_UPLOAD_MB = float(1 << 40)
"""The largest ``--max-upload-mb``: 1 EiB, more than any run sends, its bytes still a count the
proxy keeps exactly (a larger one, or ``inf``, failed the proxy at its first connection)."""
MOST_PER_SECOND = 1e9
"""The largest ``--new-connections-per-second``: more than any host is dialled."""


def _check_number(option: str, value: float | None, most: float, unit: str = "") -> None:
    """A numeric option of ``airlock run``, given or not (``None``): a positive number no
    larger than ``most``. ``float()`` reads ``nan``, ``inf`` and ``1e999`` too, which no
    comparison below refuses by itself (``nan <= 0`` is false).

    Raises:
        UsageError: naming the option and the value given.
    """
    from airlock.errors import UsageError

    if value is not None and not 0 < value <= most:  # false for nan too
        raise UsageError(
            f"{option} must be a positive number{unit}, at most {most:,.0f} (got {value:g})"
        )


def loopback_notes(allow: Iterable[HostRule]) -> list[str]:
    """What to tell a user whose own ``--allow`` names this machine's loopback: inside, that
    name is the sandbox's own loopback (``NO_PROXY`` names it), so clients do not ask the proxy
    for it unless told to."""
    from airlock.sandbox.environment import SANDBOX_LOOPBACK

    loopback = SANDBOX_LOOPBACK.split(",")
    return [
        f"--allow {rule.text}: inside the sandbox {rule.pattern.text} is the sandbox's own "
        "loopback (NO_PROXY names it), so clients connect there, not to this machine's; to "
        "reach this machine's through the proxy, have the client use the proxy for it "
        "(curl --noproxy '' …, or --env NO_PROXY= for every client)"
        for rule in allow
        if rule.reaches_private and rule.pattern.text in loopback
    ]


def check_options_needed(args: argparse.Namespace, inspecting: bool) -> None:
    """Refuse an option given that does nothing in this run: ``--secrets`` without a host to
    inspect (``inspecting``: ``--inspect`` or ``airlock.inspect``), ``--upstream-ca`` without
    one nor a ``--repo``, ``--git-upstream`` and ``--git-token-file`` without a ``--repo``.
    The user meant it to act (``--secrets block`` to keep a key from leaving): a run that went
    on would do what it was asked not to, without a word. Only options given count, told by
    :class:`~airlock.cli._common.Once`, which notes each: ``--secrets``' default is
    ``report``, the same value as given.

    Raises:
        UsageError: naming each such option and what it needs (nothing ran).
    """
    from airlock.cli._common import GIVEN_ONCE
    from airlock.errors import UsageError

    given = getattr(args, GIVEN_ONCE, {})
    inspect = "no host is inspected (--inspect HOST, or airlock.inspect in settings)"
    repo = "no repository is granted (--repo OWNER/NAME)"
    said = []
    if "secrets" in given and not inspecting:
        said.append(
            f"--secrets {args.secrets}: {inspect}, so no request would be read for secrets "
            "(what git pushes through --repo is never read)"
        )
    if "upstream_ca" in given and not inspecting and not args.repo:
        said.append(
            f"--upstream-ca {args.upstream_ca}: {inspect} and {repo}, so no origin would be "
            "verified against it (a host not inspected is a tunnel: the client inside verifies "
            "it)"
        )
    if "git_upstream" in given and not args.repo:
        said.append(f"--git-upstream {args.git_upstream}: {repo}, so no code host is reached")
    if "git_token_file" in given and not args.repo:
        said.append(f"--git-token-file {args.git_token_file}: {repo}, so no token is read")
    if said:
        raise UsageError("; nothing ran\nairlock run: ".join(said) + "; nothing ran")


def inspected_not_let_out(config: EgressConfig, flags: Iterable[str]) -> list[str]:
    """What to tell a user whose ``--inspect`` (``flags``, as given) or ``airlock.inspect``
    names a host that no rule lets out: inspection reads what goes, it lets nothing go, so
    every request to it would be refused ``403``, found only at the command's first
    connection. The proxy's own rules (:class:`~airlock.egress.rules.EgressRules`) are asked,
    on every port a rule names and one none does: a host let out on one port is let out."""
    if config.inspection is None:
        return []
    from airlock.egress.options import inspected_hosts
    from airlock.egress.rules import EgressRules, bracketed, private_class
    from airlock.policy.hosts import AddressClass

    flagged = inspected_hosts(list(flags), None)  # as the inspection holds them (canonical)
    rules = EgressRules(config)
    named = {
        rule.port
        for rule in (*config.allow, *config.default_allow, *config.deny, *config.ask)
        if rule.port is not None
    }
    ports = sorted({443, *named, next(port for port in range(1, 65536) if port not in named)})
    notes = []
    for host in sorted(config.inspection.hosts):
        decisions = [rules.check(host, port) for port in ports]
        if any(decision.allowed for decision in decisions):
            continue
        refused = decisions[ports.index(443)]
        if refused.rule is not None:  # a deny or ask rule: what lifts it
            why, way = refused.reason, refused.hint
        elif config.managed_lock is not None or private_class(host) == AddressClass.METADATA:
            why, way = "no rule lets it out", refused.hint
        else:
            why, way = "no rule lets it out", f"add --allow {bracketed(host)}"
        given = "--inspect" if host in flagged else "airlock.inspect"
        notes.append(f"{given} {bracketed(host)}: {why}, so its requests are refused 403; {way}")
    return notes


def _say(line: str) -> None:
    """``line`` on stderr, after the command: a stderr the caller closed or that is full
    changes nothing of the run's outcome (what is said is in the audit log too)."""
    import contextlib
    import sys

    with contextlib.suppress(OSError):
        print(line, file=sys.stderr)


def after_the_run(*steps: tuple[str, Callable[[], object] | None]) -> list[str]:
    """Run each step whatever the others did (one that fails, is interrupted or is slow to the
    point of Ctrl-C stops none after it: each makes something safe); what to tell the user,
    a line each: a step's own words (a text, or a list of lines), or what stopped it."""
    from airlock.sandbox.written import each_step

    lines: list[str] = []
    for what, action in steps:
        if action is None:
            continue
        said = each_step(lines, what, action)
        if isinstance(said, str):
            lines.append(f"airlock: {said}")
        elif isinstance(said, list):
            lines.extend(str(line) for line in said)
    return lines
