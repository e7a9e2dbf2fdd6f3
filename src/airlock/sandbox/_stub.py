"""The first program inside the sandbox: opens the proxy's door, hands it out, becomes the command.

Run by bubblewrap as ``python -I -S _stub.py FD PORT N NAME=VALUE… M FOLDER… COMMAND…``
inside the sandbox's own network namespace, where only a loopback interface exists; the ``N``
variables after it are the dynamic loader's (``LD_PRELOAD``, ``LD_LIBRARY_PATH``, …), which
the stub's own Python must not load: they are set for the command alone, just before it runs;
the ``M`` folders are those the command may open files for writing under (``-`` in the place
of ``M``, and no folders: no such limit). It:

1. listens on ``127.0.0.1:PORT`` in that namespace (the sandbox's only way out);
2. sends the listening socket over the inherited Unix socket ``FD`` (``SCM_RIGHTS``) to airlock,
   which serves it with the egress proxy in the host's namespace: every connection the command
   opens to the port is accepted by the proxy itself, with no relay process on either side;
   the kernel adds the stub's process id as airlock sees it (``SO_PASSCRED`` on airlock's end),
   so airlock can signal the command;
3. waits for airlock's ``go`` (sent once airlock holds that socket for the proxy and has
   opened the audit log; if airlock goes away instead, nothing runs), then replaces itself
   with the command (``execvp``), keeping its process id. ``FD`` stays open, close-on-exec,
   until then: airlock holds the signals it passes on until it sees that end close, or
   this Python would take them (a ``KeyboardInterrupt`` for SIGINT) and the command never
   would. Before that, an audit login uid left unset (a service's, a container's) is set to
   the sandbox's own user: the kernel lets any process set an unset one once, so the command
   could otherwise take any user's name in the host's audit records (``auditd``); a set one
   needs a capability it lacks.
   When one of its standard streams is a terminal (the pseudo-terminal airlock relays,
   :mod:`airlock.sandbox.terminal`: never the user's own), the stub leaves bubblewrap's
   session for one of its own and makes that terminal its controlling one, so job control
   works inside and the terminal's keys signal the command. SIGPIPE and SIGXFSZ, which Python
   ignores from its start, are set back to their default: an ignored signal stays ignored
   across ``execvp``, and ``seq 1 1000000 | head -1`` would print "Broken pipe" and fail.

Between the second step and the third (while airlock gets the proxy ready, so the run's start
waits no longer), with Landlock where the kernel has it, the stub lets itself, and so the
command and all it starts, open files for writing (or truncate them) only under the ``M``
folders and on the files its standard streams open for writing are (:func:`_restrict_writes`):
a read-only mount does not keep a named pipe (FIFO) on the host's file systems from being
opened for writing. This is done inside, after bubblewrap has made its mounts, as a process
Landlock restricts can mount nothing; nor can the command then (``airlock run
--allow-mounts`` passes ``-``). What the stub writes after (the audit login uid, under
``/proc``) is in those folders.

Standard library only, no ``site`` (``-I -S``): it starts in a few milliseconds and cannot be
steered by files in the workspace. Exit status 127 means the command was not found, 126 that
it could not be run, as shells do; 125 that this stub itself failed.
"""

import os
import socket
import sys

BACKLOG = 1024

UNRESTRICTED = "-"
"""In the place of the count of writable folders: no Landlock rules (``airlock run
--allow-mounts``; the stub run on its own, outside a sandbox, in tests)."""


