"""The reference agent's ``sandbox`` block, as ``airlock run`` reads it: its lists merged across
files, each entry with its file, and what a path entry names."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from airlock.policy.model import Origin, Source
from airlock.settings.layers import lookup, managed_dir
from airlock.settings.loading import Loaded
from airlock.settings.validation import (
    SANDBOX_FILESYSTEM_LISTS,
    SANDBOX_NETWORK_LISTS,
    SANDBOX_RESTRICTING,
    Problem,
    shown,
)

PROJECT_SOURCES = frozenset({Source.PROJECT, Source.PROJECT_LOCAL})
"""Settings files that come with the project (``.claude/settings.json``,
``.claude/settings.local.json``): ``airlock run`` lets their ``allowWrite`` open only paths
inside the workspace."""


@dataclass(frozen=True, slots=True)
class SandboxEntry:
    """One entry of a ``sandbox`` list, with the file it came from."""

    text: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class SandboxSettings:
    """The ``sandbox`` block of every settings file, merged: lists unioned, highest file first,
    an entry that two files say kept once with the higher (when it is the same entry: see
    :func:`_same_entry`).

    From a file with problems only :data:`SANDBOX_RESTRICTING` entries count. When managed
    settings set ``allowManagedDomainsOnly``, allowed domains come from managed settings only:
    the others' are set aside (:attr:`set_aside_domains`), to be said.
    """

    allow_write: tuple[SandboxEntry, ...] = ()
    deny_write: tuple[SandboxEntry, ...] = ()
    deny_read: tuple[SandboxEntry, ...] = ()
    allowed_domains: tuple[SandboxEntry, ...] = ()
    denied_domains: tuple[SandboxEntry, ...] = ()
    managed_domains_only: bool = False
    managed_lock: Origin | None = None
    """The managed settings file that set ``allowManagedDomainsOnly`` (the first to), or
    ``None``: whom to name when the others' domains are set aside."""
    set_aside_domains: tuple[SandboxEntry, ...] = ()
    """The ``allowedDomains`` entries of other files that ``allowManagedDomainsOnly`` set aside."""


def sandbox_settings(loaded: Loaded) -> SandboxSettings:
    """The ``sandbox`` settings in force for ``loaded`` (see :class:`SandboxSettings`)."""
    lists: dict[str, list[SandboxEntry]] = {}
    seen: dict[str, set[tuple[str, str | None, bool | None]]] = {}
    lock: Origin | None = None
    for layer in loaded.layers:
        sandbox = layer.data.get("sandbox")
        if not isinstance(sandbox, dict):
            continue
        network = sandbox.get("network")
        managed = layer.origin.source is Source.MANAGED and layer.valid
        if managed and isinstance(network, dict) and lock is None:
            lock = layer.origin if network.get("allowManagedDomainsOnly") is True else None
        for block, names in (
            ("filesystem", SANDBOX_FILESYSTEM_LISTS),
            ("network", SANDBOX_NETWORK_LISTS),
        ):
            found = sandbox.get(block)
            if not isinstance(found, dict):
                continue
            for name in names:
                entries = found.get(name)
                if isinstance(entries, str) and name in SANDBOX_RESTRICTING:
                    entries = [entries]  # one entry, not a list: it can only restrict
                if not isinstance(entries, list) or not (
                    layer.valid or name in SANDBOX_RESTRICTING
                ):
                    continue
                known = lists.setdefault(name, [])
                said = seen.setdefault(name, set())
                for text in entries:
                    if not isinstance(text, str) or not text.strip():
                        continue
                    key = _same_entry(name, text, layer.origin)
                    if key not in said:
                        said.add(key)
                        known.append(SandboxEntry(text, layer.origin))
    set_aside: list[SandboxEntry] = []
    if lock is not None:
        allowed = lists.get("allowedDomains", [])
        set_aside = [entry for entry in allowed if entry.origin.source is not Source.MANAGED]
        lists["allowedDomains"] = [e for e in allowed if e.origin.source is Source.MANAGED]
    found = {name: tuple(entries) for name, entries in lists.items()}
    return SandboxSettings(
        found.get("allowWrite", ()),
        found.get("denyWrite", ()),
        found.get("denyRead", ()),
        found.get("allowedDomains", ()),
        found.get("deniedDomains", ()),
        lock is not None,
        lock,
        tuple(set_aside),
    )


