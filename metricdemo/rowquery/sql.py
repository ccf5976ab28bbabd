"""Compile a pass into SQL: its conditions, measures, columns and relative-time slots.

Every part of a statement selects the same columns: the pass number, the
group values and the value columns of the widest pass, typed NULLs filling
the rest.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldError, ValidationError
from django.db import NotSupportedError, connections
from django.db.models import (
    Avg,
    CharField,
    Count,
    Expression,
    F,
    FloatField,
    Func,
    Max,
    Min,
    Model,
    Q,
    Sum,
    Value,
)
from django.utils.translation import gettext as _

from metricdemo import aggregates, lookups, timewindows
from metricdemo.aggregates import COUNT, COUNT_DISTINCT, DATE, DATETIME, NUMBER
from metricdemo.observations import EvaluationError
from metricdemo.rowquery.types import Member, Pass

AGGREGATE_FUNCTIONS = {aggregates.SUM: Sum, aggregates.AVG: Avg}
AGGREGATE_FUNCTIONS.update({aggregates.MIN: Min, aggregates.MAX: Max})

# How each backend turns an aggregate into a float: numbers as they are,
# durations and datetimes in seconds (since the epoch), dates in days.
_SECONDS_PG = "CAST(EXTRACT(EPOCH FROM %(expressions)s) AS double precision)"
AS_NUMBER = {
    ("postgresql", NUMBER): "CAST(%(expressions)s AS double precision)",
    ("postgresql", aggregates.DURATION): _SECONDS_PG,
    ("postgresql", DATETIME): _SECONDS_PG,
    ("postgresql", DATE): (
        "CAST((%(expressions)s - DATE '1970-01-01') AS double precision)"
    ),
    ("mysql", NUMBER): "(%(expressions)s + 0e0)",
    ("mysql", aggregates.DURATION): "(%(expressions)s / 1e6)",
    ("mysql", DATETIME): (
        "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', %(expressions)s) / 1e6)"
    ),
    ("mysql", DATE): "(DATEDIFF(%(expressions)s, '1970-01-01') + 0e0)",
    ("sqlite", NUMBER): "CAST(%(expressions)s AS REAL)",
    ("sqlite", aggregates.DURATION): "(%(expressions)s / 1000000.0)",
    ("sqlite", DATETIME): "((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
    ("sqlite", DATE): "(julianday(%(expressions)s) - 2440587.5)",
}


class AsNumber(Func):
    """Turn an aggregate into a float; times into seconds, dates into days."""

    output_field = FloatField()

    def __init__(self, expression: Any, kind: str) -> None:
        super().__init__(expression)
        self.kind = kind

    def as_sql(self, compiler, connection, **extra_context):
        template = AS_NUMBER.get((connection.vendor, self.kind))
        if template is None and self.kind == NUMBER:
            template = "CAST(%(expressions)s AS double precision)"
        if template is None:
            raise NotSupportedError(
                f"Cannot aggregate {self.kind} values on {connection.vendor}."
            )
        return super().as_sql(compiler, connection, template=template, **extra_context)


class Null(Expression):
    """A typed NULL that fills a column a pass does not use; never grouped by."""

    def as_sql(self, compiler, connection):
        if connection.vendor == "postgresql":
            # PostgreSQL types a bare NULL in a derived table as text, which a
            # UNION with numbers refuses.
            return f"CAST(NULL AS {self.output_field.cast_db_type(connection)})", []
        return "NULL", []

    def get_group_by_cols(self):
        return []


class Unbindable(Exception):
    """A relative time's parameter could not be found in the compiled SQL."""


def compiled(query: Any, alias: str) -> tuple[str, tuple[Any, ...]]:
    """Return the SQL and parameters of `query` on the database `alias`."""
    return query.query.get_compiler(using=alias).as_sql(with_col_aliases=True)


def outer_columns(connection: Any, groups: int, values: int) -> str:
    """Return the columns every part of a statement selects from its pass."""
    # Group values are cast to text outside the grouped query, once per group
    # rather than once per row, so that groups of any type share a column.
    quote = connection.ops.quote_name
    text = connection.ops.cast_char_field_without_max_length
    columns = [quote("_m_p")]
    columns += [f"CAST({quote(f'_m_g{i}')} AS {text})" for i in range(groups)]
    columns += [quote(f"_m_v{i}") for i in range(values)]
    return ", ".join(columns)


def usable_members(
    computed: Pass,
    slots: dict[Any, tuple[str, str]],
    now: dt.datetime | None,
) -> tuple[list[tuple[Member, Q | None]], dict[int, EvaluationError]]:
    """Return the members whose filters work, with their conditions, and errors.

    Records each relative time of the members' filters in `slots` as it goes
    (see _with_slots()); a member without filters has the condition None.
    """
    model = computed.model
    manager = model._default_manager
    usable: list[tuple[Member, Q | None]] = []
    errors: dict[int, EvaluationError] = {}
    for member in computed.members:
        filters = _with_slots(model, member.filters, slots, now)
        try:
            # Only parsed keys reach the query (a stored row may have skipped
            # validation); resolving them finds a bad lookup or value now, for
            # this definition alone rather than for the whole statement.
            condition = lookups.condition(model, filters)
            manager.filter(condition)
        except (FieldError, ValueError, TypeError, ValidationError) as exc:
            errors[member.index] = EvaluationError(
                _("The filters do not work on %(model)s: %(error)s")
                % {"model": model._meta.label, "error": exc}
            )
            continue
        usable.append((member, condition if filters else None))
    return usable, errors


