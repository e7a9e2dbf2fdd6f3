"""The policy engine: pure, no I/O. ``decide(context)`` answers for every data flow."""

from airlock.policy.decide import decide, resolve_provider
from airlock.policy.model import (
    AccountType,
    Context,
    Decision,
    Decisions,
    FlowId,
    Origin,
    Permissions,
    Provider,
    Retention,
    Rule,
    Setting,
    Source,
    State,
    Var,
)

__all__ = [
    "AccountType",
    "Context",
    "Decision",
    "Decisions",
    "FlowId",
    "Origin",
    "Permissions",
    "Provider",
    "Retention",
    "Rule",
    "Setting",
    "Source",
    "State",
    "Var",
    "decide",
    "resolve_provider",
]
