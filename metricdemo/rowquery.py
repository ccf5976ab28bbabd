"""Compute row-based definitions in few statements: one pass per table and grouping.

Definitions on the same model with the same group-by share one pass over the
table, each as a conditional aggregate (`COUNT(*) FILTER (WHERE ...)`, or
`CASE WHEN` where the backend lacks FILTER), and the passes of one database
go out as one UNION ALL statement. The statements are compiled once per set
of definitions and kept; each evaluation only binds its relative times
(`now-1h`) again.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldError, ValidationError
from django.db import NotSupportedError, connections
from django.db.models import (
    Avg,
    BooleanField,
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
from django.utils import timezone
from django.utils.translation import gettext as _

from metricdemo import aggregates, lookups, policy, routing, timewindows, validators
from metricdemo.aggregates import COUNT, COUNT_DISTINCT, DATE, DATETIME, NUMBER, SUM
from metricdemo.conf import app_settings
from metricdemo.observations import EvaluationError, Observations

if TYPE_CHECKING:
    from metricdemo.models import MetricDefinition

# SQLite allows at most 500 SELECTs in one compound statement.
COUNTS_PER_STATEMENT = 250
# Aggregates in one pass: far below the column limits (PostgreSQL 1664,
# SQLite 2000), since every part of a statement has as many columns as the widest.
MEMBERS_PER_PASS = 100
# Compiled plans kept: one per set of definitions a process evaluates together.
PLANS_KEPT = 64

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


@dataclass
class Member:
    """One definition's place in a pass: its aggregate and where its value is."""

    index: int
    definition: Any
    aggregate: str
    kind: str | None
    filters: dict[str, Any]
    keys: tuple[str, ...]
    booleans: tuple[bool, ...]
    bound: int
    column: int = 0
    presence: int | None = None
    filtered: bool = False
    #: Every row has a value of the aggregated field (no NULL on the way).
    never_null: bool = False


@dataclass
class Pass:
    """Definitions computed in one scan of one table with one grouping."""

    number: int
    alias: str
    model: type[Model]
    paths: tuple[str, ...]
    members: list[Member]
    #: Where the pass's values start in a row of its statement.
    offset: int = 1

    @property
    def grouped(self) -> bool:
        return bool(self.paths)

    @property
    def limit(self) -> int:
        # Without a member over its bound, the groups number at most the sum
        # of the bounds; one row more says some member is over.
        return sum(member.bound for member in self.members) + 1


@dataclass
class Statement:
    """One compiled UNION ALL statement and where its relative times go.

    `sql` bounds the rows of the whole statement with one LIMIT, the sum of
    its passes' bounds, which leaves PostgreSQL free to run the passes in
    parallel; a LIMIT inside each part would not. `bounded_sql` bounds each
    grouped pass by its own LIMIT instead. When `sql` reads as many rows as its
    LIMIT, some pass may have been cut short, so the statement runs again as
    `bounded_sql`, and keeps doing so until no pass reaches its bound.
    """

    alias: str
    sql: str
    params: list[Any]
    #: (parameter position, relative time, DATE or DATETIME) to bind each time.
    slots: list[tuple[int, str, str]]
    passes: dict[int, Pass]
    #: Each grouped pass bounded by its own LIMIT; the parameters are the same.
    bounded_sql: str = ""
    #: The LIMIT of `sql`, or None when `sql` is already `bounded_sql`.
    limit: int | None = None
    #: Whether the last rows needed `bounded_sql`: the next run starts with it.
    bounded: bool = False

    def fetch(self, now: dt.datetime) -> list[tuple[Any, ...]]:
        """Run the statement with its times resolved at `now`; return its rows."""
        params = self.bind(now)
        with connections[self.alias].cursor() as cursor:
            if self.limit is None or not self.bounded:
                cursor.execute(self.sql, params)
                rows = cursor.fetchall()
                if self.limit is None or len(rows) < self.limit:
                    return rows
            cursor.execute(self.bounded_sql, params)
            rows = cursor.fetchall()
        read: dict[int, int] = {}
        for row in rows:
            read[int(row[0])] = read.get(int(row[0]), 0) + 1
        # Benign if two threads race: either form gives the same values.
        self.bounded = any(
            read.get(number, 0) >= computed.limit
            for number, computed in self.passes.items()
            if computed.grouped
        )
        return rows

    def bind(self, now: dt.datetime) -> list[Any]:
        """Return the parameters with every relative time resolved at `now`."""
        if not self.slots:
            return self.params
        ops = connections[self.alias].ops
        params = list(self.params)
        for position, text, kind in self.slots:
            if kind == DATE:
                params[position] = ops.adapt_datefield_value(
                    timewindows.resolve_date(text, now)
                )
            else:
                params[position] = ops.adapt_datetimefield_value(
                    timewindows.resolve(text, now)
                )
        return params


