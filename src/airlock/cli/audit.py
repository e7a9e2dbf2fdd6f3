"""``airlock audit``: what ``airlock run`` let out (or refused), and whether the log is intact."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlock.cli._common import Once

if TYPE_CHECKING:
    from airlock.egress.audit_read import LogReader
    from airlock.egress.config import HostRule

HELP = "show the egress audit log of 'airlock run', or verify its hash chain"

DESCRIPTION = """\
Show the audit log that 'airlock run' writes: one record per CONNECT tunnel, per plain-HTTP
request and per request on an inspected host (time, duration, method, host, port, path with
query values dropped, status, decision, the rule or reason, bytes each way, error; an
inspected request adds its flow and the secrets found in it, kind and count, never a value),
a 'start' record and a 'run' record per run (command, a secret in it redacted; rules,
variables dropped, exit code, per-host totals).

  airlock audit [--run ID] [--since TIME] [--host HOST] [--decision allow|deny] [--flow FLOW]
                [--json]
  airlock audit verify [FILE] [--hash HEX] [--json]
  airlock audit rotate [--audit-log FILE] [--to FILE]

The log is <config dir>/airlock/audit.jsonl (the config dir being $CLAUDE_CONFIG_DIR or
~/.claude) unless --audit-log FILE says otherwise. Each record carries the SHA-256 of the one
before it; each run's checkpoints and final hash are kept apart from the log, under
<config dir>/airlock/audit-heads/. 'verify' checks both: it exits 0 when the chain is intact
and 1 naming the first bad record when a record was edited, removed, inserted, reordered or
appended, or the log was rewritten or cut short (or replaced: the heads file then holds
checkpoints of another log at its path), removed (its heads file still holding
checkpoints; the listing says so too, exit 1), or is a symbolic link (runs never write
through one), or its heads file is a link or no regular file. A problem names the record,
its line in the file and its run. With --hash HEX (a run's final hash, as its
report printed it), the log must still hold the record that hash names, and no record after
it may be of that run (a run writes nothing after its final record): the heads file lives
beside the log, and whoever can write both could rewrite them together; a hash you kept
elsewhere cannot be forged. It vouches for the records up to it, not for later runs'.

'rotate' moves the log aside (verified first, under its lock; a run still going on then
stops) with its checkpoints, so that both the moved log and the new one the next run begins
verify (--to a folder: into it, named by the time); a log moved by hand leaves its
checkpoints naming the old path.

--run takes a run's whole id (20261205T101027Z-7527: that run alone) or the start of ids
(20261205T10: every run whose id starts so).
--since takes a time (2026-12-02, 2026-12-02T10:30, ISO with a zone) or an age (30m, 2h, 7d);
a connection begun before it and still open after it is shown.
--host takes a host or a pattern (*.example.com), an IPv6 address with or without brackets. --flow takes a data flow (metrics,
model_requests, …, as 'airlock flows' names them) or unclassified: only the inspected
requests named so (their reason says why). A listing line shows a request's flow, the
secrets found in it (kind×count) and why its body could not all be checked, when it has them.
With no log at the default place yet (no run has written one), the listing is empty (--json
prints []) and says so on stderr, exit 0; a log named with --audit-log that is not there is
an error. A --run ID that no run of the log starts with is said on stderr, exit 1 (--json
still prints []). A listing of a log that is not intact prints its records, warns on stderr
and exits 1. 'verify --json' prints the verdict as one JSON object (intact, records, runs,
problem, bad_record, notes, unended). Exit codes: 0 ok; 1 the log is not intact (verify, or
a listing), or no such run; 2 bad input or an unreadable log; 141 the reader of the output
went away (airlock audit | head).
"""

_AGE = re.compile(r"^(\d+)([smhd])$")
_WHOLE_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9A-Za-z]+")
"""A run's whole id (``20261205T101027Z-7527``): ``--run`` then selects that run alone, not
also one whose id goes on from it (``…Z-75270``, a run begun in the same second)."""
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _log_named(text: str) -> Path:
    """A log's path given on the command line: not empty (``''`` from an unset variable is no
    path, where ``Path('')`` would read the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give the audit log's path")
    return Path(text)


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "audit",
        parents=[common],
        allow_abbrev=False,  # --allow-a is no --allow-all: a typo never widens what is let out
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "action",
        nargs="?",
        choices=["verify", "rotate"],
        help="verify: check the log's hash chain; rotate: move the log aside, verified, with its "
        "checkpoints (the next run begins a new one)",
    )
    parser.add_argument(
        "file", nargs="?", type=_log_named, metavar="FILE", help="the log to verify"
    )
    parser.add_argument(
        "--audit-log", type=_log_named, metavar="FILE", help="the audit log to read"
    )
    parser.add_argument(
        "--run",
        action=Once,
        metavar="ID",
        help="only this run (its whole id, or the start of ids: 20261205T10)",
    )
    parser.add_argument(
        "--since", metavar="TIME", help="only records from TIME on (or that ended after it)"
    )
    parser.add_argument(
        "--host", action=Once, metavar="HOST", help="only connections to HOST (or a pattern)"
    )
    parser.add_argument("--decision", choices=["allow", "deny"], help="only allowed or denied")
    parser.add_argument(
        "--flow",
        action=Once,
        metavar="FLOW",
        help="only inspected requests of this data flow (as 'airlock flows' names it), or "
        "unclassified",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of records (with verify: the verdict as a JSON object)",
    )
    parser.add_argument(
        "--to",
        type=Path,
        metavar="FILE",
        help="with rotate: where the log goes (a folder: into it, named by the time; "
        "default: beside it, named so)",
    )
    parser.add_argument(
        "--hash",
        metavar="HEX",
        help="with verify: a run's final hash, as its report printed it; the log must still "
        "hold the record it names (whoever can write the heads file cannot forge this one)",
    )


