"""``airlock sessions``: list, show, prune and delete the agent's local transcripts."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from airlock._sizes import human_size
from airlock.cli._common import mark_chosen

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from airlock.sessions import Plan, Report, Session, SessionStore
    from airlock.settings import Loaded

HELP = "list, show, prune and delete the local transcript cache (<config dir>/projects/)"

DESCRIPTION = """\
The agent keeps every session's transcript on disk, in plaintext, under
<config dir>/projects/ ($CLAUDE_CONFIG_DIR, else ~/.claude), with its subagent transcripts,
tool results, file snapshots, todo lists and raw log beside it.

  airlock sessions list                 every session, newest first
  airlock sessions show ID              the conversation, tools and subagents marked
  airlock sessions prune --dry-run      what the retention period (cleanupPeriodDays) removes
  airlock sessions delete ID...         remove sessions completely
  airlock sessions delete -- PROJECT/ID one of two sessions that two project folders hold
                                        under the same id (PROJECT: its folder, -home-u-app)

Last activity is the newest of the modification time of every file of a session and the
last timestamp inside its transcript. A session written to in the last two minutes, or open
in a running agent, is skipped and reported. Symbolic links are never followed: a session
behind one (projects/ itself a link, …) is not removed, stays listed, and every run says so.
"""

PROGRESS_FROM = 200
"""Show a progress bar when removing at least this many sessions and entries on a terminal."""
MAX_PROBLEMS_SHOWN = 20
WIDE_TABLE = 140
"""Below this terminal width the table leaves out the start time (``--json`` always has it)."""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "sessions",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=_ActionParser
    )

    listing = actions.add_parser(
        "list", parents=[common], help="every session, newest last activity first"
    )
    listing.add_argument(
        "--project",
        metavar="DIR",
        help="only this project: its directory (/home/u/proj) or its folder name under "
        "projects/ (-home-u-proj; a name starting with '-' may also be given as "
        "--project=-home-u-proj)",
    )
    _add_older_than(listing, "only sessions whose last activity is more than DAYS ago")
    listing.add_argument("--json", action="store_true", help="print a JSON array for scripts")

    show = actions.add_parser(
        "show", parents=[common], help="one session's conversation, tools and subagents marked"
    )
    _add_ids(show, many=False)
    show.add_argument("--json", action="store_true", help="print every entry as JSON")

    prune = actions.add_parser(
        "prune",
        parents=[common],
        help="remove sessions inactive for longer than cleanupPeriodDays, and stale caches",
    )
    prune.add_argument("--dry-run", action="store_true", help="show what would go; touch nothing")
    _add_older_than(prune, "use this period instead of cleanupPeriodDays from the settings")
    prune.add_argument("--json", action="store_true", help="print the report as JSON")

    delete = actions.add_parser(
        "delete", parents=[common], help="remove sessions completely, with all their files"
    )
    _add_ids(delete, many=True)
    delete.add_argument("--dry-run", action="store_true", help="show what would go; touch nothing")
    delete.add_argument("--json", action="store_true", help="print the report as JSON")


def _add_older_than(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--older-than", metavar="DAYS", type=_days, help=help)


def _add_ids(parser: argparse.ArgumentParser, *, many: bool) -> None:
    """The session id (``show``), or ids (``delete``), as ``airlock sessions list`` shows them."""
    parser.add_argument(
        "session_ids" if many else "session_id",
        metavar="ID",
        nargs="+" if many else None,
        help="a session id (as 'airlock sessions list' shows it), or a unique beginning of one; "
        "PROJECT/ID names one where two project folders hold the same id",
    )


class _ActionParser(argparse.ArgumentParser):
    """Takes ``--project -home-u-proj`` (a folder name starting with ``-``) as a value; named
    in the arguments when chosen (:func:`~airlock.cli._common.mark_chosen`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        mark_chosen(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if args is not None:
            args = _join_dash_values(list(args), ("--project",))
        return super().parse_known_args(args, namespace)


def _join_dash_values(args: list[str], options: tuple[str, ...]) -> list[str]:
    """``--option -value`` as ``--option=-value``, for options whose values may start with '-'."""
    joined: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            joined += args[index:]
            break
        following = args[index + 1] if index + 1 < len(args) else None
        if arg in options and following is not None and following.startswith("-"):
            joined.append(f"{arg}={following}")
            index += 2
            continue
        joined.append(arg)
        index += 1
    return joined


def _days(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of days (e.g. 30 or 0.5), got {text!r}"
        ) from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 or more days, got {text!r}")
    return value


def run(args: argparse.Namespace) -> int:
    import os
    from datetime import UTC, datetime

    from airlock.cli._common import load_reported
    from airlock.sessions import SessionStore
    from airlock.settings import config_dir

    _check_config_dir(config_dir(os.environ))  # before the settings inside it are read
    loaded = load_reported(args)
    store = SessionStore(loaded.config_dir)
    now = datetime.now(UTC)
    handler = {"list": _list, "show": _show, "prune": _prune, "delete": _delete}[args.action]
    code: int = handler(args, loaded, store, now)
    return code


def _check_config_dir(config_dir: Path) -> None:
    """A config dir that is not a folder is an error; one that does not exist is noted."""
    import os

    from airlock.errors import AirlockError

    where = (
        "$CLAUDE_CONFIG_DIR" if os.environ.get("CLAUDE_CONFIG_DIR") else "the default, ~/.claude"
    )
    if config_dir.is_dir():
        return
    if config_dir.exists() or config_dir.is_symlink():
        raise AirlockError(
            f"the config dir {config_dir} (from {where}) is not a folder: point "
            "$CLAUDE_CONFIG_DIR at the agent's config folder (the one holding projects/)"
        )
    _warn(f"the config dir {config_dir} (from {where}) does not exist: no sessions there")


# --------------------------------------------------------------------------- list


def _list(args: argparse.Namespace, loaded: Loaded, store: SessionStore, now: datetime) -> int:
    wanted = _wanted(args, now)
    scan = store.scan()
    sessions = [s for s in scan.sessions if wanted(s)]
    own = tuple(problem for s in sessions for problem in s.problems)
    _report_scan(scan.problems + own, scan.pending)
    if not args.json:
        _table(sessions, store)
        return 0
    from airlock.cli._common import json_encoder

    encode = json_encoder()
    _write_array([encode(session.to_json()) for session in sessions])
    return 0


def _report_scan(problems: tuple[str, ...], pending: frozenset[str]) -> None:
    _report_problems(problems)
    if pending:
        _warn(
            f"{len(pending)} session(s) named by an unfinished removal are hidden; "
            "'airlock sessions prune' or 'delete' finishes it"
        )


def _wanted(args: argparse.Namespace, now: datetime) -> Callable[[Session], bool]:
    """Whether ``list`` shows a session: in ``--project``, older than ``--older-than``."""
    from airlock.sessions.plan import cutoff_before, period

    project = args.project
    cutoff = None if args.older_than is None else cutoff_before(now, period(args.older_than))

    def wanted(session: Session) -> bool:
        if project and not _in_project(session, project):
            return False
        return cutoff is None or session.last_activity < cutoff

    return wanted


def _write_array(texts: list[str]) -> None:
    """A JSON array of values already encoded, one a line."""
    import sys

    sys.stdout.write("[\n  " + ",\n  ".join(texts) + "\n]\n" if texts else "[]\n")


def _dump_object(data: dict[str, Any]) -> None:
    """A JSON object, one key a line, a list in it one item a line."""
    import sys

    from airlock.cli._common import json_encoder

    encode = json_encoder()
    fields = []
    for key, value in data.items():
        if isinstance(value, list) and value:
            text = "[\n    " + ",\n    ".join(map(encode, value)) + "\n  ]"
        else:
            text = encode(value)
        fields.append(f"  {encode(key)}: {text}")
    sys.stdout.write("{\n" + ",\n".join(fields) + "\n}\n")


def _in_project(session: Session, wanted: str) -> bool:
    from airlock._projects import project_name

    text = wanted.rstrip("/") or "/"
    return session.project in (text, project_name(text)) or session.cwd == text


def _table(sessions: list[Session], store: SessionStore) -> None:
    from rich.table import Table

    from airlock.cli._common import plain, stdout_console

    console = stdout_console()
    if not sessions:
        console.print(f"no sessions under {store.config_dir / 'projects'}")
        return
    table = Table(
        caption=f"{len(sessions)} session(s), {human_size(sum(s.size for s in sessions))} "
        f"in {store.config_dir}; times in UTC",
    )
    if console.width < WIDE_TABLE:
        _records(sessions, console)
        return
    table.add_column("project", overflow="fold", max_width=28)
    table.add_column("session", no_wrap=True, min_width=36)
    table.add_column("first prompt", overflow="fold", ratio=1, min_width=12)
    table.add_column("started", no_wrap=True)
    table.add_column("last activity", no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("subagents", no_wrap=True, justify="right")
    for s in sessions:
        cells = (
            s.cwd or s.project,
            s.id,
            s.first_prompt or "",
            _short(s.started),
            _short(s.last_activity),
            human_size(s.size),
            str(len(s.subagent_paths)),
        )
        table.add_row(*(plain(cell) for cell in cells))  # a transcript's text: shown as is
    console.print(table)


def _records(sessions: list[Session], console: Any) -> None:
    """Two lines a session, for terminals too narrow for the table."""
    from rich.text import Text

    from airlock.cli._common import plain

    for s in sessions:
        head = plain(s.id, "bold")
        head.append(
            f"  {_short(s.last_activity)}  {human_size(s.size)}  {len(s.subagent_paths)} sub",
            style="dim",
        )
        console.print(head, overflow="fold")
        started = f" (started {_short(s.started)})" if s.started else ""
        line = plain(f"  {s.cwd or s.project}{started}: {s.first_prompt or ''}")
        console.print(line, overflow="ellipsis", no_wrap=True)
    total = human_size(sum(s.size for s in sessions))
    console.print(
        Text(f"{len(sessions)} session(s), {total}; last activity first, times in UTC", style="dim")
    )


# --------------------------------------------------------------------------- show


def _show(args: argparse.Namespace, loaded: Loaded, store: SessionStore, now: datetime) -> int:
    from airlock.cli._common import dump_json
    from airlock.sessions.conversation import read_conversation

    session = store.get(store.resolve(args.session_id))
    conversation = read_conversation(session)
    _report_problems(tuple(conversation.problems))
    if args.json:
        dump_json(conversation.to_json())
        return 0
    from airlock.cli._common import stdout_console
    from airlock.sessions.conversation import render

    render(conversation, stdout_console())
    return 0


# --------------------------------------------------------------------------- prune, delete


def _prune(args: argparse.Namespace, loaded: Loaded, store: SessionStore, now: datetime) -> int:
    from airlock.errors import RefusedError
    from airlock.sessions import plan_prune
    from airlock.sessions.plan import period

    days, reasons, warning = _period(args, loaded)
    if warning and not args.dry_run:
        raise RefusedError(
            f"refusing to prune: {warning}. Nothing was removed. A settings file that came with "
            "a repository can shorten how long every project's sessions are kept; to prune "
            f"anyway, give the period explicitly: airlock sessions prune --older-than {days:g}"
        )
    if warning:
        _warn(f"{warning}: a prune without --older-than would refuse")
    plan = plan_prune(store, now=now, older_than=period(days))
    report = _carry_out(store, plan, now, dry=args.dry_run)
    extra: dict[str, Any] = {"period_days": days, "period_reasons": list(reasons)}
    if warning:
        extra["warnings"] = [warning]
    _print_report(args, report, extra)
    return 0


def _period(args: argparse.Namespace, loaded: Loaded) -> tuple[float, tuple[str, ...], str | None]:
    """The retention period, why, and why it is suspect: from the command line, or from the
    engine (refusing a period the settings leave undetermined)."""
    from airlock.errors import RefusedError
    from airlock.policy import FlowId, decide
    from airlock.policy.retention import local_period

    if args.older_than is not None:
        return args.older_than, (f"--older-than {args.older_than:g} on the command line",), None
    undetermined = local_period(loaded.context).undetermined
    if undetermined is not None:
        raise RefusedError(
            f"refusing to prune: {undetermined}. Nothing was removed. Fix the settings, or give "
            "the period explicitly with --older-than DAYS."
        )
    decision = decide(loaded.context)[FlowId.LOCAL_TRANSCRIPTS]
    parameters = decision.parameters
    days = float(parameters["cleanup_period_days"])
    return days, decision.reasons, parameters.get("shortened_by_project")


def _delete(args: argparse.Namespace, loaded: Loaded, store: SessionStore, now: datetime) -> int:
    from airlock.sessions import plan_delete

    ids = [store.resolve(text) for text in args.session_ids]
    plan = plan_delete(store, ids, now=now)
    report = _carry_out(store, plan, now, dry=args.dry_run)
    _print_report(args, report, {})
    return 1 if report.skipped or report.problems else 0


def _carry_out(store: SessionStore, plan: Plan, now: datetime, *, dry: bool) -> Report:
    from airlock.sessions import dry_run, execute

    if dry:
        return dry_run(plan)
    if plan.steps < PROGRESS_FROM:
        return execute(store, plan, now=now)
    from airlock.cli._common import stderr_console

    console = stderr_console()
    if not console.is_terminal:
        return execute(store, plan, now=now)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("removing", total=plan.steps)
        return execute(store, plan, now=now, progress=lambda n: progress.advance(task, n))


def _print_report(args: argparse.Namespace, report: Report, extra: dict[str, Any]) -> None:
    import sys

    from airlock.sessions import LAST_ACTIVITY

    _report_problems(tuple(report.problems))
    if args.json:
        _dump_object({**extra, **report.to_json()})
        return
    out = sys.stdout
    verb = "would remove" if report.dry_run else "removed"
    if "period_days" in extra:
        out.write(f"retention: {extra['period_days']:g} days\n")
        for reason in extra["period_reasons"]:
            out.write(f"  because {reason}\n")
        if report.plan.cutoff is not None:
            out.write(f"cutoff: last activity before {_when(report.plan.cutoff)}\n")
        out.write(f"({LAST_ACTIVITY})\n")
    for session_id in report.recovered:
        out.write(f"finished an interrupted removal: session {session_id}\n")
    for s in report.removed:
        out.write(
            f"{verb} session {s.id}  {s.cwd or s.project}  last activity "
            f"{_when(s.last_activity)}  {human_size(s.size)}  ({len(s.file_paths)} files)\n"
        )
    for entry in report.entries:
        out.write(
            f"{verb} {entry.path}  modified {_when(entry.modified)}  {human_size(entry.size)}\n"
        )
    for skipped in report.skipped:
        out.write(f"kept session {skipped.session.id}: {skipped.reason}\n")
    total = report.bytes_freed
    freed = "would free" if report.dry_run else "freed"
    out.write(
        f"{freed} {human_size(total)} ({total} bytes): {len(report.removed)} session(s), "
        f"{len(report.entries)} other entr{'y' if len(report.entries) == 1 else 'ies'}\n"
    )


# --------------------------------------------------------------------------- helpers


def _report_problems(problems: tuple[str, ...]) -> None:
    if not problems:
        return
    shown = problems[:MAX_PROBLEMS_SHOWN]
    for problem in shown:
        _warn(problem)
    if len(problems) > len(shown):
        _warn(f"… and {len(problems) - len(shown)} more problem(s)")


def _warn(text: str) -> None:
    import sys

    print(f"airlock sessions: {text}", file=sys.stderr)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _short(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "—"
