"""The bubblewrap launcher: builds the sandbox, receives its proxy port, runs and signals it.

Theory of operation
-------------------
:func:`check` finds ``bwrap``, util-linux's ``unshare`` and, for an unprivileged user, the
kernel settings that allow user namespaces; what is missing is a
:class:`~airlock.errors.SandboxError` saying what to do.
:func:`bwrap_arguments` turns a :class:`Spec` into bubblewrap's command line: new PID, IPC, UTS,
network (and cgroup) namespaces, all capabilities dropped, a new session (no keystrokes pushed
into the caller's terminal), killed with airlock (``--die-with-parent``), the kernel's
settings under ``/proc`` read-only (:data:`PROC_READ_ONLY`), the mounts of
:mod:`airlock.sandbox.paths`, read-only binds of what airlock itself runs from where those
would let the command write it (:func:`own_installation`), and a ``resolv.conf`` naming a
closed loopback port (at the end of the link ``/etc/resolv.conf`` may be:
:func:`resolv_conf_target`), so a name lookup inside fails at once; the stub is given the
folders the command may open files for writing under (:func:`writable_trees`), which it holds
the command to with Landlock where the kernel has it (a read-only mount does not keep a named
pipe from being opened for writing), unless ``Spec.restrict_writes`` is off. bubblewrap is started
through ``unshare`` in a mount namespace whose mounts are private (:func:`private_mounts`):
bubblewrap only makes the sandbox's mounts slaves of the host's, so a file system mounted on
the host while the command runs (a USB stick, an automount, sshfs) would arrive inside with
the host's flags, writable.

:func:`start` starts bubblewrap with one end of a Unix socket pair and returns at once, so
the caller can prepare the proxy while the sandbox is built. The stub bubblewrap runs first
(:mod:`airlock.sandbox._stub`) sends back a socket listening on ``127.0.0.1:PORT`` inside the
sandbox's network namespace (:meth:`Starting.ready`), then waits: only :meth:`Sandbox.go`
lets it become the command, once the caller holds that socket for the egress proxy (its
connections wait in the socket's queue until the proxy accepts them). If bubblewrap exits
before the socket arrives, the sandbox could not be built: nothing ran, and the error says
why. :func:`launch` does the three steps at once. :meth:`Sandbox.wait_unconnected` waits for
the command's end or its first connection, whichever comes first, so the caller loads the
proxy only when it is needed.

The run ends with the command, whatever else it left inside. bubblewrap's init (process 1 of
the PID namespace) reaps the command and tells bubblewrap, which exits with its status; the
init, killed with it, ends every other process inside before it ends itself.
:meth:`Sandbox.wait` watches the command's own end too (a pidfd): an init that cannot tell
(left stopped by a tracer inside, or a tracer holding the command's end) has bubblewrap
killed after :data:`END_GRACE` seconds, the command's status read from its zombie; and it
returns only once the init has ended, so nothing from inside runs on while the caller looks
at what the command wrote. Signals passed on (:meth:`Sandbox.signal`) go to the command's
process group, followed by SIGCONT, and only once the stub has become the command.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from airlock.errors import SandboxError
from airlock.sandbox._stub import UNRESTRICTED
from airlock.sandbox.paths import PRIVATE_TMPFS, Kind, Mount, plan, resolve, visible
from airlock.sandbox.placeholders import SCRATCH_PREFIX, Placeholders, claimed_by_others
from airlock.sandbox.seccomp import filter_fd

PROXY_PORT = 3128
"""Where the proxy listens inside the sandbox (its own loopback: no clash with the host's)."""

STARTUP_TIMEOUT = 30.0
"""Seconds bubblewrap may take to build the sandbox and start the stub."""

GO_TIMEOUT = 5.0
"""Seconds the stub, told to go, may take to become the command (milliseconds: it has
started already); past them, signals held until it has (:meth:`Sandbox.signal`) are sent."""

RESOLV_CONF = """\
# airlock run: there is no DNS inside the sandbox. Reach the network through the proxy
# (HTTP_PROXY / HTTPS_PROXY): it resolves names outside, after its rules allow them.
nameserver 127.0.0.1
options timeout:1 attempts:1
"""

RESOLV_CONF_PATH = "/etc/resolv.conf"


def resolv_conf_target(path: str = RESOLV_CONF_PATH) -> str:
    """Where the sandbox's ``resolv.conf`` (:data:`RESOLV_CONF`) is bound: ``path`` itself, or,
    when ``path`` is a symbolic link, the file it leads to on the host (links resolved).

    systemd-resolved makes ``/etc/resolv.conf`` a link to
    ``../run/systemd/resolve/stub-resolv.conf`` (Ubuntu's default, Fedora's, GitHub's
    runners'), NetworkManager and resolvconf to files under ``/run`` too. Inside, ``/run``
    is private and empty: bubblewrap, asked to bind over the link, follows it to a file that
    is not there, cannot create it in a folder that is not there either, and no sandbox
    was built. Bound at the link's end instead, the file is made there, in the private
    ``/run`` (bubblewrap makes the folders on the way), and the link leads to it."""
    return os.path.realpath(path)


USERNS_SETTINGS: tuple[tuple[str, str, str], ...] = (
    (
        "/proc/sys/kernel/unprivileged_userns_clone",
        "0",
        "run 'sysctl -w kernel.unprivileged_userns_clone=1' as root",
    ),
    (
        "/proc/sys/user/max_user_namespaces",
        "0",
        "run 'sysctl -w user.max_user_namespaces=15000' as root",
    ),
    (
        "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        "1",
        "allow bwrap and unshare user namespaces with AppArmor profiles (Ubuntu 24.04: see "
        "/etc/apparmor.d/bwrap-userns-restrict), or run "
        "'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0' as root",
    ),
)
"""Kernel settings that stop an unprivileged user from creating a user namespace, and the fix."""

USERNS_LIMIT = "/proc/sys/user/max_user_namespaces"
"""The kernel's bound on the user namespaces a user has at once (``user.max_user_namespaces``)."""

NESTED_USER_NAMESPACES = 3
"""The user namespaces an unprivileged user's run makes, one in another: ``unshare``'s
(:func:`private_mounts`) and bubblewrap's two (root mapped in the first, to mount the
sandbox's ``/dev/pts``; the user's own ids in the second). A :data:`USERNS_LIMIT` below it
fails every run, in bubblewrap's words."""

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
)

UNSHARE_HINT = (
    "install util-linux (Debian/Ubuntu: apt-get install util-linux; Fedora: dnf install util-linux)"
)


