"""Plan row-based definitions: group them into passes and statements, kept once built.

Definitions on the same model with the same group-by share one pass over the
table, and the passes of one database go out as one UNION ALL statement. The
plan also lays out each pass's columns, which the SQL names and the fetch
stage reads back.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import NotSupportedError, connections
from django.db.models import BooleanField, Model

from metricdemo import (
    aggregates,
    distributions,
    measures,
    policy,
    routing,
    timewindows,
    validators,
)
from metricdemo.aggregates import COUNT, COUNT_DISTINCT, NUMBER, SUM
from metricdemo.conf import app_settings
from metricdemo.observations import EvaluationError
from metricdemo.rowquery import sql
from metricdemo.rowquery.types import Layout, Member, Pass, Plan, Statement

if TYPE_CHECKING:
    from metricdemo.models import MetricDefinition

# SQLite allows at most 500 SELECTs in one compound statement.
COUNTS_PER_STATEMENT = 250
# Aggregates in one pass: far below the column limits (PostgreSQL 1664,
# SQLite 2000), since every part of a statement has as many columns as the widest.
MEMBERS_PER_PASS = 100
# Value columns in one pass: a histogram takes two plus one per bucket.
COLUMNS_PER_PASS = 400
# Compiled plans kept: one per set of definitions a process evaluates together.
PLANS_KEPT = 64

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
        settings.TIME_ZONE,
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
    except sql.Unbindable:
        # Resolved now and not kept: rebuilt at every evaluation.
        return build_plan(definitions, alone=alone, now=timewindows.clock())
    with _plans_lock:
        _plans[key] = plan
        while len(_plans) > PLANS_KEPT:
            _plans.popitem(last=False)
    return plan


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
    errors: dict[int, EvaluationError] = {}
    passes: dict[tuple[Any, ...], list[Member]] = {}
    models: dict[tuple[Any, ...], type[Model]] = {}
    for index, definition in enumerate(definitions):
        try:
            model, member = _member(index, definition)
        except EvaluationError as exc:
            errors[index] = exc
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
        for chunk in _chunks(members):
            number = sum(len(group) for group in by_alias.values())
            computed = _pass(number, alias, models[key], paths, chunk)
            by_alias.setdefault(alias, []).append(computed)
    statements: list[Statement] = []
    empty: list[Pass] = []
    for alias, alias_passes in by_alias.items():
        for start in range(0, len(alias_passes), COUNTS_PER_STATEMENT):
            chunk = alias_passes[start : start + COUNTS_PER_STATEMENT]
            statement = _statement(alias, chunk, now, errors, empty)
            if statement is not None:
                statements.append(statement)
    return Plan(errors=errors, statements=tuple(statements), empty=tuple(empty))


def _chunks(members: list[Member]) -> list[list[Member]]:
    # Consecutive members, at most MEMBERS_PER_PASS and COLUMNS_PER_PASS a pass.
    chunks: list[list[Member]] = [[]]
    width = 0
    for member in members:
        full = len(chunks[-1]) >= MEMBERS_PER_PASS
        if chunks[-1] and (full or width + member.width + 1 > COLUMNS_PER_PASS):
            chunks.append([])
            width = 0
        chunks[-1].append(member)
        width += member.width + 1
    return chunks


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
        getattr(definition, "kind", None) == aggregates.HISTOGRAM,
        repr(getattr(definition, "buckets", None) or ()),
    )


def _member(index: int, definition: MetricDefinition) -> tuple[type[Model], Member]:
    try:
        model = routing.resolve_model(definition.model)
    except LookupError as exc:
        raise EvaluationError(str(exc)) from None
    filters = definition.filters or {}
    path = (getattr(definition, "field", "") or "").strip()
    histogram = getattr(definition, "kind", None) == aggregates.HISTOGRAM
    aggregate = aggregates.HISTOGRAM if histogram else definition.aggregate or COUNT
    bounds: tuple[float, ...] = ()
    if histogram:
        buckets = getattr(definition, "buckets", None)
        problem = distributions.bucket_problem(buckets)
        if problem:
            raise EvaluationError(problem)
        bounds = tuple(float(bound) for bound in buckets)
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
    measure = measures.parse(path)
    kind = NUMBER
    places = None
    if measure.is_duration:
        problem = sql.duration_problem(model, measure, routing.model_database(model))
        if problem:
            raise EvaluationError(problem)
    elif aggregate in (*aggregates.VALUE_AGGREGATES, aggregates.HISTOGRAM):
        field = aggregates.aggregated_field(model, path)
        kind = aggregates.value_kind(field)
        places = aggregates.decimal_places(field, aggregate)
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
        never_null=bool(measure.paths)
        and all(aggregates.never_null(model, p) for p in measure.paths),
        measure=measure,
        model=model,
        bounds=bounds,
        places=places,
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
    paths = [*map(str, member.filters), *member.measure.paths]
    return any(aggregates.multi_valued(model, path) for path in paths)


def _pass(
    number: int,
    alias: str,
    model: type[Model],
    paths: tuple[str, ...],
    members: Sequence[Member],
) -> Pass:
    grouped = bool(paths)
    return Pass(number, alias, model, paths, tuple(members), _layout(members, grouped))


def _layout(members: Sequence[Member], grouped: bool) -> Layout:
    # Each member's value column, followed where needed by a column saying
    # whether a group matched its filters.
    columns: list[int] = []
    presence: list[int | None] = []
    column = 0
    shared = len(members) > 1
    for member in members:
        columns.append(column)
        column += member.width
        # A sum or distinct count of a field that may be NULL is NULL or 0
        # both for a group where no row matched and for one where the matched
        # rows have no value; only the second is a series (of 0).
        # A histogram's count column tells.
        needs_presence = member.aggregate in (COUNT_DISTINCT, SUM)
        needs_presence = needs_presence and not member.never_null
        if grouped and shared and member.filtered and needs_presence:
            presence.append(column)
            column += 1
        else:
            presence.append(None)
    return Layout(columns=tuple(columns), presence=tuple(presence), width=column)


def _statement(
    alias: str,
    passes: list[Pass],
    now: dt.datetime | None,
    errors: dict[int, EvaluationError],
    empty: list[Pass],
) -> Statement | None:
    """Compile the passes of one database into one UNION ALL statement.

    Adds to `errors` the members whose filters do not work, and to `empty`
    the passes whose filters match nothing.
    """
    slots: dict[Any, tuple[str, str]] = {}
    groups = max(len(p.paths) for p in passes)
    values = max(p.layout.width for p in passes)
    parts, bounded_parts, params, kept = [], [], [], {}
    outer = sql.outer_columns(connections[alias], groups, values)
    for computed in passes:
        usable, failed = sql.usable_members(computed, slots, now)
        errors.update(failed)
        if not usable:
            continue
        if failed:
            # The members left get a layout of their own, without gaps.
            members = [member for member, _condition in usable]
            computed = _pass(
                computed.number, alias, computed.model, computed.paths, members
            )
        conditions = [condition for _member, condition in usable]
        now_value = None
        if any(member.measure.is_duration for member in computed.members):
            now_value = sql.now_value(slots, now)
        query = sql.pass_query(computed, conditions, groups, values, now_value)
        try:
            statement_sql, branch = sql.compiled(query, alias)
            bounded_sql, bounded_branch = statement_sql, branch
            if computed.grouped:
                bounded_sql, bounded_branch = sql.compiled(
                    query[: computed.limit], alias
                )
        except EmptyResultSet:
            # Filters that match nothing (`status__in=[]`): no rows to read.
            empty.append(computed)
            continue
        if bounded_branch != branch:  # pragma: no cover - Django inlines LIMIT
            raise NotSupportedError("A LIMIT changed the parameters of a query.")
        name = f"b{computed.number}"
        parts.append(f"SELECT {outer} FROM ({statement_sql}) AS {name}")
        bounded_parts.append(f"SELECT {outer} FROM ({bounded_sql}) AS {name}")
        params.extend(branch)
        kept[computed.number] = computed
    if not parts:
        return None
    bounded = " UNION ALL ".join(bounded_parts)
    statement_sql, limit = bounded, None
    if len(kept) > 1 and any(p.grouped for p in kept.values()):
        # One row per ungrouped pass; at most its limit per grouped one.
        limit = sum(p.limit if p.grouped else 1 for p in kept.values())
        # After the last part, a LIMIT bounds the whole UNION ALL on every
        # backend; a derived table around it would cost PostgreSQL planning.
        statement_sql = f"{' UNION ALL '.join(parts)} LIMIT {limit}"
    return Statement(
        alias=alias,
        sql=statement_sql,
        params=params,
        slots=sql.find_slots(alias, params, slots),
        passes=kept,
        offset=1 + groups,
        bounded_sql=bounded,
        limit=limit,
    )