def main(argv: list[str]) -> int:
    channel_fd, port, count = int(argv[1]), int(argv[2]), int(argv[3])
    loader, rest = argv[4 : 4 + count], argv[4 + count :]
    if rest[0] == UNRESTRICTED:
        writable, command = None, rest[1:]
    else:
        trees = int(rest[0])
        writable, command = rest[1 : 1 + trees], rest[1 + trees :]
    try:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", port))
        listener.listen(BACKLOG)
    except OSError as error:
        print(
            f"airlock run: cannot open the proxy port inside the sandbox: {error}", file=sys.stderr
        )
        return 125
    channel = socket.socket(fileno=channel_fd)
    try:
        socket.send_fds(channel, [b"listening"], [listener.fileno()])
    except OSError:  # airlock closed the channel: it stopped before the command, and says why
        return 125
    listener.close()
    if writable is not None:  # while airlock gets the proxy ready: no time added to the start
        _restrict_writes(writable)
    go = b""
    try:
        while len(go) < 2:
            piece = channel.recv(2 - len(go))
            if not piece:
                break
            go += piece
    except ConnectionResetError:
        pass  # airlock closed the channel unread: it stopped, and says why itself
    if go != b"go":  # airlock stopped before the command was to run: run nothing
        channel.close()
        return 125
    channel.set_inheritable(False)  # closed by execvp, or by this stub's exit: airlock's sign
    _set_login_uid()
    _take_terminal()
    _default_signals()
    for setting in loader:  # now, for the command: a library they name never ran in this stub
        name, _, value = setting.partition("=")
        os.environ[name] = value
    try:
        os.execvp(command[0], command)  # noqa: S606 - the command, as the user typed it
    except FileNotFoundError:
        print(f"airlock run: {command[0]}: {_not_found(command[0])}", file=sys.stderr)
        return 127
    except OSError as error:
        print(f"airlock run: {command[0]}: cannot run: {error.strerror}", file=sys.stderr)
        return 126
    return 125  # not reached: execvp returns only by raising


def _not_found(name: str) -> str:
    """What was not found when the command could not be started: the command itself, or,
    for a script that is there, the interpreter its ``#!`` line names."""
    import shutil

    found = name if "/" in name else shutil.which(name)
    if found is None or not os.path.isfile(found):  # noqa: PTH113 - the stub imports little
        return "command not found inside the sandbox"
    try:
        with open(found, "rb") as program:  # noqa: PTH123
            script = program.read(2) == b"#!"
    except OSError:
        script = False
    if script:
        return f"its interpreter (the #! line of {found}) was not found inside the sandbox"
    return (
        f"{found} is there, but its program loader or a library it needs is not inside the sandbox"
    )


UNSET_LOGIN_UID = b"4294967295"


def _set_login_uid() -> None:
    """The audit login uid, when unset, set to this user's; nothing when the kernel has no
    audit or says no (then no process inside may set it either)."""
    try:
        login = os.open("/proc/self/loginuid", os.O_RDWR)
    except OSError:
        return
    try:
        if os.read(login, 32).strip() == UNSET_LOGIN_UID:
            os.lseek(login, 0, os.SEEK_SET)
            os.write(login, str(os.getuid()).encode())
    except OSError:
        pass
    finally:
        os.close(login)


def _take_terminal() -> None:
    """The first of the standard streams that is a terminal made the controlling terminal of
    a new session the command leads (bubblewrap's ``--new-session`` made a session with no
    terminal, led by its own process); nothing when none is, or the kernel says no."""
    terminal = next((fd for fd in (0, 1, 2) if os.isatty(fd)), None)
    if terminal is None:
        return
    import fcntl
    import termios

    try:
        os.setsid()
        fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)
    except OSError:
        pass  # run as it is: a terminal with no job control


def _default_signals() -> None:
    """The signals Python ignores from its start (SIGPIPE, SIGXFSZ) back to their default, as
    :mod:`subprocess` does for its children (``restore_signals``): the command gets them as
    bubblewrap did. Those Python handles (SIGINT) are reset by ``execvp`` itself."""
    import signal

    for number in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(number, signal.SIG_DFL)


LANDLOCK_CREATE_RULESET = 444
LANDLOCK_ADD_RULE = 445
LANDLOCK_RESTRICT_SELF = 446
"""The Landlock system calls' numbers: the same on every architecture but alpha."""

LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
ACCESS_FS_WRITE_FILE = 1 << 1
ACCESS_FS_REFER = 1 << 13
"""Landlock's ABI 2 (Linux 5.19) and later: a file moved or linked into another folder. Under
any Landlock rules that is refused unless a rule allows it (with ABI 1, always), so it is
allowed in every writable folder, as before."""
ACCESS_FS_TRUNCATE = 1 << 14
"""Landlock's ABI 3 (Linux 6.2) and later."""
PR_SET_NO_NEW_PRIVS = 38


