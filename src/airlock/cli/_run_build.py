"""Building ``airlock run``: the proxy's rules and limits, the sandbox's path rules, the
signals passed on to the command, and the run's own audit record. Heavy modules are imported
inside the functions that need them (start-up time)."""

from __future__ import annotations

import contextlib
import re  # argparse has imported it already

# ``typing`` is not imported at run time (start-up time); mypy reads the block as if true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Mapping
    from pathlib import Path
    from typing import Any

    from airlock.egress import EgressConfig, StandbyProxy
    from airlock.egress.config import HostRule
    from airlock.egress.options import Prepared
    from airlock.policy import Decisions
    from airlock.sandbox import ScrubbedEnvironment
    from airlock.sandbox.repositories import Held, WorkspaceScan
    from airlock.settings import Loaded
    from airlock.settings.sandbox import SandboxEntry, SandboxSettings


def notice(words: str) -> None:
    """Print ``airlock run: WORDS`` on stderr, each character that is not printable shown as
    ``\\xNN`` (:func:`airlock._visible.visible`): the paths said while the run is built come
    from the workspace (a clone's file names, a link's target, a project's settings), which
    may hold a terminal's escape sequences, to clear the screen, move the cursor over the
    lines said before it, or write lines that look like airlock's own."""
    import sys

    from airlock._visible import visible

    print(f"airlock run: {visible(words)}", file=sys.stderr)


