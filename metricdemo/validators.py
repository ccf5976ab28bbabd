"""Validate names, units and attributes, and compute the exported Prometheus names."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# The exporter's own name translation, so that collisions are judged exactly as
# the exporter will write the names.
from opentelemetry.exporter.prometheus._mapping import (
    map_unit,
    sanitize_attribute,
    sanitize_full_name,
)

from metricdemo.conf import DEFAULTS, app_settings

INSTRUMENT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]{0,254}$")
UNIT_MAX_LENGTH = 63
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels the exporter adds itself; an attribute with these names would clash.
RESERVED_LABEL_PREFIXES = ("otel_scope_",)
SETTING_PATH_RE = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Za-z0-9_\-]+)*$")
MODEL_LABEL_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")

COUNTER = "counter"


def validate_metric_name(value: str) -> None:
    """Refuse names that are not valid OpenTelemetry instrument names."""
    if not INSTRUMENT_NAME_RE.match(value or ""):
        raise ValidationError(
            _(
                "%(value)r is not a valid instrument name: start with a letter, then "
                "use up to 254 letters, digits, '_', '.', '/' or '-' "
                "(for example shop.orders.pending)."
            ),
            code="invalid_name",
            params={"value": value},
        )


def validate_unit(value: str) -> None:
    """Refuse units that are not ASCII or are longer than 63 characters."""
    if not value.isascii() or not value.isprintable():
        raise ValidationError(
            _(
                "Unit %(value)r must be printable ASCII, for example s, By, 1 or "
                "{order}."
            ),
            code="invalid_unit",
            params={"value": value},
        )
    if len(value) > UNIT_MAX_LENGTH:
        raise ValidationError(
            _("Unit %(value)r is %(length)d characters long; at most 63 are allowed."),
            code="invalid_unit",
            params={"value": value, "length": len(value)},
        )
    if " " in value:
        raise ValidationError(
            _("Unit %(value)r must not contain spaces, for example {order} or By/s."),
            code="invalid_unit",
            params={"value": value},
        )


def label_name(key: str) -> str:
    """Return the Prometheus label name the exporter writes for attribute `key`."""
    return sanitize_attribute(key)


def validate_label_key(key: Any, *, what: str = "Attribute") -> None:
    """Refuse attribute keys that do not make a usable Prometheus label."""
    if not isinstance(key, str) or not key:
        raise ValidationError(
            _("%(what)s keys must be non-empty strings; got %(key)r."),
            code="invalid_attributes",
            params={"what": what, "key": key},
        )
    label = label_name(key)
    if not LABEL_NAME_RE.match(label) or label.startswith(RESERVED_LABEL_PREFIXES):
        raise ValidationError(
            _(
                "%(what)s key %(key)r becomes the label %(label)r, which is not "
                "allowed: use letters, digits and '_', not starting with "
                "'otel_scope_', which the exporter adds itself (for example region)."
            ),
            code="invalid_attributes",
            params={"what": what, "key": key, "label": label},
        )


def group_by_paths(group_by: str | None) -> list[str]:
    """Return the field paths of a group-by: separated by commas, spaces ignored."""
    return [path.strip() for path in (group_by or "").split(",") if path.strip()]


def group_by_keys(group_by: str | None) -> dict[str, str]:
    """Return {path: attribute key} for the paths of a group-by.

    One path keeps the whole path as its key, as group-bys always had
    (`customer__country` exports the label customer_country). With several,
    each key is the path's last part (`status, customer__country` gives status
    and country); paths whose last parts collide keep the whole path, with
    `__` written as `_` (`status, customer__status` gives status and
    customer_status).
    """
    paths = group_by_paths(group_by)
    if len(paths) == 1:
        return {paths[0]: paths[0]}
    last = [path.split("__")[-1] for path in paths]
    return {
        path: end if last.count(end) == 1 else path.replace("__", "_")
        for path, end in zip(paths, last, strict=True)
    }


def validate_attributes(value: Any) -> None:
    """Refuse attributes that are not a JSON object of string keys to scalars."""
    if not isinstance(value, Mapping):
        raise ValidationError(
            _(
                'Attributes must be a JSON object such as {"region": "eu"}; got '
                "%(value)r."
            ),
            code="invalid_attributes",
            params={"value": value},
        )
    labels: dict[str, str] = {}
    for key, item in value.items():
        validate_label_key(key)
        label = label_name(key)
        if label in labels:
            raise ValidationError(
                _(
                    "Attribute keys %(first)r and %(second)r both become the label "
                    "%(label)r; rename one of them."
                ),
                code="invalid_attributes",
                params={"first": labels[label], "second": key, "label": label},
            )
        labels[label] = key
        if not isinstance(item, str | bool | int | float) or (
            isinstance(item, float) and not math.isfinite(item)
        ):
            raise ValidationError(
                _(
                    "Attribute %(key)r has the value %(value)r; values must be "
                    "strings, finite numbers or booleans."
                ),
                code="invalid_attributes",
                params={"key": key, "value": item},
            )


def validate_finite(value: float | None) -> None:
    """Refuse NaN and infinities."""
    if value is not None and not math.isfinite(value):
        raise ValidationError(
            _("%(value)r is not a finite number; enter a number such as 10 or 2.5."),
            code="not_finite",
            params={"value": value},
        )


TIMEOUT_MAX = 300.0


def validate_timeout(value: float | None) -> None:
    """Refuse timeouts that are not between 0 and 300 seconds."""
    if value is not None and not (0 < value <= TIMEOUT_MAX):
        raise ValidationError(
            _(
                "A timeout of %(value)r seconds is not allowed: give more than 0 and "
                "at most 300 seconds, for example 2.5."
            ),
            code="invalid_timeout",
            params={"value": value},
        )


#: The series a definition may export when it sets no max_series.
DEFAULT_MAX_SERIES = 1000


def default_max_series() -> int:
    """Return max_series for a new definition: 1000, or a lower CARDINALITY_LIMIT."""
    return min(DEFAULT_MAX_SERIES, _cardinality_limit())


def max_series_bound(value: int | None) -> int:
    """Return the series a definition with this max_series may export at most.

    Empty means the default; a stored value above CARDINALITY_LIMIT (the limit
    was lowered after the save) is held to the limit, so that the exporter
    never folds a definition's series into an overflow series.
    """
    limit = _cardinality_limit()
    if not isinstance(value, int) or value < 1:
        return default_max_series()
    return min(value, limit)


def validate_max_series(value: int | None) -> None:
    """Refuse a max_series that is not from 1 to METRICDEMO['CARDINALITY_LIMIT']."""
    limit = _cardinality_limit()
    if value is not None and not (1 <= value <= limit):
        raise ValidationError(
            _(
                "A max series of %(value)r is not allowed: give a whole number from "
                "1 to %(limit)d (METRICDEMO['CARDINALITY_LIMIT']), for example 100."
            ),
            code="invalid_max_series",
            params={"value": value, "limit": limit},
        )


def _cardinality_limit() -> int:
    # A bad setting is reported by check metricdemo.E018; here it must not
    # break validation, so it falls back to the default.
    try:
        limit = int(app_settings.CARDINALITY_LIMIT)
    except (TypeError, ValueError):
        limit = int(DEFAULTS["CARDINALITY_LIMIT"])
    return max(limit, 1)


def validate_setting_path(value: str) -> None:
    """Refuse setting paths that are not NAME or NAME.key.key."""
    if not SETTING_PATH_RE.match(value):
        raise ValidationError(
            _(
                "%(value)r is not a setting path: give an upper-case setting name, "
                "optionally followed by dictionary keys, for example "
                "SESSION_COOKIE_AGE or CACHES.default.TIMEOUT."
            ),
            code="invalid_setting",
            params={"value": value},
        )


def validate_model_label(value: str) -> None:
    """Refuse model references that are not app_label.ModelName."""
    if not MODEL_LABEL_RE.match(value):
        raise ValidationError(
            _(
                "%(value)r is not a model reference: use app_label.ModelName, for "
                "example auth.User."
            ),
            code="invalid_model",
            params={"value": value},
        )


def as_number(value: Any) -> float:
    """Return `value` as a finite float, or raise TypeError/ValueError saying why."""
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, int | float | Decimal):
        raise TypeError(
            gettext("expected a number, got %(value)r (%(type)s)")
            % {"value": value, "type": type(value).__name__}
        )
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(
            gettext("expected a finite number, got %(value)r") % {"value": value}
        )
    return number


def exported_names(name: str, kind: str, unit: str) -> tuple[str, str]:
    """Return the Prometheus family name and sample name the exporter will write.

    The SDK lowercases instrument names (they are case-insensitive), the
    exporter turns invalid characters into '_', appends the unit suffix, and
    gives counters the '_total' suffix.
    """
    family = sanitize_full_name(name.lower())
    suffix = map_unit(unit or "")
    if suffix and not family.endswith("_" + suffix):
        family = f"{family}_{suffix}"
    if kind == COUNTER:
        if family.endswith("_total"):
            family = family[: -len("_total")]
        return family, f"{family}_total"
    return family, family
