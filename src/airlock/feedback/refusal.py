"""A flow the policy engine turned off: which flow, and every reason the engine gave.

:class:`FlowRefused` is a :class:`~airlock.errors.RefusedError` (exit 3) that keeps the flow and
the reasons apart from the message, so ``--json`` can print them as data:
``{"refused": true, "flow": "feedback_command", "reasons": [...]}``.
"""

from __future__ import annotations

from typing import Any

from airlock.errors import RefusedError
from airlock.policy.model import Decision, FlowId, State


class FlowRefused(RefusedError):
    """The engine says no to ``flow``, for ``reasons``."""

    def __init__(self, flow: FlowId, reasons: tuple[str, ...], what: str) -> None:
        super().__init__(f"{what} is off ({flow}): " + "; ".join(reasons))
        self.flow = flow
        self.reasons = reasons

    def to_json(self) -> dict[str, Any]:
        """The refusal as ``--json`` prints it on stdout."""
        return {"refused": True, "flow": str(self.flow), "reasons": list(self.reasons)}


def refuse_if_off(decision: Decision, what: str) -> None:
    """Raise :class:`FlowRefused` naming every reason when ``decision`` is off.

    Args:
        decision: The engine's decision for one flow.
        what: What is refused, in words (``"airlock feedback"``).

    Raises:
        FlowRefused: The decision's state is ``off``.
    """
    if decision.state is State.OFF:
        raise FlowRefused(decision.id, decision.reasons, what)
