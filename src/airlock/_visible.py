"""Text from outside airlock (a host a sandboxed command named, a log's record, a file's name)
fit to be shown on a terminal."""

from __future__ import annotations


def visible(text: object, keep: str = "") -> str:
    """``text`` with every character that is not printable shown as an escape: ``\\xNN``
    (``\\uNNNN`` past ``\\xff``). Escape sequences, C1 controls, line breaks and Unicode's
    format characters (a right-to-left override) could otherwise move the cursor, hide or
    reorder what is shown, or write a hyperlink. ``keep``: characters left as they are (a
    text of many lines keeps ``"\\n\\t"``)."""
    shown = str(text)
    if shown.isprintable():
        return shown
    return "".join(char if char.isprintable() or char in keep else _escape(char) for char in shown)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"