def egress_config(
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
    from airlock.egress.config import (
        ALLOW_OPTION,
        HostRule,
        chosen_no_proxy,
        chosen_upstream,
    )
    from airlock.policy.rules import names_domains
    from airlock.settings.sandbox import sandbox_settings

    network = sandbox_settings(loaded)
    # Lists grown in place, made tuples once: a tuple added to per rule is copied whole each
    # time, and settings may hold a hundred thousand rules (minutes before the run).
    allow = list(EgressConfig.rules(args.allow, ALLOW_OPTION))
    deny = list(EgressConfig.rules(args.deny, "--deny"))
    allow.extend(
        HostRule.parse(entry.text, f"sandbox.network.allowedDomains in {entry.origin.describe()}")
        for entry in network.allowed_domains
    )
    deny.extend(
        HostRule.parse(entry.text, f"sandbox.network.deniedDomains in {entry.origin.describe()}")
        for entry in network.denied_domains
    )
    allow.extend(_webfetch_allow_rules(loaded, network))
    deny.extend(_webfetch_deny_rules(loaded))
    ask = [  # the guard asks first; the proxy cannot, so it refuses them
        HostRule.parse(rule.text, f"permissions.ask in {rule.origin.describe()}")
        for rule in loaded.context.permissions.ask
        if names_domains(rule.text)  # one that cannot be read stops the run, as a deny's
    ]
    given = Path(args.audit_log).expanduser().absolute() if args.audit_log else None
    audit_log, heads = audit_paths(environ, given)
    return EgressConfig(
        allow=tuple(allow),
        deny=tuple(deny),
        default_allow=default_rules(loaded.context, decisions, network.managed_domains_only),
        allow_all=args.allow_all,
        ask=tuple(ask),
        managed_lock=network.managed_lock.describe() if network.managed_lock else None,
        allow_private=any(rule.reaches_private for rule in allow),
        upstream_proxy=chosen_upstream(args.upstream_proxy, environ),
        no_proxy=chosen_no_proxy(environ),
        limits=Limits(
            max_upload_mb=args.max_upload_mb,
            new_connections_per_second=args.new_connections_per_second,
        ),
        audit_log=audit_log,
        heads_file=heads,
        gateway=prepared.gateway_address,
        inspection=prepared.inspection,
    )


EVERY_HOST = ("example.com", "a.example.org", "a.b.c.example.net")
"""Hosts of one, two and three labels below three top-level domains: an allow rule that
covers them all (on port 443) lets out every public host (``*``, ``*.*``, ``*:443``)."""


def projects_allowing_every_host(loaded: Loaded) -> list[str]:
    """A project's settings (``.claude/settings.json``, ``.claude/settings.local.json``) that
    allow the network every public host, in words, a line each: the entry, its key and its
    file. The reference agent honours them, and so does the run; it says so, as a project
    comes from elsewhere (a clone) and the user may not have read it. Under
    ``allowManagedDomainsOnly`` they are set aside, and said so already. Called once
    :func:`egress_config` has read them (an entry it cannot read has stopped the run)."""
    from airlock.egress.config import HostRule
    from airlock.policy.rules import names_domains
    from airlock.settings.sandbox import PROJECT_SOURCES, sandbox_settings

    network = sandbox_settings(loaded)
    if network.managed_domains_only:
        return []
    found = [
        (entry.text, f"sandbox.network.allowedDomains in {entry.origin.describe()}")
        for entry in network.allowed_domains
        if entry.origin.source in PROJECT_SOURCES
    ]
    found += [
        (rule.text, f"permissions.allow in {rule.origin.describe()}")
        for rule in loaded.context.permissions.allow
        if rule.origin.source in PROJECT_SOURCES and names_domains(rule.text)
    ]
    return [
        f"{text!r} ({where}) lets every public host out: the project's settings open the "
        "network to everything, and the run honours that as the agent does; remove the "
        "entry to let out only the hosts other rules name"
        for text, where in found
        if all(HostRule.parse(text, where).covers(host, 443) for host in EVERY_HOST)
    ]


def projects_bringing_hosts(loaded: Loaded, decisions: Decisions) -> list[str]:
    """The hosts that a project's settings alone have the proxy let out as a flow's (its
    ``env`` block's ``ANTHROPIC_BASE_URL``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, its
    ``airlock.domainSafetyUrl``), in words, a line each: any code inside may then reach that
    host, not only the agent, as through an ``allowedDomains`` entry of the project's, which
    :func:`projects_allowing_every_host` says when it lets out every host. The agent honours
    them, and so does the run; it says so, as a project comes from elsewhere (a clone).
    Under ``allowManagedDomainsOnly`` they are set aside, and said so already."""
    from airlock.egress.rules import flow_hosts_brought_by
    from airlock.settings.sandbox import PROJECT_SOURCES, sandbox_settings

    files = [
        layer.origin.describe() for layer in loaded.layers if layer.origin.source in PROJECT_SOURCES
    ]
    if not files or sandbox_settings(loaded).managed_domains_only:  # no project's file: no
        return []  # second decision of the engine at every run's start
    brought = flow_hosts_brought_by(loaded.context, decisions, PROJECT_SOURCES)
    return [
        f"{host!r} is let out as the host of flow {flow}, from the values in "
        f"{' and '.join(files)}: any code inside may reach it; "
        "remove the entry to keep it shut"
        for flow, host in brought
    ]


def check_state_covered(config: EgressConfig, state: list[Path]) -> None:
    """The audit log and its heads must be read-only inside: under a folder of ``state``."""
    import os
    from pathlib import Path

    from airlock.errors import SandboxError

    folders = [Path(os.path.realpath(folder)) for folder in state]
    for path in (config.audit_log, config.heads_file):
        if path is not None and not any(
            Path(os.path.realpath(path)).is_relative_to(folder) for folder in folders
        ):
            raise SandboxError(
                f"{path} would be writable inside the sandbox; give --audit-log a file "
                "outside the workspace"
            )


def _webfetch_allow_rules(loaded: Loaded, network: SandboxSettings) -> list[HostRule]:
    """``WebFetch(domain:…)`` allow rules (managed ones only under ``allowManagedDomainsOnly``),
    each as the web-fetch guard reads it."""
    from airlock.egress.config import HostRule
    from airlock.policy import Source
    from airlock.policy.rules import names_domains

    return [
        HostRule.parse(rule.text, f"permissions.allow in {rule.origin.describe()}")
        for rule in loaded.context.permissions.allow
        if names_domains(rule.text)
        and not (network.managed_domains_only and rule.origin.source is not Source.MANAGED)
    ]


def _webfetch_deny_rules(loaded: Loaded) -> list[HostRule]:
    """``WebFetch(domain:…)`` deny rules, each as the web-fetch guard reads it; one that cannot
    be read stops the run, as a deny must not be lost."""
    from airlock.egress.config import HostRule
    from airlock.policy.rules import names_domains

    return [
        HostRule.parse(rule.text, f"permissions.deny in {rule.origin.describe()}")
        for rule in loaded.context.permissions.deny
        if names_domains(rule.text)
    ]


def _make_log(log: Path) -> None:
    """The ``--audit-log`` file, made (empty, mode 0600) when missing; never through a symbolic
    link at its path (one a command put in the workspace would have records appended to, or a
    file created at, whatever it names: a shell's start-up file).

    Raises:
        SandboxError: it is a symbolic link, it cannot be made, or what is there is no regular
            file (a FIFO would have the run wait for a reader forever: it is opened without
            waiting, and refused).
    """
    import os
    import stat

    from airlock.egress.audit import open_for_appending
    from airlock.errors import AirlockError, SandboxError

    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        fd = open_for_appending(log, "--audit-log")  # as the log opens it: never a link
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        finally:
            os.close(fd)
    except AirlockError as error:  # a symbolic link
        raise SandboxError(str(error)) from error
    except OSError as error:
        try:  # a folder (EISDIR), a FIFO with no reader (ENXIO), a device: not a log
            regular = stat.S_ISREG(os.lstat(log).st_mode)
        except OSError:
            regular = True
        if regular:
            raise SandboxError(
                f"--audit-log {log}: cannot be created ({error.strerror or error}); "
                "give a file in a folder you can write"
            ) from error
    if not regular:
        raise SandboxError(
            f"--audit-log {log}: not a regular file (a FIFO, a device or a folder); give a file"
        )


def mounts(
    args: argparse.Namespace,
    loaded: Loaded,
    environ: dict[str, str],
    workspace: Path,
    state: list[Path],
    read_only: tuple[Path, ...],
    held: Held | None,
    walk: WorkspaceScan,
    agent_state: list[Path],
    agent_files: list[Path],
    codex: Path | None = None,
) -> list[Any]:
    """Every path rule: the built-in ones, the command line's, the settings'.

    ``state`` is airlock's folder in the config dir, then the ``--audit-log`` file if given:
    both read-only inside. ``held``: the holding folder bound at a missing ``.git``.
    ``walk``: the workspace's walk at the run's start
    (:func:`airlock.sandbox.repositories.scan_workspace`): its nested git repositories, the
    ``HEAD`` entries of subfolders (bare repositories), its ``.hg`` folders (Mercurial
    repositories) and its ``.envrc`` files (direnv's). ``agent_state``: the agents' own
    state folders and files (:func:`airlock.sandbox.paths.agent_state_paths`);
    ``agent_files``: the agent's state files (:func:`airlock.sandbox.agent_state.state_files`);
    ``codex`` the folder ``CODEX_HOME`` names, if taken.
    """
    import os
    import sys
    from pathlib import Path

    from airlock.errors import SandboxError
    from airlock.policy import Source
    from airlock.sandbox.direnv import envrc_rules
    from airlock.sandbox.mercurial import hg_rules
    from airlock.sandbox.paths import (
        SETTINGS_IN_WORKSPACE,
        Kind,
        expand,
        hide_note,
        home_rules,
        in_own_state,
        mount,
        path_rules,
        plan,
        resolve,
        socket_rules,
        system_rules,
        user_rules,
        visible,
        workspace_rules,
        zdotdir_rules,
    )
    from airlock.sandbox.programs import program_rules
    from airlock.sandbox.repositories import (
        NESTED_DEPTH,
        NESTED_ENTRIES,
        NESTED_FOLDERS,
        NESTED_REPOSITORIES,
        bare_rules,
        git_folder_rules,
        hooks_rules,
        in_no_repository,
        include_rules,
        more_git_rules,
        nested_rules,
        unlisted_by_git,
        user_git_rules,
    )
    from airlock.sandbox.stores import credential_store_rules
    from airlock.settings.sandbox import PROJECT_SOURCES, sandbox_path, sandbox_settings

    home = Path(environ.get("HOME") or Path.home())
    cwd = Path.cwd()
    scan = walk.nested
    try:
        state[0].mkdir(parents=True, exist_ok=True)  # airlock's folder: default log, the heads
    except OSError as error:
        raise SandboxError(
            f"cannot create airlock's folder {state[0]} (the audit log's heads live there): "
            f"{error.strerror or error}"
        ) from error
    for log in state[1:]:  # a --audit-log file, made now so that it is bound read-only inside
        _make_log(log)
    try:
        sockets = Path("/proc/net/unix").read_bytes()
    except OSError as error:
        raise SandboxError(
            f"cannot list the host's Unix sockets (/proc/net/unix): {error.strerror}"
        ) from error
    if not scan.complete:
        print(
            f"airlock run: nested git repositories were looked for in the first {NESTED_FOLDERS} "
            f"folders of the workspace (at most {NESTED_DEPTH} deep, {NESTED_ENTRIES} entries a "
            f"folder, {NESTED_REPOSITORIES} repositories) only: the hooks and config of "
            "others are writable inside, and made safe after the run if the command changes "
            "them (keep them as they are with --ro PATH/.git)",
            file=sys.stderr,
        )
    asked = [  # the user's own: may open a credential store airlock hides
        *user_rules(Kind.WRITE, args.rw, "--rw", home, cwd),
        *user_rules(Kind.READ, args.ro, "--ro", home, cwd),
    ]
    root_git = workspace / ".git"
    missing = [  # in a .claude folder that is there: a folder at one makes the agent warn
        name
        for name in SETTINGS_IN_WORKSPACE
        if (workspace / ".claude").is_dir() and not os.path.lexists(workspace / name)
    ]
    if not os.path.lexists(workspace / ".mcp.json") and (missing or in_no_repository(workspace)):
        # the agent reads it in every project, and a folder there is an MCP config error at
        # every start; git is asked about it only when asked anyway (in a repository it is
        # seldom ignored, and a run would pay a process for it)
        missing.append(".mcp.json")
    rules = [
        *workspace_rules(workspace, held is not None, unlisted_by_git(workspace, missing)),
        *([held.rule] if held is not None else []),
        *nested_rules(workspace, scan),
        *bare_rules(walk.heads, "runs code outside later (a bare repository in the workspace)"),
        *hg_rules(walk.hg, "runs code outside later (a Mercurial repository's config)", home),
        *(
            git_folder_rules(workspace, root_git, "runs code outside later (in the workspace)")
            if root_git.is_file()
            else ()
        ),
        *(
            (
                *hooks_rules(workspace, root_git, "runs code outside later (in the workspace)"),
                *more_git_rules(root_git, "runs code outside later (in the workspace)"),
            )
            if root_git.is_dir()
            else ()
        ),
        *home_rules(home, loaded.config_dir, state, codex),
        *zdotdir_rules(home, environ),
        *user_git_rules(
            home, workspace, environ, "runs code outside later (git's own config names it)"
        ),
        *credential_store_rules(
            home, environ, cwd, [expand(text, home, cwd) for text in (*args.rw, *args.ro)]
        ),
        *path_rules(
            environ.get("PATH", ""),
            home,
            workspace,
            [expand(text, home, cwd) for text in args.rw],
            agent_state,
        ),
        *system_rules(),
        *socket_rules(sockets),
        *visible(read_only, "the run's CA bundle"),
        *asked,
        *user_rules(Kind.HIDE, args.hide, "--hide", home, cwd),
        *_token_file_rules(args, mount, Kind.HIDE),
    ]
    for text in args.hide:  # the workspace refused; a typo would hide nothing: said
        note = hide_note(f"--hide {text}", text, expand(text, home, cwd), workspace)
        if note:
            print(f"airlock run: {note}", file=sys.stderr)
    included, capped = include_rules(
        workspace, home, scan.found, environ, "a git config includes it: runs code outside later"
    )
    rules += included
    for config in capped:
        notice(
            f"{config} includes more files than airlock protects (the first 50): make the "
            "others read-only with --ro PATH"
        )
    read_by_envrc, too_many = envrc_rules(
        walk.envrcs,
        home,
        "runs code outside later (an .envrc reads it: direnv does not check it)",
    )
    rules += read_by_envrc
    if too_many:
        print(
            "airlock run: the workspace's .envrc files read more files than airlock protects "
            "(the first 200): make the others read-only with --ro PATH",
            file=sys.stderr,
        )
    files = sandbox_settings(loaded)
    project_writes: list[Any] = []  # a project's allowWrite: opens only what no one else keeps
    projects_own: set[int] = set()  # a project's denyWrite and denyRead, by identity
    managed_denies: list[tuple[Any, str]] = []  # the administrator's, with their entries
    settings_writes: list[tuple[Any, SandboxEntry]] = []  # every other file's allowWrite
    given = list(asked)  # --rw and --ro: the managed settings' allowWrite joins them below
    for kind, entries, key in (
        (Kind.WRITE, files.allow_write, "allowWrite"),
        (Kind.READ, files.deny_write, "denyWrite"),
        (Kind.HIDE, files.deny_read, "denyRead"),
    ):
        for entry in entries:
            if "\0" in entry.text:  # a path none can name: failing closed, as for a pattern
                raise SandboxError(
                    f"sandbox.filesystem.{key} {entry.text!r} in {entry.origin.describe()}: "
                    "holds a NUL character, which no path can hold, so airlock run cannot "
                    "apply it; fix the entry"
                )
            if any(c in entry.text for c in "*?["):
                raise SandboxError(
                    f"sandbox.filesystem.{key} {entry.text!r} in {entry.origin.describe()}: "
                    "airlock run binds paths and cannot apply a pattern; name the paths"
                )
            path = sandbox_path(entry, home, loaded.project_dir, environ)
            if kind is Kind.HIDE:  # as --hide: the workspace refused, a missing path said
                said = f"sandbox.filesystem.{key} {entry.text!r} in {entry.origin.describe()}"
                note = hide_note(said, entry.text, path, workspace)
                if note:
                    notice(note)
            if kind is Kind.WRITE and entry.origin.source in PROJECT_SOURCES:
                _inside_workspace(path, workspace, f"{key} {entry.text!r}", entry.origin)
            if path.exists() or kind is Kind.READ:
                rule = mount(kind, path, f"sandbox.filesystem.{key} in {entry.origin.describe()}")
                if kind is Kind.WRITE and entry.origin.source is not Source.MANAGED:
                    settings_writes.append((rule, entry))  # once the managed denies are known
                elif kind is not Kind.WRITE and entry.origin.source is Source.MANAGED:
                    said = f"sandbox.filesystem.{key} {entry.text!r} in {entry.origin.describe()}"
                    managed_denies.append((rule, said))
                    rules.append(rule)
                elif entry.origin.source not in PROJECT_SOURCES:
                    rules.append(rule)
                    if kind is Kind.WRITE:
                        asked.append(rule)
                else:
                    projects_own.add(id(rule))
                    rules.append(rule)
    _refuse_under_managed_denies(given, managed_denies)  # asked for by name: refused
    rules += _workspace_under_managed_deny(workspace, managed_denies)
    for rule, entry in settings_writes:
        if _held_by_managed_deny(rule, entry, managed_denies):
            continue
        if entry.origin.source in PROJECT_SOURCES:
            project_writes.append(rule)
        else:
            rules.append(rule)
            asked.append(rule)
    programs, left, unread = program_rules(
        [layer.data for layer in loaded.layers if layer.origin.source not in PROJECT_SOURCES],
        home,
        workspace,
        [expand(text, home, cwd) for text in args.rw],
        agent_files,
        codex,
        [layer.data for layer in loaded.layers if layer.origin.source in PROJECT_SOURCES],
        [workspace, *(rule.path for rule in rules if rule.kind is Kind.WRITE)],
        walk.named,
    )
    rules += programs
    inside = [rule.path for rule in programs if rule.path.is_relative_to(resolve(workspace))]
    if inside:
        shown = ", ".join(str(path.relative_to(resolve(workspace))) for path in inside[:5])
        notice(
            f"read-only inside, as programs the agents' settings, state or .mcp.json run "
            f"outside: {shown}{' …' if len(inside) > 5 else ''} (--rw PATH to work on one)"
        )
    for problem in unread:
        notice(
            f"{problem}: what runs from there is not known, so not protected (make it "
            "read-only with --ro PATH)"
        )
    if left:
        print(
            f"airlock run: the agents' settings, state and .mcp.json name {left} more programs than "
            "airlock protects: make them read-only with --ro PATH",
            file=sys.stderr,
        )
    rules += _project_writes_kept(project_writes, rules, projects_own, workspace)
    opened = [rule.path for rule in rules if opened_for_writing(rule)]
    for path in opened:
        if in_own_state(path, state[0], home):
            raise SandboxError(
                f"{path} is in airlock's own state (the audit log's checkpoints, the run's "
                "placeholders): it cannot be opened for writing inside"
            )
    rules += _other_roots_rules(opened, workspace)
    rules += _agent_state_git_rules(agent_state, workspace)
    if held is not None:  # what is made in it is made safe after the run, modules/ too
        rules = [rule for rule in rules if not _held_placeholder(rule, held.target)]
    rules, credentials = _credentials_opened(rules, asked)
    rules += _settings_file_rules(args, rules)
    planned = plan(rules)
    for rule, store in credentials:
        if any(kept.path == rule.path and kept.kind is rule.kind for kept in planned):
            where = store.path if rule.path == store.path else f"{rule.path} in {store.path}"
            access = "writable" if rule.kind is Kind.WRITE else "read-only"
            print(
                f"airlock run: {rule.why}: opens {where}, which airlock hides as "
                f"credentials, at your request ({access} inside)",
                file=sys.stderr,
            )
    return planned


def _held_placeholder(rule: Any, target: Path) -> bool:
    """Whether ``rule`` is the placeholder of a missing path at or in the workspace's missing
    ``.git`` (``target``), which the run holds outside the workspace and makes safe after it
    (:func:`airlock.sandbox.repositories.bring_in`: the hooks and config of its submodules'
    git folders under ``modules/`` too): a nested checkout's ``.git`` file naming
    ``../.git/modules/sub`` (the root's ``.git`` removed to start afresh) would otherwise
    have an empty read-only folder stand at ``.git``, and ``git init`` there fail inside."""
    from airlock.sandbox.paths import Kind

    return rule.kind is Kind.READ and not rule.exists and rule.path.is_relative_to(target)


def _credentials_opened(
    rules: list[Any], asked: list[Any]
) -> tuple[list[Any], list[tuple[Any, Any]]]:
    """``rules`` with the user's own ``--ro``, ``--rw`` and ``allowWrite`` of their own
    settings (``asked``) that name a credential store airlock hides, or a path in one, opened
    as asked: the store's hiding rule on the same path dropped, one on a path in it marked to
    stand under the hidden store (:attr:`airlock.sandbox.paths.Mount.asked`: a read-only rule
    under a hidden folder is dropped otherwise). "Your own settings and ``--rw`` may open any
    path" but what the managed settings deny (set aside, or refused, before this); a
    project's settings never open one (their rules are never ``asked``), and the
    user's own ``--hide`` or ``denyRead`` at the path still wins. Also each opened rule and
    the store's hiding rule above it, for the run to say so.

    An asked rule that reaches the store through a symbolic link in a folder the sandbox can
    write (its path as the user named it, :attr:`~airlock.sandbox.paths.Mount.named`, holds
    the link) opens nothing: code inside an earlier run could have made that link (``docs/vendor -> ~/.ssh``), and a later ``--ro
    ./docs/vendor`` would open what its user never named; the run says so."""
    from dataclasses import replace

    from airlock.sandbox.paths import Kind

    hidden = [rule for rule in rules if rule.kind is Kind.HIDE and rule.credentials]
    stores: dict[int, Any] = {}
    dropped: set[int] = set()
    writable = [rule.path for rule in rules if rule.kind is Kind.WRITE]
    for rule in asked:
        holding = [store for store in hidden if rule.path.is_relative_to(store.path)]
        named = rule.named if holding else None  # set only when links made the path differ
        link = _writable_link_on_the_way(named.absolute(), writable) if named else None
        if link is not None:
            notice(
                f"{rule.why}: reaches {holding[0].path}, which airlock hides as credentials, "
                f"through the link {link} in a folder the sandbox can write (code inside could "
                "have made it): not opened; name the store itself to open it"
            )
        elif holding:
            stores[id(rule)] = max(holding, key=lambda store: len(store.path.parts))
            dropped |= {id(store) for store in holding if store.path == rule.path}
    kept: list[Any] = []
    opened: list[tuple[Any, Any]] = []
    for rule in rules:
        if id(rule) in dropped:
            continue
        if id(rule) in stores:
            opened.append((rule, stores[id(rule)]))
            rule = replace(rule, asked=True)
        kept.append(rule)
    return kept, opened


def _writable_link_on_the_way(given: Path, writable: list[Path]) -> Path | None:
    """The first symbolic link on the way to ``given`` (as named, absolute) that stands in a
    folder under one of ``writable`` (resolved paths), if any."""
    from airlock.sandbox.paths import links_to

    for link in links_to(given):  # each at its folder's real path
        if any(link.parent.is_relative_to(root) for root in writable):
            return link
    return None


def _nearest_managed_deny(rule: Any, denies: list[tuple[Any, str]]) -> tuple[Any, str] | None:
    """The managed settings' ``denyWrite`` or ``denyRead`` rule nearest above ``rule``'s path
    (or at it), with its entry in words; ``None`` when none holds that path."""
    holding = [deny for deny in denies if rule.path.is_relative_to(deny[0].path)]
    return max(holding, key=lambda deny: len(deny[0].path.parts)) if holding else None


def _held_by_managed_deny(rule: Any, entry: SandboxEntry, denies: list[tuple[Any, str]]) -> bool:
    """Whether the ``allowWrite`` ``rule`` of a file other than the managed settings
    (``entry``) would open a path the managed settings keep read-only or hidden (``denies``:
    their rules, each with its entry), at it or above it; then it is set aside, and said.

    The administrator's deny holds under every lower allow: "the most specific path wins"
    holds among the other files, not against the managed settings (their own ``allowWrite``
    may open below their own deny)."""
    from airlock.sandbox.paths import Kind

    found = _nearest_managed_deny(rule, denies)
    if found is None:
        return False
    deny, said = found
    notice(
        f"sandbox.filesystem.allowWrite {entry.text!r} in {entry.origin.describe()} names "
        f"{rule.path}: not opened, as {'it' if deny.path == rule.path else deny.path} stays "
        f"{'hidden' if deny.kind is Kind.HIDE else 'read-only'} ({said}): no other settings "
        "file can open what the managed settings deny"
    )
    return True


def _refuse_under_managed_denies(asked: list[Any], denies: list[tuple[Any, str]]) -> None:
    """``--rw`` and ``--ro`` (``asked``: their rules) may not open what the managed settings
    deny (``denies``: their rules, each with its entry): a ``--rw`` of a path they keep
    read-only or hidden, a ``--ro`` of one they hide, at it or above it. The user asked for it
    by name: running without it would surprise them, running with it would break their
    administrator's policy, so the run stops.

    Raises:
        SandboxError: naming the option, the path, the managed entry and its file.
    """
    from airlock.errors import SandboxError
    from airlock.sandbox.paths import Kind

    for rule in asked:
        found = _nearest_managed_deny(rule, denies)
        if found is None:
            continue
        deny, said = found
        if rule.kind is Kind.READ and deny.kind is not Kind.HIDE:
            continue  # read-only under a managed denyWrite: what the administrator keeps
        keeps = "hide" if deny.kind is Kind.HIDE else "keep read-only"
        raise SandboxError(
            f"{rule.why}: {rule.path} is "
            f"{'what' if deny.path == rule.path else f'under {deny.path}, which'} the managed "
            f"settings {keeps} ({said}), and the command line cannot open it; run "
            "without it, or ask their administrator (nothing ran)"
        )


def _workspace_under_managed_deny(workspace: Path, denies: list[tuple[Any, str]]) -> list[Any]:
    """The workspace, which ``airlock run`` opens for writing by default, at or under a path
    the managed settings deny (``denies``: their rules, each with its entry): under a
    ``denyWrite`` it is read-only inside, as the administrator keeps it (a rule on it, the
    stricter one on the same path winning; the run says so, naming the entry); under a
    ``denyRead`` nothing can run in it, and the run stops.

    Raises:
        SandboxError: the workspace is hidden by the managed settings.
    """
    from dataclasses import replace

    from airlock.errors import SandboxError
    from airlock.sandbox.paths import Kind, mount, resolve

    found = _nearest_managed_deny(mount(Kind.WRITE, resolve(workspace), "the workspace"), denies)
    if found is None:
        return []
    deny, said = found
    if deny.kind is Kind.HIDE:
        where = "what" if deny.path == resolve(workspace) else f"under {deny.path}, which"
        raise SandboxError(
            f"the workspace {workspace} is {where} the managed settings hide ({said}): the "
            "command cannot run in it; run from another folder, or ask their administrator "
            "(nothing ran)"
        )
    return [replace(deny, path=resolve(workspace), exists=True, is_dir=True, named=None)]


def _project_writes_kept(
    writes: list[Any], rules: list[Any], own: set[int], workspace: Path
) -> list[Any]:
    """The paths a project's settings open for writing (``allowWrite``) that no read-only or
    hiding rule of another's holds, at the path or above it in the workspace: what airlock
    keeps (a hook under ``.git/hooks``, ``.vscode/tasks.json``) and what the user keeps
    (``--ro``, ``--hide``, their own ``denyWrite`` and ``denyRead``) stay kept, as deny beats
    allow; below a project's own ``denyWrite`` (``own``: the rules' identities) it may open.
    Each path left closed is said, with the rule that holds it."""

    from airlock.sandbox.paths import Kind, resolve

    inside = resolve(workspace)
    kept = []
    for write in writes:
        holding = [
            rule
            for rule in rules
            if rule.kind in (Kind.READ, Kind.HIDE)
            and id(rule) not in own
            and rule.path.is_relative_to(inside)
            and write.path.is_relative_to(rule.path)
        ]
        if not holding:
            kept.append(write)
            continue
        nearest = max(holding, key=lambda rule: len(rule.path.parts))
        notice(
            f"{write.why} names {write.path}: not opened, as "
            f"{'it' if nearest.path == write.path else nearest.path} stays "
            f"{'hidden' if nearest.kind is Kind.HIDE else 'read-only'} ({nearest.why}); a "
            "project's settings cannot open that"
        )
    return kept


OPENED = ("--rw", "sandbox.filesystem.allowWrite")
"""How the rules of the folders the user opened for writing say why (``--rw``, a setting's
``allowWrite``)."""


def nested_sandbox_note(loaded: Loaded, inside: Mapping[str, str]) -> str | None:
    """What to tell the user when the agent would build a sandbox of its own (its
    ``sandbox.enabled``, or ``CLAUDE_CODE_SUBPROCESS_ENV_SCRUB`` set for the command) in a
    run whose writes Landlock limits (no ``--allow-mounts``, a kernel that has it): a
    process limited so cannot mount, so bubblewrap cannot build that sandbox inside.
    ``None`` otherwise, and for a run as root: there no user namespace made inside may map
    root (the kernel asks a capability the sandbox drops), so that sandbox cannot be built
    with or without the limit."""
    import os

    from airlock.policy.variables import is_set
    from airlock.sandbox.launcher import writes_limited
    from airlock.settings.sandbox import agent_sandbox

    if os.geteuid() == 0:
        return None
    origin = agent_sandbox(loaded)
    scrub = is_set(inside.get("CLAUDE_CODE_SUBPROCESS_ENV_SCRUB", ""))
    if origin is None and not scrub:
        return None
    if not writes_limited():
        return None
    what = (
        f"sandbox.enabled in {origin.describe()}"
        if origin is not None
        else "CLAUDE_CODE_SUBPROCESS_ENV_SCRUB"
    )
    return (
        f"the agent's own sandbox is on ({what}), and it is built with bubblewrap, which "
        "cannot mount in this run: files are opened for writing only where the sandbox "
        "writes (Landlock), and a process limited so cannot mount; the agent then runs its "
        "commands without it or stops, as its sandbox.failIfUnavailable says. --allow-mounts "
        "lets it mount, leaving that limit out (a named pipe on the host's file systems is "
        "then writable from inside)"
    )


def opened_for_writing(rule: Any) -> bool:
    """Whether ``rule`` opens a folder for writing at the user's word (``--rw``,
    ``allowWrite``)."""
    from airlock.sandbox.paths import Kind

    return bool(rule.kind is Kind.WRITE and rule.why.startswith(OPENED))


def other_roots(rules: list[Any], workspace: Path, home: Path) -> list[Path]:
    """The folders opened for writing outside the workspace (real paths, once each), as the
    planned ``rules`` keep them: their settings are looked at after the run. Not the home nor
    a folder holding it (``--rw ~``): the home's own folders (``.cursor``, ``.continue``) are
    not a project's settings, and the programs outside change them while the run goes on;
    what in the home runs code later is protected by rule."""
    from airlock.sandbox.paths import resolve

    inside, own = resolve(workspace), resolve(home)
    found = (resolve(rule.path) for rule in rules if opened_for_writing(rule))
    return [
        root
        for root in dict.fromkeys(found)
        if root.is_dir() and not root.is_relative_to(inside) and not own.is_relative_to(root)
    ]


def _other_roots_rules(roots: list[Path], workspace: Path) -> list[Any]:
    """For each folder the user opened for writing besides the workspace (``--rw``,
    ``allowWrite``), outside it, the rules the workspace gets: its ``.git`` hooks and config,
    ``.vscode``, ``.mcp.json``, ``.claude`` settings and the rest, and those of the git
    repositories below it (found within the workspace's bounds), say what runs outside later
    wherever they are (the main repository of a worktree, a second project, the projects of
    an opened home)."""
    import sys
    from dataclasses import replace

    from airlock.sandbox.paths import resolve, workspace_rules
    from airlock.sandbox.repositories import (
        NESTED_DEPTH,
        NESTED_FOLDERS,
        find_nested,
        git_folder_rules,
        hooks_rules,
        more_git_rules,
        nested_rules,
    )

    inside = resolve(workspace)
    rules: list[Any] = []
    for root in dict.fromkeys(map(resolve, roots)):
        if not root.is_dir() or root.is_relative_to(inside):
            continue
        why = f"runs code outside later (in {root}, opened for writing)"
        rules += [replace(rule, why=why) for rule in workspace_rules(root) if rule.path != root]
        git = root / ".git"
        if git.is_file():
            rules += git_folder_rules(root, git, why)
        elif git.is_dir():
            rules += [*hooks_rules(root, git, why), *more_git_rules(git, why)]
        nested = find_nested(root)  # the repositories below it (a workspace among them)
        rules += nested_rules(root, nested)
        if not nested.complete:
            print(
                f"airlock run: nested git repositories under {root} were looked for in the "
                f"first {NESTED_FOLDERS} folders (at most {NESTED_DEPTH} deep) only: protect "
                "others with --ro PATH/.git",
                file=sys.stderr,
            )
    return rules


def _agent_state_git_rules(agent_state: list[Path], workspace: Path) -> list[Any]:
    """For each agents' state folder, writable inside (``~/.claude``, ``~/.codex``, …), that
    is a git repository (a user's configuration kept in git): its hooks and config read-only,
    as the workspace's are: ``core.fsmonitor`` or a hook written there would run at the user's
    next ``git status`` there; one that is none has its missing ``.git`` (and ``HEAD``: the
    folder made a git folder itself) kept from being made.
    Not for a folder in the workspace (its repository's rules stand)."""
    import os

    from airlock.sandbox.paths import Kind, mount, resolve
    from airlock.sandbox.repositories import git_folder_rules

    inside = resolve(workspace)
    rules: list[Any] = []
    for folder in dict.fromkeys(agent_state):
        git = folder / ".git"
        if folder.is_relative_to(inside) or not folder.is_dir():
            continue
        if not os.path.lexists(git):  # none made there either: the user's git would run it
            why = f"runs code outside later (in {folder})"
            rules.append(mount(Kind.READ, git, why))
            if os.path.lexists(folder / "HEAD"):  # the folder itself a git folder: its own
                rules += git_folder_rules(folder, folder, why)
            else:  # nor made one (HEAD, objects, refs and a config at its top)
                rules.append(mount(Kind.READ, folder / "HEAD", why, folder=False))
            continue
        why = f"runs code outside later (in {folder}, a git repository)"
        rules += [
            mount(Kind.READ, folder / ".gitmodules", why),
            *git_folder_rules(folder, git, why),
        ]
    return rules


def _token_file_rules(args: argparse.Namespace, mount: Any, hide: Any) -> list[Any]:
    """The ``--git-token-file`` hidden inside, as named and where its links lead: the gateway
    reads it outside, and the token must not enter the sandbox."""
    from pathlib import Path

    token_file = getattr(args, "git_token_file", None)
    if token_file is None:
        return []
    named = Path(token_file).expanduser().absolute()
    return [mount(hide, named, "the git token file (--git-token-file)")]  # links resolved


def _settings_file_rules(args: argparse.Namespace, rules: list[Any]) -> list[Any]:
    """The ``--settings`` file read-only inside, as ``.claude/settings*.json`` are, when the
    command could change it otherwise (``rules``: every other rule of the run): in the
    workspace, or in a folder opened for writing, or reached through a symbolic link in one
    (put back after the run, as every protected path's). The next run given it reads it, and
    a file rewritten by the command would open there what it likes (an ``allowWrite`` of
    ``~/.ssh``). Nothing for inline JSON, nor for a file the command cannot change anyway:
    one in the private ``/tmp`` stays out of sight (a settings file may hold keys in its
    ``env`` block)."""
    from pathlib import Path

    from airlock.sandbox.paths import Kind, mount, plan, read_only_at, read_only_map, resolve

    given = getattr(args, "settings", None)
    if given is None or given.lstrip().startswith("{"):  # as the settings loader tells them
        return []
    named = Path(given).absolute()  # as the loader opens it: from airlock's current folder
    planned = plan(rules)
    writable = [rule.path for rule in planned if rule.kind is Kind.WRITE]
    if read_only_at(resolve(named), read_only_map(planned)) and (
        _writable_link_on_the_way(named, writable) is None
    ):
        return []
    return [mount(Kind.READ, named, "the --settings file: later runs read it", folder=False)]


def _inside_workspace(path: Path, workspace: Path, what: str, origin: Any) -> None:
    """A project's settings may open for writing only what is in the workspace: they come
    with the project (a clone), or were written by code in an earlier sandbox (a subfolder's
    ``.claude/settings.json``, the workspace of a later run started there).

    Raises:
        SandboxError: ``path`` is outside ``workspace``.
    """
    import os
    from pathlib import Path

    from airlock.errors import SandboxError

    real, inside = Path(os.path.realpath(path)), Path(os.path.realpath(workspace))
    if not real.is_relative_to(inside):
        raise SandboxError(
            f"sandbox.filesystem.{what} in {origin.describe()} names {real}, outside the "
            f"workspace {inside}: a project's settings may only make paths inside it writable "
            "(they come with the project, or were written inside an earlier sandbox); give "
            "it with --rw PATH, or in your own settings (~/.claude/settings.json), if you mean it"
        )


def standby_proxy(
    config: EgressConfig, sandbox: Any, run: str, args: argparse.Namespace
) -> StandbyProxy:
    """The run's audit log, open with its start record, and the sandbox's socket held for
    the proxy (loaded by :func:`serve_until_done`, or at once with ``start()``). ``run``: the
    run's id, as its set-aside folder and what a killed run left name it too; ``args``: the
    git gateway's repositories and code host, for the start record (the gateway is loaded
    already when there are any)."""
    from airlock.egress import StandbyProxy

    upstream = None
    if args.repo:
        from airlock.egress.gateway import without_userinfo

        upstream = without_userinfo(args.git_upstream)
    return StandbyProxy(
        config, [sandbox.listener], run_id=run, repos=args.repo, git_upstream=upstream
    )


def serve_until_done(proxy: StandbyProxy, sandbox: Any, standby: float | None = None) -> int:
    """Wait for the command (started) and return its exit status; the proxy is started at
    the command's first connection, or once it has run ``standby`` seconds (default
    ``STANDBY_SECONDS``): a command that ends sooner, having connected nowhere, never needs it.

    Raises:
        SandboxError: the proxy could not start (the caller then ends the command).
    """
    from airlock.egress.standby import STANDBY_SECONDS

    if proxy.running is None:
        code = sandbox.wait_unconnected(STANDBY_SECONDS if standby is None else standby)
        if code is not None:
            return int(code)
        start_now(proxy)
    return int(sandbox.wait())


def start_now(proxy: StandbyProxy) -> None:
    """Load and start the proxy.

    Raises:
        SandboxError: it could not start.
    """
    from airlock.errors import SandboxError

    try:
        proxy.start()
    except OSError as error:
        raise SandboxError(f"the egress proxy could not start: {error}") from error


class ForwardedSignals:
    """While airlock runs, SIGINT, SIGTERM, SIGHUP and SIGQUIT go to the command's process group
    (one that comes before the command has started is passed on once it has); a second one
    within :data:`GRACE` seconds ends the sandbox at once."""

    GRACE = 5.0

    def __init__(self) -> None:
        self.sandbox: Any = None
        self.pending: list[int] = []
        self.previous: dict[int, Any] = {}
        self.last = -1e9
        self.killed = False
        """Whether a second signal within :data:`GRACE` seconds killed the command (said
        after the run: a signal handler prints nothing)."""

    def __enter__(self) -> ForwardedSignals:
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
            self.sandbox.kill_now()  # no waiting here: the main thread may be waiting on it
            self.killed = True
        self.last = now
        self.sandbox.signal(number)

    def __exit__(self, *_exc: object) -> None:
        import signal

        for number, handler in self.previous.items():
            signal.signal(number, handler)


class Stopped(KeyboardInterrupt):
    """SIGTERM, SIGHUP or SIGQUIT, taken as Ctrl-C is (:func:`stopping_signals`)."""

    def __init__(self, number: int) -> None:
        super().__init__(number)
        self.number = number


@contextlib.contextmanager
def stopping_signals() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGQUIT stop ``airlock run`` as Ctrl-C does, by an exception
    (:class:`Stopped`), not at once: what the run set up is taken down, each step of making
    safe what the command left runs (the one under way is said to be left undone), and the
    report is written. Dying of them at once, as by default, left the report unwritten and the
    run's making safe to the next run, when one came while the run ended. While the command
    runs they are passed on to it instead (:class:`ForwardedSignals`). One airlock was started
    ignoring stays ignored (``nohup``); outside the main thread nothing changes (a library's
    caller keeps its own handlers)."""
    import signal
    import threading

    previous: dict[int, Any] = {}

    def stop(number: int, _frame: object) -> None:
        raise Stopped(number)

    if threading.current_thread() is threading.main_thread():
        for taken in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            if signal.getsignal(taken) == signal.SIG_DFL:
                previous[taken] = signal.signal(taken, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def shown_command(command: list[str]) -> list[str]:
    """``command`` as the audit log keeps it: a secret in an argument (``-H "Authorization:
    Bearer …"``, ``--token=…``, ``-d '{"password": …}'``) replaced by the redaction engine's
    marker, as in every other record, and an argument that is the value of the one before it
    (``--password VALUE``) replaced whole. A program alone is kept as it is; with arguments,
    the engine is loaded (tens of milliseconds, once the command has ended)."""
    if len(command) < 2:
        return command
    from airlock.redact import Redactor

    redactor = Redactor()
    shown = [redactor.redact_text(argument) for argument in command]
    kept = [text for text, _ in shown]
    for index in range(1, len(command)):
        alone = sum(shown[index - 1][1].counts().values()) + sum(shown[index][1].counts().values())
        _, together = redactor.redact_text(f"{command[index - 1]} {command[index]}")
        if sum(together.counts().values()) > alone:  # a name, then its value: the value goes
            kind = next(iter(together.counts()))
            kept[index] = f"[REDACTED:{kind}]"
    return [_MYSQL_PASSWORD.sub(_password_marker, text) for text in _mysql_arguments(kept)]


_MYSQL_CLIENT = r"(?:mysql[a-z]*|mariadb(?:-[a-z]+)?)"
"""The MySQL and MariaDB clients, which take a password joined to ``-p`` (``-pSECRET``): a shape
the redaction engine leaves alone, as ``-p`` means something else to most programs."""
_MYSQL_PASSWORD = re.compile(
    rf"((?:^|[\s;&|(`])(?:\S*/)?{_MYSQL_CLIENT}\s(?:[^;&|\n]*?\s)?-p)"
    r"('[^']*'|\"[^\"]*\"|(?!\[REDACTED)[^\s;&|'\"]+)"
)
"""Inside one argument (``sh -c "mysql -u root -pSECRET db"``): the client, then ``-p`` and
the password joined to it, quoted (taken whole, also where the engine found a part of it) or
not."""


def _password_marker(found: re.Match[str]) -> str:
    quote = found.group(2)[0] if found.group(2)[0] in "'\"" else ""
    return f"{found.group(1)}{quote}[REDACTED:generic_password]{quote}"


def _mysql_arguments(command: list[str]) -> list[str]:
    """``command`` with a ``-pSECRET`` argument of a MySQL or MariaDB client replaced: one
    after the client's own name among the arguments (``mysql``, ``/usr/bin/mysqldump``, through
    ``sudo`` or ``env``)."""
    shown = list(command)
    client = False
    for index, argument in enumerate(command):
        if re.fullmatch(rf"(?:\S*/)?{_MYSQL_CLIENT}", argument):
            client = True
        elif client and argument == "--":
            break
        elif client and len(argument) > 2 and argument.startswith("-p"):
            shown[index] = "-p[REDACTED:generic_password]"
    return shown


def run_record(
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
        "command": shown_command(command),
        "workspace": str(workspace),
        "started": started,
        "duration": round(time.time() - started, 3),
        "rules": {
            "allow": [rule.text for rule in config.allow],
            "deny": [rule.text for rule in config.deny],
            "default_allow": list(dict.fromkeys(rule.text for rule in config.default_allow)),
            "allow_all": config.allow_all,
            "ask": [rule.text for rule in config.ask],
        },
        "variables_dropped": list(scrubbed.dropped),
        "variables_passed": list(scrubbed.kept),
        "exit_code": code,
    }
