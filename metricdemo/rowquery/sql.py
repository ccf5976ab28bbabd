"""Compile a pass into SQL: its conditions, measures, columns and relative-time slots.

Every part of a statement selects the same columns: the pass number, the
group values and the value columns of the widest pass, typed NULLs filling
the rest.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import zoneinfo
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldError, ValidationError
from django.db import NotSupportedError, connections
from django.db.models import (
    Avg,
    CharField,
    Count,
    DateTimeField,
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
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext as _

from metricdemo import aggregates, lookups, measures, timewindows
from metricdemo.aggregates import (
    COUNT,
    COUNT_DISTINCT,
    DATE,
    DATETIME,
    DURATION,
    HISTOGRAM,
    NUMBER,
)
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


# How each backend turns a date or datetime into Unix time, exactly: seconds
# as a numeric on PostgreSQL, whole microseconds elsewhere. An instant as it
# is; a date as midnight, and a datetime stored without time zone support as
# wall-clock time, in TIME_ZONE (the parameter after the value's).
_EPOCH_PG = "EXTRACT(EPOCH FROM %s)"
EPOCH = {
    ("postgresql", "instant"): _EPOCH_PG % "CAST(%(expressions)s AS timestamptz)",
    ("postgresql", "local"): _EPOCH_PG
    % "(CAST(%(expressions)s AS timestamp) AT TIME ZONE %(tz)s)",
    ("mysql", "instant"): "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', %(expressions)s)",
    ("mysql", "local"): (
        "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', CONVERT_TZ(CAST("
        "%(expressions)s AS DATETIME(6)), %(tz)s, '+00:00'))"
    ),
    ("sqlite", "instant"): "metricdemo_epoch_us(%(expressions)s, 'UTC')",
    ("sqlite", "local"): "metricdemo_epoch_us(%(expressions)s, %(tz)s)",
}
# The difference of two such values in seconds, as a float.
ELAPSED = {
    "postgresql": "CAST((%s - %s) AS double precision)",
    "mysql": "((%s - %s) / 1e6)",
    "sqlite": "((%s - %s) / 1000000.0)",
}


class Epoch(Func):
    """Turn a date or datetime (or the evaluation's now) into exact Unix time."""

    def __init__(self, expression: Any, local: bool) -> None:
        super().__init__(expression, output_field=FloatField())
        self.local = local

    def as_sql(self, compiler, connection, **extra_context):
        template = EPOCH.get((connection.vendor, "local" if self.local else "instant"))
        if template is None:
            raise NotSupportedError(f"Cannot compute durations on {connection.vendor}.")
        sql, params = compiler.compile(self.source_expressions[0])
        if not self.local:
            return template % {"expressions": sql}, params
        zone = timezone.get_default_timezone_name()
        if connection.vendor == "mysql" and zone == "UTC":
            zone = "+00:00"  # no time zone tables needed
        return template % {"expressions": sql, "tz": "%s"}, (*params, zone)


class Elapsed(Func):
    """The seconds from one Epoch to another, as a float."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra_context):
        template = ELAPSED.get(connection.vendor)
        if template is None:
            raise NotSupportedError(f"Cannot compute durations on {connection.vendor}.")
        later, later_params = compiler.compile(self.source_expressions[0])
        earlier, earlier_params = compiler.compile(self.source_expressions[1])
        return template % (later, earlier), (*later_params, *earlier_params)


def duration(model: type[Model], measure: measures.Measure, now: Any) -> Expression:
    """Return the seconds from `measure.earlier` to `measure.later`, per row.

    `now` is the value that stands for the moment of the evaluation (a
    relative-time stand-in, or the moment itself).
    """

    def end(path: str) -> Expression:
        if path == measures.NOW:
            return Epoch(Value(now, output_field=DateTimeField()), not settings.USE_TZ)
        kind = aggregates.value_kind(aggregates.aggregated_field(model, path))
        return Epoch(F(path), kind == DATE or not settings.USE_TZ)

    return Elapsed(end(measure.later), end(measure.earlier))


_zones_checked: dict[tuple[str, str], bool] = {}


def duration_problem(
    model: type[Model], measure: measures.Measure, alias: str
) -> str | None:
    """Return why the database `alias` cannot compute `measure`, or None.

    MySQL and MariaDB resolve dates in TIME_ZONE only with their time zone
    tables loaded, as Django's own date lookups need them.
    """
    connection = connections[alias]
    zone = timezone.get_default_timezone_name()
    if connection.vendor != "mysql" or zone == "UTC":
        return None
    kinds = {
        aggregates.value_kind(aggregates.aggregated_field(model, path))
        for path in measure.paths
    }
    if DATE not in kinds and settings.USE_TZ:
        return None
    key = (alias, zone)
    if key not in _zones_checked:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT CONVERT_TZ('2000-01-01 00:00:00', %s, '+00:00')", [zone]
            )
            _zones_checked[key] = cursor.fetchone()[0] is not None
    if _zones_checked[key]:
        return None
    return _(
        "%(vendor)s cannot resolve dates in the time zone %(zone)s: its time zone "
        "tables are not loaded. Load them (mariadb-tzinfo-to-sql /usr/share/zoneinfo "
        "| mariadb -u root mysql), as Django's date lookups need them too."
    ) % {"vendor": connection.display_name, "zone": zone}


def epoch_microseconds(text: str | None, zone: str) -> int | None:
    """Return the Unix time in microseconds of a date or datetime text (SQLite's).

    A text without an offset is wall-clock time in `zone`.
    """
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(zone))
    delta = moment - _EPOCH_UTC
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@functools.lru_cache(maxsize=16)
def _zone(name: str) -> dt.tzinfo:
    return dt.UTC if name == "UTC" else zoneinfo.ZoneInfo(name)


def install_functions(connection: Any) -> None:
    """Give an SQLite connection the function durations use; others need none."""
    if connection.vendor != "sqlite":
        return
    raw = connection.connection
    if raw is None or getattr(connection, "_metricdemo_functions", None) is raw:
        return
    raw.create_function(
        "metricdemo_epoch_us", 2, epoch_microseconds, deterministic=True
    )
    connection._metricdemo_functions = raw


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
    computed: Pass,
    conditions: Sequence[Q | None],
    groups: int,
    values: int,
    now: Any = None,
):
    """Return the queryset of one pass, with `groups` and `values` columns.

    `conditions` holds each member's condition (None for no filters); the
    value columns are those of the pass's layout, NULL beyond them. `now` is
    what a duration's `now` reads (see now_value()).
    """
    manager = computed.model._default_manager
    members = computed.members
    alone = len(members) == 1
    rows = manager.all()
    if alone:
        condition = conditions[0]
        if computed.grouped and members[0].aggregate in (
            *aggregates.SKIPS_EMPTY,
            HISTOGRAM,
        ):
            # A group whose rows have no value is no series of an average,
            # minimum, maximum or histogram; left out here, every group read is
            # a series, so the LIMIT of max series + 1 cannot hide series
            # behind them. One filter() with the member's own: across a
            # relation to many rows, each filter() call joins it again, and
            # the value would be read from rows the filters did not choose.
            for path in members[0].measure.paths:
                present = Q((f"{path}__isnull", False))
                condition = present if condition is None else condition & present
        if condition is not None:
            rows = rows.filter(condition)
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
    measured: dict[str, Any] = {}
    layout = computed.layout
    for member, condition, column, presence in zip(
        members, conditions, layout.columns, layout.presence, strict=True
    ):
        condition = None if alone else condition
        if member.aggregate == HISTOGRAM:
            for offset, measure in enumerate(_histogram(member, condition, now)):
                measured[f"_m_v{column + offset}"] = measure
        else:
            measured[f"_m_v{column}"] = _measure(member, condition, now)
        if presence is not None:
            measured[f"_m_v{presence}"] = AsNumber(_count_rows(condition), NUMBER)
    for i in range(values):
        measured.setdefault(f"_m_v{i}", Null(output_field=FloatField()))
    names = [*columns, *(f"_m_v{i}" for i in range(values))]
    return rows.annotate(**measured).values_list(*names)


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


def _measure(member: Member, condition: Q | None, now: Any) -> AsNumber:
    path = member.measure.later
    if member.aggregate == COUNT:
        return AsNumber(_count_rows(condition), NUMBER)
    if member.aggregate == COUNT_DISTINCT:
        return AsNumber(Count(path, distinct=True, filter=condition), NUMBER)
    function = AGGREGATE_FUNCTIONS[member.aggregate]
    if member.measure.is_duration:
        seconds = duration(member.model, member.measure, now)
        return AsNumber(function(seconds, filter=condition), NUMBER)
    return AsNumber(function(path, filter=condition), member.kind)


def _histogram(member: Member, condition: Q | None, now: Any) -> list[Any]:
    """Return a histogram's columns: count, sum, minimum, maximum, each bucket's count.

    Each is a conditional aggregate of the one pass; a bucket counts the
    values at most its bound, so the counts come back cumulative.
    """
    if member.measure.is_duration:
        value: Any = duration(member.model, member.measure, now)
    elif member.kind == DURATION:
        value = AsNumber(F(member.measure.later), DURATION)
    else:
        value = F(member.measure.later)
    columns = [
        AsNumber(Count(value, filter=condition), NUMBER),
        AsNumber(Sum(value, filter=condition), NUMBER),
        AsNumber(Min(value, filter=condition), NUMBER),
        AsNumber(Max(value, filter=condition), NUMBER),
    ]
    for bound in member.bounds:
        within = Q(LessThanOrEqual(value, Value(float(bound), FloatField())))
        where = within if condition is None else condition & within
        columns.append(AsNumber(Count(Value(1), filter=where), NUMBER))
    return columns


def now_value(slots: dict[Any, tuple[str, str]], now: dt.datetime | None) -> Any:
    """Return what `now` in a duration reads: the moment, or a stand-in for it.

    The stand-in (see _with_slots()) is bound to the evaluation's moment
    each time the kept statement runs.
    """
    if now is not None:
        return timewindows.resolve("now", now)
    for stand_in, (text, kind) in slots.items():
        if text == measures.NOW and kind == DATETIME:
            return stand_in
    stand_in = _stand_in(len(slots), DATETIME)
    slots[stand_in] = (measures.NOW, DATETIME)
    return stand_in


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
        stand_in = _stand_in(len(slots), kind)
        slots[stand_in] = (value, kind)
        return stand_in

    return {
        lookup: placeholder(value, windows[lookup]) if lookup in windows else value
        for lookup, value in filters.items()
    }


def _stand_in(number: int, kind: str) -> Any:
    # A date or datetime in the year 1001, which no filter uses.
    if kind == DATE:
        return dt.date(1001, 1, 1) + dt.timedelta(days=number)
    stand_in = dt.datetime(1001, 1, 1) + dt.timedelta(seconds=number)
    if settings.USE_TZ:
        stand_in = stand_in.replace(tzinfo=dt.UTC)
    return stand_in


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)
