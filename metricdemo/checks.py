"""Check the METRICDEMO setting, stored definitions and deployment (manage.py check)."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import DatabaseError
from django.urls import NoReverseMatch, reverse

from metricdemo.conf import ALL, DEFAULTS, SETTING_NAME, app_settings
from metricdemo.exposition.names import STRATEGIES
from metricdemo.models import MetricDefinition
from metricdemo.validators import MODEL_LABEL_RE, SETTING_PATH_RE, TIMEOUT_MAX


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a METRICDEMO setting that is not a dict, or a key with a bad value."""
    value = getattr(settings, SETTING_NAME, {})
    if not isinstance(value, dict):
        return [
            checks.Error(
                f"{SETTING_NAME} must be a dict, not {type(value).__name__}.",
                hint=f"Write {SETTING_NAME} = {{...}} with keys from the settings "
                "reference (docs/settings.md).",
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
    return (
        errors
        + _check_safe_source_settings(value)
        + _check_personal_fields(value)
        + _check_scrape_budget(value)
    )


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
        lambda item: isinstance(item, str) and SETTING_PATH_RE.fullmatch(item),
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


def _check_personal_fields(value: dict) -> list[checks.CheckMessage]:
    personal = value.get("PERSONAL_FIELDS", ())
    if _is_list_of(personal, lambda item: isinstance(item, str) and item):
        return []
    return [
        _bad_value(
            "PERSONAL_FIELDS",
            personal,
            "a list of field names or shell-style patterns such as '*email*'",
            "metricdemo.E019",
        )
    ]


def _check_scrape_budget(value: dict) -> list[checks.CheckMessage]:
    budget = value.get("SCRAPE_TIMEOUT", DEFAULTS["SCRAPE_TIMEOUT"])
    timeout = value.get("TIMEOUT", DEFAULTS["TIMEOUT"])
    if _timeout_problem(budget) or _timeout_problem(timeout) or timeout <= budget:
        return []
    return [
        checks.Warning(
            f"{SETTING_NAME}['TIMEOUT'] is {timeout!r} seconds, more than "
            f"{SETTING_NAME}['SCRAPE_TIMEOUT'] ({budget!r}): definitions without "
            "a timeout of their own are cut to the scrape budget.",
            hint="Lower TIMEOUT to at most SCRAPE_TIMEOUT, or raise SCRAPE_TIMEOUT "
            "(keeping it under Prometheus's scrape_timeout).",
            id="metricdemo.W013",
        )
    ]


def check_definitions(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn about stored definitions that no longer validate (--database only)."""
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


def check_last_editors(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn about enabled definitions whose last editor lost a permission they need.

    A definition saved in the admin keeps publishing after its editor's
    permissions are taken away; this finds those (--database only).
    """
    warnings: list[checks.CheckMessage] = []
    for alias in databases or ():
        try:
            definitions = list(
                MetricDefinition.objects.using(alias)
                .filter(enabled=True, last_editor__isnull=False)
                .select_related("last_editor")
            )
        except DatabaseError:
            continue
        for definition in definitions:
            editor = definition.last_editor
            refusals = definition.permission_refusals(editor)
            if not refusals:
                continue
            reasons = "; ".join(f"{f}: {r}" for f, r in sorted(refusals.items()))
            warnings.append(
                checks.Warning(
                    f"The enabled definition {definition.name!r} was last saved by "
                    f"{editor.get_username()!r}, who no longer holds a permission "
                    f"it needs: {reasons}",
                    hint="Have someone who holds the permissions save it again in "
                    "the admin, give the permissions back, or disable it.",
                    obj=definition,
                    id="metricdemo.W011",
                )
            )
    return warnings


def check_metrics_exposure(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Warn (--deploy) when /metrics is served to anyone who can reach it."""
    if settings.DEBUG or app_settings.AUTH_TOKEN or app_settings.ALLOWED_IPS:
        return []
    try:
        url = reverse("metricdemo:metrics")
    except NoReverseMatch:
        return []  # the project does not serve the view
    return [
        checks.Warning(
            f"{url} is served with neither {SETTING_NAME}['AUTH_TOKEN'] nor "
            f"{SETTING_NAME}['ALLOWED_IPS'], so anyone who can reach it reads "
            "every business metric and its labels.",
            hint="Set AUTH_TOKEN or ALLOWED_IPS, or keep the URL off public "
            "networks; see 'Protecting /metrics' in docs/security.md.",
            id="metricdemo.W012",
        )
    ]


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
        MODEL_LABEL_RE.fullmatch(item) or item.isidentifier()
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


def _slow_evaluation_problem(value: Any) -> str | None:
    if value is None or _timeout_problem(value) is None:
        return None
    return (
        "it must be None (a quarter of SCRAPE_TIMEOUT) or a number of seconds "
        f"above 0 and at most {TIMEOUT_MAX:g}, for example 1."
    )


def _database_problem(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value in settings.DATABASES):
        return None
    return (
        "it must be None or name one of DATABASES: "
        f"{', '.join(sorted(settings.DATABASES))}."
    )


def _threads_problem(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 64:
        return None
    return "it must be a whole number from 1 to 64."


def _cardinality_problem(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return None
    return "it must be a whole number of series, at least 1."


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
        return "it must be a list of addresses or networks, for example ['10.0.0.0/8']."
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except (TypeError, ValueError):
            return f"{entry!r} is not an IP address or network such as 10.0.0.0/8."
    return None


def _otlp_endpoint_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        url = urlsplit(value)
        if url.scheme in ("http", "https") and url.netloc:
            return None
    return (
        "it must be None or the http(s) base URL of an OTLP receiver, "
        "for example 'http://collector:4318'."
    )


def _otlp_interval_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if 0 < value < math.inf:
            return None
    return "it must be None or a number of seconds above 0, for example 60."


def _name_translation_problem(value: Any) -> str | None:
    if value in STRATEGIES:
        return None
    return (
        "it must be one of OpenTelemetry's translation strategies: "
        + ", ".join(repr(strategy) for strategy in STRATEGIES)
        + "."
    )


def _prometheus_url_problem(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return None
    return (
        "it must be None or Prometheus's base URL, for example http://prometheus:9090."
    )


#: The longest HISTORY_INTERVAL (a day) and the most HISTORY_POINTS.
HISTORY_INTERVAL_MAX = 86400
HISTORY_POINTS_MAX = 100_000


def _history_interval_problem(value: Any) -> str | None:
    if value is None or (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 0 <= value <= HISTORY_INTERVAL_MAX
    ):
        return None
    return (
        "it must be None or 0 (no history) or a whole number of seconds up to "
        f"{HISTORY_INTERVAL_MAX}, for example 60."
    )


def _history_points_problem(value: Any) -> str | None:
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and 1 <= value <= HISTORY_POINTS_MAX
    ):
        return None
    return (
        f"it must be a whole number of samples from 1 to {HISTORY_POINTS_MAX:,}, "
        "for example 1440 (24 hours at 60 s)."
    )


_KEY_CHECKS: dict[str, tuple[str, Callable[[Any], str | None]]] = {
    "SET_GLOBAL_METER_PROVIDER": ("metricdemo.E003", _bool_problem),
    "METER_NAME": ("metricdemo.E004", _meter_name_problem),
    "TIMEOUT": ("metricdemo.E005", _timeout_problem),
    "EVALUATION_THREADS": ("metricdemo.E006", _threads_problem),
    "CACHE": ("metricdemo.E007", _cache_problem),
    "AUTH_TOKEN": ("metricdemo.E008", _token_problem),
    "ALLOWED_IPS": ("metricdemo.E009", _allowed_ips_problem),
    "OTLP_ENDPOINT": ("metricdemo.E016", _otlp_endpoint_problem),
    "OTLP_INTERVAL": ("metricdemo.E017", _otlp_interval_problem),
    "CARDINALITY_LIMIT": ("metricdemo.E018", _cardinality_problem),
    "SCRAPE_TIMEOUT": ("metricdemo.E020", _timeout_problem),
    "REFRESH": ("metricdemo.E030", _bool_problem),
    "REFRESH_TIMEOUT": ("metricdemo.E031", _timeout_problem),
    "DATABASE": ("metricdemo.E032", _database_problem),
    "SLOW_EVALUATION": ("metricdemo.E033", _slow_evaluation_problem),
    "NAME_TRANSLATION": ("metricdemo.E034", _name_translation_problem),
    "SERVE_RULES": ("metricdemo.E035", _bool_problem),
    "PROMETHEUS_URL": ("metricdemo.E036", _prometheus_url_problem),
    "HISTORY_INTERVAL": ("metricdemo.E037", _history_interval_problem),
    "HISTORY_POINTS": ("metricdemo.E038", _history_points_problem),
}
