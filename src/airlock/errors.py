"""Every error airlock raises on purpose, and the exit code each one maps to.

    AirlockError                          exit 2
    ├── SettingsError(ValueError)         a settings file that cannot be used
    ├── UsageError(ValueError)            bad arguments: an unknown session id, a bad URL, …
    │   └── HostError                     a host that is neither a valid name nor an address
    ├── RefusedError(PermissionError)     exit 3: the policy says no (a flow is off, a domain is denied)
    │   ├── FlowRefused                   a flow the engine turned off, with its reasons as data
    │   └── DestinationRefused            a host is or resolves to a private address no rule allows
    ├── UnsafePathError(PermissionError)  a path that leads outside where airlock may touch
    ├── BusyError                         another prune or delete holds the config dir's lock
    ├── SandboxError(RuntimeError)        the sandbox cannot be built (``airlock run`` exits 125)
    └── MissingExtraError(ImportError)    a capability whose extra is not installed

Each also inherits the matching builtin, so ``except ValueError`` keeps working. The CLI
prints the message and exits with :attr:`AirlockError.exit_code`. Every error class of airlock
is here; the modules that raise them re-export the ones they are known by
(``airlock.feedback.FlowRefused``, ``airlock.sessions.BusyError``, ``airlock.policy.hosts.HostError``).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing stays unimported here: every command imports this module
if TYPE_CHECKING:
    from typing import Any

    from airlock.policy.model import FlowId


class AirlockError(Exception):
    """Base of every error airlock raises on purpose."""

    exit_code = 2


class SettingsError(AirlockError, ValueError):
    """A settings file is unreadable or holds a value of the wrong kind."""


class UsageError(AirlockError, ValueError):
    """The user asked for something that cannot be done as asked."""


class HostError(UsageError):
    """A host that is neither a valid name nor an address; the message says why."""


class RefusedError(AirlockError, PermissionError):
    """The policy engine, a permission rule or a safety check refused."""

    exit_code = 3


class FlowRefused(RefusedError):
    """The engine says no to ``flow``, for ``reasons``.

    It keeps the flow and the reasons apart from the message, so ``--json`` can print them as
    data: ``{"refused": true, "flow": "feedback_command", "reasons": [...]}``.
    """

    def __init__(self, flow: FlowId, reasons: tuple[str, ...], what: str) -> None:
        super().__init__(f"{what} is off ({flow}): " + "; ".join(reasons))
        self.flow = flow
        self.reasons = reasons

    def to_json(self) -> dict[str, Any]:
        """The refusal as ``--json`` prints it on stdout."""
        return {"refused": True, "flow": str(self.flow), "reasons": list(self.reasons)}


class DestinationRefused(RefusedError):
    """A host is, or resolves to, an address no fetch or connection may reach unless a rule allows it.

    Carries what the message says: ``host`` (as asked), ``address`` (the one refused, as text)
    and ``address_class`` (``"loopback"``, ``"cloud metadata"``, …).
    """

    def __init__(self, message: str, *, host: str, address: str, address_class: str) -> None:
        super().__init__(message)
        self.host = host
        self.address = address
        self.address_class = address_class


class UnsafePathError(AirlockError, PermissionError):
    """A path resolves outside the directory airlock may touch (a link, ``..``, another owner)."""


class BusyError(AirlockError):
    """Another prune or delete holds the removal lock of this config dir."""


class SandboxError(AirlockError, RuntimeError):
    """The sandbox cannot be built as asked; nothing was run without it."""


class MissingExtraError(AirlockError, ImportError):
    """A capability needs an extra that is not installed (``pip install 'airlock[serve]'``)."""
