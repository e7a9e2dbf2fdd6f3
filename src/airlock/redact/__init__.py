"""Redaction: finds secrets in text and streams and replaces each with ``[REDACTED:<kind>]``.

>>> from airlock.redact import Redactor
>>> text, report = Redactor().redact_text("token ghp_...")
"""

from airlock.redact.engine import Finding, RedactionReport, Redactor
from airlock.redact.rules import RULES, Rule

__all__ = ["RULES", "Finding", "RedactionReport", "Redactor", "Rule"]