@dataclass(frozen=True, slots=True)
class Spec:
    """Everything the sandbox is built from."""

    command: tuple[str, ...]
    cwd: Path
    environ: Mapping[str, str]
    mounts: tuple[Mount, ...]
    """In the order to apply them (:func:`airlock.sandbox.paths.plan`)."""
    port: int = PROXY_PORT
    ledger: Path | None = None
    """Where the placeholders this run makes are listed while they stand
    (:mod:`airlock.sandbox.placeholders`); ``None``: not listed."""
    workspace: Path | None = None
    """The workspace, its real path: its placeholders are removed where it is at the run's
    end, moved or not (:class:`~airlock.sandbox.placeholders.Placeholders`)."""
    restrict_writes: bool = True
    """Whether files may be opened for writing only in the folders the sandbox lets the
    command write (:func:`writable_trees`, with Landlock, where the kernel has it): a
    named pipe on the host's read-only file systems cannot be written then, and the command
    cannot mount file systems (a sandbox or container of its own); ``False`` (``airlock run
    --allow-mounts``): it can, and such a pipe can be written."""


SYSTEM_PROGRAMS: tuple[str, ...] = (
    "/usr/bin",
    "/bin",
    "/usr/local/bin",
    "/usr/sbin",
    "/sbin",
    "/usr/local/sbin",
    "/run/current-system/sw/bin",
)
"""The folders ``bwrap`` is looked for in: the system's, which code in a sandbox cannot write
(the rest of the system is read-only inside). Not ``PATH``: a folder of it a run could write
(a project's ``bin``, ``~/.local/bin`` under ``--rw ~``) would let that run leave a ``bwrap``
that builds a weaker sandbox, or none, for the runs after it."""

BWRAP_VARIABLE = "AIRLOCK_BWRAP"
"""Names the ``bwrap`` to run when it is installed elsewhere than :data:`SYSTEM_PROGRAMS`."""


def check(
    environ: Mapping[str, str],
    userns_settings: tuple[tuple[str, str, str], ...] = USERNS_SETTINGS,
    euid: int | None = None,
    places: Sequence[str] = SYSTEM_PROGRAMS,
    userns_limit: str = USERNS_LIMIT,
) -> str:
    """Where ``bwrap`` is (its real path, the one run), once everything it needs is there:
    ``unshare`` (:func:`unshare_program`) too.

    Args:
        environ: airlock's environment (:data:`BWRAP_VARIABLE`).
        userns_settings: the kernel settings to read (:data:`USERNS_SETTINGS`).
        euid: the user airlock runs as (default: this process's).
        places: the folders to look in (:data:`SYSTEM_PROGRAMS`).
        userns_limit: the kernel's bound on a user's user namespaces (:data:`USERNS_LIMIT`).

    Raises:
        SandboxError: no bubblewrap there (or :data:`BWRAP_VARIABLE` names no program), no
            ``unshare`` there, or a kernel setting forbids the user namespaces an unprivileged
            user needs, or bounds them below :data:`NESTED_USER_NAMESPACES`; the message says
            what to do.
    """
    named = environ.get(BWRAP_VARIABLE)
    if named:
        program = Path(named)
        if not (program.is_absolute() and program.is_file() and os.access(program, os.X_OK)):
            raise SandboxError(
                f"{BWRAP_VARIABLE}={named}: not a program (an absolute path to bubblewrap's "
                "bwrap is expected)"
            )
        found: str | None = named
    else:
        found = shutil.which("bwrap", path=os.pathsep.join(places))
    if found is None:
        raise SandboxError(
            f"bubblewrap (bwrap) is not installed in the system's folders "
            f"({', '.join(places)}): {INSTALL_HINT}; one installed elsewhere is run when "
            f"{BWRAP_VARIABLE} names it"
        )
    unshare_program(places)
    if (os.geteuid() if euid is None else euid) != 0:
        for path, forbidding, fix in userns_settings:
            try:
                value = Path(path).read_text(encoding="ascii").strip()
            except OSError:
                continue
            if value == forbidding:
                raise SandboxError(
                    f"unprivileged user namespaces are disabled on this machine ({path} is "
                    f"{value}), and bubblewrap needs one: {fix}"
                )
        try:
            limit = int(Path(userns_limit).read_text(encoding="ascii"))
        except (OSError, ValueError):
            limit = NESTED_USER_NAMESPACES
        if 0 < limit < NESTED_USER_NAMESPACES:  # 0: said above, as disabled
            raise SandboxError(
                f"this machine lets a user have {limit} user namespace{'s' if limit > 1 else ''} "
                f"at once ({userns_limit}), and a run as a user other than root makes "
                f"{NESTED_USER_NAMESPACES}, one in another (unshare's and bubblewrap's two): "
                "run 'sysctl -w user.max_user_namespaces=15000' as root"
            )
    return os.path.realpath(found)  # run by what it is now: a link changed later changes nothing


def unshare_program(places: Sequence[str] = SYSTEM_PROGRAMS) -> str:
    """Where util-linux's ``unshare`` is (its real path), looked for in ``places`` only, as
    ``bwrap`` is (:data:`SYSTEM_PROGRAMS`): it runs outside every namespace.

    Raises:
        SandboxError: it is not there; the message says what to install.
    """
    found = shutil.which("unshare", path=os.pathsep.join(places))
    if found is None:
        raise SandboxError(
            f"unshare is not installed in the system's folders ({', '.join(places)}): "
            f"{UNSHARE_HINT}; bubblewrap is started through it, in a mount namespace of its "
            "own whose mounts are private, so a file system mounted on the host during the run "
            "cannot appear in the sandbox writable"
        )
    return os.path.realpath(found)


def private_mounts(unshare: str, euid: int | None = None) -> list[str]:
    """The command line that starts bubblewrap (it follows) in a new mount namespace whose
    mounts are all private (``unshare --mount --propagation private``): no mount made on the
    host after the run starts reaches it, so none reaches the sandbox built in it.

    bubblewrap itself makes the sandbox's mounts slaves of the host's: a file system mounted
    on the host during the run (a USB stick under ``/media``, an automount, sshfs or NFS
    under a shared mount) would appear inside with the host's flags, writable, though the
    rest of the system is read-only. In the new namespace, the copy of a host mount is private
    instead: an unmount on the host does not reach it either, and the file system stays in use
    until the run ends. An unprivileged user needs a user namespace for a mount namespace:
    ``--map-current-user`` keeps the user's ids, and bubblewrap nests its own inside
    (``--unshare-user``), so the command sees the same user and groups as without it.
    ``unshare`` replaces itself with bubblewrap: airlock's child, which dies with it, is
    bubblewrap. Not done in airlock's own process: a library must not change its host's
    namespaces, and a ``preexec_fn`` is unsafe with threads.
    """
    arguments = [unshare]
    if (os.geteuid() if euid is None else euid) != 0:
        arguments += ["--user", "--map-current-user"]
    return [*arguments, "--mount", "--propagation", "private", "--"]