def agent_sandbox(loaded: Loaded) -> Origin | None:
    """The settings file whose ``sandbox.enabled`` turns the agent's own sandbox on (the
    highest file that sets the key decides, as the agent reads its settings), or ``None``
    when none does: the agent then runs its commands in a bubblewrap sandbox of its own,
    which mounts."""
    for layer in loaded.layers:  # highest first
        sandbox = layer.data.get("sandbox")
        if layer.valid and isinstance(sandbox, dict) and "enabled" in sandbox:
            return layer.origin if sandbox["enabled"] is True else None
    return None


def _same_entry(name: str, text: str, origin: Origin) -> tuple[str, str | None, bool | None]:
    """What makes two entries of list ``name`` one: only the first of them is kept, with the
    file it came from (the highest).

    The same text is not always the same entry. ``/x`` names a path under the folder of the
    file that says it, so ``/x`` in the user's settings and ``/x`` in the project's are two
    paths, both kept. And a restricting entry of a project's file (which ``airlock run`` lets
    that project's ``allowWrite`` open below) never stands for the same entry of another
    file: the user's ``denyWrite`` of ``./secrets``, repeated in a cloned project's settings
    with an ``allowWrite`` of ``./secrets/x``, must still keep ``./secrets/x`` read-only.
    """
    folder = origin.path if text.startswith("/") and not text.startswith("//") else None
    projects = origin.source in PROJECT_SOURCES if name in SANDBOX_RESTRICTING else None
    return text, folder, projects


def set_aside_by_lock(loaded: Loaded, network: SandboxSettings) -> tuple[str, ...]:
    """Every allow entry for the network that the managed settings' ``allowManagedDomainsOnly``
    sets aside, in words (the entry, its key and its file): the other files'
    ``sandbox.network.allowedDomains`` entries and ``WebFetch(domain:…)`` rules in
    ``permissions.allow``. Empty without that setting."""
    if network.managed_lock is None:
        return ()
    from airlock.policy.rules import names_domains

    found = [
        f"{entry.text!r} (sandbox.network.allowedDomains in {entry.origin.describe()})"
        for entry in network.set_aside_domains
    ]
    found += [
        f"{rule.text!r} (permissions.allow in {rule.origin.describe()})"
        for rule in loaded.context.permissions.allow
        if names_domains(rule.text) and rule.origin.source is not Source.MANAGED
    ]
    return tuple(found)


RUN_RESTRICTING = (
    ("sandbox", "filesystem", "denyRead"),
    ("sandbox", "filesystem", "denyWrite"),
    ("sandbox", "network", "deniedDomains"),
    ("permissions", "deny"),
    ("permissions", "ask"),
    ("airlock", "inspect"),
)
"""The keys that restrict what ``airlock run`` lets through: none may be left out.
``permissions.ask`` too: the proxy cannot ask, so its ``WebFetch(domain:…)`` rules refuse
hosts that the settings' allow rules or ``--allow-all`` would let out. And ``airlock.inspect``
(:func:`inspect_setting`): it lets no host out, it has the requests to its hosts read, so that
a flow that is off is refused and a secret in an upload found (``--secrets``); a run without
it would hold back less than the user asked, without a word."""

INSPECT = ("airlock", "inspect")


@dataclass(frozen=True, slots=True)
class InspectSetting:
    """``airlock.inspect`` as ``airlock run`` takes it (:func:`inspect_setting`)."""

    hosts: tuple[str, ...] = ()
    """The hosts named, once each, in the order of the files (highest first)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Where each host is written first, in words (a refusal of one names its file)."""
    with_problems: tuple[str, ...] = ()
    """The files, in words, with problems of their own whose hosts are taken all the same."""