def run(args: argparse.Namespace) -> int:
    from airlock.egress.audit import audit_paths
    from airlock.egress.audit_read import LogReader
    from airlock.errors import UsageError

    if args.file is not None and args.action != "verify":
        raise UsageError(
            f"unexpected argument {str(args.file)!r}: only 'verify' takes a FILE (rotate: "
            "--audit-log FILE)"
        )
    if args.hash is not None and args.action != "verify":
        raise UsageError("--hash goes with verify: airlock audit verify --hash HEX")
    if args.to is not None and args.action != "rotate":
        raise UsageError("--to goes with rotate: airlock audit rotate --to FILE")
    if args.file is not None and args.audit_log is not None:
        raise UsageError(
            f"verify {args.file} --audit-log {args.audit_log}: which log? give one: "
            "airlock audit verify FILE"
        )
    named = args.file or args.audit_log
    log, heads = audit_paths(os.environ, named)
    if args.action == "verify":
        return _verify(log, heads, args.hash, named is not None, args.json)
    if args.action == "rotate":
        return _rotate(log, heads, args.to, named is not None)
    since, host_rule = _selection(args)
    if named is None and _not_begun(log, heads):
        return _nothing_yet(log, args.json)
    _check_log(log, _missing(named is not None), heads)
    if not log.exists():  # removed, its heads file holding checkpoints: nothing to list
        return _verify(log, heads)
    selection = _Selection()
    with LogReader(log) as reader:
        records = _records(reader, args, since, host_rule, selection)
        if args.json:
            _print_json(records)
        else:
            _print_lines(records)
        intact = _warn_unless_intact(reader, log, heads)
    return 1 if not intact or (args.run and not selection.run_found) else 0


def _not_begun(log: Path, heads: Path) -> bool:
    """No log at ``log`` and no checkpoint of one in ``heads``: no run has written there yet
    (a log removed with its checkpoints left is another matter: verify says it was removed)."""
    from airlock.egress.audit_read import holds_checkpoints

    return not os.path.lexists(log) and not holds_checkpoints(heads, log)


def _nothing_yet(log: Path, as_json: bool) -> int:
    """The listing of the default log before any run wrote it (a new machine): no records,
    said on stderr, exit 0; ``--json`` still prints its array (``[]``), as scripts expect."""
    if as_json:
        sys.stdout.write("[]\n")
    print(
        f"airlock audit: no audit log at {log} yet: no records ('airlock run' writes one there)",
        file=sys.stderr,
    )
    return 0


def _missing(named: bool) -> str:
    """What to say of a log that is not there: one named on the command line was not written
    there yet, or went away; the default one the user may have meant to name."""
    if named:
        return "no run has written one there yet, or it was moved or rotated"
    return "no run has written one there yet ('airlock run' does; or pass the file)"


