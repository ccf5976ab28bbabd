"""Check the METRICDEMO setting at startup (manage.py check)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core import checks

from metricdemo.conf import DEFAULTS, SETTING_NAME
from metricdemo.validators import TIMEOUT_MAX


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a METRICDEMO setting that is not a dict, or a key with a bad value."""
    value = getattr(settings, SETTING_NAME, {})
    if not isinstance(value, dict):
        return [
            checks.Error(
                f"{SETTING_NAME} must be a dict, not {type(value).__name__}.",
                hint=f"Write {SETTING_NAME} = {{...}} with keys from the README.",
                id="metricdemo.E001",
            )
        ]
    errors: list[checks.CheckMessage] = []
    for key in sorted(set(value) - set(DEFAULTS)):
        errors.append(
            checks.Error(
                f"{SETTING_NAME} has an unknown key {key!r}.",
                hint="Known keys: " + ", ".join(sorted(DEFAULTS)) + ".",
                id="metricdemo.E002",
            )
        )
    for key, (check_id, problem_of) in _KEY_CHECKS.items():
        if key not in value:
            continue
        problem = problem_of(value[key])
        if problem:
            errors.append(
                checks.Error(
                    f"{SETTING_NAME}[{key!r}] is {value[key]!r}: {problem}",
                    hint=f"Leave {key} out to use the default, {DEFAULTS[key]!r}.",
                    id=check_id,
                )
            )
    return errors


def _bool_problem(value: Any) -> str | None:
    return None if isinstance(value, bool) else "it must be True or False."


def _meter_name_problem(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return None
    return "it must be a non-empty string."


def _timeout_problem(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0 < value <= TIMEOUT_MAX:
            return None
    return f"it must be a number of seconds above 0 and at most {TIMEOUT_MAX:g}."


def _threads_problem(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
        return None
    return "it must be a whole number from 1 to 64."


def _cache_problem(value: Any) -> str | None:
    if isinstance(value, str) and value in settings.CACHES:
        return None
    return f"it must name one of CACHES: {', '.join(sorted(settings.CACHES))}."


def _token_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip()):
        return None
    return "it must be None or a non-empty string."


def _allowed_ips_problem(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return "it must be a list of addresses or networks, e.g. ['10.0.0.0/8']."
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            return f"{entry!r} is not an IP address or network such as 10.0.0.0/8."
    return None


_KEY_CHECKS: dict[str, tuple[str, Callable[[Any], str | None]]] = {
    "SET_GLOBAL_METER_PROVIDER": ("metricdemo.E003", _bool_problem),
    "METER_NAME": ("metricdemo.E004", _meter_name_problem),
    "TIMEOUT": ("metricdemo.E005", _timeout_problem),
    "EVALUATION_THREADS": ("metricdemo.E006", _threads_problem),
    "CACHE": ("metricdemo.E007", _cache_problem),
    "AUTH_TOKEN": ("metricdemo.E008", _token_problem),
    "ALLOWED_IPS": ("metricdemo.E009", _allowed_ips_problem),
}
