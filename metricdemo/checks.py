"""Check the METRICDEMO setting and the stored definitions (manage.py check)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import DatabaseError

from metricdemo.conf import ALL, DEFAULTS, SETTING_NAME
from metricdemo.validators import MODEL_LABEL_RE, SETTING_PATH_RE


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
    return errors + _check_safe_source_settings(value)


def _check_safe_source_settings(value: dict) -> list[checks.CheckMessage]:
    errors = []
    row_count_models = value.get("ROW_COUNT_MODELS", ALL)
    if row_count_models != ALL and not _is_list_of(row_count_models, _is_model_entry):
        errors.append(
            _bad_value(
                "ROW_COUNT_MODELS",
                row_count_models,
                "'__all__' or a list of 'app_label' and 'app_label.ModelName' strings",
                "metricdemo.E010",
            )
        )
    elif row_count_models != ALL:
        for entry in row_count_models:
            if not _is_installed(entry):
                errors.append(
                    checks.Error(
                        f"{SETTING_NAME}['ROW_COUNT_MODELS'] lists {entry!r}, which "
                        "is not an installed app or model.",
                        hint="Use the label of an installed app or model, such as "
                        "'auth.User', or remove the entry.",
                        id="metricdemo.E011",
                    )
                )
    excluded = value.get("ROW_COUNT_EXCLUDED_MODELS", ())
    if not _is_list_of(excluded, _is_model_entry):
        errors.append(
            _bad_value(
                "ROW_COUNT_EXCLUDED_MODELS",
                excluded,
                "a list of 'app_label' and 'app_label.ModelName' strings",
                "metricdemo.E012",
            )
        )
    sensitive = value.get("SENSITIVE_FIELDS", ())
    if not _is_list_of(sensitive, lambda item: isinstance(item, str) and item):
        errors.append(
            _bad_value(
                "SENSITIVE_FIELDS",
                sensitive,
                "a list of field names or shell-style patterns such as '*_pin'",
                "metricdemo.E013",
            )
        )
    allowed_settings = value.get("ALLOWED_SETTINGS", ALL)
    if allowed_settings != ALL and not _is_list_of(
        allowed_settings,
        lambda item: isinstance(item, str) and SETTING_PATH_RE.match(item),
    ):
        errors.append(
            _bad_value(
                "ALLOWED_SETTINGS",
                allowed_settings,
                "'__all__' or a list of setting paths such as 'SESSION_COOKIE_AGE' "
                "or 'CACHES.default'",
                "metricdemo.E014",
            )
        )
    timeout = value.get("ADMIN_EVALUATION_TIMEOUT", 1)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        errors.append(
            _bad_value(
                "ADMIN_EVALUATION_TIMEOUT",
                timeout,
                "a positive number of seconds",
                "metricdemo.E015",
            )
        )
    return errors


def check_definitions(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn about stored definitions that no longer validate (--database only)."""
    from metricdemo.models import MetricDefinition

    warnings: list[checks.CheckMessage] = []
    for alias in databases or ():
        try:
            definitions = list(MetricDefinition.objects.using(alias))
        except DatabaseError:
            # Before `migrate` there is nothing stored to check.
            continue
        for definition in definitions:
            try:
                definition.full_clean()
            except ValidationError as exc:
                problems = "; ".join(
                    f"{field}: {' '.join(messages)}"
                    for field, messages in sorted(exc.message_dict.items())
                )
                warnings.append(
                    checks.Warning(
                        f"The stored definition {definition.name!r} no longer "
                        f"validates: {problems}",
                        hint="Edit it in the admin, or disable or delete it; "
                        "`manage.py metrics check` shows what it exports.",
                        obj=definition,
                        id="metricdemo.W010",
                    )
                )
    return warnings


def _bad_value(key: str, value: Any, allowed: str, check_id: str) -> checks.Error:
    return checks.Error(
        f"{SETTING_NAME}[{key!r}] must be {allowed}, not {value!r}.",
        hint=f"Fix the value, or leave {key} out to use the default.",
        id=check_id,
    )


def _is_list_of(value: Any, accept: Callable[[Any], Any]) -> bool:
    return isinstance(value, list | tuple) and all(accept(item) for item in value)


def _is_model_entry(item: Any) -> bool:
    return isinstance(item, str) and bool(
        MODEL_LABEL_RE.match(item) or item.isidentifier()
    )


def _is_installed(entry: str) -> bool:
    try:
        if "." in entry:
            apps.get_model(entry)
        else:
            apps.get_app_config(entry)
    except LookupError:
        return False
    return True