def _warn_unless_intact(reader: LogReader, log: Path, heads: Path) -> bool:
    """After a listing, a warning on stderr when the log is not intact (or could not be
    checked), and ``False``: what was listed may have been changed (the listing reads records
    as they stand, chain or not), and the listing exits 1, so that a script reading its JSON
    can tell, as from ``verify``. The chain was
    checked as the records were read, and its end against the heads file's furthest
    checkpoint (:class:`~airlock.egress.audit_read.LogReader`): 'airlock audit verify' compares
    every checkpoint, reading the whole heads file, which outgrows the log. What it says is
    shown with its control characters as escapes: it quotes the heads file (a run's id)."""
    from airlock._visible import visible

    try:
        found = reader.problem(heads)
    except OSError as error:
        problem = f"it could not be verified ({error.strerror or error})"
    else:
        if found is None:
            return True
        problem = f"it is NOT intact: {found}"
    print(
        visible(
            f"airlock audit: warning: {log}: {problem}; what is listed may have been changed "
            "(airlock audit verify)"
        ),
        file=sys.stderr,
    )
    return False


def _verify(
    log: Path,
    heads: Path,
    final_hash: str | None = None,
    named: bool = True,
    as_json: bool = False,
) -> int:
    """What :func:`airlock.egress.audit_read.verify` found, in words; each line with its control
    characters shown as escapes: a problem or a note quotes the heads file and the log (a
    run's id, a hash), which whoever changed them chose, and an escape sequence there could
    move the cursor and write "intact" over "NOT intact". ``named``: the log was given on the
    command line (what to say when it is not there). ``as_json``: the verdict as one JSON
    object on stdout instead (:func:`_verdict_json`), the exit status the same."""
    from airlock._visible import visible
    from airlock.egress.audit_read import verify
    from airlock.errors import UsageError

    wanted = None if final_hash is None else final_hash.strip().lower()
    if wanted is not None and not re.fullmatch(r"[0-9a-f]{64}", wanted):
        raise UsageError(f"--hash {final_hash!r}: expected the 64 hex digits a report prints")
    if not log.is_symlink():  # verify says why a link is refused
        _check_log(log, _missing(named), heads)
    # the hash is looked for in verify's own read of the log: a second read of the path could
    # be of another file, the original put back there once the forged one was verified
    verdict = verify(log, heads, wanted)
    hash_found: dict[str, int | None] = {}  # with --hash: the record it names, if read
    if wanted is not None:
        hash_found["final_hash_record"] = verdict.final_hash_record
    if as_json:
        return _verdict_json(log, verdict, hash_found)
    if not verdict.intact:
        print(visible(f"{log}: NOT intact: {verdict.problem}"), file=sys.stderr)
        return 1
    said = f"{log}: intact, {verdict.records} records, {verdict.runs} runs"
    if hash_found:
        said += (
            f"; the final hash is record {hash_found['final_hash_record']}'s, and no record "
            "after it is of its run"
        )
    print(visible(said))
    for note in verdict.notes:
        print(visible(f"  note: {note}"))
    if verdict.unended:
        print(
            "  note: a run also ends without its end record when its audit log or heads file "
            "cannot be written (a full disk): its traffic stopped then, and it exited 125 "
            "saying so"
        )
    return 0


def _verdict_json(log: Path, verdict: Any, hash_found: dict[str, int | None]) -> int:
    """``verify --json``: ``{"log", "intact", "records", "runs", "problem", "bad_record",
    "notes", "unended"}`` (with ``--hash``, also ``"final_hash_record"``: the number of the
    record it names, ``null`` when none does (the log is then not intact) or the log was
    found broken before it: ``hash_found``); 0 when intact, 1 when not, as the words. One
    line; what it quotes written with every character that is not printable as a JSON
    escape, as the listing's records are."""
    data: dict[str, Any] = {
        "log": str(log),
        "intact": verdict.intact,
        "records": verdict.records,
        "runs": verdict.runs,
        "problem": verdict.problem,
        "bad_record": verdict.bad_record,
        "notes": list(verdict.notes),
        "unended": list(verdict.unended),
        **hash_found,
    }
    from airlock.cli._common import json_encoder

    sys.stdout.buffer.write(_escaped(json_encoder()(data).encode()) + b"\n")
    sys.stdout.buffer.flush()
    return 0 if data["intact"] else 1


