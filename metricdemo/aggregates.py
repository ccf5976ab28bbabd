"""Say what a row-based definition may aggregate, and resolve its relative times.

The aggregates (count, count_distinct, sum, avg, min, max), which fields each
takes, the fields the admin suggests for one, and the filters whose values
are relative times (`now-1h`) that every evaluation resolves again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db.models import (
    AutoField,
    DateField,
    DateTimeField,
    DecimalField,
    DurationField,
    Field,
    FloatField,
    IntegerField,
    Model,
)
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from metricdemo import measures, policy, timewindows

COUNT = "count"
COUNT_DISTINCT = "count_distinct"
SUM = "sum"
AVG = "avg"
MIN = "min"
MAX = "max"
#: What a histogram definition computes; set by its kind, not chosen as an aggregate.
HISTOGRAM = "histogram"

#: The aggregates a row-based definition computes, with their labels.
AGGREGATES = {
    COUNT: gettext_lazy("count of rows"),
    COUNT_DISTINCT: gettext_lazy("count of distinct values"),
    SUM: gettext_lazy("sum"),
    AVG: gettext_lazy("average"),
    MIN: gettext_lazy("minimum"),
    MAX: gettext_lazy("maximum"),
}
#: The aggregates that publish a value of the field rather than a count.
VALUE_AGGREGATES = (SUM, AVG, MIN, MAX)
#: Aggregates that give no series over no values (count and sum give 0), in
#: a group: a histogram of no rows has a series (every bucket 0) only ungrouped.
SKIPS_EMPTY = (AVG, MIN, MAX)

# What a field's values export as: numbers as they are, durations in seconds,
# dates and datetimes as Unix time in seconds.
NUMBER, DURATION, DATETIME, DATE = "number", "duration", "datetime", "date"
#: The kinds of value each aggregate takes (count_distinct takes any field).
KINDS_FOR = {
    SUM: (NUMBER, DURATION),
    AVG: (NUMBER, DURATION),
    MIN: (NUMBER, DURATION, DATETIME, DATE),
    MAX: (NUMBER, DURATION, DATETIME, DATE),
    HISTOGRAM: (NUMBER, DURATION),
}
#: The kinds of value a duration's two ends may be.
TIME_KINDS = (DATETIME, DATE)
#: The lookups whose values may be relative times, after a date or datetime.
WINDOW_LOOKUPS = ("exact", "gt", "gte", "lt", "lte", "range", "in")


def never_null(model: type[Model], path: str) -> bool:
    """Return whether every row has a value at `path`.

    True when each field on the way is a concrete, non-nullable column or
    forward relation; a path this cannot tell about counts as nullable.
    """
    fields, rest = policy.lookup_fields(model, path)
    if not fields or rest:
        return False
    return all(
        getattr(field, "concrete", False)
        and not getattr(field, "null", True)
        and not getattr(field, "many_to_many", False)
        and not getattr(field, "one_to_many", False)
        for field in fields
    )


def value_kind(field: Any) -> str | None:
    """Return how `field`'s values export (number, duration, datetime, date)."""
    if getattr(field, "is_relation", False) or not isinstance(field, Field):
        return None
    if isinstance(field, DateTimeField):
        return DATETIME
    if isinstance(field, DateField):
        return DATE
    if isinstance(field, DurationField):
        return DURATION
    if isinstance(field, IntegerField | FloatField | DecimalField):
        return NUMBER
    return None


def decimal_places(field: Any, aggregate: str) -> int | None:
    """Return the places `aggregate` of `field` keeps, or None to keep it as is.

    A sum, minimum or maximum of a DecimalField is a decimal of the field's
    places, as the ORM returns it; the float the database gives (SQLite adds
    floats: 12597.169999999998) is rounded to them. An average is no value of
    the field and keeps every digit.
    """
    if aggregate in (SUM, MIN, MAX) and isinstance(field, DecimalField):
        return field.decimal_places
    return None


def aggregated_field(model: type[Model], path: str) -> Any:
    """Return the field that `path` names from `model`, or None if it names none."""
    fields, rest = policy.lookup_fields(model, path)
    if not fields or rest:
        return None
    return fields[-1]