def bwrap_arguments(
    spec: Spec, bwrap: str, scratch: Path, channel_fd: int, seccomp_fd: int | None = None
) -> list[str]:
    """bubblewrap's command line for ``spec``.

    Args:
        spec: the sandbox.
        bwrap: the ``bwrap`` program.
        scratch: a private folder holding the placeholders (``empty-dir``, ``empty-file``) and
            ``resolv.conf``, made by :func:`_scratch`.
        channel_fd: the stub's end of the socket pair, inherited by bubblewrap.
        seccomp_fd: the system-call filter (:func:`airlock.sandbox.seccomp.filter_fd`),
            inherited by bubblewrap, which loads it before it runs the stub.
    """
    arguments = [
        bwrap,
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--unshare-cgroup-try",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    if os.geteuid() != 0:
        arguments.append("--unshare-user")
    arguments += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    arguments += _proc_arguments(scratch)
    private = [
        path for path in PRIVATE_TMPFS if Path(path).is_dir() and not Path(path).is_symlink()
    ]
    for path in private:
        arguments += ["--tmpfs", path]
    arguments += ["--ro-bind", str(scratch / "resolv.conf"), resolv_conf_target()]
    hidden = [rule.path for rule in spec.mounts if _hidden_folder(rule)]
    own = own_installation(spec.mounts)
    rules = plan([*_interpreter(hidden), *own, *spec.mounts])  # parents first, with the Python's
    for rule in rules:
        arguments += _mount_arguments(rule, scratch)
    for rule in rules:  # hidden folders: read-only once what is bound into them is there
        if _hidden_folder(rule):
            arguments += ["--remount-ro", str(rule.path)]
    if seccomp_fd is not None:
        arguments += ["--seccomp", str(seccomp_fd)]
    stub = Path(__file__).with_name("_stub.py")
    arguments += ["--chdir", str(spec.cwd), "--", sys.executable, "-I", "-S", str(stub)]
    # The loader's variables go to the command alone, set by the stub just before it becomes
    # the command: given to the stub's own Python, a library they name would run in it before
    # it sets the audit login uid (which an unset one lets any process set once).
    loader = [f"{name}={value}" for name, value in spec.environ.items() if loader_variable(name)]
    arguments += [str(channel_fd), str(spec.port), str(len(loader)), *loader]
    if spec.restrict_writes:
        trees = writable_trees(rules, private)
        arguments += [str(len(trees)), *trees, *spec.command]
    else:
        arguments += [UNRESTRICTED, *spec.command]
    if len(arguments) > BWRAP_MAX_ARGUMENTS:  # bubblewrap would refuse, in words about paths
        needed = len(arguments) - len(spec.command)  # the sandbox's own
        if needed <= BWRAP_MAX_ARGUMENTS // 2:
            raise SandboxError(
                f"the command has {len(spec.command):,} arguments, and the sandbox's own "
                f"{needed:,}: bubblewrap takes at most {BWRAP_MAX_ARGUMENTS:,} in all; give the "
                "command fewer (xargs splits a long list into several runs of it)"
            )
        raise SandboxError(
            f"the sandbox's path rules ({len(rules):,}) make {needed:,} of bubblewrap's arguments, "
            f"which takes at most {BWRAP_MAX_ARGUMENTS:,} in all; the most for "
            f"{_most_rules(rules)}: nothing was run; remove what those rules are for, or run "
            "in a folder that holds less"
        )
    return arguments


def _most_rules(rules: Sequence[Mount]) -> str:
    """The two reasons most of ``rules`` have, each with its count, in words: what made the
    sandbox's arguments too many (a workspace holding hundreds of nested repositories, each
    with hundreds of submodules' git folders, which code inside an earlier run could make; a
    settings file's thousands of ``denyRead`` entries), for the user to remove."""
    counts: dict[str, int] = {}
    for rule in rules:
        counts[rule.why] = counts.get(rule.why, 0) + 1
    most = sorted(counts.items(), key=lambda item: -item[1])[:2]
    return "; ".join(f"{why} ({count:,} paths)" for why, count in most)


BWRAP_MAX_ARGUMENTS = 9000
"""bubblewrap's bound on its command line, the command's own arguments included."""


SANDBOX_WRITABLE: tuple[str, ...] = ("/dev", "/proc")
"""The sandbox's own file systems the command writes besides the private ``/tmp``, ``/var/tmp``
and ``/run``: ``/dev`` (``/dev/null``, ``/dev/tty``, the pseudo-terminals, ``/dev/shm``) and
``/proc`` (``/proc/self/oom_score_adj``, ``attr``, a thread's ``comm``, a new user namespace's
``uid_map``; the kernel's settings there are read-only mounts)."""


def writes_limited() -> bool:
    """Whether the stub can limit the command's writes with Landlock on this kernel (ABI 2 or
    later, as :mod:`airlock.sandbox._stub` asks): a command limited so cannot mount."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): the ABI, or -1
    return int(libc.syscall(444, None, 0, 1)) >= 2


def writable_trees(rules: Sequence[Mount], private: Sequence[str]) -> list[str]:
    """The folders the command may open files for writing under, for the stub's Landlock rules
    (:mod:`airlock.sandbox._stub`): :data:`SANDBOX_WRITABLE`, the private folders mounted
    (``private``: those of :data:`~airlock.sandbox.paths.PRIVATE_TMPFS` there), and the path of
    every ``WRITE`` rule of ``rules`` (bound read-write, or a private folder of the sandbox's
    own); one under another of them is left out, as its folder covers it. Everywhere else the
    mounts are read-only already: the rules add nothing there but that a named pipe (FIFO) on
    the host's file systems cannot be opened for writing either, which a read-only mount lets
    code do."""
    paths = [*SANDBOX_WRITABLE, *private]
    paths += [str(rule.path) for rule in rules if rule.kind is Kind.WRITE]
    trees: list[str] = []
    for path in sorted(set(paths), key=lambda text: (text.count("/"), text)):
        if not any(_at_or_under(path, tree) for tree in trees):
            trees.append(path)
    return trees


PROC_READ_ONLY: tuple[str, ...] = ("sys", "sysrq-trigger", "irq", "bus", "fs")
"""The kernel's own settings under ``/proc``: read-only inside. bubblewrap covers them only
where it finds them writable, and a run as root leaves the command uid 0, which the kernel
lets write ``/proc/sys`` without a capability: ``kernel.core_pattern`` names a program the
kernel then runs as root outside every namespace; ``sysrq-trigger`` reboots the machine."""

PROC_MASKED: tuple[str, ...] = (
    "kcore",
    "keys",
    "key-users",
    "timer_list",
    "sched_debug",
    "latency_stats",
)
"""Files under ``/proc`` that tell of the host beyond the sandbox (the keyrings' key names,
the host's timers and tasks, its memory): an empty file stands there inside."""

PROC_MASKED_FOLDERS: tuple[str, ...] = ("acpi", "scsi", "asound")
"""Folders under ``/proc`` with the host's hardware settings, some writable as root: an empty
folder stands there inside."""


def _proc_arguments(scratch: Path, proc: Path = Path("/proc")) -> list[str]:
    """bubblewrap's arguments that make :data:`PROC_READ_ONLY` read-only and hide
    :data:`PROC_MASKED` and :data:`PROC_MASKED_FOLDERS` in the sandbox's ``/proc``, for those
    this kernel has (``proc``: the host's, the same kernel's)."""
    arguments: list[str] = []
    for name in PROC_READ_ONLY:
        if os.path.lexists(proc / name):
            arguments += ["--ro-bind", f"/proc/{name}", f"/proc/{name}"]
    for name in PROC_MASKED:
        if os.path.lexists(proc / name):
            arguments += ["--ro-bind", str(scratch / "empty-file"), f"/proc/{name}"]
    for name in PROC_MASKED_FOLDERS:
        if (proc / name).is_dir():
            arguments += ["--ro-bind", str(scratch / "empty-dir"), f"/proc/{name}"]
    return arguments


def _interpreter(hidden: Sequence[Path] = ()) -> list[Mount]:
    """The Python that runs the stub, and airlock's package that holds it, bound back read-only
    where a private ``/tmp`` would hide them: ``sys.executable`` may be a venv's link to a
    Python elsewhere, so the venv itself (its link, its site-packages) must stay in sight.
    Planned with the spec's own rules, which win on the same path; bound back under a hidden
    folder too (a Python under a hidden home)."""
    paths = [
        Path(sys.prefix),
        Path(sys.base_prefix),
        Path(sys.executable),
        Path(__file__).parents[1],
    ]
    return list(visible(paths, "the Python that starts the sandbox", hidden))


OWN_INSTALLATION = (
    "what airlock runs from (its Python, virtual environment, packages): code run inside must "
    "not change the airlock that runs outside, after this command and at the next run; install "
    "airlock outside the folders the sandbox writes (pipx, uv tool) to let the command write it"
)


def own_installation(mounts: Sequence[Mount]) -> list[Mount]:
    """Read-only binds of what airlock itself runs from, where ``mounts`` (in the order
    bubblewrap applies them) would let the command write it: the Python and its virtual
    environment, airlock's package, and every folder on Python's import path.

    airlock runs outside the sandbox, before the command, after it and at the next run, and
    imports most of its modules only when it needs them (start-up time). Installed in the
    workspace (a project's ``.venv``, an editable install of a checkout, the quick start run
    in its own checkout) or under a ``--rw`` folder, it would be code the command can
    rewrite: a module airlock imports after the command ends (the report's), a ``.pth`` file in
    its ``site-packages`` or its ``bin/python`` would then run outside the sandbox, with
    airlock's rights. A folder the user opened for writing by that very path (the workspace
    itself on the import path, as ``python -m airlock`` started in it puts it) is left as it
    is: made read-only, the run could not work in it. One bind per folder: none under
    another."""
    paths = [
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sys.base_exec_prefix,
        sys.executable,
        str(Path(__file__).parents[1]),
        *(entry for entry in sys.path if Path(entry).is_absolute()),
    ]
    found: list[Path] = []
    for path in sorted({resolve(Path(path)) for path in paths}, key=lambda path: len(path.parts)):
        if any(path.is_relative_to(kept) for kept in found):
            continue
        writable = _writable_by(path, mounts)
        if writable is not None and writable.path != path and os.path.lexists(path):
            found.append(path)
    return [Mount(Kind.READ, path, OWN_INSTALLATION, True, path.is_dir()) for path in found]


def _writable_by(path: Path, mounts: Sequence[Mount]) -> Mount | None:
    """The rule of ``mounts`` (in the order bubblewrap applies them: the last on a path wins)
    that lets the command write ``path`` (a real path), if one does."""
    text = str(path)
    writable = None
    for rule in mounts:
        if _at_or_under(text, str(rule.path)):
            writable = rule if rule.kind is Kind.WRITE else None
    return writable


def _at_or_under(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both absolute and normal). Compared as
    text: :func:`own_installation` asks it of every path rule for each folder on Python's
    import path, and ``Path.parents`` made that 7 ms of every run's start."""
    return path == folder or path.startswith(folder if folder.endswith("/") else folder + "/")


def _hidden_folder(rule: Mount) -> bool:
    """A folder hidden by an empty file system of its own (``--tmpfs``), so that what must stay
    in sight under it (the workspace under a hidden home) can be bound back into it; it is
    made read-only after the binds (``--remount-ro``)."""
    return rule.kind is Kind.HIDE and rule.exists and rule.is_dir and rule.source is None


def _mount_arguments(rule: Mount, scratch: Path) -> list[str]:
    path = str(rule.path)
    if _hidden_folder(rule) or rule.private:
        return ["--tmpfs", path]
    if rule.kind is Kind.WRITE:
        return ["--bind", str(rule.source or rule.path), path]
    if rule.source is not None:
        return ["--ro-bind", str(rule.source), path]
    if rule.kind in (Kind.READ, Kind.SHOW) and rule.exists:
        return ["--ro-bind", path, path]
    placeholder = scratch / ("empty-dir" if rule.is_dir else "empty-file")
    return ["--ro-bind", str(placeholder), path]


def _scratch() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX))
    (scratch / "empty-dir").mkdir(mode=0o555)
    (scratch / "empty-file").touch(mode=0o444)
    (scratch / "resolv.conf").write_text(RESOLV_CONF, encoding="ascii")
    return scratch