def _rotate(log: Path, heads: Path, to: Path | None, named: bool = True) -> int:
    from airlock._visible import visible
    from airlock.egress.audit import heads_path
    from airlock.egress.audit_read import rotate
    from airlock.errors import AirlockError, UsageError
    from airlock.settings import config_dir

    _check_log(log, _missing(named) if named else "nothing to rotate (pass --audit-log FILE)")
    folder = log.parent
    if to is not None:
        to = to.expanduser()
        if to.is_dir() and not to.is_symlink():  # as mv: into that folder, named as below
            folder, to = to, None
    if to is None:  # named by the time, and a number when that name is taken
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        to = folder / f"{log.stem}.{stamp}{log.suffix}"
        number = 1
        while os.path.lexists(to):
            to = folder / f"{log.stem}.{stamp}-{number}{log.suffix}"
            number += 1
    try:
        verdict = rotate(log, heads, to, heads_path(to, config_dir(os.environ)))
    except UsageError:
        raise
    except AirlockError as error:  # not intact: what verify would say (quoting the files)
        print(
            visible(
                f"airlock audit rotate: {error}; to start a new log, move the file aside, "
                f"with its heads file {heads}, and keep both: they show what was changed"
            ),
            file=sys.stderr,
        )
        return 1
    print(
        f"{log} → {to}: intact, {verdict.records} records, {verdict.runs} runs, its "
        f"checkpoints moved with it ('airlock audit verify {to}'); the next run begins a new "
        f"log at {log}"
    )
    if verdict.unended:  # killed, or writing to it now: such a run stops at its next write
        runs = ", ".join(verdict.unended)
        print(
            visible(
                f"airlock audit rotate: run {runs} began in the log and has not ended in it: "
                "killed, or still going on; one still going on stops its traffic at its next "
                "write (it ends with 125, saying the log was moved away)"
            ),
            file=sys.stderr,
        )
    return 0


def _check_log(log: Path, missing: str, heads: Path | None = None) -> None:
    """Fail unless ``log`` is a regular file (a FIFO would hang the read); ``missing``: what
    to do when there is none. With ``heads``, a log that is not there while its heads file
    holds checkpoints of records in it is left to :func:`airlock.egress.audit_read.verify`, which
    says it was removed.

    Raises:
        UsageError: there is none, or it is something else.
    """
    import stat

    from airlock.egress.audit_read import holds_checkpoints
    from airlock.errors import UsageError

    try:
        mode = log.stat().st_mode
    except FileNotFoundError:
        if heads is not None and holds_checkpoints(heads, log):
            return
        raise UsageError(f"no audit log at {log}: {missing}") from None
    if not stat.S_ISREG(mode):
        raise UsageError(
            f"{log} is not a regular file (a FIFO, a device or a folder): not an audit log"
        )


def parse_since(text: str, now: datetime) -> datetime:
    """A time (ISO 8601, UTC when no zone is given) or an age before ``now`` (``30m``, ``2d``),
    in UTC.

    Raises:
        UsageError: neither.
    """
    from airlock.errors import UsageError

    found = _AGE.match(text.strip())
    try:
        if found:
            return now - timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected a time such as 2026-12-02T10:30 or an age such as 2h"
        ) from None
    except OverflowError:
        raise UsageError(f"--since {text!r}: goes back before the year 1") from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise UsageError(f"--since {text!r}: in UTC, outside the years 1 to 9999") from None


def _selection(args: argparse.Namespace) -> tuple[str | None, HostRule | None]:
    """What the options select (``--since`` as records write their time, ``--host`` as a
    rule), read before the log is opened or anything printed (``--json``'s ``[`` is not left
    alone on a bad one).

    Raises:
        UsageError: a ``--since``, ``--host`` or ``--run`` that cannot select anything.
    """
    from airlock.egress.config import HostRule
    from airlock.errors import UsageError

    for option, value in (
        ("--since", args.since),
        ("--host", args.host),
        ("--run", args.run),
        ("--flow", args.flow),
    ):
        if value is not None and not value.strip():
            raise UsageError(f"{option} is empty: give what to select, or leave it out")
    if args.flow is not None and args.flow not in _flow_ids():
        raise UsageError(
            f"--flow {args.flow!r}: not a data flow; expected one of {', '.join(_flow_ids())}"
        )
    since = None
    if args.since is not None:  # as records write their time: 2026-12-02T10:24:53.123Z
        moment = parse_since(args.since, datetime.now(UTC))
        since = moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    host_rule = HostRule.parse(_bracketed(args.host), "--host") if args.host else None
    return since, host_rule