def pass_query(
    computed: Pass, conditions: Sequence[Q | None], groups: int, values: int
):
    """Return the queryset of one pass, with `groups` and `values` columns.

    `conditions` holds each member's condition (None for no filters); the
    value columns are those of the pass's layout, NULL beyond them.
    """
    manager = computed.model._default_manager
    members = computed.members
    alone = len(members) == 1
    rows = manager.all()
    if alone:
        if conditions[0] is not None:
            rows = rows.filter(conditions[0])
        if computed.grouped and members[0].aggregate in aggregates.SKIPS_EMPTY:
            # A group whose rows have no value is no series of an average,
            # minimum or maximum; left out here, every group read is a series,
            # so the LIMIT of max series + 1 cannot hide series behind them.
            path = (getattr(members[0].definition, "field", "") or "").strip()
            rows = rows.filter(Q((f"{path}__isnull", False)))
    elif computed.grouped and all(c is not None for c in conditions):
        # Only groups that some member counts: the LIMIT bounds those.
        rows = rows.filter(functools.reduce(operator.or_, conditions))
    columns: dict[str, Any] = {"_m_p": Value(computed.number)}
    for i in range(groups):
        if i < len(computed.paths):
            columns[f"_m_g{i}"] = F(computed.paths[i])
        else:
            columns[f"_m_g{i}"] = Null(output_field=CharField())
    rows = rows.order_by().annotate(**columns).values(*columns)
    measures: dict[str, Any] = {}
    layout = computed.layout
    for member, condition, column, presence in zip(
        members, conditions, layout.columns, layout.presence, strict=True
    ):
        condition = None if alone else condition
        measures[f"_m_v{column}"] = _measure(member, condition)
        if presence is not None:
            measures[f"_m_v{presence}"] = AsNumber(_count_rows(condition), NUMBER)
    for i in range(values):
        measures.setdefault(f"_m_v{i}", Null(output_field=FloatField()))
    names = [*columns, *(f"_m_v{i}" for i in range(values))]
    return rows.annotate(**measures).values_list(*names)


def find_slots(
    alias: str, params: list[Any], slots: dict[Any, tuple[str, str]]
) -> list[tuple[int, str, str]]:
    """Return (position, relative time, kind) for each stand-in among `params`.

    Raises:
        Unbindable: a stand-in is not among the compiled parameters.
    """
    if not slots:
        return []
    ops = connections[alias].ops
    adapted = {}
    for stand_in, (text, kind) in slots.items():
        if kind == DATE:
            adapted_value = ops.adapt_datefield_value(stand_in)
        else:
            adapted_value = ops.adapt_datetimefield_value(stand_in)
        adapted[_hashable(adapted_value)] = (text, kind)
    found = []
    seen = set()
    for position, param in enumerate(params):
        hit = adapted.get(_hashable(param))
        if hit is not None:
            found.append((position, *hit))
            seen.add(_hashable(param))
    if len(seen) != len(adapted):
        raise Unbindable
    return found


def _measure(member: Member, condition: Q | None) -> AsNumber:
    path = (getattr(member.definition, "field", "") or "").strip()
    if member.aggregate == COUNT:
        return AsNumber(_count_rows(condition), NUMBER)
    if member.aggregate == COUNT_DISTINCT:
        return AsNumber(Count(path, distinct=True, filter=condition), NUMBER)
    function = AGGREGATE_FUNCTIONS[member.aggregate]
    return AsNumber(function(path, filter=condition), member.kind)


def _count_rows(condition: Q | None) -> Count:
    # COUNT(*) cannot take a filter in Django; a constant reads no column,
    # which a key would (COUNT(1) FILTER (WHERE ...), or CASE WHEN ... THEN 1).
    return Count(Value(1), filter=condition) if condition else Count("*")


def _with_slots(
    model: type[Model],
    filters: dict[str, Any],
    slots: dict[Any, tuple[str, str]],
    now: dt.datetime | None,
) -> dict[str, Any]:
    """Return `filters` with each relative time replaced by a placeholder value.

    The placeholder is a date or datetime no filter uses (in the year 1001),
    found again among the compiled parameters; with `now`, resolve instead.
    """
    windows = aggregates.relative_filters(model, filters)
    if not windows:
        return filters
    if now is not None:
        return aggregates.resolved_filters(model, filters, now)

    def placeholder(value: Any, kind: str) -> Any:
        if isinstance(value, list | tuple):
            return type(value)(placeholder(item, kind) for item in value)
        if not timewindows.looks_relative(value):
            return value
        number = len(slots)
        if kind == DATE:
            stand_in: Any = dt.date(1001, 1, 1) + dt.timedelta(days=number)
        else:
            stand_in = dt.datetime(1001, 1, 1) + dt.timedelta(seconds=number)
            if settings.USE_TZ:
                stand_in = stand_in.replace(tzinfo=dt.UTC)
        slots[stand_in] = (value, kind)
        return stand_in

    return {
        lookup: placeholder(value, windows[lookup]) if lookup in windows else value
        for lookup, value in filters.items()
    }


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)
