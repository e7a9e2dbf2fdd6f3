"""``airlock feedback``: a session's transcript, redacted, with a manifest, sent as the engine says."""

from __future__ import annotations

import argparse
from typing import Any

HELP = "send a feedback report: the session's files, redacted, with a manifest you can inspect"

DESCRIPTION = """\
Bundle one session (its transcript, subagent transcripts and raw session log), redact every
file, and deliver the bundle the way the policy engine says: upload to the collector
(AIRLOCK_COLLECTOR_URL or airlock.collectorUrl), or keep it in <config dir>/feedback-bundles/.
The engine is asked first (feedback_command, transcript_share); when it says no, the command
says which setting turned it off and exits 3.

--dry-run prints the manifest (files, sizes, SHA-256, redactions by kind, retention class) and
writes and sends nothing. With --json a dry run prints exactly the manifest; a real run prints
the same fields plus "delivered" (how and where the bundle went); a refusal (exit 3) prints
{"refused": true, "flow": ..., "reasons": [...]}. Without SESSION, the most recent session of this project (else of
any project) is used.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "feedback",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("session", nargs="?", metavar="SESSION", help="the session id")
    parser.add_argument("--description", "-d", default="", help="what went wrong, in your words")
    parser.add_argument(
        "--dry-run", action="store_true", help="show the manifest; write and send nothing"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the manifest and outcome as JSON"
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="keep the bundle in <config dir>/feedback-bundles/ instead of uploading it",
    )
    parser.add_argument(
        "--issue",
        choices=("link", "text"),
        help="also prepare a GitHub issue (redacted): a prefilled issues/new link, or its text",
    )


def run(args: argparse.Namespace) -> int:
    from airlock.cli._common import with_json_refusals

    return with_json_refusals(_run, args)


def _run(args: argparse.Namespace) -> int:
    import time
    from datetime import UTC, datetime

    from airlock import __version__
    from airlock.cli._common import dump_json, load_reported
    from airlock.feedback import collector_url, deliver, request_feedback
    from airlock.policy import decide
    from airlock.redact import Redactor
    from airlock.sessions import SessionStore

    loaded = load_reported(args)
    decisions = decide(loaded.context)
    session = pick_session(SessionStore(loaded.config_dir), args.session, loaded.project_dir)
    request = request_feedback(
        decisions,
        session,
        description=args.description,
        dry_run=args.dry_run,
        keep_local=args.local,
    )
    outcome = deliver(
        request,
        Redactor.from_loaded(loaded),
        config_dir=loaded.config_dir,
        collector=collector_url(loaded),
        now=datetime.now(UTC),
        version=__version__,
        sleep=time.sleep,
    )
    issue = _issue(args.issue, outcome)
    if args.json:
        data = json_document(outcome)
        if issue is not None:
            data["issue"] = issue
        dump_json(data)
    else:
        _print(outcome, issue)
    return 0


def pick_session(store: Any, wanted: str | None, project_dir: Any = None) -> Any:
    """The session asked for, else the most recent one of this project, else of any.

    Raises:
        UsageError: No session at all, or no session with that id.
    """
    from airlock.errors import UsageError

    if wanted:
        return store.get(wanted)
    sessions = store.list()
    if not sessions:
        raise UsageError(f"no session found under {store.config_dir}/projects: name a SESSION")
    here = [session for session in sessions if session.cwd == str(project_dir)]
    return (here or sessions)[0]


def json_document(outcome: Any) -> dict[str, Any]:
    """What ``--json`` prints: the manifest's fields, plus ``delivered`` after a real run.

    A dry run prints exactly the manifest. A real run prints the same fields at the same top
    level and one more key, ``delivered``: where the bundle went (``how`` is the engine's
    state, ``upload`` or ``local_archive``; ``path`` for an archive; ``receipt`` for an upload).
    """
    data: dict[str, Any] = outcome.manifest.to_json()
    if outcome.dry_run:
        return data
    receipt = outcome.receipt
    data["delivered"] = {
        "how": outcome.manifest.delivery,
        "summary": outcome.delivered,
        "path": str(outcome.path) if outcome.path else None,
        "receipt": (
            {
                "url": receipt.url,
                "status": receipt.status,
                "attempts": receipt.attempts,
                "duplicate": receipt.duplicate,
                "persisted": receipt.persisted,
            }
            if receipt
            else None
        ),
    }
    return data


def _issue(kind: str | None, outcome: Any) -> str | None:
    if kind is None:
        return None
    from airlock.feedback import compose_issue, issue_link

    manifest = outcome.manifest
    issue = compose_issue(manifest.description, manifest, delivered=outcome.delivered_publicly)
    return issue_link(issue) if kind == "link" else issue.to_text()


def _print(outcome: Any, issue: str | None) -> None:
    from airlock.cli._common import plain, stdout_console
    from airlock.feedback.issue import counted

    console = stdout_console()
    manifest = outcome.manifest
    console.print(
        plain("feedback bundle", "bold")
        + plain(f" {manifest.bundle_id} — session {manifest.session}")
    )
    for item in manifest.files:
        found = counted(item.redactions)
        console.print(
            plain(
                f"  {item.path}  {item.size} bytes  sha256 {item.sha256[:16]}…  redacted: {found}"
            )
        )
    console.print(
        plain(
            f"  description: {len(manifest.description)} characters  "
            f"redacted: {counted(manifest.description_redactions)}"
        )
    )
    console.print(
        plain(f"  redacted in all (files and description): {counted(manifest.redactions)}")
    )
    console.print(
        plain(
            f"  retention class: {manifest.retention_class}"
            + (f" ({manifest.retention_days} days)" if manifest.retention_days is not None else "")
        )
    )
    console.print(plain(outcome.delivered, "bold"))
    if outcome.path is not None:
        console.print(
            "Nothing has left this machine. To forward it, attach this file to your report "
            "(or send it to your administrator); delete it when done."
        )
    if issue is not None:
        console.print(issue, markup=False, highlight=False, soft_wrap=True)