def _bracketed(host: str) -> str:
    """``--host`` as a rule reads it: a bare IPv6 address (``2001:db8::1``, as records and
    ``--json`` write one) in brackets, as a rule takes it (a bare one cannot carry a port, so
    this is the address alone); anything else as given."""
    import ipaddress

    try:
        return f"[{ipaddress.IPv6Address(host.strip())}]"
    except ValueError:
        return host


def _flow_ids() -> tuple[str, ...]:
    """What ``--flow`` takes: the policy engine's flow ids, then ``unclassified`` (what an
    inspected request no signature covers is named)."""
    from airlock.egress.flows import UNCLASSIFIED
    from airlock.policy import FlowId

    return (*(str(flow) for flow in FlowId), UNCLASSIFIED)


class _Selection:
    """What a listing found besides its records: whether ``--run`` named a run of the log."""

    run_found = False


def _records(
    reader: LogReader,
    args: argparse.Namespace,
    since: str | None,
    host_rule: HostRule | None,
    selection: _Selection,
) -> Iterator[dict[str, Any]]:
    """The records the options select, read as they are printed; lines that are no record
    counted (the first few named); ``selection`` told whether ``--run`` found its run."""
    from airlock.egress.audit_read import Skipped
    from airlock.policy.rules import normalize_host

    log = reader.path
    connections_only = host_rule is not None or args.decision is not None or bool(args.flow)
    skipped = Skipped()
    whole = bool(args.run) and _WHOLE_RUN_ID.fullmatch(args.run) is not None
    for record in reader.records(skipped):
        if args.run and not _run_selected(str(record.get("run", "")), args.run, whole):
            continue
        selection.run_found = True
        if since is not None and _ended(record) < since:
            continue
        if connections_only and record.get("type") not in ("tunnel", "request"):
            continue
        if args.decision and record.get("decision") != args.decision:
            continue
        if args.flow and record.get("flow") != args.flow:
            continue
        if host_rule is not None and not host_rule.covers(
            normalize_host(str(record.get("host", ""))), _port(record.get("port"))
        ):
            continue
        yield record
    if args.run and not selection.run_found:
        said = "is" if whole else "starts with"
        print(f"airlock audit: no run in {log} {said} {args.run!r}", file=sys.stderr)
    if skipped.count:
        lines = ", ".join(map(str, skipped.first)) + (
            " …" if skipped.count > len(skipped.first) else ""
        )
        print(
            f"airlock audit: {log}: {skipped.count} line(s) that are no record were skipped "
            f"(line {lines}); 'airlock audit verify' says whether the log was tampered with",
            file=sys.stderr,
        )


def _run_selected(run: str, wanted: str, whole: bool) -> bool:
    """Whether a record of ``run`` is selected by ``--run wanted``: that run when ``whole``
    (a whole id: a run whose id goes on from it is another run, and a record naming one,
    forged after the run's final hash, say, is not shown as this run's), else every run
    whose id starts so."""
    return run == wanted if whole else run.startswith(wanted)


def _ended(record: dict[str, Any]) -> str:
    """When a record's connection or request ended, written as records write their time (a
    tunnel open before ``--since`` that went on after it is shown); its start when it says no
    duration, or its time cannot be read."""
    start = str(record.get("time", ""))
    duration = record.get("duration_ms")
    if not isinstance(duration, (int, float)) or isinstance(duration, bool) or duration <= 0:
        return start
    try:
        began = datetime.fromisoformat(start.removesuffix("Z"))
        ended = began + timedelta(milliseconds=duration)
    except (ValueError, OverflowError):
        return start
    return ended.isoformat(timespec="milliseconds") + "Z"


def _port(value: object) -> int:
    """A record's port as a number (0 for one that is not: a log edited by hand)."""
    if isinstance(value, int):
        return value
    try:
        return int(str(value or 0))
    except ValueError:
        return 0