def _restrict_writes(trees: list[str]) -> None:
    """Opening a file for writing (and truncating one, where the kernel's Landlock knows that
    right) allowed only under ``trees`` (the folders the sandbox lets the command write: the
    workspace, the private ``/tmp``, ``/dev``, ``/proc``, …) and on the files of the standard
    streams the stub was given open for writing (``/dev/stdout`` opened again: a host file
    airlock's output goes to), for the command and all it starts. A read-only mount does not
    stop a named pipe (FIFO) from being opened for writing: one on the host's file systems,
    which a program of the host's may read commands from, cannot be now, nor a host file the
    stub was given open for reading only (its standard input) be opened again for writing
    through ``/proc/self/fd``. Nothing is done where the kernel has no Landlock (not enabled,
    or before 5.13), or only its first version (before 5.19: it refuses every move of a file
    into another folder, which later ones allow by rule): the run goes on as before. Where it
    has Landlock and a step fails, the stub says so on its standard error: a folder whose rule
    cannot be made is not written inside, and rules that cannot be made or applied leave the
    run as before.

    A file open already (the standard streams) is written as before; pipes and sockets
    (reached through ``/proc/self/fd``) are not files Landlock checks. Only the rights the
    running kernel's Landlock knows are handled: moving into another folder (allowed in each
    writable folder) from ABI 2 on, truncating from ABI 3 on."""
    import ctypes
    import fcntl
    import stat
    import struct

    libc = ctypes.CDLL(None, use_errno=True)
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(
        ctypes.c_long(LANDLOCK_CREATE_RULESET),
        None,
        ctypes.c_long(0),
        ctypes.c_long(LANDLOCK_CREATE_RULESET_VERSION),
    )
    if abi < 2:  # no Landlock, or one that refuses every move into another folder: as before
        return
    handled = ACCESS_FS_WRITE_FILE | ACCESS_FS_REFER | (ACCESS_FS_TRUNCATE if abi >= 3 else 0)
    ruleset = syscall(
        ctypes.c_long(LANDLOCK_CREATE_RULESET),
        struct.pack("=Q", handled),
        ctypes.c_long(8),
        ctypes.c_long(0),
    )
    if ruleset < 0:
        _not_limited(f"cannot make its rules: {os.strerror(ctypes.get_errno())}")
        return

    def allow(fd: int) -> int:  # the rule allowing those rights under what fd is open on
        folder = stat.S_ISDIR(os.fstat(fd).st_mode)
        rights = handled if folder else handled & ~ACCESS_FS_REFER  # a folder's right only
        rule = struct.pack("=Qi", rights, fd)  # struct landlock_path_beneath_attr, packed
        return int(
            syscall(
                ctypes.c_long(LANDLOCK_ADD_RULE),
                ctypes.c_long(ruleset),
                ctypes.c_long(LANDLOCK_RULE_PATH_BENEATH),
                rule,
                ctypes.c_long(0),
            )
        )

    try:
        for tree in trees:
            try:
                fd = os.open(tree, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # not there inside: nothing can be written there
            try:
                if allow(fd) < 0:  # that folder is not written: said, and the rest limited
                    error = os.strerror(ctypes.get_errno())
                    print(
                        f"airlock run: {tree} cannot be written inside ({error} from Landlock)",
                        file=sys.stderr,
                    )
            finally:
                os.close(fd)
        for fd in (0, 1, 2):
            try:
                writing = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY
            except OSError:  # closed
                continue
            if writing:  # a pipe's or socket's is refused: not a file Landlock checks
                allow(fd)
        no_new_privileges = libc.prctl(
            ctypes.c_int(PR_SET_NO_NEW_PRIVS),
            ctypes.c_ulong(1),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
            ctypes.c_ulong(0),
        )
        restricted = no_new_privileges == 0 and (  # bubblewrap set it already: asked again
            syscall(ctypes.c_long(LANDLOCK_RESTRICT_SELF), ctypes.c_long(ruleset), ctypes.c_long(0))
            == 0
        )
        if not restricted:
            _not_limited(os.strerror(ctypes.get_errno()))
    finally:
        os.close(ruleset)


def _not_limited(why: str) -> None:
    """Say that the kernel has Landlock but the command's writes could not be limited with
    it (``why``): the run goes on as on a kernel without it, and the user knows."""
    print(
        f"airlock run: files could not be limited to the sandbox's writable folders ({why}): "
        "a named pipe on the host's file systems can be written from inside",
        file=sys.stderr,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
