"""The I/O edge of the policy: find and read settings files and the environment.

Precedence, highest first (written once, in :data:`~airlock.settings.layers.LAYER_ORDER`):

1. managed settings: ``managed-settings.json`` then ``managed-settings.d/*.json`` (alphabetical,
   hidden and non-``.json`` files ignored) in ``$AIRLOCK_MANAGED_SETTINGS_DIR``, else
   ``/etc/claude-code`` (Linux) or ``/Library/Application Support/ClaudeCode`` (macOS);
2. ``--settings FILE`` on the command line;
3. ``<project>/.claude/settings.local.json``;
4. ``<project>/.claude/settings.json``;
5. ``<config dir>/settings.json``, the config dir being ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``.

Scalars: the highest file that sets a valid value wins. Lists (``permissions.allow`` …) are
unioned; objects merge key by key. Each file's ``env`` block and the process environment are
kept side by side with their origins; ``policy.variables`` says how each variable counts.

A file that holds a value of the wrong kind is reported (path, key, value, what was expected;
every problem at once) and nothing in it takes effect, except what can only restrict: the
opt-outs in its ``env`` block and its ``deny`` and ``ask`` rules. A file that cannot be read
at all (not valid JSON, too large, nested too deeply, not a regular file, or ambiguous: a key
written twice in one object, ``NaN``, half of a UTF-16 surrogate pair alone) is reported with
why, and none of it takes effect. A managed file that cannot be used makes the engine fail closed.

Modules: :mod:`~airlock.settings.validation` (what a file may hold),
:mod:`~airlock.settings.layers` (finding, reading and merging files),
:mod:`~airlock.settings.loading` (the engine's context and the capabilities' typed values),
:mod:`~airlock.settings.sandbox` (the ``sandbox`` block, for ``airlock run``: imported from
that module, so that commands which do not read it do not build its classes).
"""

from airlock.settings.layers import (
    LAYER_ORDER,
    LINUX_MANAGED_DIR,
    MACOS_MANAGED_DIR,
    MANAGED_DIR_VARIABLE,
    MAX_SETTINGS_BYTES,
    Layer,
    config_dir,
    managed_dir,
    merge,
    parse_layer,
    read_layer,
    read_managed,
)
from airlock.settings.loading import (
    STATE_FILE,
    CollectorSettings,
    Loaded,
    RedactionRule,
    RedactionSettings,
    load,
    load_here,
)
from airlock.settings.validation import (
    AIRLOCK_KEYS,
    PERMISSION_LISTS,
    PERMISSION_RESTRICTING,
    SANDBOX_FILESYSTEM_LISTS,
    SANDBOX_NETWORK_LISTS,
    SANDBOX_RESTRICTING,
    TOP_LEVEL_KEYS,
    Problem,
    validate,
)

__all__ = [
    "AIRLOCK_KEYS",
    "LAYER_ORDER",
    "LINUX_MANAGED_DIR",
    "MACOS_MANAGED_DIR",
    "MANAGED_DIR_VARIABLE",
    "MAX_SETTINGS_BYTES",
    "PERMISSION_LISTS",
    "PERMISSION_RESTRICTING",
    "SANDBOX_FILESYSTEM_LISTS",
    "SANDBOX_NETWORK_LISTS",
    "SANDBOX_RESTRICTING",
    "STATE_FILE",
    "TOP_LEVEL_KEYS",
    "CollectorSettings",
    "Layer",
    "Loaded",
    "Problem",
    "RedactionRule",
    "RedactionSettings",
    "config_dir",
    "load",
    "load_here",
    "managed_dir",
    "merge",
    "parse_layer",
    "read_layer",
    "read_managed",
    "validate",
]
