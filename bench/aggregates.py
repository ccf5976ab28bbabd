"""Section 5: mixed aggregates against one hand-written statement computing the same.

(a) 100 mixed row-based definitions (counts, sums, averages, min/max of dates,
distinct counts, windows, two-column group-bys) over the ten small tables;
(b) 20 definitions over one table of a million rows. The reference is one
statement written here as a person would: per table and grouping, one SELECT
of conditional aggregates (FILTER, or CASE WHEN where the backend lacks it),
the SELECTs joined with UNION ALL.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.utils import timezone

from bench import statements, timing, workload
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.shop import models as shop
from bench.table import ms, ratio, render, verdict
from metricdemo import aggregates, evaluation, rowquery, timewindows, validators
from metricdemo.models import MetricDefinition

SMALL_TARGET = 1.5  # (a): evaluation / hand-written statement
BIG_TARGET = 1.2  # (b): the same, on a million rows
STATEMENTS = 2  # (a): statements per steady scrape

# (aggregate, field, filters, group_by): ten shapes, each on every small table.
SMALL_SHAPES: list[tuple[str, str, dict[str, Any], str]] = [
    ("count", "", {}, ""),
    ("count", "", {"status": "open"}, ""),
    ("sum", "amount", {"flagged": True}, ""),
    ("avg", "price", {"created__gte": "now-1h"}, ""),
    ("min", "created", {"status": "new"}, ""),
    ("max", "created", {}, "status"),
    ("count_distinct", "status", {"amount__gte": 500}, ""),
    ("count", "", {"created__gte": "now/d"}, "status, flagged"),
    ("sum", "price", {}, "status, flagged"),
    ("count", "", {"amount__lt": 100}, "status"),
]
# Twenty definitions over the big table: twelve whole-table, eight by status.
BIG_SHAPES: list[tuple[str, str, dict[str, Any], str]] = [
    ("count", "", {}, ""),
    ("count", "", {"status": "open"}, ""),
    ("count", "", {"flagged": True}, ""),
    ("sum", "amount", {}, ""),
    ("sum", "price", {"status": "done"}, ""),
    ("avg", "amount", {"flagged": False}, ""),
    ("avg", "price", {}, ""),
    ("min", "created", {"status": "new"}, ""),
    ("max", "created", {}, ""),
    ("count_distinct", "status", {"amount__gte": 500}, ""),
    ("count", "", {"created__gte": "now-1h"}, ""),
    ("sum", "amount", {"created__gte": "now/d"}, ""),
    ("count", "", {}, "status"),
    ("sum", "amount", {}, "status"),
    ("avg", "price", {"flagged": True}, "status"),
    ("max", "created", {}, "status"),
    ("count", "", {"amount__lt": 100}, "status"),
    ("min", "amount", {}, "status"),
    ("count_distinct", "flagged", {}, "status"),
    ("sum", "price", {"created__gte": "now-7d"}, "status"),
]
KINDS = {"amount": aggregates.NUMBER, "price": aggregates.NUMBER}
KINDS.update(status=aggregates.NUMBER, flagged=aggregates.NUMBER)
KINDS["created"] = aggregates.DATETIME
TEXT_TYPES = {"postgresql": "varchar", "mysql": "char", "sqlite": "text"}


@dataclass(frozen=True)
class Aggregates:
    """What one database measured: a table row for (a) and one for (b)."""

    small: list
    big: list


def definitions(
    shapes: Sequence[tuple[str, str, dict[str, Any], str]],
    models: Sequence[type],
    count: int,
    prefix: str,
    timeout: float | None = None,
) -> list[MetricDefinition]:
    """Return `count` unsaved definitions, every shape on every model in turn."""
    made = []
    for i in range(count):
        model = models[i % len(models)]
        aggregate, field, filters, group_by = shapes[(i // len(models)) % len(shapes)]
        made.append(
            MetricDefinition(
                name=f"{prefix}.{i:05d}",
                kind="gauge",
                source="row_count",
                model=model._meta.label,
                aggregate=aggregate,
                field=field,
                filters=filters,
                group_by=group_by,
                timeout=timeout,
            )
        )
    return made


def hand_written(
    alias: str, stored: Sequence[MetricDefinition]
) -> tuple[str, list, int]:
    """Return one statement that computes every definition: a SELECT per pass.

    Its rows are (pass, groups..., values...); the third item is where the
    values start.
    """
    connection = connections[alias]
    passes: dict[tuple[str, str], list[MetricDefinition]] = {}
    for definition in stored:
        passes.setdefault((definition.model, definition.group_by), []).append(
            definition
        )
    groups = max(len(validators.group_by_paths(g)) for _, g in passes)
    width = max(len(members) for members in passes.values())
    now = timewindows.clock()
    parts, params = [], []
    for number, ((label, group_by), members) in enumerate(passes.items()):
        table = connection.ops.quote_name(_model(label)._meta.db_table)
        paths = validators.group_by_paths(group_by)
        columns = [str(number)]
        text = TEXT_TYPES.get(connection.vendor, "varchar")
        columns += [f"CAST({path} AS {text})" for path in paths]
        columns += [_null(connection, "text")] * (groups - len(paths))
        for definition in members:
            sql, values = _aggregate(connection, definition, now)
            columns.append(sql)
            params.extend(values)
        columns += [_null(connection, "float")] * (width - len(members))
        select = f"SELECT {', '.join(columns)} FROM {table}"
        if paths:
            select += f" GROUP BY {', '.join(paths)}"
        parts.append(f"SELECT * FROM ({select}) AS r{number}")
    return " UNION ALL ".join(parts), params, 1 + groups


def _model(label: str) -> type:
    return getattr(shop, label.split(".")[1])


def _null(connection: Any, kind: str) -> str:
    if connection.vendor != "postgresql":
        return "NULL"
    return "CAST(NULL AS varchar)" if kind == "text" else "CAST(NULL AS float8)"


def _aggregate(connection: Any, definition: MetricDefinition, now: dt.datetime):
    conditions, params = [], []
    for lookup, value in definition.filters.items():
        column, _, operator = lookup.partition("__")
        sql_operator = {"": "=", "gte": ">=", "lt": "<"}[operator]
        if timewindows.looks_relative(value):
            value = connection.ops.adapt_datetimefield_value(
                timewindows.resolve(value, now)
            )
        conditions.append(f"{column} {sql_operator} %s")
        params.append(value)
    condition = " AND ".join(conditions)
    field = definition.field or "*"
    function = {"count_distinct": "COUNT"}.get(definition.aggregate)
    function = function or definition.aggregate.upper()
    distinct = "DISTINCT " if definition.aggregate == "count_distinct" else ""
    if not condition:
        sql = f"{function}({distinct}{field})"
    elif connection.features.supports_aggregate_filter_clause:
        sql = f"{function}({distinct}{field}) FILTER (WHERE {condition})"
    else:
        then = "1" if field == "*" else field
        sql = f"{function}({distinct}CASE WHEN {condition} THEN {then} END)"
    kind = KINDS.get(definition.field, aggregates.NUMBER)
    if definition.aggregate in ("count", "count_distinct"):
        kind = aggregates.NUMBER
    template = rowquery.sql.AS_NUMBER[(connection.vendor, kind)]
    return template % {"expressions": sql}, params


def run(alias: str, sql: str, params: list) -> list[tuple]:
    """Run the hand-written statement and fetch its rows."""
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def total(rows: list[tuple], skip: int) -> float:
    """Return the sum of every value cell of `rows` after `skip` leading columns."""
    return sum(v for row in rows for v in row[skip:] if v is not None)


def fill_big_table(alias: str, rows: int) -> None:
    """Give shop.Invoice `rows` rows with SQL, spread over the last 30 days."""
    connection = connections[alias]
    vendor = connection.vendor
    table = connection.ops.quote_name(shop.Invoice._meta.db_table)
    now = timezone.now().replace(microsecond=0)

    def mod(expression: str, by: int) -> str:
        # SQLite has % but not always MOD(); the others have both.
        return (
            f"(({expression}) % {by})"
            if vendor == "sqlite"
            else f"MOD({expression}, {by})"
        )

    statuses = " ".join(
        f"WHEN {n} THEN '{status}'" for n, (status, _) in enumerate(shop.STATUSES)
    )
    values = (
        f"CASE {mod('i', 4)} {statuses} END, {mod('i', 3)} = 0, "
        f"{mod('i * 37', 1000)}, {mod('i * 13', 10000)} / 100.0"
    )
    age = mod("i", 2592000)
    if vendor == "sqlite":
        numbers = (
            "(WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq "
            f"WHERE i < {rows}) SELECT i FROM seq)"
        )
        created = f"datetime(%s, '-' || {age} || ' seconds')"
    elif vendor == "postgresql":
        numbers = f"generate_series(1, {rows})"
        created = f"%s::timestamptz - make_interval(secs => {age})"
    else:
        # MariaDB's sequence engine: a table of the numbers 1 to N.
        numbers = f"(SELECT seq AS i FROM seq_1_to_{rows})"
        created = f"%s - INTERVAL {age} SECOND"
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(
            f"INSERT INTO {table} (status, flagged, amount, price, created) "
            f"SELECT {values}, {created} FROM {numbers} AS numbers(i)"
            if vendor == "postgresql"
            else f"INSERT INTO {table} (status, flagged, amount, price, created) "
            f"SELECT {values}, {created} FROM {numbers} AS numbers",
            [connection.ops.adapt_datetimefield_value(now)],
        )


def measure(alias: str, config: Config, scrapes: Scrapes) -> Aggregates:
    """Measure (a) and (b) on `alias`, the active database."""
    vendor = connections[alias].vendor
    progress(f"aggregates on {vendor}: {config.aggregate_definitions} definitions")
    small = definitions(
        SMALL_SHAPES, workload.MODELS, config.aggregate_definitions, "bench.mixed"
    )
    workload.replace_definitions(small)
    stored = list(MetricDefinition.objects.order_by("name"))
    steady = statements.steady(scrapes.app_collector)
    small_row = _compare(alias, stored, config.row_count_rounds, config.warmup)
    small_row = [vendor, len(stored), len(steady), *small_row]
    small_row.append(verdict(len(steady) <= STATEMENTS))
    progress(f"aggregates on {vendor}: {config.big_table_rows:,} rows")
    fill_big_table(alias, config.big_table_rows)
    big = definitions(
        BIG_SHAPES, [shop.Invoice], len(BIG_SHAPES), "bench.big", timeout=300
    )
    workload.replace_definitions(big)
    stored = list(MetricDefinition.objects.order_by("name"))
    big_row = [vendor, f"{config.big_table_rows:,}", len(stored)]
    big_row += _compare(alias, stored, config.big_rounds, 1)
    return Aggregates(small_row, big_row)


def _compare(
    alias: str, stored: list[MetricDefinition], rounds: int, warmup: int
) -> list:
    sql, params, skip = hand_written(alias, stored)
    results = evaluation.evaluate_many(stored, timeout=300)
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError(f"{failed[0].name}: {failed[0].error}")
    app_total = sum(v for r in results for v, _ in r.observations)
    reference_total = total(run(alias, sql, params), skip)
    if not math.isclose(app_total, reference_total, rel_tol=1e-6):
        raise RuntimeError(
            f"The app's values add up to {app_total}, the hand-written "
            f"statement's to {reference_total}."
        )
    medians = timing.interleaved(
        {
            "app": lambda: evaluation.evaluate_many(stored, timeout=300),
            "hand": lambda: run(alias, sql, params),
        },
        rounds=rounds,
        warmup=warmup,
    )
    found = medians.ratio("app", "hand")
    target = SMALL_TARGET if len(stored) > len(BIG_SHAPES) else BIG_TARGET
    return [
        ms(medians["app"]),
        ms(medians["hand"]),
        ratio(found),
        verdict(found <= target),
    ]


def section(config: Config, measured: list[Aggregates]) -> str:
    """Lay out the aggregate measurements of every database."""
    small = render(
        [
            "database",
            "definitions",
            "SQL",
            "app",
            "hand-written",
            "app/hand",
            f"app/hand <= {SMALL_TARGET}",
            f"SQL <= {STATEMENTS}",
        ],
        [m.small for m in measured],
    )
    big = render(
        [
            "database",
            "rows",
            "definitions",
            "app",
            "hand-written",
            "app/hand",
            f"app/hand <= {BIG_TARGET}",
        ],
        [m.big for m in measured],
    )
    return (
        f"7. Aggregates (ms)\n(a) {config.aggregate_definitions} mixed definitions "
        f"over ten tables of {config.rows_per_model} rows (counts, sums, averages, "
        "min/max of times, distinct counts, windows, two-column group-bys)\n"
        + small
        + f"\n\n(b) {len(BIG_SHAPES)} definitions over one table (12 whole-table, "
        "8 by status)\n"
        + big
        + "\n\napp: evaluation.evaluate_many() of the stored definitions, as a "
        "scrape evaluates them (worker thread, compiled plan, binding the windows, "
        "the statement, turning rows into series). hand-written: one statement "
        "written in bench/aggregates.py, a SELECT of conditional aggregates per "
        "table and grouping joined with UNION ALL, run with a cursor. SQL: "
        "statements of a steady scrape, the change check included."
    )