@dataclass
class Plan:
    """What to run for a set of definitions, and the errors known beforehand."""

    errors: dict[int, EvaluationError] = field(default_factory=dict)
    statements: list[Statement] = field(default_factory=list)
    empty: list[Pass] = field(default_factory=list)


class _Unbindable(Exception):
    """A relative time's parameter could not be found in the compiled SQL."""


def count_rows(
    definitions: Sequence[MetricDefinition],
) -> list[Observations | EvaluationError]:
    """Compute many row-based definitions in one statement per database.

    A definition whose model, field or filters are unknown or refused gets its
    EvaluationError in its place, and so does a grouped one with more groups
    than its max_series (each pass reads at most the sum of its members'
    bounds, plus one group); constant attributes are not added.

    Raises:
        DatabaseError: a statement failed; any of its definitions may be the cause.
    """
    return _compute(definitions, alone=False)


def _compute(
    definitions: Sequence[MetricDefinition], *, alone: bool
) -> list[Observations | EvaluationError]:
    found: list[Observations | EvaluationError] = [[] for _ in definitions]
    plan = plan_for(definitions, alone=alone)
    for index, error in plan.errors.items():
        found[index] = error
    now = timewindows.clock()
    unsure: list[int] = []
    for empty in plan.empty:
        _fill(found, empty, [], unsure)
    for statement in plan.statements:
        rows: dict[int, list[tuple[Any, ...]]] = {n: [] for n in statement.passes}
        for row in statement.fetch(now):
            rows[int(row[0])].append(row)
        for number, rows_of_pass in rows.items():
            _fill(found, statement.passes[number], rows_of_pass, unsure)
    if unsure:
        # A shared pass read as many groups as its members may have together:
        # which of them is over its bound, each alone says.
        again = _compute([definitions[i] for i in unsure], alone=True)
        for index, result in zip(unsure, again, strict=True):
            found[index] = result
    return found


def _fill(
    found: list[Observations | EvaluationError],
    computed: Pass,
    rows: list[tuple[Any, ...]],
    unsure: list[int],
) -> None:
    shared = len(computed.members) > 1
    start = computed.offset
    # Every member of a pass groups by the same paths: label values once a row.
    booleans = computed.members[0].booleans if computed.grouped else ()
    groups = [
        [_group_label(row[1 + i], boolean) for i, boolean in enumerate(booleans)]
        for row in (rows if computed.grouped else ())
    ]
    for member in computed.members:
        column = start + member.column
        if not computed.grouped:
            value = rows[0][column] if rows else None
            found[member.index] = _ungrouped(member, value)
            continue
        observations = []
        keys = member.keys
        for row, group in zip(rows, groups, strict=True):
            value = row[column]
            if shared and member.filtered and not _present(member, row, start, value):
                continue
            if value is None:
                if member.aggregate in aggregates.SKIPS_EMPTY:
                    continue
                value = 0
            labels = dict(zip(keys, group, strict=True))
            observations.append((_converted(member.kind, value), labels))
        if len(observations) > member.bound:
            found[member.index] = too_many_groups(member.definition, member.bound)
        elif shared and len(rows) >= computed.limit:
            unsure.append(member.index)
        else:
            found[member.index] = observations


def _present(member: Member, row: tuple[Any, ...], start: int, value: Any) -> bool:
    # Whether any row of this group matched the member's filters. Without a
    # presence column the value tells: a count above 0, or any other
    # aggregate not NULL (a sum or distinct count only where the field is
    # never NULL, or it would have a presence column).
    if member.presence is not None:
        return bool(row[start + member.presence])
    if member.aggregate in (COUNT, COUNT_DISTINCT):
        return bool(value)
    return value is not None


def _ungrouped(member: Member, value: Any) -> Observations:
    if value is None:
        if member.aggregate in aggregates.SKIPS_EMPTY:
            return []  # avg, min and max of no rows: no series
        value = 0
    return [(_converted(member.kind, value), {})]


