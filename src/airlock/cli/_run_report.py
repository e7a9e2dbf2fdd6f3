"""The end of ``airlock run``: what left the machine, on stderr (a table on a terminal, lines
otherwise) and as JSON with ``--report-json``."""

from __future__ import annotations

import os
from pathlib import Path

# ``typing`` is not imported at run time (start-up time); mypy reads the block as if true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from airlock.egress import ProxyReport
    from airlock.sandbox import ScrubbedEnvironment


class ReportFile:
    """``--report-json FILE``, checked before the command runs and written after it.

    The file is often in the workspace, which the command can write: by the end it may have
    put a link there to a file of the user's (their settings, airlock's own audit log), a
    FIFO, or a folder. So the file's folder is found (links resolved) and held open before
    the run, and the report is written after it under a new name in that folder and renamed
    over the file's name: a link there is replaced, never followed (one there before the run
    too: an earlier command may have left it); a folder or a FIFO there is an error, never a
    wait. A folder moved away in the run is still the one written in.

    ``state`` is airlock's own state (its folder under the config dir, and the log
    ``--audit-log`` named, if it named one); ``audit_log`` that log, which the report before
    the end points to (``None``: the default one).

    Raises:
        UsageError: (at the start) the folder is missing; the path names a folder, a FIFO or
            a device; it is in airlock's own state (the audit log, its heads), or one of
            ``kept`` (the agent's state files).
    """

    def __init__(
        self,
        given: str,
        state: Sequence[Path],
        kept: Sequence[Path] = (),
        audit_log: Path | None = None,
    ) -> None:
        from airlock.errors import UsageError

        self.given = given
        self.given_log = audit_log
        """The ``--audit-log`` given, or ``None`` (the default log)."""
        named = Path(given).expanduser().absolute()
        path = Path(os.path.realpath(named.parent)) / named.name  # the name itself not followed
        if named.name in ("", ".", "..") or given.endswith("/"):
            raise UsageError(f"--report-json {given}: a folder; give a file's path")
        if any(path == Path(os.path.realpath(other)) for other in kept):
            raise UsageError(f"--report-json {given}: the agent's state file; give another")
        for own in state:
            own = Path(os.path.realpath(own))
            if path == own or path.is_relative_to(own):
                raise UsageError(
                    f"--report-json {given}: in airlock's own state ({own}), which holds the "
                    "audit log and its heads; give a file elsewhere"
                )
        if not path.parent.is_dir():
            raise UsageError(f"--report-json {given}: there is no folder {path.parent}")
        if not path.is_symlink() and path.is_dir():  # a link there is replaced
            raise UsageError(f"--report-json {given}: a folder; give a file's path")
        if not path.is_symlink() and path.exists() and not path.is_file():
            raise UsageError(
                f"--report-json {given}: not a regular file (a FIFO or a device); give a file"
            )
        self.name = path.name
        self.where = path.parent
        """The folder found at the start (links resolved), which :attr:`folder` holds."""
        self.folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        self.run: str | None = None
        """The run's id, once :meth:`started` put its first report in place."""

    def stopped(self, error: BaseException) -> None:
        """After :meth:`started`, airlock stopped before the run's end (the sandbox could not
        be built, the log not opened): the report says so and why, in place of "not ended"."""
        import json

        from airlock.errors import AirlockError

        if self.run is None or self.folder < 0:
            return
        failed = isinstance(error, (AirlockError, OSError))
        stopped = {
            "run": self.run,
            "complete": False,
            "exit_code": 125 if failed else None,
            "audit_log": str(self._audit_command(self.run)[0]),
            "error": f"airlock stopped the run: {error or type(error).__name__}",
        }
        self.write(json.dumps(stopped, indent=2) + "\n")

    def started(self, run: str) -> str:
        """Put a report in place that says the run has not ended, before the command runs: a
        run killed on the way (``kill -9``) leaves that, never an earlier run's report for a
        script to take as this one's. ``""``, or why it could not be written (the folder
        stays held for the end's report)."""
        import json

        log, command = self._audit_command(run)
        pending = {
            "run": run,
            "complete": False,
            "exit_code": None,
            "audit_log": str(log),
            "error": (
                "the run has not ended (it was killed, or is still going on); what it sent is "
                f"in the audit log: {command}"
            ),
        }
        self.run = run
        return self.write(json.dumps(pending, indent=2) + "\n", keep_open=True)

    def _audit_command(self, run: str) -> tuple[Path, str]:
        """The run's audit log, as the final report names it, and the command that shows
        the run's records: ``airlock audit`` reads the default log unless told another
        (``--audit-log``, the path quoted for a shell)."""
        import shlex

        from airlock.egress.audit import audit_paths, default_log_path
        from airlock.settings import config_dir

        log, _ = audit_paths(os.environ, self.given_log)
        default = default_log_path(config_dir(os.environ))
        if os.path.realpath(log) == os.path.realpath(default):
            return log, f"airlock audit --run {run}"
        return log, f"airlock audit --audit-log {shlex.quote(str(log))} --run {run}"

    def write(self, text: str, keep_open: bool = False) -> str:
        """Write the report; ``""``, or why it could not be written. The folder is closed
        after, unless ``keep_open``."""
        import errno
        import secrets

        # the name's start only: a name near the system's limit (255 bytes) is the user's to
        # give, the temporary one must not pass it (40 characters are at most 160 bytes)
        temporary = f".{self.name[:40]}.{secrets.token_hex(6)}.tmp"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            fd = os.open(temporary, flags, 0o666, dir_fd=self.folder)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                os.replace(temporary, self.name, src_dir_fd=self.folder, dst_dir_fd=self.folder)
            except BaseException:
                os.unlink(temporary, dir_fd=self.folder)
                raise
            return ""
        except OSError as error:
            if error.errno == errno.ENOENT and self._folder_removed():
                return (
                    f"--report-json {self.given}: not written (its folder {self.where} was "
                    "removed during the run)"
                )
            return f"--report-json {self.given}: not written ({error.strerror or error})"
        finally:
            if not keep_open:
                self.close()

    def _folder_removed(self) -> bool:
        """Whether the folder held was removed (by the command, in the workspace): it has no
        name left."""
        try:
            return os.fstat(self.folder).st_nlink == 0
        except OSError:
            return False

    def close(self) -> None:
        if self.folder >= 0:
            os.close(self.folder)
            self.folder = -1


