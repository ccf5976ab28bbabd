"""Validate names, units and attributes, field by field."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from metricdemo.conf import DEFAULTS, app_settings

# The exposition's own label translation, so that a key is judged exactly as
# /metrics will write it.
from metricdemo.exposition.names import sanitize_label
from metricdemo.fields import UndecodableText

INSTRUMENT_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_./-]{0,254}")
UNIT_MAX_LENGTH = 63
LABEL_NAME_RE = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Labels the exporter adds itself; an attribute with these names would clash.
RESERVED_LABEL_PREFIXES = ("otel_scope_",)
SETTING_PATH_RE = re.compile(r"[A-Z][A-Z0-9_]*(\.[A-Za-z0-9_\-]+)*")
MODEL_LABEL_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")

SURROGATE_RE = re.compile("[\ud800-\udfff]")


def validate_metric_name(value: str) -> None:
    """Refuse names that are not valid OpenTelemetry instrument names."""
    if not INSTRUMENT_NAME_RE.fullmatch(value or ""):
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
    return sanitize_label(key)


def validate_label_key(
    key: Any, *, what: str = "Attribute", relation_path: bool = False
) -> None:
    """Refuse attribute keys that do not make a usable Prometheus label.

    The exporter rewrites a key into a label name silently (`__name__` becomes
    `_name_`), so a key must already be the label it will be. A group-by
    `relation_path` may join fields with '__', which becomes one '_'.
    """
    if not isinstance(key, str) or not key:
        raise ValidationError(
            _("%(what)s keys must be non-empty strings; got %(key)r."),
            code="invalid_attributes",
            params={"what": what, "key": key},
        )
    validate_encodable(key)
    label = label_name(key)
    expected = key.replace("__", "_") if relation_path else key
    if label != expected:
        raise ValidationError(
            _(
                "%(what)s key %(key)r would be exported as the label %(label)r, "
                "because labels may only hold letters, digits and single '_' "
                "and may not start with a digit; use the label itself, for "
                "example %(label)r, or another name such as region."
            ),
            code="renamed_label",
            params={"what": what, "key": key, "label": label},
        )
    if not LABEL_NAME_RE.fullmatch(label) or label.startswith(RESERVED_LABEL_PREFIXES):
        raise ValidationError(
            _(
                "%(what)s key %(key)r becomes the label %(label)r, which is not "
                "allowed: use letters, digits and '_', not starting with "
                "'otel_scope_', which the exporter adds itself (for example region)."
            ),
            code="invalid_attributes",
            params={"what": what, "key": key, "label": label},
        )


def unencodable_text(value: Any) -> str | None:
    """Return the first string in `value` (text or JSON data) that is not storable.

    Storable text encodes as UTF-8 (no lone surrogates, which JSON escapes such
    as "\\ud800" produce) and holds no NUL, which PostgreSQL refuses.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if isinstance(item, UndecodableText) or not _is_storable(item):
                return item
        elif isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _is_storable(text: str) -> bool:
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_encodable(value: Any) -> None:
    """Refuse text, or JSON data holding text, that cannot be stored and served."""
    text = unencodable_text(value)
    if text is None:
        return
    if isinstance(text, UndecodableText):
        raise ValidationError(
            _(
                "%(text)r was stored as bytes that are not UTF-8 (U+FFFD stands "
                "where they were wrong); type the text again."
            ),
            code="undecodable",
            params={"text": str(text)},
        )
    bad = next(c for c in text if c == "\x00" or "\ud800" <= c <= "\udfff")
    raise ValidationError(
        _(
            "%(text)r cannot be stored and served as UTF-8 text: it holds the "
            "code point %(code)s (a lone surrogate, as a JSON escape such as "
            "\\ud800 gives, or NUL). Remove it, or write the character itself, "
            "for example é."
        ),
        code="unencodable",
        params={"text": text, "code": f"U+{ord(bad):04X}"},
    )


def escape_unencodable(text: str) -> str:
    """Return `text` with each lone surrogate written as a \\uXXXX escape."""
    if text.isascii():
        return text
    return SURROGATE_RE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class EscapingJSONEncoder(json.JSONEncoder):
    """Write lone surrogates as \\uXXXX escapes, so a stored row can be shown.

    A page is encoded as UTF-8, which a lone surrogate (stored by a bulk write
    or an older release) cannot be; escaped, the operator sees it, and the
    model's validation says what is wrong when the form is saved. The JSON
    reads back to the same value.
    """

    def encode(self, o: Any) -> str:
        return escape_unencodable(super().encode(o))


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
        if isinstance(item, str):
            validate_encodable(item)
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
    """Refuse timeouts that are not between 0 and 300 seconds, or over the budget."""
    validate_timeout_range(value)
    validate_within_scrape_budget(value)


