"""The rows of the rule table, one module per group of vendors (``rules.py`` assembles them).

PURE: no I/O. Prefixed formats, found bare: ``developer`` (model providers, code hosts, package
registries, CI), ``cloud`` (clouds, hosting, infrastructure), ``business`` (chat, mail, payments,
monitoring, product tools). Formats without a prefix, found beside the vendor's word: ``named``.
"""