def show(
    report: ProxyReport,
    scrubbed: ScrubbedEnvironment,
    code: int,
    report_file: ReportFile | None,
    after_run: tuple[str, ...] | list[str] = (),
) -> str:
    """The report in ``report_file``, then on stderr: ``""``, or why the file was not written.
    ``after_run``: what airlock said it did after the command (set aside, put back), which
    the file holds too, for a script to see the run was not clean. The file first: stderr may
    be a pipe its reader does not empty (a pager not scrolled, a reader stopped), where a
    write blocks; the file must not go on saying the run has not ended meanwhile."""
    import json

    data = {
        **report.to_json(),
        "complete": True,
        "variables_dropped": list(scrubbed.dropped),
        "variables_dropped_why": {
            name: scrubbed.reasons.get(name, "") for name in scrubbed.dropped
        },
        "exit_code": code,
        "after_run": list(after_run),
    }
    import contextlib

    not_written = (
        "" if report_file is None else report_file.write(json.dumps(data, indent=2) + "\n")
    )
    with contextlib.suppress(OSError):  # stderr closed or full: all of it is in the log
        _show(report, scrubbed)
    return not_written


PLAIN_TEXT = "\x1b(B\x1b[0m"
"""The terminal's text back to plain (the character set back to ASCII, then Select Graphic
Rendition 0: what ``tput sgr0`` sends), so nothing the command left on (concealed, black on
black, line drawing) hides the report and what follows it."""


TABLE_WIDTH = 60
"""The narrowest terminal the report is a table on: narrower, the counts' columns leave the
host's none (the names were gone, the sizes cut), and the report is in lines, which the
terminal wraps."""


