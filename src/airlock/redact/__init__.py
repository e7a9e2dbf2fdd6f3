"""Redaction: finds secrets in text and streams and replaces each with ``[REDACTED:<kind>]``.

>>> from airlock.redact import Redactor
>>> text, report = Redactor().redact_text("token ghp_...")
"""

from airlock.redact.engine import Redactor
from airlock.redact.patterns import Rule
from airlock.redact.report import Finding, RedactionReport
from airlock.redact.rules import RULES

__all__ = ["RULES", "Finding", "RedactionReport", "Redactor", "Rule"]
