"""Where the services airlock talks to are: each URL and why, a variable winning over a setting.

Both follow one precedence, as every value variable does: ``AIRLOCK_…_URL`` from the settings
files' ``env`` blocks or the process environment (``policy.variables.first``), then our own
settings key, then the built-in default.
"""

from __future__ import annotations

from airlock.policy import variables as v
from airlock.policy.model import Context, Origin, Setting, Source

ANTHROPIC_API = "api.anthropic.com"
DOMAIN_SAFETY_VARIABLE = "AIRLOCK_DOMAIN_SAFETY_URL"
COLLECTOR_VARIABLE = "AIRLOCK_COLLECTOR_URL"


def resolve_domain_safety_service(context: Context) -> tuple[str, str]:
    """The domain-safety service's base URL and why: the variable, then the setting, then the default."""
    found = v.first(context, DOMAIN_SAFETY_VARIABLE)
    setting = context.domain_safety_url
    if found:
        said = f"service {DOMAIN_SAFETY_VARIABLE}={v.shown(found[0])!r} from {found[1].describe()}"
        if setting.value:
            said += f" (it wins over airlock.domainSafetyUrl in {setting.origin.describe()})"
        return found[0].rstrip("/"), said
    if setting.value:
        where = setting.origin.describe()
        return setting.value.rstrip("/"), (
            f"service airlock.domainSafetyUrl={v.shown(setting.value)!r} in {where}"
        )
    service = f"https://{ANTHROPIC_API}"
    return (
        service,
        f"service {service}: the default (set {DOMAIN_SAFETY_VARIABLE} or airlock.domainSafetyUrl to change it)",
    )


def resolve_collector_url(context: Context) -> Setting[str | None]:
    """The feedback collector's URL as configured and where it came from; ``None`` when unset.

    ``AIRLOCK_COLLECTOR_URL`` (the process environment or a settings ``env`` block) wins over
    ``airlock.collectorUrl``.
    """
    found = v.first(context, COLLECTOR_VARIABLE)
    if found is not None:
        return Setting(found[0], found[1])
    if context.collector_url.value is not None:
        return context.collector_url
    return Setting(None, Origin(Source.DEFAULT))
