"""The command's own terminal: a pseudo-terminal airlock relays to the user's, which never
enters the sandbox.

Code in the sandbox that holds the user's terminal reads what the user types once airlock is
stopped (Ctrl-Z) or runs in the background: bubblewrap's ``--new-session`` takes the command
out of the terminal's job control, so nothing stops it, and the shell's password prompt is
read by the command. It could also change the terminal's modes (``stty -echo``). So, as
``sudo`` does by default (``use_pty``) and ``ssh -t``, when any of airlock's standard input,
output and error is a terminal:

- airlock opens a new pseudo-terminal, its slave set to the user's terminal's modes and
  window size (started in the background, where the modes are the shell's line editor's, it
  takes the user's once airlock is first in the foreground); each standard stream that is a terminal is that slave for the sandbox (files
  and pipes are passed as they are), and so are ``/dev/console`` (which bubblewrap binds to its
  standard output's terminal), ``/proc/self/fd/N`` and ``/dev/tty``;
- the stub (:mod:`airlock.sandbox._stub`) makes the slave the controlling terminal of a session
  of the command's own, so job control works inside (``bash -i``, Ctrl-Z there) and the
  slave's line discipline signals the command's foreground process group (Ctrl-Z stops a
  job of a shell inside; a lone command, the leader of that session, is not stopped by it,
  as under ``ssh -t``: the kernel stops no process group without a parent in its session);
- a thread relays bytes between the user's terminal and the pty's master (bounded buffers, the
  pty's master never blocks it); while the command runs, the user's terminal is in raw mode
  when standard input is it: Ctrl-C, Ctrl-Z and Ctrl-\\ are bytes that the slave turns into
  the command's signals, and airlock itself gets none;
- a change of the window's size (SIGWINCH, which the terminal sends airlock) is copied to the
  slave, which signals the command;
- the user's terminal is read (and made raw) only while airlock is in its foreground: in
  the background (``&``, or stopped and ``bg``) nothing the user types into the shell
  reaches the command, and airlock is not stopped for it, so it ends and cleans up as asked
  (``kill %1``); brought to the foreground, it reads again. The terminal's modes are put
  back at the end however it comes (the command killed, an error, a signal passed on).

With no terminal among the three (CI, pipes, files), nothing of this happens: no pty, no
thread, no signal handler.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import termios
import threading
import time
from types import FrameType, TracebackType

from airlock.errors import SandboxError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STANDARD = (0, 1, 2)
"""airlock's standard input, output and error."""

CHUNK = 16384
"""Bytes read or written at once."""

BUFFERED = 65536
"""Bytes held each way at most: past it, the side that sends waits (the pty's own buffer, or
the user's terminal's, fills and holds the writer)."""

QUIET = 0.1
"""Seconds without output after which the relay stops once asked to, though a process still
holds the slave (none should: the sandbox is gone by then)."""

DRAIN_LIMIT = 2.0
"""Seconds the relay goes on reading at most once asked to stop, output still coming (a
process still holds the slave); what it read is shown whole."""

BACKGROUND_LOOK = 0.5
"""Seconds between looks at whether airlock, in the background, is in the foreground again
(a shell's ``fg`` of a running job sends no signal)."""

JOIN_LIMIT = 5.0
"""Seconds to wait for the relay to end (a write to a terminal that takes nothing blocks it)."""

_WINDOW_SIZE = b"\0" * 8  # struct winsize: rows, columns, x and y pixels (4 unsigned shorts)