SIGNAL_LOOK = 0.1
"""Seconds between the waiting main thread's looks at signals another thread took, when
:func:`_signal_wakeup` cannot be had."""

END_GRACE = 1.0
"""Seconds bubblewrap may take to end once the command has: its init (process 1 of the PID
namespace) reaps the command and tells it at once, and it exits with the command's status,
which ends all else that ran inside. An init that cannot would have the run wait for ever:
one stopped (a process inside that ptrace-attached to it and ended left it stopped), or a
command held unreported by a tracer inside. bubblewrap is killed then, as
:meth:`Sandbox.wait` says."""

INSIDE_GONE = 5.0
"""Seconds the end of what ran inside is waited for once bubblewrap is reaped
(:meth:`Sandbox.kill`): in a few milliseconds, unless one of them is stuck in the kernel."""


def _command_end(proc: int) -> tuple[bool, int | None]:
    """Whether the process whose ``/proc`` folder ``proc`` is open on has ended, and its exit
    status as a shell gives it (128 + N for signal N) when that can still be read: while it
    is a zombie its parent has not reaped, from the ``exit_code`` field of its ``stat``
    (Linux 3.5). ``(True, None)``: reaped already (its folder is gone); ``(False, None)``:
    it runs, or ``proc`` is ``-1`` (not open)."""
    if proc < 0:
        return False, None
    try:
        fd = os.open("stat", os.O_RDONLY | os.O_CLOEXEC, dir_fd=proc)
        try:
            stat = os.read(fd, 4096)
        finally:
            os.close(fd)
    except (ProcessLookupError, FileNotFoundError):
        return True, None
    except OSError:
        return False, None
    fields = stat[stat.rfind(b")") + 2 :].split()  # its name, in (), may hold anything
    if len(fields) < 50 or fields[0] not in (b"Z", b"X"):  # field 3, state; 52, exit_code
        return False, None
    if fields[17] != b"1":  # field 20, its threads: a main thread ended before the others
        return False, None
    try:
        code = os.waitstatus_to_exitcode(int(fields[49]))
    except ValueError:
        return True, None
    return True, 128 - code if code < 0 else code


