"""Count the rows of many row-count definitions in as few statements as possible."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.core.exceptions import EmptyResultSet, FieldDoesNotExist
from django.db import connections
from django.db.models import BooleanField, CharField, Count, F, Model, QuerySet, Value
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Cast
from django.utils.translation import gettext as _

from metricdemo import policy, validators
from metricdemo.observations import EvaluationError, Observations

if TYPE_CHECKING:
    from metricdemo.models import MetricDefinition

# SQLite allows at most 500 SELECTs in one compound statement.
COUNTS_PER_STATEMENT = 250


def count_query(definition: MetricDefinition, index: int) -> QuerySet:
    """Return a query of (index, group as text, count) rows for `definition`.

    Every definition's query has the same three columns, so many of them run
    as one statement joined with UNION ALL; the group value is cast to text so
    that groups of different field types fit one column.

    Raises:
        EvaluationError: the model is unknown or a safe-source rule refuses it.
    """
    try:
        model = policy.resolve_model(definition.model)
    except LookupError as exc:
        raise EvaluationError(str(exc)) from None
    filters = definition.filters or {}
    for refusal in policy.row_count_refusals(
        model, filters, definition.group_by
    ).values():
        raise EvaluationError(refusal)
    if definition.group_by:
        group = Cast(F(definition.group_by), CharField())
    else:
        # A constant is not grouped by, so this counts the whole selection and
        # gives one row, 0 for an empty table.
        group = Value(None, output_field=CharField())
    return (
        model._default_manager.using(policy.read_alias(model))
        .filter(**filters)
        .order_by()
        .annotate(_metricdemo_i=Value(index), _metricdemo_g=group)
        .values("_metricdemo_i", "_metricdemo_g")
        .annotate(_metricdemo_n=Count("*"))
        .values_list("_metricdemo_i", "_metricdemo_g", "_metricdemo_n")
    )


def count_rows(
    definitions: Sequence[MetricDefinition],
) -> list[Observations | EvaluationError]:
    """Count the rows of many row-count definitions in one statement per 250.

    A definition whose model is unknown or refused gets its EvaluationError in
    its place, and so does a grouped count with more groups than its
    max_series (it reads one group more, never all of them); constant
    attributes are not added. Each database gets its own statements.

    Raises:
        DatabaseError: a statement failed; any of its definitions may be the cause.
    """
    found: list[Observations | EvaluationError] = [[] for _ in definitions]
    queries = []
    # Which grouped counts group by a boolean field, worked out once a call.
    boolean: dict[int, bool] = {}
    bounds: dict[int, int] = {}
    for index, definition in enumerate(definitions):
        try:
            query = count_query(definition, index)
        except EvaluationError as exc:
            found[index] = exc
            continue
        if definition.group_by:
            model = policy.resolve_model(definition.model)
            field = _path_field(model, definition.group_by)
            boolean[index] = isinstance(field, BooleanField)
            bounds[index] = validators.max_series_bound(
                getattr(definition, "max_series", None)
            )
            # One group past the bound tells that the bound is exceeded.
            query = query[: bounds[index] + 1]
        queries.append(query)
    for row_index, group, count in union_rows(queries):
        index = int(row_index)
        definition = definitions[index]
        if definition.group_by:
            label = _group_label(group, boolean[index])
            found[index].append((float(count), {definition.group_by: label}))
        else:
            found[index].append((float(count), {}))
    for index, bound in bounds.items():
        if len(found[index]) > bound:
            found[index] = too_many_groups(definitions[index], bound)
    return found


def too_many_groups(definition: MetricDefinition, bound: int) -> EvaluationError:
    """Return the error of a grouped count with more groups than `bound`."""
    return EvaluationError(
        _(
            "%(model)s grouped by %(group_by)s has more than %(bound)d groups "
            "(max_series); group by a field with fewer distinct values or raise "
            "max series."
        )
        % {"model": definition.model, "group_by": definition.group_by, "bound": bound}
    )


def union_rows(queries: Sequence[QuerySet]) -> list[tuple[Any, ...]]:
    """Return the rows of all `queries`, run as one UNION ALL statement per 250.

    Each query runs on its own database; queries of one database share
    statements. Django refuses sliced querysets inside a compound statement on
    some databases, so the statement is composed here: each query's own SQL,
    LIMIT included, as a derived table (MariaDB and older PostgreSQL need
    its alias).
    """
    by_alias: dict[str, list[QuerySet]] = {}
    for query in queries:
        by_alias.setdefault(query.db, []).append(query)
    rows: list[tuple[Any, ...]] = []
    for alias, group in by_alias.items():
        connection = connections[alias]
        for start in range(0, len(group), COUNTS_PER_STATEMENT):
            parts, params = [], []
            for number, query in enumerate(group[start : start + COUNTS_PER_STATEMENT]):
                compiler = query.query.get_compiler(using=alias)
                try:
                    sql, branch = compiler.as_sql(with_col_aliases=True)
                except EmptyResultSet:
                    # A filter that matches nothing (`status__in=[]`) has no
                    # rows to read, as with Django's own UNION.
                    continue
                parts.append(f"SELECT * FROM ({sql}) AS b{number}")
                params.extend(branch)
            if not parts:
                continue
            with connection.cursor() as cursor:
                cursor.execute(" UNION ALL ".join(parts), params)
                rows.extend(cursor.fetchall())
    return rows


def _group_label(text: str | None, boolean: bool) -> str:
    # Booleans cast to text differ by database ("1", "true", "t"); name them
    # the same everywhere. Other values keep the database's text.
    if text is None:
        return ""
    if boolean:
        return "true" if text.lower() in {"1", "true", "t"} else "false"
    return text


def _path_field(model: type[Model], path: str) -> Any:
    field = None
    for name in path.split(LOOKUP_SEP):
        try:
            field = model._meta.get_field("pk" if name == "pk" else name)
        except FieldDoesNotExist:
            return None
        model = field.related_model or model
    return field