def _converted(kind: str | None, value: Any) -> float:
    number = float(value)
    if kind == DATE:
        day = dt.date(1970, 1, 1) + dt.timedelta(days=round(number))
        midnight = dt.datetime.combine(day, dt.time())
        return timezone.make_aware(
            midnight, timezone.get_default_timezone()
        ).timestamp()
    if kind == DATETIME and not settings.USE_TZ:
        # Without time zone support the database holds local wall-clock times.
        naive = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=number)
        return timezone.make_aware(naive, timezone.get_default_timezone()).timestamp()
    return number


def too_many_groups(definition: MetricDefinition, bound: int) -> EvaluationError:
    """Return the error of a grouped definition with more groups than `bound`."""
    return EvaluationError(
        _(
            "%(model)s grouped by %(group_by)s has more than %(bound)d groups "
            "(max_series); group by a field with fewer distinct values or raise "
            "max series."
        )
        % {"model": definition.model, "group_by": definition.group_by, "bound": bound}
    )


# Plans -----------------------------------------------------------------------

_plans: OrderedDict[Any, Plan] = OrderedDict()
_plans_lock = threading.Lock()


def clear_plans() -> None:
    """Forget every compiled plan; the next evaluations build them again."""
    with _plans_lock:
        _plans.clear()


def plan_for(definitions: Sequence[MetricDefinition], *, alone: bool = False) -> Plan:
    """Return the compiled plan of `definitions`, built once and then kept.

    The key holds every field a plan depends on, and the settings the safe
    source rules read, so an edit or a tightened rule builds a new plan.
    """
    aliases: dict[str, str | None] = {}
    key = (
        alone,
        settings.USE_TZ,
        repr(sorted(app_settings.user_settings.items())),
        tuple(_fingerprint(d, aliases) for d in definitions),
    )
    with _plans_lock:
        plan = _plans.get(key)
        if plan is not None:
            _plans.move_to_end(key)
            return plan
    try:
        plan = build_plan(definitions, alone=alone)
    except _Unbindable:
        # Resolved now and not kept: rebuilt at every evaluation.
        return build_plan(definitions, alone=alone, now=timewindows.clock())
    with _plans_lock:
        _plans[key] = plan
        while len(_plans) > PLANS_KEPT:
            _plans.popitem(last=False)
    return plan


def _fingerprint(
    definition: MetricDefinition, aliases: dict[str, str | None]
) -> tuple[Any, ...]:
    # `aliases` keeps each model's read database for one plan_for() call.
    label = definition.model
    if label not in aliases:
        try:
            aliases[label] = routing.model_database(apps.get_model(label))
        except (LookupError, ValueError):
            aliases[label] = None
    filters = definition.filters
    return (
        aliases[label],
        label,
        getattr(definition, "aggregate", COUNT) or COUNT,
        getattr(definition, "field", "") or "",
        # repr() tells 1 from True and "1", as the compiled SQL does.
        repr(filters) if filters else "",
        definition.group_by,
        getattr(definition, "max_series", None),
    )


def build_plan(
    definitions: Sequence[MetricDefinition],
    *,
    alone: bool = False,
    now: dt.datetime | None = None,
) -> Plan:
    """Compile the statements of `definitions`; relative times become slots.

    With `now`, relative times are resolved at `now` instead, and the plan is
    good for that evaluation only.
    """
    plan = Plan()
    passes: dict[tuple[Any, ...], list[Member]] = {}
    models: dict[tuple[Any, ...], type[Model]] = {}
    for index, definition in enumerate(definitions):
        try:
            model, member = _member(index, definition)
        except EvaluationError as exc:
            plan.errors[index] = exc
            continue
        isolated = alone or _multi_valued(model, member)
        key = (
            routing.model_database(model),
            model._meta.label,
            tuple(validators.group_by_paths(definition.group_by)),
            index if isolated else None,
        )
        passes.setdefault(key, []).append(member)
        models[key] = model
    by_alias: dict[str, list[Pass]] = {}
    for key, members in passes.items():
        alias, _label, paths, _alone = key
        for start in range(0, len(members), MEMBERS_PER_PASS):
            chunk = members[start : start + MEMBERS_PER_PASS]
            number = sum(len(group) for group in by_alias.values())
            computed = Pass(number, alias, models[key], paths, chunk)
            by_alias.setdefault(alias, []).append(computed)
    for alias, alias_passes in by_alias.items():
        for start in range(0, len(alias_passes), COUNTS_PER_STATEMENT):
            chunk = alias_passes[start : start + COUNTS_PER_STATEMENT]
            statement = _statement(alias, chunk, plan, now)
            if statement is not None:
                plan.statements.append(statement)
    return plan


