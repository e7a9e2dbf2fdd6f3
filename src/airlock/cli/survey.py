"""``airlock survey``: "How is Claude doing this session?", when the engine and the draw allow."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

    from airlock.policy import Decisions
    from airlock.settings import Loaded
    from airlock.survey import ShareAnswer

HELP = 'the session survey ("How is Claude doing this session?") and its transcript-share follow-up'

DESCRIPTION = """\
Ask the rating survey for one session, as the policy engine allows (survey_rating): whether a
session is asked is drawn from feedbackSurveyRate, the same way every time for one session.
The rating is recorded alone (never with a transcript): to the collector, or, in otel_only
mode, as an OpenTelemetry log record to your OTLP endpoint only. With no collector configured
the rating is not sent (it says so) and the survey still goes on to the follow-up when that is
kept locally (local_archive: Bedrock, Vertex, Foundry, gateways). Then, when transcript_share
allows it, the follow-up: Yes builds a redacted bundle (uploaded or kept locally, as the engine
says), No does nothing, "never" (Don't ask again) is remembered in <config dir>/airlock/state.json.

Interactive in a terminal; --rating and --share answer for scripts. --check only says whether
the session would be asked. Without a terminal and without --rating it exits 2 at once.
Exit 3 when the survey (or the follow-up asked for) is off; with --json a refusal also prints
{"refused": true, "flow": ..., "reasons": [...]} on stdout.
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "survey",
        parents=[common],
        help=HELP,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("session", nargs="?", metavar="SESSION", help="the session id")
    parser.add_argument(
        "--rating", choices=("good", "fine", "bad", "dismiss"), help="answer without a prompt"
    )
    parser.add_argument(
        "--share",
        choices=("yes", "no", "never"),
        help="answer the follow-up without a prompt (never = Don't ask again)",
    )
    parser.add_argument(
        "--check", action="store_true", help="only say whether this session is asked"
    )
    parser.add_argument("--json", action="store_true", help="print what happened as JSON")


def run(args: argparse.Namespace) -> int:
    from airlock.cli._common import with_json_refusals

    return with_json_refusals(_run, args)


def _run(args: argparse.Namespace) -> int:
    import sys
    import time
    from datetime import UTC, datetime

    from airlock import __version__
    from airlock.cli._common import load_reported, stdout_console
    from airlock.cli.feedback import pick_session
    from airlock.errors import UsageError
    from airlock.policy import decide
    from airlock.sessions import SessionStore
    from airlock.survey import (
        NO_COLLECTOR,
        Rating,
        ShareAnswer,
        offers_share,
        plan,
        rating_has_destination,
        record_rating,
        require_destination,
    )

    loaded = load_reported(args)
    decisions = decide(loaded.context)
    session_id = (
        args.session or pick_session(SessionStore(loaded.config_dir), None, loaded.project_dir).id
    )
    chosen = plan(decisions, session_id)
    result: dict[str, Any] = {"plan": chosen.to_json()}
    console = stdout_console()
    if args.check or not chosen.asked:
        return _finish(args, result, console, 0 if chosen.asked or not args.check else 1)
    collector = loaded.collector.url
    require_destination(decisions, collector)
    interactive = _stdin_is_terminal()
    if args.rating is None and not interactive:
        raise UsageError("not a terminal: answer with --rating good|fine|bad|dismiss")
    from airlock.survey.prompt import ask_rating, ask_share

    rating = Rating(args.rating) if args.rating else ask_rating(console)
    now = datetime.now(UTC)
    result["rating"] = str(rating)
    if rating_has_destination(decisions, collector):
        result["rating_sent_to"] = record_rating(
            decisions,
            rating,
            collector=collector,
            now=now,
            version=__version__,
            sleep=time.sleep,
        )
    else:
        result["rating_sent_to"] = None
        result["rating_not_sent"] = NO_COLLECTOR.removeprefix("rating not sent: ")
        if args.json:
            print(f"airlock survey: {NO_COLLECTOR}", file=sys.stderr)
        elif interactive:  # said now, before the follow-up question
            console.print(f"  {NO_COLLECTOR}", markup=False, highlight=False)
    ask_follow_up = args.share is not None or (args.rating is None and interactive)
    if offers_share(decisions, rating) and ask_follow_up:
        share = ShareAnswer(args.share) if args.share else ask_share(console)
        result["share"] = str(share)
        result.update(_follow_up(share, decisions, loaded, session_id, now, __version__))
    elif args.share == "yes":
        from airlock.feedback import share_delivery

        share_delivery(decisions)  # raises FlowRefused with the engine's reasons
    return _finish(args, result, console, 0, said_not_sent=interactive)


def _stdin_is_terminal() -> bool:
    """Whether stdin is a terminal; never wait on a closed stdin or a pipe: prompts only there."""
    import sys

    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):  # closed: the CLI stands in a stream that says so
        return False


def _follow_up(
    share: ShareAnswer,
    decisions: Decisions,
    loaded: Loaded,
    session_id: str,
    now: datetime,
    version: str,
) -> dict[str, Any]:
    import time

    from airlock.feedback import deliver, request_share
    from airlock.redact import Redactor
    from airlock.sessions import SessionStore
    from airlock.survey import ShareAnswer, remember_declined

    if share is ShareAnswer.NEVER:
        return {"remembered": str(remember_declined(loaded.config_dir))}
    if share is not ShareAnswer.YES:
        return {}
    session = SessionStore(loaded.config_dir).get(session_id)
    outcome = deliver(
        request_share(decisions, session),
        Redactor.from_loaded(loaded),
        config_dir=loaded.config_dir,
        collector=loaded.collector.url,
        now=now,
        version=version,
        sleep=time.sleep,
    )
    return {"bundle": outcome.manifest.to_json(), "delivered": outcome.delivered}


def _finish(
    args: argparse.Namespace,
    result: dict[str, Any],
    console: Any,
    code: int,
    *,
    said_not_sent: bool = False,
) -> int:
    from airlock.cli._common import dump_json, plain

    if args.json:
        dump_json(result)
        return code
    chosen = result["plan"]
    asked = "is asked" if chosen["asked"] else "is not asked"
    console.print(
        plain(
            f"session {chosen['session']} {asked} (rate {chosen['rate']:g}, "
            f"draw {chosen['draw']:.4f}, survey {chosen['state']})"
        )
    )
    for key in ("rating", "rating_sent_to", "share", "remembered", "delivered"):
        if result.get(key) is None:
            continue
        console.print(plain(f"  {key.replace('_', ' ')}: {result[key]}"))
        if key == "rating" and "rating_not_sent" in result and not said_not_sent:
            console.print(plain(f"  rating not sent: {result['rating_not_sent']}"))
    return code