def raw_mode(mode: list[Any]) -> list[Any]:
    """Terminal attributes ``mode`` (as :func:`termios.tcgetattr` gives them) made raw, as
    ``cfmakeraw`` does (``tty.cfmakeraw`` is Python 3.12's): no echo, no line editing, no
    signal keys, no output processing; a read returns each byte as it comes."""
    iflag, oflag, cflag, lflag, ispeed, ospeed, cc = mode
    iflag &= ~(
        termios.IGNBRK
        | termios.BRKINT
        | termios.PARMRK
        | termios.ISTRIP
        | termios.INLCR
        | termios.IGNCR
        | termios.ICRNL
        | termios.IXON
    )
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag = (cflag & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    cc = list(cc)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    return [iflag, oflag, cflag, lflag, ispeed, ospeed, cc]


class Terminal:
    """The pty between the sandbox and the user's terminal; a context manager, entered and
    left in the main thread (it sets the SIGWINCH and SIGCONT handlers while it relays).

    :attr:`stdin`, :attr:`stdout` and :attr:`stderr` are what the sandbox's process gets (as
    :class:`subprocess.Popen` takes them): the slave for each of airlock's that is a terminal,
    ``None`` (airlock's own, inherited) for the others. Call :meth:`running` right before the
    command runs; leaving the context ends the relay, once what the command wrote is shown,
    and puts the terminal's modes back.
    """

    def __init__(self) -> None:
        terminals = [fd for fd in STANDARD if os.isatty(fd)]
        self.stdin: int | None = None
        self.stdout: int | None = None
        self.stderr: int | None = None
        self._terminals = terminals
        self._input = 0 if 0 in terminals else None
        self._output = _output_of(terminals)
        self._master = -1
        self._slave = -1
        self._wake_read = self._wake_write = -1
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._raw_wanted = False
        """The command runs, its input the user's terminal: raw whenever in the foreground."""
        self._raw_now = False
        self._saved: list[Any] | None = None
        """The user's modes, as they were when airlock first made them raw."""
        self._modes = threading.Lock()
        self._defaults: list[Any] | None = None
        """The pty's own modes, when airlock started in the background: the user's are
        copied to it once in the foreground, unless the command has set its own by then."""
        self._previous: dict[int, Any] = {}

    @property
    def active(self) -> bool:
        """Whether a pty stands between the sandbox and a terminal."""
        return self._master >= 0

    def __enter__(self) -> Terminal:
        if not self._terminals:
            return self
        try:
            master, slave = os.openpty()
        except OSError as error:
            raise SandboxError(
                f"cannot open a pseudo-terminal for the command ({error.strerror or error}; "
                "airlock never hands the sandbox your own terminal): nothing was run; run it "
                "with no terminal as its input, output or error (e.g. </dev/null 2>&1 | cat) "
                "to run it without one"
            ) from error
        self._master, self._slave = master, slave
        with contextlib.suppress(termios.error, OSError):  # the slave's defaults then
            if self._foreground(self._terminals[0]):
                termios.tcsetattr(slave, termios.TCSANOW, termios.tcgetattr(self._terminals[0]))
            else:  # the modes are the shell's line editor's (no echo, no lines): not taken
                self._defaults = termios.tcgetattr(slave)
        self._copy_size()
        os.set_blocking(master, False)  # the thread never waits on the pty
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for fd in self._terminals:
            setattr(self, ("stdin", "stdout", "stderr")[fd], slave)
        with contextlib.suppress(ValueError):  # not the main thread: no handlers, sizes fixed
            for number, handler in (
                (signal.SIGWINCH, self._resized),
                (signal.SIGCONT, self._continued),
            ):
                self._previous[number] = signal.signal(number, handler)
        self._thread = threading.Thread(target=self._relay, name="airlock terminal", daemon=True)
        self._thread.start()  # bubblewrap's own messages, if it fails, come this way too
        return self

    def running(self) -> None:
        """The command runs from now: airlock's copy of the slave is closed (the relay sees
        the sandbox's end), and when standard input is the user's terminal it is made raw and
        read, while airlock is in the foreground (else from when it is brought there)."""
        if not self.active:
            return
        self._close_slave()
        if self._input is not None:
            self._raw_wanted = True
            self._enter_raw()
            self._wake()

    def __exit__(
        self,
        _kind: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if not self.active:
            return
        try:
            for number, handler in self._previous.items():
                signal.signal(number, handler)
            self._previous.clear()
            self._close_slave()
            self._stopping = True
            self._wake()
            if self._thread is not None:
                self._thread.join(JOIN_LIMIT)
        finally:
            self._leave_raw()
            if self._thread is None or not self._thread.is_alive():
                for fd in (self._master, self._wake_read, self._wake_write):
                    os.close(fd)
            self._master = -1

    def _close_slave(self) -> None:
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is waiting already
            os.write(self._wake_write, b"x")

    def _foreground(self, terminal: int = 0) -> bool:
        """Whether airlock may read the input terminal (or ``terminal``) and set its modes
        without being stopped for it (SIGTTIN, SIGTTOU): its process group is the terminal's
        foreground one, or the terminal is not airlock's controlling one."""
        try:
            return os.tcgetpgrp(terminal) == os.getpgrp()
        except OSError:
            return True

    def _enter_raw(self) -> None:
        """The input terminal made raw, when wanted, in the foreground, and not raw yet."""
        with self._modes:
            if not self._raw_wanted or self._raw_now or not self._foreground():
                return
            try:
                if self._saved is None:  # the modes the shell set for airlock, in the foreground
                    self._saved = termios.tcgetattr(0)
                    self._take_modes(self._saved)
                termios.tcsetattr(0, termios.TCSANOW, raw_mode(self._saved))
            except termios.error:
                return  # hung up: nothing to type any more
            self._raw_now = True

    def _take_modes(self, modes: list[Any]) -> None:
        """The command's terminal given the user's ``modes``, when airlock started in the
        background and the command has not changed the pty's own since (set through the
        master: on Linux, its modes are the slave's)."""
        defaults, self._defaults = self._defaults, None
        if defaults is None or self._master < 0:
            return
        with contextlib.suppress(termios.error, OSError):
            if termios.tcgetattr(self._master) == defaults:
                termios.tcsetattr(self._master, termios.TCSANOW, modes)

    def _leave_raw(self) -> None:
        """The user's modes back; in the background, the shell has put its own back already
        (and setting them would stop airlock)."""
        with self._modes:
            self._raw_wanted = False
            if self._raw_now and self._saved is not None and self._foreground():
                with contextlib.suppress(termios.error):
                    termios.tcsetattr(0, termios.TCSANOW, self._saved)
            self._raw_now = False

    def _copy_size(self) -> None:
        try:
            size = fcntl.ioctl(self._terminals[0], termios.TIOCGWINSZ, _WINDOW_SIZE)
            fcntl.ioctl(self._master, termios.TIOCSWINSZ, size)  # the slave signals SIGWINCH
        except OSError:
            pass  # a terminal with no size (a serial line), or one hung up

    def _resized(self, _number: int, _frame: FrameType | None) -> None:
        if self._master >= 0:
            self._copy_size()

    def _continued(self, _number: int, _frame: FrameType | None) -> None:
        """airlock went on after a stop (``fg``, ``bg``): its shell set its own modes in
        between, and the window may have changed. The relay makes the terminal raw again,
        if in the foreground (not here: the main thread may hold the modes' lock)."""
        if self._master >= 0:
            self._raw_now = False
            self._copy_size()
            self._wake()

    def _relay(self) -> None:
        """Bytes from the user's terminal to the master, and from the master to the user's
        terminal, until asked to stop and the command's output is all shown (the master says
        no slave is left, or nothing comes for :data:`QUIET` seconds).

        The user's terminal is read only while airlock is in its foreground: in the
        background nothing typed there, into the shell, reaches the command. Brought to the
        foreground (``fg``, with or without SIGCONT: looked at every :data:`BACKGROUND_LOOK`
        seconds meanwhile), the terminal is made raw and read.
        """
        master = self._master
        to_master = bytearray()
        to_output = bytearray()
        master_open = True
        input_open = self._input is not None
        output = self._output
        deadline: float | None = None
        background = False
        while True:
            if self._stopping and deadline is None:
                deadline = time.monotonic() + DRAIN_LIMIT
            if deadline is not None and time.monotonic() > deadline:
                master_open = False  # still written to, by what is no command's: no more read
            if output is None:
                to_output.clear()
            if not master_open and not to_output:
                return
            wanted: dict[int, int] = {self._wake_read: select.POLLIN}
            if master_open and len(to_output) < BUFFERED:
                wanted[master] = select.POLLIN
            if master_open and to_master:
                wanted[master] = wanted.get(master, 0) | select.POLLOUT
            reading = False
            if self._raw_wanted and input_open and not self._stopping:
                if self._foreground():
                    if background:  # brought to the foreground: resized meanwhile, maybe
                        self._copy_size()
                    background = False
                    self._enter_raw()
                    reading = len(to_master) < BUFFERED
                else:
                    background = True
            if reading and self._input is not None:
                wanted[self._input] = select.POLLIN
            if output is not None and to_output:
                wanted[output] = wanted.get(output, 0) | select.POLLOUT
            poller = select.poll()
            for fd, events in wanted.items():
                poller.register(fd, events)
            if self._stopping:
                timeout: float | None = QUIET
            elif background:
                timeout = BACKGROUND_LOOK
            else:
                timeout = None
            ready = dict(poller.poll(None if timeout is None else timeout * 1000))
            if not ready and self._stopping:
                return  # nothing more comes: what holds the slave still is no command's
            if ready.pop(self._wake_read, 0):
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_read, 512)
            events = ready.get(master, 0)
            if events & select.POLLOUT and to_master:
                try:
                    del to_master[: os.write(master, to_master[:CHUNK])]
                except BlockingIOError:
                    pass
                except OSError:  # no slave left to read it
                    to_master.clear()
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR | select.POLLNVAL):
                if len(to_output) < BUFFERED:
                    try:
                        data = os.read(master, CHUNK)
                    except BlockingIOError:
                        data = None
                    except OSError:  # EIO: no slave left, and nothing of it unread
                        data = b""
                    if data == b"":
                        master_open = False
                        to_master.clear()
                    elif data:
                        to_output += data
                else:  # hung up with output waiting: read once it is written
                    to_master.clear()
            if reading and self._input is not None and ready.get(self._input, 0) & ~select.POLLOUT:
                try:  # moved to the background since (a rare race): the kernel stops airlock
                    data = os.read(self._input, min(CHUNK, BUFFERED - len(to_master)))
                except BlockingIOError:
                    data = None
                except OSError:  # hung up, or an orphaned process group's read (EIO)
                    data = b""
                if data == b"":
                    input_open = False
                elif data:
                    to_master += data
            if output is not None and ready.get(output, 0) & (
                select.POLLOUT | select.POLLHUP | select.POLLERR | select.POLLNVAL
            ):
                try:
                    del to_output[: os.write(output, to_output[:CHUNK])]
                except BlockingIOError:
                    pass
                except OSError:  # the user's terminal is gone: the output is dropped
                    output = None


def _output_of(terminals: list[int]) -> int | None:
    """Where what the command shows goes: airlock's standard output when it is a terminal, or
    its standard error; with only standard input a terminal, that one when it is open for
    writing too (the echo of what is typed); else nowhere."""
    for fd in (1, 2):
        if fd in terminals:
            return fd
    if 0 in terminals and fcntl.fcntl(0, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY:
        return 0
    return None
