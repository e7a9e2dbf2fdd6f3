"""Plain-HTTP requests to inspected hosts: named by flow, enforced and checked for secrets.

Theory of operation
-------------------
A request sent in the clear (``GET http://host/path`` through the proxy, no ``CONNECT``) to a
host named with ``--inspect`` gets what one inside inspected TLS gets
(:mod:`airlock.egress.inspected`), inside the proxy's plain forwarding
(:mod:`airlock.egress.forwarding`):

1. its flow is named and the engine's decisions asked (:meth:`Inspector.judge`); a refused
   flow is answered ``403`` with the same body naming the flow and what turned it off, before
   any connection is made;
2. its headers (but the sign-in ones) and its body go through the redaction engine, the
   body counted as it streams (``--secrets report``, segments scanned in a worker thread
   beside the forwarding), or gathered (up to ``MAX_GATHERED``: a larger body is refused
   ``413``, and within the run's budget of gathered bodies, shared with TLS: ``503`` past
   it), then redacted or refused (``redact``, ``block``);
3. its audit record carries ``flow``, ``inspected`` and ``secrets`` (and ``unchecked``, for a
   body not read decoded to its end), and is counted by flow for the end-of-run report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airlock.egress.flows import Verdict, redact_query, refusal_body
from airlock.egress.http1 import RequestHead, simple_response
from airlock.egress.scan import (
    MAX_GATHERED,
    TOO_LARGE,
    BodyCount,
    Held,
    SecretsMode,
    Uncheckable,
    blocked_reason,
    check_gathered,
    path_secrets,
)

if TYPE_CHECKING:
    from airlock.egress.inspect import Inspector


class PlainInspection:
    """What inspection makes of one plain-HTTP request to an inspected host.

    Args:
        inspector: The run's inspector (decisions, redaction, flow counts).
        head: The request.
        host: Its host in the canonical form the rules judged
            (:func:`airlock.policy.hosts.parse_host`: ``localhost.`` is ``localhost``), one
            :meth:`Inspector.inspects` names.
    """

    def __init__(self, inspector: Inspector, head: RequestHead, host: str) -> None:
        self.inspector = inspector
        self.head = head
        self.host = host
        self.method = head.method.decode("latin-1")
        self.path = head.path.decode("latin-1")
        self.verdict: Verdict = inspector.judge(self.method, host, self.path, head.headers)
        self.mode = inspector.secrets
        self._count = (
            None
            if self.gathers
            else BodyCount(
                inspector.redactor,
                head.header(b"content-encoding"),
                head.header(b"content-type"),
            )
        )
        self.secrets: dict[str, int] = {}
        self.held = Held(inspector.gathering)
        """What its gathered body holds of the run's budget of gathered bodies, given back
        once the request is done."""

    @property
    def gathers(self) -> bool:
        """Whether the body is gathered whole before it leaves (``redact`` and ``block``)."""
        return self.mode is not SecretsMode.REPORT

    def fields(self) -> dict[str, object]:
        """The audit record's fields that inspection adds."""
        return {
            "inspected": True,
            "flow": self.verdict.flow,
            "reason": self.verdict.reason,
            "secrets": self.secrets,
        }

    def refusal(self) -> bytes:
        """The ``403`` of a request whose flow is off (the connection is closed after it).
        It names the path as the audit log shows it (query values and the redaction engine's
        findings left out), never as sent."""
        shown, _ = path_secrets(self.inspector.redactor, self.path, redact_query(self.path))
        body = refusal_body(
            self.verdict, self.method, self.host, shown, scheme="http", port=self.head.port
        )
        return simple_response(403, body.decode("utf-8"), (("X-Airlock", "refused"),))

    def add(self, found: dict[str, int]) -> None:
        """Count ``found`` (secrets by kind) with the request's others: its path's, its
        headers', its body's."""
        for kind, count in found.items():
            self.secrets[kind] = self.secrets.get(kind, 0) + count

    async def take(self, piece: bytes) -> None:
        """Count the secrets of a body piece on its way out (``--secrets report``)."""
        if self._count is not None:
            await self._count.add(piece)

    async def finish(self, record: dict[str, Any]) -> None:
        """Put the secrets counted in the body, by kind (also kept in :attr:`secrets`), in
        ``record``, and why the body could not be read decoded to its end (``unchecked``), if
        it could not."""
        if self._count is not None:
            self.add(await self._count.total())
            if self._count.unchecked:
                record["unchecked"] = self._count.unchecked
        record["secrets"] = self.secrets

    def too_large(self, length: int | None) -> str:
        """Why a body of ``length`` bytes (``None``: not known yet) is refused unread with
        ``413``, too large to be gathered and checked (``redact``, ``block``); else ``""``."""
        return TOO_LARGE if self.gathers and (length or 0) > MAX_GATHERED else ""

    def check(self, body: bytes) -> tuple[bytes | None, int, str]:
        """A gathered body as it may leave (``None``: refused) and, if refused, the status
        to answer and why.

        ``--secrets redact`` replaces each secret; ``--secrets block`` refuses a body that
        holds any (``403``); either way the counts go to :attr:`secrets`. A body over
        ``MAX_GATHERED`` is refused ``413``, unchecked; a compressed one is checked decoded
        (one that cannot be: ``415``, ``400`` or ``413``; ``503`` when decoded it would pass
        the run's budget of gathered bodies), and leaves decoded when redacted (its
        ``Content-Encoding`` dropped from the head).
        """
        if len(body) > MAX_GATHERED:
            return None, 413, TOO_LARGE
        encoding = self.head.header(b"content-encoding")
        mark = self.held.size
        try:
            checked, found, decoded = check_gathered(
                self.inspector.redactor,
                self.mode,
                body,
                encoding,
                self.head.header(b"content-type"),
                self.held.grow,  # its copies (decoded, redacted, …) are held within the budget too
            )
        except Uncheckable as error:
            self.held.settle(mark)
            self.add(error.secrets)
            return None, error.status, error.why
        # a body that leaves as a new copy (decoded, redacted) stays charged until it has gone
        self.held.settle(mark, len(checked) if checked is not None and checked is not body else 0)
        if decoded:
            self.head.headers = [
                (name, value)
                for name, value in self.head.headers
                if name.lower() != b"content-encoding"
            ]
        self.add(found)
        return checked, 403, "" if checked is not None else blocked_reason(self.secrets)