@contextlib.contextmanager
def _signal_wakeup() -> Iterator[int]:
    """A file descriptor that becomes readable when a signal comes, while in the block (a
    pipe made Python's :func:`signal.set_wakeup_fd`); ``-1`` where it cannot be had (not the
    main thread, or a wake-up fd is set already: that one is left as it was).

    The kernel hands a signal sent to airlock to any of its threads that does not block it
    (the terminal's relay, the proxy's). Python runs the handler in the main thread only,
    when that thread next runs Python code: one blocked in ``waitpid()`` for the command is
    not woken by a signal another thread took, so airlock's SIGTERM, or the SIGHUP of a
    closed terminal, would not reach the command, which would run on unattended. A thread
    that polls this descriptor too is woken, and the handler runs on its way back.
    """
    try:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        yield -1
        return
    try:
        try:
            previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        except ValueError:  # not the main thread
            previous = write_end
        if previous != -1:  # not ours to set
            if previous != write_end:
                signal.set_wakeup_fd(previous)
            yield -1
            return
        try:
            yield read_end
        finally:
            signal.set_wakeup_fd(-1)
    finally:
        os.close(read_end)
        os.close(write_end)


class SharedStreams:
    """The file status flags (``O_NONBLOCK``, ``O_APPEND``, ``O_ASYNC``) of airlock's standard
    streams the sandbox shares, as they were before it started, to put back once it is gone.

    Code inside can change them with ``fcntl(F_SETFL)`` on the open file description it
    shares with airlock and airlock's caller; the kernel keeps no copy per process. Each is
    known by its file too (device and inode): a number airlock closed and opened again
    meanwhile names another file, and is left alone.
    """

    def __init__(self, given: Sequence[int | None]) -> None:
        """``given``: what the sandbox gets for standard input, output and error, as
        :func:`start` takes them; ``None`` is airlock's own, shared."""
        self._saved: dict[int, tuple[int, int, int]] = {}
        for fd, instead in enumerate(given):
            if instead is not None:  # a pipe or pty of airlock's own: not the caller's
                continue
            try:
                flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                status = os.fstat(fd)
            except OSError:  # closed: the sandbox gets none
                continue
            self._saved[fd] = (flags, status.st_dev, status.st_ino)

    def restore(self) -> None:
        """Put the flags back where code inside changed them. Called once bubblewrap is
        reaped, and again as the sandbox is closed: bubblewrap killed by airlock is reaped
        while the kernel may still be ending what ran inside (they die with it, not before)."""
        for fd, (flags, device, inode) in self._saved.items():
            with contextlib.suppress(OSError):  # closed by airlock meanwhile
                status = os.fstat(fd)
                same = (status.st_dev, status.st_ino) == (device, inode)
                if same and fcntl.fcntl(fd, fcntl.F_GETFL) != flags:
                    fcntl.fcntl(fd, fcntl.F_SETFL, flags)