def fitting_fields(
    model: type[Model], aggregate: str, kinds: tuple[str, ...] | None = None
) -> list[str]:
    """Return the names of `model`'s own fields that `aggregate` may read.

    Sensitive fields are left out, and for the aggregates that publish a
    value identity fields and primary keys (a sum of ids means nothing; typed
    in, they are still allowed); count_distinct also takes relations
    (distinct customers). `kinds` narrows the fields to those whose values
    are of these kinds.
    """
    names = []
    for field in model._meta.get_fields():
        if field.auto_created and not field.concrete:
            continue  # reverse relations: reachable by a path, not suggested
        if policy.lookup_refusal(model, field.name):
            continue
        if aggregate in KINDS_FOR:
            if value_kind(field) not in (kinds or KINDS_FOR[aggregate]):
                continue
            if policy.identity_reason(field) or _key(field):
                continue
        names.append(field.name)
    return sorted(names)


def _key(field: Any) -> bool:
    # AutoField's isinstance() also holds for BigAutoField and SmallAutoField.
    return bool(getattr(field, "primary_key", False)) or isinstance(field, AutoField)


def field_problem(model: type[Model], aggregate: str, path: str) -> str | None:
    """Return why `aggregate` cannot read the field `path` of `model`, or None.

    `path` may also be a duration (`paid_at - created_at`, `now - created_at`),
    which sum, avg, min, max and a histogram read in seconds.
    """
    label = model._meta.label
    if aggregate == COUNT:
        if path:
            return _(
                "count counts rows and takes no field (it is %(field)r); clear the "
                "field, or choose count_distinct to count its distinct values, or "
                'filter with {"%(field)s__isnull": false} to count rows that have one.'
            ) % {"field": path}
        return None
    if aggregate not in AGGREGATES and aggregate != HISTOGRAM:
        return _("%(value)r is not an aggregate; choose one of %(choices)s.") % {
            "value": aggregate,
            "choices": ", ".join(AGGREGATES),
        }
    if not path:
        return _(
            "%(aggregate)s needs a field to aggregate, for example %(example)s; "
            "fields of %(model)s that fit: %(fields)s."
        ) % {
            "aggregate": aggregate,
            "example": "total" if aggregate in (SUM, AVG, HISTOGRAM) else "created_at",
            "model": label,
            "fields": ", ".join(fitting_fields(model, aggregate)) or _("none"),
        }
    measure = measures.parse(path)
    if measure.is_duration:
        return _duration_problem(model, aggregate, path, measure)
    return _path_problem(model, aggregate, path)


def _path_problem(model: type[Model], aggregate: str, path: str) -> str | None:
    label = model._meta.label
    field = aggregated_field(model, path)
    if field is None:
        return _(
            "%(path)r is not a field of %(model)s; give a field name or a path "
            "across relations such as customer__country. Fields of %(model)s "
            "that fit %(aggregate)s: %(fields)s."
        ) % {
            "path": path,
            "model": label,
            "aggregate": aggregate,
            "fields": ", ".join(fitting_fields(model, aggregate)) or _("none"),
        }
    refusal = policy.lookup_refusal(model, path)
    if refusal:
        return refusal
    if aggregate == COUNT_DISTINCT:
        return None
    owner = f"{field.model._meta.label}.{field.name}"
    if value_kind(field) not in KINDS_FOR[aggregate]:
        wanted = (
            _("a numeric field (integer, float, decimal or duration)")
            if aggregate in (SUM, AVG)
            else _(
                "a numeric or duration field, or the time between two dates such "
                "as paid_at - created_at"
            )
            if aggregate == HISTOGRAM
            else _("a numeric, duration, date or datetime field")
        )
        return _(
            "%(aggregate)s needs %(wanted)s; %(field)s is a %(type)s. Fields of "
            "%(model)s that fit: %(fields)s."
        ) % {
            "aggregate": aggregate,
            "wanted": wanted,
            "field": owner,
            "type": type(field).__name__,
            "model": label,
            "fields": ", ".join(fitting_fields(model, aggregate)) or _("none"),
        }
    reason = policy.identity_reason(field)
    if reason:
        return _(
            "%(aggregate)s of %(field)s would publish a value that identifies a "
            "person (%(reason)s); aggregate another field, or count its distinct "
            "values with count_distinct."
        ) % {"aggregate": aggregate, "field": owner, "reason": reason}
    return None


