"""Check the METRICDEMO setting at startup (manage.py check)."""

from typing import Any

from django.conf import settings
from django.core import checks

from metricdemo.conf import DEFAULTS, SETTING_NAME


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a METRICDEMO setting that is not a dict or has unknown keys."""
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
    if not isinstance(value.get("SET_GLOBAL_METER_PROVIDER", True), bool):
        errors.append(
            checks.Error(
                f"{SETTING_NAME}['SET_GLOBAL_METER_PROVIDER'] must be True or False.",
                hint="Leave it out to install the app's MeterProvider globally.",
                id="metricdemo.E003",
            )
        )
    meter_name = value.get("METER_NAME", DEFAULTS["METER_NAME"])
    if not isinstance(meter_name, str) or not meter_name:
        errors.append(
            checks.Error(
                f"{SETTING_NAME}['METER_NAME'] must be a non-empty string, "
                f"not {meter_name!r}.",
                hint="Leave it out to use 'metricdemo'.",
                id="metricdemo.E004",
            )
        )
    return errors