class Sandbox:
    """A running sandbox: bubblewrap's process, the proxy's listening socket, the command's pid."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        listener: socket.socket,
        command_pid: int,
        placeholders: Placeholders,
        channel: socket.socket,
        streams: SharedStreams | None = None,
    ) -> None:
        self.process = process
        self.listener = listener
        """Listening on ``127.0.0.1:PORT`` in the sandbox's network namespace."""
        self.command_pid = command_pid
        """The process id (as airlock sees it) the command will have."""
        self._placeholders = placeholders
        self._channel = channel
        self._cleaner: threading.Thread | None = None
        self._streams = streams if streams is not None else SharedStreams(())
        """Put back once bubblewrap is reaped: the sandbox's processes all end before it."""
        self._command_fd = _pidfd(command_pid)
        """The command's process (the stub, until :meth:`go`), opened while it surely is
        that one: readable when it ends; ``-1`` on a kernel without ``pidfd_open``."""
        self._command_proc = _proc_folder(command_pid)
        """Its ``/proc`` folder, to read how it ended (:func:`_command_end`); ``-1``: none."""
        self._init_fd = _init_of(command_pid)
        """The sandbox's init (process 1 of its PID namespace, the command's parent), open:
        readable once all that ran inside has ended; ``-1``: not open."""
        self._started = False
        """Whether the stub has become the command (:meth:`go`)."""
        self._held: list[int] = []
        """Signals passed on before then, to send once it has."""

    def go(self) -> None:
        """Let the stub become the command (it waits for this, so nothing runs before), and
        wait until it has: its end of the channel closes as it does (close-on-exec), or as it
        exits when the command cannot be run. Signals passed on meanwhile (:meth:`signal`)
        are held until then, and sent now."""
        with contextlib.suppress(OSError):  # the sandbox is gone: wait() says how it ended
            self._channel.sendall(b"go")
            self._channel.settimeout(GO_TIMEOUT)
            while self._channel.recv(64):
                pass
        self._channel.close()
        self._started = True
        held, self._held = self._held, []
        for number in held:
            self.signal(number)

    def signal(self, number: int) -> None:
        """Send signal ``number`` to the command's process group, then SIGCONT (gone already:
        nothing).

        bubblewrap's ``--new-session`` makes its own process inside the PID namespace lead the
        session and group the command is in; that process is the namespace's init and takes
        no signal it has no handler for, so the group's signal reaches the command and what it
        started. SIGCONT follows, as ``timeout`` and systemd send it: a command stopped
        (``kill -STOP $$``, a tracer that left it stopped) acts on the signal at once, not
        only when a second one kills it. The command or bubblewrap reaped already, nothing is
        sent: the process id, and its group's, may be another process's now. Before
        :meth:`go` has seen the stub become the command, the signal is held: the stub's
        Python would take it.
        """
        if not self._started:
            self._held.append(number)
            return
        if self.process.returncode is not None:  # reaped: all inside ended with bubblewrap
            return
        if self._command_fd >= 0:
            try:
                signal.pidfd_send_signal(self._command_fd, 0)
            except ProcessLookupError:
                return
            except OSError:
                pass  # not allowed to look: the group is signalled as before
        with contextlib.suppress(ProcessLookupError, PermissionError):
            group = os.getpgid(self.command_pid)
            os.killpg(group, number)
            os.killpg(group, signal.SIGCONT)

    def wait_unconnected(self, seconds: float) -> int | None:
        """The command's exit status if it ends within ``seconds`` with no connection waiting
        on the proxy's socket; ``None`` once one waits, or the time is up, and it runs on."""
        return self.wait() if self._wait_for_end(seconds, connection=True) else None

    def wait(self) -> int:
        """The command's exit status (128 + the signal's number when a signal ended it).

        Waited for in ``poll()`` with :func:`_signal_wakeup`, not in a ``waitpid()`` only a
        signal to this thread interrupts: a signal another of airlock's threads took has its
        handler (which passes it on to the command) run at once.

        The command's own end is watched too: bubblewrap, which ends with it, is given
        :data:`END_GRACE` seconds more, then killed, which ends all that is left inside as
        bubblewrap's own end would; the status is then the command's, read as it ended
        (:func:`_command_end`), or 137 when its init had reaped it unreported."""
        self._wait_for_end(None, connection=False)
        status = None
        if self.process.poll() is None:  # the command ended, bubblewrap not yet
            _ended, status = _command_end(self._command_proc)
            if not self._wait_for_end(END_GRACE, connection=False, command=False):
                self.kill_now()
        code = self.process.wait()
        self._wait_for_inside()
        self._streams.restore()
        if status is not None and code == -signal.SIGKILL:
            return status
        return 128 - code if code < 0 else code

    def _wait_for_end(self, seconds: float | None, connection: bool, command: bool = True) -> bool:
        """Whether the command ends within ``seconds`` (``None``: however long it takes) and,
        with ``connection``, before a connection waits on :attr:`listener`. Its end is
        bubblewrap's, or with ``command`` the command's own too."""
        if self.process.returncode is not None:  # reaped: its process id may be another's now
            return True
        poller = select.poll()
        if connection:
            poller.register(self.listener, select.POLLIN)
        if command and self._command_fd >= 0:
            poller.register(self._command_fd, select.POLLIN)
        step: float | None  # seconds between looks, besides what wakes the poll
        try:
            pidfd = os.pidfd_open(self.process.pid)
        except OSError:  # a kernel before 5.3 (or valgrind): the process is looked at every 5 ms
            pidfd, step = -1, 0.005
        else:
            poller.register(pidfd, select.POLLIN)
            step = None
        deadline = None if seconds is None else time.monotonic() + seconds
        try:
            with _signal_wakeup() as wakeup:
                if wakeup >= 0:
                    poller.register(wakeup, select.POLLIN)
                elif step is None:
                    step = SIGNAL_LOOK
                while True:
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    waits = [every for every in (left, step) if every is not None]
                    ready = {fd for fd, _ in poller.poll(min(waits) * 1000 if waits else None)}
                    if connection and self.listener.fileno() in ready:
                        return False
                    if wakeup in ready:  # the handler runs as this thread goes on
                        with contextlib.suppress(BlockingIOError):
                            os.read(wakeup, 512)
                    ended = pidfd in ready or (pidfd < 0 and self.process.poll() is not None)
                    if command and not ended:
                        ended = self._command_fd in ready or (
                            self._command_fd < 0 and _command_end(self._command_proc)[0]
                        )
                    if ended:
                        return not (connection and self._connection_waits())  # came as it ended
        finally:
            if pidfd >= 0:
                os.close(pidfd)

    def _connection_waits(self) -> bool:
        """Whether a connection waits on :attr:`listener` now."""
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        return bool(poller.poll(0))

    def kill_now(self) -> None:
        """Send bubblewrap SIGKILL and return, without waiting for it: safe in a signal handler
        that may have interrupted a :meth:`wait` (whose lock it would wait on for ever). The
        command and all it started die with bubblewrap; :meth:`wait` or :meth:`kill` reap it."""
        if self.process.returncode is None:  # not reaped yet: the process id is still its own
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """End bubblewrap at once; the command and all it started die with it, and are gone
        when this returns (:meth:`_wait_for_inside`). The placeholders it made start going
        away in the background (:meth:`close` waits for them)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._wait_for_inside()
        self._streams.restore()

    def _wait_for_inside(self) -> None:
        """Wait, at most :data:`INSIDE_GONE` seconds, for the sandbox's init to end. Once
        bubblewrap is reaped, what the command left running in the background (a daemon, a
        child in a session of its own) is bound to die, yet runs on until init, killed with
        bubblewrap, gets to end it: the kernel ends init only after every other process of
        its namespace. Waited for, nothing from inside still writes in the workspace as the
        run looks at what it wrote."""
        if self._init_fd < 0:
            return
        poller = select.poll()
        poller.register(self._init_fd, select.POLLIN)
        poller.poll(INSIDE_GONE * 1000)
        if self._cleaner is None:  # each removal waits on the kernel: done while the proxy closes
            self._cleaner = threading.Thread(
                target=self._placeholders.remove, name="airlock placeholders"
            )
            self._cleaner.start()

    def close(self) -> None:
        """Kill what is left, and remove the placeholders the sandbox made in the workspace."""
        self.kill()
        self._channel.close()
        with contextlib.suppress(OSError):  # wakes a thread blocked in accept(); gone already
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        opened = (self._command_fd, self._command_proc, self._init_fd)
        self._command_fd = self._command_proc = self._init_fd = -1  # first: a signal may come
        for fd in opened:
            if fd >= 0:
                os.close(fd)
        if self._cleaner is not None:
            self._cleaner.join()
        self._streams.restore()


def _pidfd(pid: int) -> int:
    """A pidfd on process ``pid``; ``-1`` where the kernel has none (before 5.3)."""
    try:
        return os.pidfd_open(pid)
    except OSError:
        return -1


def _init_of(pid: int) -> int:
    """A pidfd on the parent of process ``pid``, the stub (bubblewrap's init), checked to be
    its parent still once open; ``-1`` when it cannot be had."""
    parent = _parent(pid)
    if parent is None:
        return -1
    fd = _pidfd(parent)
    if fd >= 0 and _parent(pid) != parent:  # the stub's parent ended meanwhile: not that one
        os.close(fd)
        return -1
    return fd


def _parent(pid: int) -> int | None:
    """Process ``pid``'s parent's process id (field 4 of its ``stat``); ``None``: unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
        return int(stat[stat.rfind(b")") + 2 :].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _proc_folder(pid: int) -> int:
    """Process ``pid``'s ``/proc`` folder, open (it stays that process's); ``-1``: none."""
    try:
        return os.open(f"/proc/{pid}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1


class Starting:
    """bubblewrap building the sandbox; :meth:`ready` waits for the stub's socket.

    The command does not run until :meth:`Sandbox.go`: between the two the caller may still
    refuse (a bad rule), and nothing will have run.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        channel: socket.socket,
        placeholders: Placeholders,
        streams: SharedStreams | None = None,
    ) -> None:
        self.process = process
        self._channel = channel
        self._placeholders = placeholders
        self._streams = streams

    def ready(self) -> Sandbox:
        """The sandbox, once the stub inside has sent its listening socket.

        Raises:
            SandboxError: bubblewrap could not build the sandbox (its own message is already
                on stderr), or the stub sent nothing in :data:`STARTUP_TIMEOUT` seconds.
        """
        try:
            listener, pid = _receive(self._channel, self.process)
            try:
                _check_isolated(pid, self.process.pid)
            except SandboxError:
                listener.close()
                raise
        except BaseException:
            self.abandon()
            raise
        return Sandbox(
            self.process, listener, pid, self._placeholders, self._channel, self._streams
        )

    def abandon(self) -> None:
        """End the sandbox before the command ran, and clean up.

        The stub is told by the closed channel (it runs nothing and exits), so bubblewrap ends
        on its own; it is killed only if it does not. Killing it while it still builds the
        sandbox could leave its child behind, before that child has asked to die with it.
        """
        self._channel.close()
        try:
            self.process.wait(STARTUP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._placeholders.remove()


def start(
    spec: Spec,
    bwrap: str,
    stdout: int | None = None,
    stderr: int | None = None,
    stdin: int | None = None,
) -> Starting:
    """Start building the sandbox for ``spec``; returns at once (see :class:`Starting`).

    ``stdout``, ``stderr`` and ``stdin`` are as :class:`subprocess.Popen` takes them (default:
    airlock's); ``airlock run`` passes a pseudo-terminal's slave for each of its own that is a
    terminal (:class:`airlock.sandbox.terminal.Terminal`), never the user's terminal.

    Raises:
        SandboxError: bubblewrap could not be started (or ``unshare``, which starts it, is
            not there).
    """
    unshare = unshare_program()
    _check_trusted(bwrap, spec.mounts)
    _check_trusted(unshare, spec.mounts, "unshare")
    standing = claimed_by_others(spec.ledger)  # another run's placeholders, bound here too
    scratch = _scratch()
    placeholders = Placeholders(
        [rule.path for rule in spec.mounts if not rule.exists or rule.path in standing],
        spec.ledger,
        scratch,
        spec.workspace,
    )
    try:
        placeholders.record()
    except OSError as error:
        shutil.rmtree(scratch, ignore_errors=True)
        raise SandboxError(
            f"cannot list the run's placeholders in {spec.ledger} ({error.strerror or error}): "
            "nothing was run"
        ) from error
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    streams = SharedStreams((stdin, stdout, stderr))
    seccomp_fd = None
    try:
        seccomp_fd = filter_fd()
        arguments = [
            *private_mounts(unshare),
            *bwrap_arguments(spec, bwrap, scratch, theirs.fileno(), seccomp_fd),
        ]
        process = subprocess.Popen(
            arguments,
            env={name: value for name, value in spec.environ.items() if not loader_variable(name)},
            cwd="/",  # nothing bubblewrap reads is looked for in the workspace
            pass_fds=(theirs.fileno(), seccomp_fd),
            stdin=stdin,
            stdout=stdout,
            stderr=stderr,
            process_group=0,  # the terminal's Ctrl-C reaches airlock, which passes it on
        )
    except SandboxError:  # its command line could not be made: nothing started
        ours.close()
        placeholders.remove()
        raise
    except OSError as error:
        ours.close()
        placeholders.remove()
        if seccomp_fd is None:
            raise SandboxError(
                f"cannot make the sandbox's system-call filter: {error.strerror}"
            ) from error
        raise SandboxError(
            f"cannot start bubblewrap ({bwrap}, through {unshare}): {error.strerror}"
        ) from error
    finally:
        theirs.close()
        if seccomp_fd is not None:
            os.close(seccomp_fd)
    return Starting(process, ours, placeholders, streams)


def _check_trusted(program: str, mounts: Sequence[Mount], name: str = "bubblewrap") -> None:
    """Fail when ``program`` (its real path: ``bwrap``, or ``unshare``, ``name`` saying which)
    lies where the sandbox lets code write (the workspace, ``--rw``, the agent's state): code a run left
    there could have replaced it with one that builds no sandbox, or a weaker one, and the
    next run would run under it.

    Raises:
        SandboxError: it does, naming the rule that makes it writable.
    """
    real = Path(os.path.realpath(program))
    writable = _writable_by(real, mounts)
    if writable is not None:
        remedy = (
            f"Install bubblewrap from the system's packages, or name one the sandbox cannot "
            f"write with {BWRAP_VARIABLE}"
            if name == "bubblewrap"
            else f"Do not let the sandbox write the system's folder {real.parent}"
        )
        raise SandboxError(
            f"{name} found at {program} ({real}) lies in {writable.path}, which the sandbox "
            f"lets the command write ({writable.why}): code run there could have replaced it "
            f"with one that builds no sandbox. {remedy}"
        )


LOADER_VARIABLES = frozenset({"GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH"})
"""Variables besides ``LD_*`` that make the C library load code or data from where they say."""


def loader_variable(name: str) -> bool:
    """Whether variable ``name`` steers the dynamic loader or the C library (``LD_PRELOAD``,
    ``LD_LIBRARY_PATH``, ``LD_AUDIT``, :data:`LOADER_VARIABLES`). bubblewrap is started
    without them, in ``/``, and so is the stub: it sets them for the command alone, just before it
    becomes it (:mod:`airlock.sandbox._stub`). bubblewrap runs outside
    every namespace until it has built them, and an ``LD_LIBRARY_PATH`` with an empty entry
    (the current folder) or one in the workspace would have it load a library an earlier run
    wrote there."""
    return name.startswith("LD_") or name in LOADER_VARIABLES


def relative_library_paths(environ: Mapping[str, str]) -> list[str]:
    """The variables of ``environ`` that have the loader look in the current folder: an empty
    or relative folder in ``LD_LIBRARY_PATH``, a relative path (``lib/x.so``, not a bare name,
    which is looked for in the library folders) in ``LD_PRELOAD`` or ``LD_AUDIT``. A program
    started in the workspace later, outside, would load a library the command wrote there."""
    found = []
    library_path = environ.get("LD_LIBRARY_PATH")
    if library_path is not None and any(
        not folder.startswith("/") for folder in library_path.split(":")
    ):
        found.append("LD_LIBRARY_PATH")
    for name in ("LD_PRELOAD", "LD_AUDIT"):
        entries = environ.get(name, "").replace(" ", ":").split(":")
        if any("/" in entry and not entry.startswith("/") for entry in entries):
            found.append(name)
    return found


NAMESPACES = ("mnt", "pid", "net", "ipc", "uts")
"""The namespaces the command's process must not share with airlock."""


def _check_isolated(pid: int, launcher: int) -> None:
    """Fail unless process ``pid`` (the stub, as airlock sees it) is in namespaces of its own:
    whatever ``bwrap`` was run, a command is never let go outside a sandbox.

    Those of process ``launcher`` (bubblewrap's, as started) count as airlock's: its mount
    namespace is the one ``unshare`` made for it (:func:`private_mounts`), a copy of the
    host's mounts as writable as they are outside.

    Raises:
        SandboxError: it shares one with airlock or ``launcher``, or they cannot be read.
    """
    for kind in NAMESPACES:
        try:
            theirs = Path(f"/proc/{pid}/ns/{kind}").stat().st_ino
            ours = {
                Path(f"/proc/{process}/ns/{kind}").stat().st_ino for process in ("self", launcher)
            }
        except OSError as error:
            raise SandboxError(
                f"cannot check the sandbox's {kind} namespace (/proc/{pid}/ns/{kind}: "
                f"{error.strerror}): nothing was run"
            ) from error
        if theirs in ours:
            raise SandboxError(
                f"the process bubblewrap started shares airlock's {kind} namespace: no sandbox "
                f"was built (is the bwrap run, {BWRAP_VARIABLE}'s or the system's, bubblewrap?): "
                "nothing was run"
            )


def launch(spec: Spec, bwrap: str, stdout: int | None = None, stderr: int | None = None) -> Sandbox:
    """Build the sandbox for ``spec`` and run its command at once (:func:`start`, then
    :meth:`Starting.ready`, then :meth:`Sandbox.go`); the caller serves ``listener``.

    Raises:
        SandboxError: as :meth:`Starting.ready`.
    """
    sandbox = start(spec, bwrap, stdout, stderr).ready()
    sandbox.go()
    return sandbox


def _receive(channel: socket.socket, process: subprocess.Popen[bytes]) -> tuple[socket.socket, int]:
    channel.settimeout(STARTUP_TIMEOUT)
    int_size = struct.calcsize("i")
    ancillary = socket.CMSG_SPACE(int_size) + socket.CMSG_SPACE(struct.calcsize("3i"))
    try:
        message, cmsgs, _flags, _address = channel.recvmsg(64, ancillary)
    except TimeoutError:
        raise SandboxError(
            f"the sandbox did not start within {STARTUP_TIMEOUT:.0f} s (bubblewrap is still "
            "running, its stub sent nothing): nothing was run"
        ) from None
    fds: list[int] = []
    pid = 0
    for level, kind, data in cmsgs:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % int_size
            fds += struct.unpack(f"{usable // int_size}i", data[:usable])
        elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", data[: struct.calcsize("3i")])[0]
    if message != b"listening" or len(fds) != 1 or pid <= 0:
        for fd in fds:
            os.close(fd)
        code = process.wait()
        raise SandboxError(
            f"the sandbox could not be built (bubblewrap exited with status {code} before the "
            "command started; its message, or that of unshare, which starts it, is above): "
            "nothing was run. Check that every --rw, --ro, --hide and sandbox.filesystem path "
            "exists and can be bound, and that bubblewrap works here: "
            + " ".join([*private_mounts("unshare"), "bwrap --ro-bind / / --unshare-net true"])
        )
    return socket.socket(fileno=fds[0]), pid


def forwarded_signals() -> tuple[signal.Signals, ...]:
    """Signals airlock passes on to the command rather than dying of them: those of SIGINT,
    SIGTERM, SIGHUP and SIGQUIT it was not started ignoring. One ignored (``nohup``'s SIGHUP,
    the SIGINT and SIGQUIT a shell ignores for a script's job run with ``&``) stays ignored,
    and the command inherits it so, as it would run without airlock: passed on, it would end
    the command the user shielded from it."""
    return tuple(
        number
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
        if signal.getsignal(number) is not signal.SIG_IGN
    )
