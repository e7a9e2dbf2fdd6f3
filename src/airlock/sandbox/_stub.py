"""The first program inside the sandbox: opens the proxy's door, hands it out, becomes the command.

Run by bubblewrap as ``python -I -S _stub.py FD PORT N NAME=VALUE… COMMAND…`` inside the
sandbox's own network namespace, where only a loopback interface exists; the ``N`` variables
after it are the dynamic loader's (``LD_PRELOAD``, ``LD_LIBRARY_PATH``, …), which the stub's
own Python must not load: they are set for the command alone, just before it runs. It:

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

Standard library only, no ``site`` (``-I -S``): it starts in a few milliseconds and cannot be
steered by files in the workspace. Exit status 127 means the command was not found, 126 that
it could not be run, as shells do; 125 that this stub itself failed.
"""

import os
import socket
import sys

BACKLOG = 1024


def main(argv: list[str]) -> int:
    channel_fd, port, count = int(argv[1]), int(argv[2]), int(argv[3])
    loader, command = argv[4 : 4 + count], argv[4 + count :]
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


if __name__ == "__main__":
    sys.exit(main(sys.argv))
