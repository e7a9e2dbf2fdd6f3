"""What telemetry may carry: no secrets, no file paths, no source code.

Secrets are found by the redaction engine (:class:`airlock.redact.Redactor`); file paths
(absolute, home-relative, Windows) become ``[PATH]``; a Sentry event loses the source lines
and local variables of its stack frames, and keeps of each file only its base name.
"""

from __future__ import annotations

import re
from typing import Any

from airlock.redact import Redactor

PATH = "[PATH]"
_PATHS = re.compile(
    r"""(?:(?<![\w.:/])~?/(?:[^\s/'"`:;,()<>]+/)*[^\s/'"`:;,()<>]*)"""
    r"""|(?:\b[A-Za-z]:\\(?:[^\s\\'"`:;,()<>]+\\)*[^\s\\'"`:;,()<>]*)"""
)
_FRAME_CODE = ("pre_context", "context_line", "post_context", "vars")
_DROPPED = ("server_name", "user", "request", "extra", "modules")


class Scrubber:
    """Scrubs strings, attribute values and Sentry events."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor or Redactor()

    def text(self, value: str) -> str:
        """``value`` without secrets and file paths."""
        redacted, _ = self.redactor.redact_text(value)
        return _PATHS.sub(PATH, redacted)

    def attributes(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """Attribute values scrubbed (strings), others kept."""
        return {key: self.text(v) if isinstance(v, str) else v for key, v in attributes.items()}

    def event(self, event: dict[str, Any]) -> dict[str, Any]:
        """A Sentry event with no code, no local variables, no paths and no secrets."""
        cleaned = {key: value for key, value in event.items() if key not in _DROPPED}
        for exception in (cleaned.get("exception") or {}).get("values") or []:
            if isinstance(exception.get("value"), str):
                exception["value"] = self.text(exception["value"])
            for frame in (exception.get("stacktrace") or {}).get("frames") or []:
                for key in _FRAME_CODE:
                    frame.pop(key, None)
                for key in ("abs_path", "filename"):
                    if isinstance(frame.get(key), str):
                        frame[key] = frame[key].replace("\\", "/").rsplit("/", 1)[-1]
        scrubbed: dict[str, Any] = self._strings(cleaned)
        return scrubbed

    def _strings(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self._strings(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._strings(item) for item in value]
        return value
