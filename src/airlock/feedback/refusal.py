"""A flow the policy engine turned off: which flow, and every reason the engine gave.

:func:`refuse_if_off` raises :class:`~airlock.errors.FlowRefused` (a ``RefusedError``, exit 3),
which keeps the flow and the reasons apart from the message, so ``--json`` can print them as
data. ``FlowRefused`` is also importable from here and from :mod:`airlock.feedback`.
"""

from __future__ import annotations

from airlock.errors import FlowRefused
from airlock.policy.model import Decision, State

__all__ = ["FlowRefused", "refuse_if_off"]


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
