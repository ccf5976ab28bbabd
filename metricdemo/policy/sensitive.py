"""Say which names look secret, and which settings a setting source may export."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from django.utils.translation import gettext as _

from metricdemo.conf import ALL, SENSITIVE_NAMES, app_settings


def sensitive_match(name: str, patterns: Iterable[str] = SENSITIVE_NAMES) -> str | None:
    """Return the first pattern that `name` matches, case-insensitively, or None."""
    lowered = name.lower()
    for pattern in patterns:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            return pattern
    return None


def setting_refusal(path: str) -> str | None:
    """Return why setting sources may not read `path`, or None if they may."""
    for part in path.split("."):
        pattern = sensitive_match(part)
        if pattern:
            return _(
                "Setting %(path)s looks secret (%(part)r matches %(pattern)r); "
                "settings whose names mention passwords, tokens, secrets or keys "
                "are never exported. Choose another setting, such as "
                "SESSION_COOKIE_AGE."
            ) % {"path": path, "part": part, "pattern": pattern}
    allowed = app_settings.ALLOWED_SETTINGS
    if allowed != ALL and not any(
        path == entry or path.startswith(entry + ".") for entry in allowed
    ):
        return _(
            "Setting %(path)s is not allowed: METRICDEMO['ALLOWED_SETTINGS'] "
            "allows only %(allowed)s."
        ) % {"path": path, "allowed": ", ".join(allowed) or "none"}
    return None