def _print_json(records: Iterator[dict[str, Any]]) -> None:
    """The records as a JSON array, a record a line; what they hold with its characters that
    are not printable written as JSON escapes (:func:`_escaped`)."""
    import orjson

    first = next(records, None)  # the log opened (an unreadable one refused) before the "["
    out = sys.stdout.buffer
    out.write(b"[")
    if first is not None:
        out.write(b"\n")
        out.write(_escaped(orjson.dumps(first)))
    for record in records:
        out.write(b",\n")
        out.write(_escaped(orjson.dumps(record)))
    out.write(b"\n]\n")
    out.flush()


_NOT_PLAIN = re.compile(r"[^\x20-\x7e]")
"""A character that may not be printable (the rest of ASCII is)."""


def _escaped(line: bytes) -> bytes:
    """A record's JSON with each character that is not printable written as a ``\\uXXXX``
    escape (the same JSON once read). The encoder escapes the ASCII controls, not DEL, C1
    controls (``\\x9b`` begins an escape sequence on some terminals), line separators or
    format characters (a right-to-left override reorders what follows it): printed on a
    terminal, what a record holds stays text, as in the listing."""
    if line.isascii() and b"\x7f" not in line:  # the usual record: nothing to look at
        return line
    return _NOT_PLAIN.sub(_json_escape, line.decode("utf-8")).encode("utf-8")


def _json_escape(found: re.Match[str]) -> str:
    char = found.group()
    if char.isprintable():
        return char
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes one
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _print_lines(records: Iterator[dict[str, Any]]) -> None:
    """A line a record; what the records hold (hosts, paths, reasons, errors, a command: what
    a sandboxed command chose, or a hand's edit) with its control characters shown as
    escapes, never sent to the terminal."""
    from airlock._visible import visible

    write = sys.stdout.write
    for record in records:
        kind = record.get("type")
        if kind == "start":
            line = f"{record.get('time')}  run {record.get('run')} started"
        elif kind == "run":  # its time is the run's start: the end is after its duration
            duration = record.get("duration")
            lasted = f" after {duration:g} s" if isinstance(duration, (int, float)) else ""
            line = (
                f"{record.get('time')}  run {record.get('run')} ended{lasted}: exit "
                f"{record.get('exit_code')}, command {_command(record.get('command'))}"
            )
        else:
            line = _connection_line(record)
        write(visible(line) + "\n")


def _connection_line(record: dict[str, Any]) -> str:
    """A tunnel's or a request's line: what it was, its status (``-`` when it has none, or
    an inspected request's ``0``: a transfer cut before an answer), bytes each way, its flow
    and the secrets found in it (kind×count) when it has them, the reason, why its body could
    not all be checked, and its error (when it is not the reason again)."""
    path = record.get("path") or ""
    status = record.get("status")
    parts = [
        f"{record.get('time')}  {record.get('decision', '?')!s:5}  {record.get('method')} "
        f"{_host_shown(record.get('host'))}:{record.get('port')}{path}",
        f"status {status or '-'}",  # none, or 0 (an inspected request's): no answer came
        f"out {record.get('bytes_out')} in {record.get('bytes_in')}",
    ]
    if record.get("flow"):
        parts.append(f"flow {record['flow']}")
    secrets = record.get("secrets")
    if secrets:
        if isinstance(secrets, dict):
            parts.append("secrets " + ", ".join(f"{kind}×{n}" for kind, n in secrets.items()))
        else:  # a hand's edit: shown as it is
            parts.append(f"secrets {secrets}")
    reason = record.get("reason")
    if reason:
        parts.append(str(reason))
    if record.get("unchecked"):
        parts.append(f"unchecked: {record['unchecked']}")
    error = record.get("error")
    if error and error != reason:
        parts.append(f"error: {error}")
    return "  ".join(parts)


def _host_shown(host: object) -> str:
    """A record's host as a listing line shows it before ``:port``: an IPv6 address (records
    write it bare) in brackets, as a URL and ``--host`` write it; ``2001:db8::1:8443`` would
    not say where the address ends and the port begins. Anything else (a hand's edit, a name
    that is no address) as it is."""
    import ipaddress

    text = str(host)
    if ":" not in text:
        return text
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return text
    return f"[{text}]"


def _command(command: object) -> str:
    """A run record's command as a shell would take it (``sh -c 'echo hi'``), not as a
    Python list; anything else (a hand's edit) as it is. Its control characters are escaped
    by the caller, with the rest of the line."""
    if isinstance(command, list) and all(isinstance(word, str) for word in command):
        return shlex.join(command)
    return str(command)