def validate_timeout_range(value: float | None) -> None:
    """Refuse timeouts that are not between 0 and 300 seconds.

    The field's own rule; the scrape budget applies only to definitions
    evaluated in the scrape (see validate_definition_timeout()).
    """
    if value is not None and not (0 < value <= TIMEOUT_MAX):
        raise ValidationError(
            _(
                "A timeout of %(value)r seconds is not allowed: give more than 0 and "
                "at most 300 seconds, for example 2.5."
            ),
            code="invalid_timeout",
            params={"value": value},
        )


def scrape_budget() -> float | None:
    """Return METRICDEMO['SCRAPE_TIMEOUT'] in seconds, or None if it is unusable.

    An unusable value is a system-check error (metricdemo.E020); until it is
    fixed, nothing is refused or clamped for it.
    """
    value = app_settings.SCRAPE_TIMEOUT
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if 0 < value <= TIMEOUT_MAX else None


def validate_within_scrape_budget(value: float | None) -> None:
    """Refuse a definition's timeout longer than the whole scrape may take."""
    budget = scrape_budget()
    if value is not None and budget is not None and value > budget:
        raise ValidationError(
            _(
                "A timeout of %(value)r seconds is more than the scrape budget, "
                "METRICDEMO['SCRAPE_TIMEOUT'] (%(budget)g seconds): a scrape "
                "answers within it whatever its definitions do. Give at most "
                "%(budget)g seconds, or raise SCRAPE_TIMEOUT (under your "
                "Prometheus scrape_timeout)."
            ),
            code="timeout_over_scrape_budget",
            params={"value": value, "budget": budget},
        )


def validate_definition_timeout(
    value: float | None, refresh_interval: int | None
) -> None:
    """Refuse a timeout over the scrape budget, unless the definition is scheduled.

    A scheduled definition is refreshed in the background and no scrape waits
    for it, so it may take up to TIMEOUT_MAX seconds.
    """
    if not refresh_interval:
        validate_within_scrape_budget(value)


#: Bounds of refresh_interval, in seconds: from one second to one day.
REFRESH_INTERVAL_MIN = 1
REFRESH_INTERVAL_MAX = 86400
#: A scheduled definition's value older than this many intervals is not exported.
STALE_INTERVALS = 3


def validate_refresh_interval(value: int | None) -> None:
    """Refuse a refresh interval outside 1 s to one day (0 or empty: every scrape)."""
    if value and not (REFRESH_INTERVAL_MIN <= value <= REFRESH_INTERVAL_MAX):
        raise ValidationError(
            _(
                "A refresh interval of %(value)r seconds is not allowed: give 0 "
                "(evaluate on every scrape) or from %(min)d to %(max)d seconds, "
                "for example 60."
            ),
            code="invalid_refresh_interval",
            params={
                "value": value,
                "min": REFRESH_INTERVAL_MIN,
                "max": REFRESH_INTERVAL_MAX,
            },
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
    if not SETTING_PATH_RE.fullmatch(value):
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
    if not MODEL_LABEL_RE.fullmatch(value):
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
    try:
        number = float(value)
    except OverflowError:
        # An int beyond the float range: the same refusal as infinity.
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(
            gettext("expected a finite number, got %(value)r") % {"value": value}
        )
    return number


ALERT_NAME_RE = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
SEVERITY_RE = re.compile(r"[A-Za-z0-9_.-]+")


def validate_alert_name(value: str) -> None:
    """Refuse an alert name that Prometheus refuses (a metric name's characters)."""
    if not ALERT_NAME_RE.fullmatch(value or ""):
        raise ValidationError(
            _(
                "%(value)r is not an alert name Prometheus accepts: use letters, "
                "digits, '_' and ':', not starting with a digit, for example "
                "OrdersWaitingForPayment."
            ),
            code="invalid_alert_name",
            params={"value": value},
        )


def validate_severity(value: str) -> None:
    """Refuse a severity that is not a plain word (it becomes a label value)."""
    if not SEVERITY_RE.fullmatch(value or ""):
        raise ValidationError(
            _(
                "%(value)r is not a severity; use one word such as critical, "
                "warning or info."
            ),
            code="invalid_severity",
            params={"value": value},
        )
