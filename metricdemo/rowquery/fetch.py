"""Run a plan's statements and read their rows back as observations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext as _

from metricdemo import aggregates, timewindows
from metricdemo.aggregates import COUNT, COUNT_DISTINCT, DATE, DATETIME, HISTOGRAM
from metricdemo.distributions import Distribution
from metricdemo.observations import EvaluationError, Observations
from metricdemo.rowquery import sql
from metricdemo.rowquery.plan import plan_for
from metricdemo.rowquery.types import Member, Pass, Statement

if TYPE_CHECKING:
    from metricdemo.models import MetricDefinition


def compute_rows(
    definitions: Sequence[MetricDefinition],
) -> list[Observations | EvaluationError]:
    """Compute many row-based definitions in one statement per database.

    Each definition gets its aggregate of its model's rows: a count, distinct
    count, sum, average, minimum or maximum. A definition whose model, field
    or filters are unknown or refused gets its EvaluationError in its place,
    and so does a grouped one with more groups than its max_series (each pass
    reads at most the sum of its members' bounds, plus one group); constant
    attributes are not added.

    Raises:
        DatabaseError: a statement failed; any of its definitions may be the cause.
    """
    return _compute(definitions, alone=False)


def fetch(statement: Statement, now: dt.datetime) -> list[tuple[Any, ...]]:
    """Run `statement` with its times resolved at `now`; return its rows.

    Remembers in `statement.bounded` whether a pass reached its bound, so the
    next run starts with the bounded form.
    """
    params = bind(statement, now)
    connection = connections[statement.alias]
    connection.ensure_connection()
    sql.install_functions(connection)
    with connection.cursor() as cursor:
        if statement.limit is None or not statement.bounded:
            cursor.execute(statement.sql, params)
            rows = cursor.fetchall()
            if statement.limit is None or len(rows) < statement.limit:
                return rows
        cursor.execute(statement.bounded_sql, params)
        rows = cursor.fetchall()
    read: dict[int, int] = {}
    for row in rows:
        read[int(row[0])] = read.get(int(row[0]), 0) + 1
    # Benign if two threads race: either form gives the same values.
    statement.bounded = any(
        read.get(number, 0) >= computed.limit
        for number, computed in statement.passes.items()
        if computed.grouped
    )
    return rows


def bind(statement: Statement, now: dt.datetime) -> list[Any]:
    """Return the statement's parameters with each relative time resolved at `now`."""
    if not statement.slots:
        return statement.params
    ops = connections[statement.alias].ops
    params = list(statement.params)
    for position, text, kind in statement.slots:
        if kind == DATE:
            params[position] = ops.adapt_datefield_value(
                timewindows.resolve_date(text, now)
            )
        else:
            params[position] = ops.adapt_datetimefield_value(
                timewindows.resolve(text, now)
            )
    return params


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
        # No rows, so no column is read.
        _fill(found, empty, [], unsure, start=0)
    for statement in plan.statements:
        rows: dict[int, list[tuple[Any, ...]]] = {n: [] for n in statement.passes}
        for row in fetch(statement, now):
            rows[int(row[0])].append(row)
        for number, rows_of_pass in rows.items():
            computed = statement.passes[number]
            _fill(found, computed, rows_of_pass, unsure, start=statement.offset)
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
    start: int,
) -> None:
    # `start` is where the pass's value columns begin in a row; its layout
    # says where each member's are from there.
    shared = len(computed.members) > 1
    layout = computed.layout
    # Every member of a pass groups by the same paths: label values once a row.
    booleans = computed.members[0].booleans if computed.grouped else ()
    groups = [
        [_group_label(row[1 + i], boolean) for i, boolean in enumerate(booleans)]
        for row in (rows if computed.grouped else ())
    ]
    for member, value_column, presence in zip(
        computed.members, layout.columns, layout.presence, strict=True
    ):
        column = start + value_column
        if not computed.grouped:
            if member.aggregate == HISTOGRAM:
                distribution = _distribution(member, rows[0] if rows else None, column)
                found[member.index] = [(distribution, {})]
                continue
            value = rows[0][column] if rows else None
            found[member.index] = _ungrouped(member, value)
            continue
        observations = []
        keys = member.keys
        for row, group in zip(rows, groups, strict=True):
            value = row[column]
            if member.aggregate == HISTOGRAM:
                # A group where none of the member's rows has a value is no
                # series of its histogram.
                if value:
                    labels = dict(zip(keys, group, strict=True))
                    observations.append((_distribution(member, row, column), labels))
                continue
            if shared and member.filtered:
                at = None if presence is None else start + presence
                if not _present(member, row, at, value):
                    continue
            if value is None:
                if member.aggregate in aggregates.SKIPS_EMPTY:
                    continue
                value = 0
            labels = dict(zip(keys, group, strict=True))
            observations.append((_converted(member, value), labels))
        if len(observations) > member.bound:
            found[member.index] = too_many_groups(member.definition, member.bound)
        elif shared and len(rows) >= computed.limit:
            unsure.append(member.index)
        else:
            found[member.index] = observations


def _present(
    member: Member, row: tuple[Any, ...], presence: int | None, value: Any
) -> bool:
    # Whether any row of this group matched the member's filters. Without a
    # presence column the value tells: a count above 0, or any other
    # aggregate not NULL (a sum or distinct count only where the field is
    # never NULL, or it would have a presence column).
    if presence is not None:
        return bool(row[presence])
    if member.aggregate in (COUNT, COUNT_DISTINCT):
        return bool(value)
    return value is not None


def _distribution(
    member: Member, row: tuple[Any, ...] | None, column: int
) -> Distribution:
    # The columns from `column`: count, sum, minimum, maximum, then each
    # bucket's cumulative count.
    if row is None or not row[column]:
        return Distribution.empty(member.bounds)
    count, total, least, greatest = row[column : column + 4]
    buckets = row[column + 4 : column + 4 + len(member.bounds)]
    return Distribution(
        member.bounds,
        tuple(int(c or 0) for c in buckets),
        int(count),
        float(total or 0),
        None if least is None else float(least),
        None if greatest is None else float(greatest),
    )


def _ungrouped(member: Member, value: Any) -> Observations:
    if value is None:
        if member.aggregate in aggregates.SKIPS_EMPTY:
            return []  # avg, min and max of no rows: no series
        value = 0
    return [(_converted(member, value), {})]


def _converted(member: Member, value: Any) -> float:
    number = float(value)
    if member.places is not None:
        # Python's round() gives the float nearest the decimal, as
        # float(Decimal) of the ORM's result does.
        return round(number, member.places)
    if member.kind == DATE:
        day = dt.date(1970, 1, 1) + dt.timedelta(days=round(number))
        midnight = dt.datetime.combine(day, dt.time())
        return timezone.make_aware(
            midnight, timezone.get_default_timezone()
        ).timestamp()
    if member.kind == DATETIME and not settings.USE_TZ:
        # Without time zone support the database holds local wall-clock times.
        naive = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=number)
        return timezone.make_aware(naive, timezone.get_default_timezone()).timestamp()
    return number


def _group_label(text: str | None, boolean: bool) -> str:
    # Booleans cast to text differ by database ("1", "true", "t"); name them
    # the same everywhere. Other values keep the database's text.
    if text is None:
        return ""
    if boolean:
        return "true" if str(text).lower() in {"1", "true", "t"} else "false"
    return str(text)