def _show(report: ProxyReport, scrubbed: ScrubbedEnvironment) -> None:
    import sys

    if sys.stderr.isatty():
        from airlock.cli._common import stderr_console

        console = stderr_console()
        if not console.is_dumb_terminal:  # a dumb one shows an escape as text, hides nothing
            sys.stderr.write(PLAIN_TEXT)
        if console.width >= TABLE_WIDTH:
            _show_table(report, scrubbed)
            return
    lines = report.lines()
    if scrubbed.dropped:
        from airlock._visible import visible

        lines.append(
            "  variables not passed in (they look like credentials; --env NAME passes one): "
            + visible(_dropped(scrubbed))
        )
    print("\n".join(lines), file=sys.stderr)


def _show_table(report: ProxyReport, scrubbed: ScrubbedEnvironment) -> None:
    """The report as a table. Every cell and line holding text from the run (hosts, reasons,
    flows, names) is :func:`plain`: a host named ``[link=…]x`` is shown as written, not read
    as markup, and an escape sequence in it is shown, not sent to the terminal."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from airlock._sizes import human_size
    from airlock.cli._common import plain, stderr_console

    console = stderr_console()
    headings = ["host", "conns", "requests", "sent", "received", "refused"]
    table = Table(
        title="what left the machine (sent), and what was refused, by host",
        title_justify="left",
        box=box.SIMPLE_HEAD,  # no walls between columns: the name gets their width
    )
    for heading in headings:  # the counts whole; the name takes the rest, folded past it
        if heading == "host":
            table.add_column(heading, overflow="fold")
        else:
            table.add_column(heading, justify="right", no_wrap=True)
    why: list[Text] = []  # each refusal's and failure's reason, a line each under the table
    for host in report.hosts:
        refused = sum(count for _, count in host.refused)
        cells: list[str | Text] = [
            plain(host.host),
            str(host.connections),
            str(host.requests),
            human_size(host.bytes_out),
            human_size(host.bytes_in),
            str(refused) if refused else "",
        ]
        for refusal, n in host.refused:
            why.append(plain(f"  {host.host}: refused {n}× {refusal}"))
            hint = host.refusal_hint(refusal)
            if hint:
                why.append(plain(f"    {hint}"))
        why.extend(plain(f"  {host.host}: failed {n}× {error}", "red") for error, n in host.errors)
        table.add_row(*cells)
    if report.hosts:
        console.print(table)
        for reason in why:  # whole lines, the terminal wraps them: a reason reads as written
            console.print(reason, soft_wrap=True)
    else:
        console.print("airlock: nothing left the machine")
    # Each line under the table whole, as the reasons: the terminal wraps it. Folded by rich,
    # a note's command (--allow HOST …), a path or a host would be copied with line breaks in it.
    for line in report.flow_lines():
        console.print(plain(line), soft_wrap=True)
    for note in report.notes():
        console.print(plain(note, "yellow"), soft_wrap=True)
    if report.error:
        console.print(plain(f"traffic was stopped: {report.error}", "bold red"), soft_wrap=True)
    if scrubbed.dropped:
        console.print(
            plain(
                "variables not passed in (they look like credentials; --env NAME passes one): "
                + _dropped(scrubbed)
            ),
            soft_wrap=True,
        )
    if report.audit_log is not None:
        console.print(
            plain(f"audit log {report.audit_log}, {report.final_words()}"), soft_wrap=True
        )


def _dropped(scrubbed: ScrubbedEnvironment) -> str:
    """The names dropped; with why for those dropped for their value (the name alone does not
    say: ``REDIS_URL (a URL with a password in it …)``)."""
    from airlock.sandbox import credential_reason

    shown = []
    for name in scrubbed.dropped:
        by_value = credential_reason(name) is None
        why = scrubbed.reasons.get(name, "").split(" (")[0]
        shown.append(f"{name} (its value: {why})" if by_value else name)
    return ", ".join(shown)