def _member(index: int, definition: MetricDefinition) -> tuple[type[Model], Member]:
    try:
        model = routing.resolve_model(definition.model)
    except LookupError as exc:
        raise EvaluationError(str(exc)) from None
    filters = definition.filters or {}
    path = (getattr(definition, "field", "") or "").strip()
    aggregate = getattr(definition, "aggregate", "") or COUNT
    for refusal in policy.row_count_refusals(
        model, filters, definition.group_by, path
    ).values():
        raise EvaluationError(refusal)
    problem = aggregates.field_problem(model, aggregate, path)
    if problem:
        raise EvaluationError(problem)
    try:
        for text in _relative_texts(model, filters):
            timewindows.parse(text)
    except ValueError as exc:
        raise EvaluationError(str(exc)) from None
    keys = validators.group_by_keys(definition.group_by)
    kind = NUMBER
    if aggregate in aggregates.VALUE_AGGREGATES:
        kind = aggregates.value_kind(aggregates.aggregated_field(model, path))
    return model, Member(
        index=index,
        definition=definition,
        aggregate=aggregate,
        kind=kind,
        filters=dict(filters),
        keys=tuple(keys.values()),
        booleans=tuple(
            isinstance(aggregates.aggregated_field(model, p), BooleanField)
            for p in keys
        ),
        bound=validators.max_series_bound(getattr(definition, "max_series", None)),
        filtered=bool(filters),
        never_null=bool(path) and aggregates.never_null(model, path),
    )


def _relative_texts(model: type[Model], filters: Any) -> list[str]:
    texts = []
    for lookup in aggregates.relative_filters(model, filters):
        value = filters[lookup]
        for item in value if isinstance(value, list | tuple) else [value]:
            if timewindows.looks_relative(item):
                texts.append(item)
    return texts


def _multi_valued(model: type[Model], member: Member) -> bool:
    # A join to many rows repeats each row; only this definition may see that.
    field_path = getattr(member.definition, "field", "") or ""
    paths = [*map(str, member.filters), *([field_path] if field_path else [])]
    return any(aggregates.multi_valued(model, path) for path in paths)


# Statements ------------------------------------------------------------------


def _statement(
    alias: str, passes: list[Pass], plan: Plan, now: dt.datetime | None
) -> Statement | None:
    """Compile the passes of one database into one UNION ALL statement."""
    slots: dict[Any, tuple[str, str]] = {}
    for computed in passes:
        _place_columns(computed)
    groups = max(len(p.paths) for p in passes)
    values = max(_value_columns(p) for p in passes)
    parts, bounded_parts, params, kept = [], [], [], {}
    outer = _outer_columns(connections[alias], groups, values)
    for computed in passes:
        query = _pass_query(computed, groups, values, slots, now, plan)
        if query is None:
            continue
        try:
            sql, branch = _compiled(query, alias)
            bounded_sql, bounded_branch = sql, branch
            if computed.grouped:
                bounded_sql, bounded_branch = _compiled(query[: computed.limit], alias)
        except EmptyResultSet:
            # Filters that match nothing (`status__in=[]`): no rows to read.
            plan.empty.append(computed)
            continue
        if bounded_branch != branch:  # pragma: no cover - Django inlines LIMIT
            raise NotSupportedError("A LIMIT changed the parameters of a query.")
        name = f"b{computed.number}"
        parts.append(f"SELECT {outer} FROM ({sql}) AS {name}")
        bounded_parts.append(f"SELECT {outer} FROM ({bounded_sql}) AS {name}")
        params.extend(branch)
        kept[computed.number] = computed
    if not parts:
        return None
    for computed in kept.values():
        computed.offset = 1 + groups
    bounded = " UNION ALL ".join(bounded_parts)
    sql, limit = bounded, None
    if len(kept) > 1 and any(p.grouped for p in kept.values()):
        # One row per ungrouped pass; at most its limit per grouped one.
        limit = sum(p.limit if p.grouped else 1 for p in kept.values())
        # After the last part, a LIMIT bounds the whole UNION ALL on every
        # backend; a derived table around it would cost PostgreSQL planning.
        sql = f"{' UNION ALL '.join(parts)} LIMIT {limit}"
    return Statement(
        alias=alias,
        sql=sql,
        params=params,
        slots=_find_slots(alias, params, slots),
        passes=kept,
        bounded_sql=bounded,
        limit=limit,
    )