def _duration_problem(
    model: type[Model], aggregate: str, path: str, measure: measures.Measure
) -> str | None:
    problem = measures.form_problem(path)
    if problem:
        return problem
    if aggregate not in KINDS_FOR or DURATION not in KINDS_FOR[aggregate]:
        return _(
            "%(aggregate)s cannot take a duration (%(path)s); choose sum, avg, min, "
            "max or the histogram kind."
        ) % {"aggregate": aggregate, "path": path}
    label = model._meta.label
    for end in measure.paths:
        field = aggregated_field(model, end)
        if field is None or value_kind(field) not in TIME_KINDS:
            what = (
                _("not a field of %(model)s") % {"model": label}
                if field is None
                else _("a %(type)s") % {"type": type(field).__name__}
            )
            return _(
                "A duration is the time between two date or datetime fields, but "
                "%(end)r in %(path)r is %(what)s. Date and datetime fields of "
                "%(model)s: %(fields)s."
            ) % {
                "end": end,
                "path": path,
                "what": what,
                "model": label,
                "fields": ", ".join(fitting_fields(model, MIN, TIME_KINDS))
                or _("none"),
            }
        refusal = policy.lookup_refusal(model, end)
        if refusal:
            return refusal
        reason = policy.identity_reason(field)
        if reason:
            return _(
                "%(aggregate)s of %(path)s would publish a value that identifies "
                "a person (%(field)s: %(reason)s); measure other fields."
            ) % {
                "aggregate": aggregate,
                "path": path,
                "field": f"{field.model._meta.label}.{field.name}",
                "reason": reason,
            }
    return None


def measure_kind(model: type[Model], path: str) -> str | None:
    """Return how the values `path` measures export: DURATION for a duration."""
    if measures.parse(path).is_duration:
        return DURATION
    return value_kind(aggregated_field(model, path))


def window_kind(model: type[Model], lookup: str) -> str | None:
    """Return DATE or DATETIME if `lookup` compares a date or datetime field.

    Only such lookups take relative times: `created_at__gte`, `created_at__date`,
    `paid_on__range`; not `created_at__year`, whose values are numbers.
    """
    fields, rest = policy.lookup_fields(model, lookup)
    if not fields:
        return None
    field = fields[-1]
    if isinstance(field, DateTimeField) and rest[:1] == ["date"]:
        kind, rest = DATE, rest[1:]
    elif isinstance(field, DateTimeField):
        kind = DATETIME
    elif isinstance(field, DateField):
        kind = DATE
    else:
        return None
    if len(rest) > 1 or (rest and rest[0] not in WINDOW_LOOKUPS):
        return None
    return kind


def relative_filters(model: type[Model], filters: Any) -> dict[str, str]:
    """Return {lookup: DATE or DATETIME} for the filters with relative times."""
    found = {}
    for lookup, value in filters.items() if isinstance(filters, Mapping) else ():
        values = value if isinstance(value, list | tuple) else [value]
        if any(timewindows.looks_relative(item) for item in values):
            kind = window_kind(model, str(lookup))
            if kind:
                found[str(lookup)] = kind
    return found


def resolve_value(value: Any, kind: str, now: dt.datetime) -> Any:
    """Return `value` with each relative time resolved at `now` for a DATE/DATETIME.

    Raises:
        ValueError: a relative time is malformed; the message names it.
    """
    if isinstance(value, list | tuple):
        return type(value)(resolve_value(item, kind, now) for item in value)
    if not timewindows.looks_relative(value):
        return value
    if kind == DATE:
        return timewindows.resolve_date(value, now)
    return timewindows.resolve(value, now)


def resolved_filters(
    model: type[Model], filters: Mapping[str, Any], now: dt.datetime | None = None
) -> dict[str, Any]:
    """Return `filters` with their relative times resolved at `now` (the clock).

    Raises:
        ValueError: a relative time is malformed; the message names it.
    """
    windows = relative_filters(model, filters)
    if not windows:
        return dict(filters)
    moment = timewindows.clock() if now is None else now
    return {
        lookup: resolve_value(value, windows[lookup], moment)
        if lookup in windows
        else value
        for lookup, value in filters.items()
    }


def multi_valued(model: type[Model], path: str) -> bool:
    """Return whether `path` passes a relation with many rows per row (reverse, m2m).

    Such a path joins several rows to each counted row, so it cannot share a
    pass over the table with definitions that do not follow it.
    """
    fields, _rest = policy.lookup_fields(model, path)
    return any(
        getattr(field, "many_to_many", False) or getattr(field, "one_to_many", False)
        for field in fields
    )
