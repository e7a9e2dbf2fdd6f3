"""airlock: decides, enforces and proves what an AI coding agent sends off the machine,
what it keeps, and for how long.

The public API: load the settings in force, ask the policy engine, act on its decisions.

    >>> from airlock import decide, load_settings
    >>> decisions = decide(load_settings(cwd, environ).context)

Capabilities live in their packages (``airlock.sessions``, ``airlock.redact``, …); those that
need an extra say which when it is missing (``pip install 'airlock[serve]'``, …).
"""

from airlock.errors import (
    AirlockError,
    BusyError,
    DestinationRefused,
    FlowRefused,
    HostError,
    RefusedError,
    SettingsError,
    UnsafePathError,
    UsageError,
)
from airlock.policy import Decision, Decisions, FlowId, Provider, State, decide
from airlock.settings import CollectorSettings, Loaded, Problem, RedactionSettings
from airlock.settings import load as load_settings

__version__ = "0.1.0"

__all__ = [
    "AirlockError",
    "BusyError",
    "CollectorSettings",
    "Decision",
    "Decisions",
    "DestinationRefused",
    "FlowId",
    "FlowRefused",
    "HostError",
    "Loaded",
    "Problem",
    "Provider",
    "RedactionSettings",
    "RefusedError",
    "SettingsError",
    "State",
    "UnsafePathError",
    "UsageError",
    "__version__",
    "decide",
    "load_settings",
]