def _compiled(query: Any, alias: str) -> tuple[str, tuple[Any, ...]]:
    return query.query.get_compiler(using=alias).as_sql(with_col_aliases=True)


def _outer_columns(connection: Any, groups: int, values: int) -> str:
    # Group values are cast to text outside the grouped query, once per group
    # rather than once per row, so that groups of any type share a column.
    quote = connection.ops.quote_name
    text = connection.ops.cast_char_field_without_max_length
    columns = [quote("_m_p")]
    columns += [f"CAST({quote(f'_m_g{i}')} AS {text})" for i in range(groups)]
    columns += [quote(f"_m_v{i}") for i in range(values)]
    return ", ".join(columns)


def _place_columns(computed: Pass) -> None:
    column = 0
    shared = len(computed.members) > 1
    for member in computed.members:
        member.column = column
        column += 1
        member.presence = None
        # A sum or distinct count of a field that may be NULL is NULL or 0
        # both for a group where no row matched and for one where the matched
        # rows have no value; only the second is a series (of 0).
        needs_presence = member.aggregate in (COUNT_DISTINCT, SUM)
        needs_presence = needs_presence and not member.never_null
        if computed.grouped and shared and member.filtered and needs_presence:
            member.presence = column
            column += 1


def _value_columns(computed: Pass) -> int:
    return sum(1 + (member.presence is not None) for member in computed.members)


def _pass_query(
    computed: Pass,
    groups: int,
    values: int,
    slots: dict[Any, tuple[str, str]],
    now: dt.datetime | None,
    plan: Plan,
):
    """Return the queryset of one pass, or None if none of its members is usable."""
    model = computed.model
    manager = model._default_manager
    usable, conditions = [], []
    for member in computed.members:
        filters = _with_slots(model, member.filters, slots, now)
        try:
            # Only parsed keys reach the query (a stored row may have skipped
            # validation); resolving them finds a bad lookup or value now, for
            # this definition alone rather than for the whole statement.
            condition = lookups.condition(model, filters)
            manager.filter(condition)
        except (FieldError, ValueError, TypeError, ValidationError) as exc:
            plan.errors[member.index] = EvaluationError(
                _("The filters do not work on %(model)s: %(error)s")
                % {"model": model._meta.label, "error": exc}
            )
            continue
        usable.append(member)
        conditions.append(condition if filters else None)
    if not usable:
        return None
    if len(usable) != len(computed.members):
        computed.members = usable
        _place_columns(computed)
    alone = len(usable) == 1
    rows = manager.all()
    if alone:
        if conditions[0] is not None:
            rows = rows.filter(conditions[0])
        if computed.grouped and usable[0].aggregate in aggregates.SKIPS_EMPTY:
            # A group whose rows have no value is no series of an average,
            # minimum or maximum; left out here, every group read is a series,
            # so the LIMIT of max series + 1 cannot hide series behind them.
            path = (getattr(usable[0].definition, "field", "") or "").strip()
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
    for member, condition in zip(usable, conditions, strict=True):
        condition = None if alone else condition
        measures[f"_m_v{member.column}"] = _measure(member, condition)
        if member.presence is not None:
            measures[f"_m_v{member.presence}"] = AsNumber(
                _count_rows(condition), NUMBER
            )
    for i in range(values):
        measures.setdefault(f"_m_v{i}", Null(output_field=FloatField()))
    names = [*columns, *(f"_m_v{i}" for i in range(values))]
    return rows.annotate(**measures).values_list(*names)


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


def _find_slots(
    alias: str, params: list[Any], slots: dict[Any, tuple[str, str]]
) -> list[tuple[int, str, str]]:
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
        raise _Unbindable
    return found


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return (type(value).__name__, value)


def _group_label(text: str | None, boolean: bool) -> str:
    # Booleans cast to text differ by database ("1", "true", "t"); name them
    # the same everywhere. Other values keep the database's text.
    if text is None:
        return ""
    if boolean:
        return "true" if str(text).lower() in {"1", "true", "t"} else "false"
    return str(text)