def inspect_setting(loaded: Loaded) -> InspectSetting:
    """The hosts ``airlock.inspect`` names, as the restricting lists are taken
    (:data:`RUN_RESTRICTING`): from every file that could be read, one with problems too (what
    else it says is not in effect), and a lone string as the list of that one host. A value
    that cannot be read so (a number, an object, a list holding one, an empty entry) is one of
    :func:`restrictions_not_taken`, and stops the run before this is asked; here it is
    passed over."""
    hosts: dict[str, str] = {}
    with_problems: list[str] = []
    for layer in loaded.layers:
        found, value = lookup(layer.data, INSPECT)
        if not layer.readable or not found:
            continue
        entries = [value] if isinstance(value, str) else value
        if not isinstance(entries, list) or not all(isinstance(item, str) for item in entries):
            continue
        where = layer.origin.describe()
        if entries and not layer.valid:
            with_problems.append(where)
        for item in entries:
            hosts.setdefault(item, where)
    return InspectSetting(tuple(hosts), hosts, tuple(with_problems))


def restrictions_not_taken(loaded: Loaded) -> tuple[Problem, ...]:
    """Each settings file that could not be read at all (not valid JSON, too large, not a
    regular file: it may hold any of them), and in any file each :data:`RUN_RESTRICTING`
    value that cannot be taken as a list of strings (a number, an object, ``null``, a list
    holding one of them), each entry of one that is empty (it names nothing), each block
    on the way to one that is no object (``"sandbox": [{"network": …}]``, ``"permissions":
    []``), and an ``env`` block that is no object (``["DISABLE_TELEMETRY=1"]``: its opt-outs
    turn flows off, and with them the hosts the proxy lets out for those flows): what it
    would take away is unknown, so ``airlock run`` refuses to start rather than run without
    it. A lone string is taken as a one-item list (see :func:`sandbox_settings`)."""
    problems: list[Problem] = []
    for layer in loaded.layers:
        if not layer.readable:
            problems += layer.problems
            continue
        where = layer.origin.path or layer.origin.describe()
        if "env" in layer.data and not isinstance(layer.data["env"], dict):
            expected = (
                "expected an object of variables: its opt-outs (DISABLE_TELEMETRY, …) turn "
                "flows off, and which it would turn off cannot be told"
            )
            problems.append(Problem(where, "env", shown(layer.data["env"]), expected))
        blocks_said: set[tuple[str, ...]] = set()
        for path in RUN_RESTRICTING:
            for depth in range(1, len(path)):
                block = path[:depth]
                found, value = lookup(layer.data, block)
                if found and not isinstance(value, dict) and block not in blocks_said:
                    blocks_said.add(block)
                    under = [".".join(key) for key in RUN_RESTRICTING if key[:depth] == block]
                    expected = (
                        f"expected an object: it may hold {' or '.join(under)}, which can "
                        "only restrict, and what it would take away cannot be told"
                    )
                    problems.append(Problem(where, ".".join(block), shown(value), expected))
            found, value = lookup(layer.data, path)
            if not found:
                continue
            entries = [value] if isinstance(value, str) else value
            key = ".".join(path)
            if not isinstance(entries, list) or not all(isinstance(item, str) for item in entries):
                expected = "expected a list of strings (a lone string is taken as one entry)"
                problems.append(Problem(where, key, shown(value), expected))
            elif any(not item.strip() for item in entries):
                expected = (
                    "an empty entry names nothing: what it was meant to take away cannot be told"
                )
                problems.append(Problem(where, key, shown(value), expected))
    return tuple(problems)


def sandbox_path(entry: SandboxEntry, home: Path, cwd: Path, environ: Mapping[str, str]) -> Path:
    """What a ``sandbox.filesystem`` path names, by its prefix, as the reference agent reads it.

    ``//x`` is the absolute ``/x``; ``~/x`` is under the home; ``/x`` is under the folder of
    the settings file that says it (the managed settings folder for managed settings, the
    project for inline ``--settings``); ``./x`` and ``x`` are under the project (``cwd``).
    """
    text = entry.text
    if text.startswith("//"):
        return Path("/" + text.lstrip("/"))
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    if text.startswith("/"):
        return _settings_folder(entry.origin, cwd, environ) / text.lstrip("/")
    return cwd / text


def _settings_folder(origin: Origin, cwd: Path, environ: Mapping[str, str]) -> Path:
    if origin.source is Source.MANAGED:
        return managed_dir(environ)
    if origin.path is None or origin.path.startswith("--settings"):
        return cwd
    return Path(origin.path).parent
