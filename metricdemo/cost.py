"""Estimate what a row-based definition costs, from the database's EXPLAIN.

Nothing is counted, since counting is the cost the estimate stands in for:
the definition's own statement is explained with its relative times bound
now, and the plan says how many rows of the definition's table the database
expects to read and which indexes serve the filters. PostgreSQL and
MariaDB/MySQL estimate rows from their statistics; SQLite only once ANALYZE
has filled sqlite_stat1.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from django.db import connections
from django.utils.translation import gettext as _

from metricdemo import sources, timewindows
from metricdemo.conf import app_settings
from metricdemo.database import scoped_statement_timeout
from metricdemo.evaluation import Evaluation, Outcome, slow
from metricdemo.observations import describe
from metricdemo.rowquery import plan_for
from metricdemo.rowquery.fetch import bind
from metricdemo.rowquery.sql import install_functions

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

    from metricdemo.models import MetricDefinition

logger = logging.getLogger(__name__)

#: Rows read from which a definition is worth a refresh interval, however fast
#: its preview was: a table of a million rows takes seconds to scan on a
#: busy server, and a preview on a small copy of the data hides that.
LARGE_READ = 1_000_000

#: The refresh interval the hint offers, in seconds.
SUGGESTED_INTERVAL = 300


@dataclass(frozen=True)
class Estimate:
    """What the database expects a row-based definition's statement to read."""

    #: The rows of the definition's table it expects to read, or None when it
    #: gives no number (`note` says why).
    rows: int | None
    #: The fields whose indexes serve the filters (columns where no field has
    #: the column); () when it reads the whole table.
    indexes: tuple[str, ...] = ()
    #: Whether the definition has filters at all.
    filtered: bool = False
    #: Whether `rows` is an upper bound: the whole table's rows, given for an
    #: SQLite range read through an index.
    at_most: bool = False
    #: Whether the filters match nothing, so that no statement runs.
    nothing: bool = False
    #: Why `rows` is None; with `failed`, why there is no estimate at all.
    note: str = ""
    #: Whether the EXPLAIN itself failed.
    failed: bool = False

    @property
    def large(self) -> bool:
        """Return whether the database expects to read LARGE_READ rows or more."""
        return self.rows is not None and self.rows >= LARGE_READ


def estimate(
    definition: MetricDefinition, *, timeout: float | None = None
) -> Estimate | None:
    """Return what the database expects `definition`'s statement to read; never raise.

    None for a definition that reads no rows (another source) or whose
    statement cannot be built (the evaluation names the error). An EXPLAIN
    that fails gives an Estimate with `failed` and the reason in `note`.
    `timeout` bounds the EXPLAIN, METRICDEMO['TIMEOUT'] by default.
    """
    source = sources.SOURCES.get(definition.source)
    if source is None or not source.batchable:
        return None
    filtered = bool(definition.filters)
    try:
        plan = plan_for([definition], alone=True)
        if plan.errors:
            return None
        if not plan.statements:
            return Estimate(rows=0, filtered=filtered, nothing=True)
        statement = plan.statements[0]
        model = next(iter(statement.passes.values())).model
        connection = connections[statement.alias]
        seconds = float(timeout or app_settings.TIMEOUT)
        with scoped_statement_timeout(connection, seconds):
            install_functions(connection)
            params = bind(statement, timewindows.clock())
            found = _explain(connection, statement.sql, params, model)
    except Exception as exc:  # noqa: BLE001 - an estimate must not fail the preview
        logger.info("No estimate for %s: %s", definition.name, describe(exc))
        return Estimate(rows=None, filtered=filtered, note=describe(exc), failed=True)
    return Estimate(
        rows=found.rows,
        indexes=found.indexes,
        filtered=filtered,
        at_most=found.at_most,
        note=found.note,
    )


def schedule_hint(
    definition: MetricDefinition,
    evaluation: Evaluation | None,
    estimated: Estimate | None,
) -> str:
    """Return the advice to give `definition` a refresh interval, or "" if none.

    Given when its evaluation took longer than METRICDEMO['SLOW_EVALUATION']
    (or timed out), or the database expects to read LARGE_READ rows or more;
    a definition refreshed on a schedule already needs none.
    """
    if getattr(definition, "refresh_interval", None):
        return ""
    limit = slow.slow_seconds()
    if evaluation is not None and (
        evaluation.outcome == Outcome.TIMEOUT or evaluation.seconds > limit
    ):
        why = _(
            "Its evaluation took longer than METRICDEMO['SLOW_EVALUATION'] "
            "(%(limit)g s)."
        ) % {"limit": limit}
    elif estimated is not None and estimated.large:
        why = _("The database expects to read %(rows)s rows or more.") % {
            "rows": f"{LARGE_READ:,}"
        }
    else:
        return ""
    advice = _(
        "Set its refresh interval (for example %(seconds)d s) to compute it in "
        "the background, where no scrape waits for it."
    ) % {"seconds": SUGGESTED_INTERVAL}
    return f"{why} {advice}"


@dataclass(frozen=True)
class _Found:
    # What one backend's plan says about the definition's table; `indexes`
    # are index names until _explain() names their fields.
    rows: int | None
    indexes: tuple[str, ...]
    at_most: bool = False
    note: str = ""


def _explain(
    connection: BaseDatabaseWrapper, sql: str, params: list[Any], model: type[Model]
) -> _Found:
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            found = _postgresql(connection, cursor, sql, params, table)
        elif connection.vendor == "mysql":
            found = _mysql(cursor, sql, params, table)
        elif connection.vendor == "sqlite":
            found = _sqlite(cursor, sql, params, table, model)
        else:
            note = _("metricdemo reads no query plans of %(vendor)s.") % {
                "vendor": connection.display_name
            }
            return _Found(None, (), note=note)
        fields = _fields(connection, cursor, model, found.indexes)
    return replace(found, indexes=fields)


def _postgresql(
    connection: BaseDatabaseWrapper,
    cursor: Any,
    sql: str,
    params: list[Any],
    table: str,
) -> _Found:
    # EXPLAIN (FORMAT JSON): a tree of nodes, each with its "Plan Rows".
    rows, names, scans = 0.0, [], False
    for node, share in _nodes(_pg_plan(cursor, "EXPLAIN (FORMAT JSON) " + sql, params)):
        if node.get("Relation Name") != table:
            continue
        if node["Node Type"].endswith("Seq Scan"):
            # A sequential scan's Plan Rows are the rows its filter keeps; it
            # reads every row, which the table's own estimate gives.
            scans = True
            continue
        rows += node["Plan Rows"] * share
        for index in _index_nodes(node):
            if "Index Cond" in index:  # not a full index scan, for order only
                names.append(index["Index Name"])
    if scans:
        whole = _pg_plan(
            cursor,
            f"EXPLAIN (FORMAT JSON) SELECT * FROM {connection.ops.quote_name(table)}",
            [],
        )
        rows += whole["Plan Rows"]
    return _Found(round(rows), tuple(names))


def _pg_plan(cursor: Any, sql: str, params: list[Any]) -> dict[str, Any]:
    cursor.execute(sql, params)
    document = cursor.fetchone()[0]
    # psycopg reads the json column as Python data; a plain driver gives text.
    if isinstance(document, str):
        document = json.loads(document)
    return document[0]["Plan"]


def _nodes(plan: dict[str, Any], workers: int = 0) -> Iterator[tuple[dict, float]]:
    # Each node with the factor its Plan Rows take to count every process:
    # a parallel-aware node's estimate is per process, PostgreSQL's
    # get_parallel_divisor() (the leader helps less the more workers run).
    workers = plan.get("Workers Planned", workers)
    share = 1.0
    if plan.get("Parallel Aware") and workers:
        share = workers + max(1.0 - 0.3 * workers, 0.0)
    yield plan, share
    for child in plan.get("Plans", ()):
        yield from _nodes(child, workers)


def _index_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    # An index scan names its index; a bitmap heap scan's indexes are below it
    # (Bitmap Index Scans, under BitmapAnd and BitmapOr when there are several).
    if "Index Name" in node:
        yield node
    if node["Node Type"] in ("Bitmap Heap Scan", "BitmapAnd", "BitmapOr"):
        for child in node.get("Plans", ()):
            yield from _index_nodes(child)


#: MariaDB's and MySQL's access types that read every row of a table or index.
_FULL_SCANS = {"ALL", "index"}


def _mysql(cursor: Any, sql: str, params: list[Any], table: str) -> _Found:
    # EXPLAIN: a row per table read, with the rows the server expects to
    # examine there and the index it reads them through.
    cursor.execute("EXPLAIN " + sql, params)
    columns = [column[0].lower() for column in cursor.description]
    rows, names = 0, []
    for values in cursor.fetchall():
        row = dict(zip(columns, values, strict=True))
        if row.get("table") != table:
            continue
        rows += int(row.get("rows") or 0)
        if row.get("key") and row.get("type") not in _FULL_SCANS:
            names.extend(str(row["key"]).split(","))
    return _Found(rows, tuple(names))


#: A step of SQLite's EXPLAIN QUERY PLAN that reads a table.
_SQLITE_STEP = re.compile(
    r"^(?P<step>SCAN|SEARCH) (?:TABLE )?(?P<table>\S+)(?: AS \S+)?"
    r"(?: USING (?P<using>.*))?$"
)
_SQLITE_INDEX = re.compile(
    r"^(?:COVERING )?INDEX (?P<name>\S+)(?: \((?P<terms>.*)\))?$"
)
# A term of a SEARCH that pins a column to one value: `status=?`, not `created>?`.
_EQUALITY = re.compile(r"(?<![<>!])=")


def _sqlite(
    cursor: Any, sql: str, params: list[Any], table: str, model: type[Model]
) -> _Found:
    # EXPLAIN QUERY PLAN: SCAN (every row) or SEARCH (through an index) per
    # table, with no row counts; those come from sqlite_stat1.
    cursor.execute("EXPLAIN QUERY PLAN " + sql, params)
    steps = []
    for *_ids, detail in cursor.fetchall():
        match = _SQLITE_STEP.match(detail)
        if match and match["table"] == table:
            steps.append(match)
    stats = _sqlite_stats(cursor, table)
    # Every index's statistics start with the table's rows.
    total = max((numbers[0] for numbers in stats.values() if numbers), default=None)
    names, reads, at_most = [], [], False
    for step in steps:
        using = step["using"] or ""
        # No match for an index SQLite builds for this query (AUTOMATIC): it
        # reads the whole table to build it.
        index = _SQLITE_INDEX.match(using)
        read = total
        if step["step"] == "SEARCH" and using.startswith("INTEGER PRIMARY KEY"):
            names.append(model._meta.pk.column)
            if _EQUALITY.search(using):
                read = 1
            else:
                at_most = True
        elif step["step"] == "SEARCH" and index:
            names.append(index["name"])
            pinned = len(_EQUALITY.findall(index["terms"] or ""))
            averages = stats.get(index["name"], [])
            if 0 < pinned < len(averages):
                read = averages[pinned]  # rows per value of its first columns
            else:
                at_most = True
        reads.append(read)
    if total is None:
        note = _("SQLite estimates no row counts before ANALYZE has run.")
        return _Found(None, tuple(names), note=note)
    return _Found(sum(reads), tuple(names), at_most)


def _sqlite_stats(cursor: Any, table: str) -> dict[str | None, list[int]]:
    # sqlite_stat1 exists once ANALYZE ran: per index, the table's rows, then
    # the average rows per value of its first column, its first two, ...
    cursor.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    )
    if cursor.fetchone() is None:
        return {}
    cursor.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = %s", [table])
    return {
        index: [int(number) for number in stat.split() if number.isdigit()]
        for index, stat in cursor.fetchall()
    }


def _fields(
    connection: BaseDatabaseWrapper,
    cursor: Any,
    model: type[Model],
    names: tuple[str, ...],
) -> tuple[str, ...]:
    # Index names mean little to an editor: name the fields they cover, as
    # filters do. PostgreSQL has two indexes on a text field (one for LIKE).
    if not names:
        return ()
    table = model._meta.db_table
    constraints = connection.introspection.get_constraints(cursor, table)
    by_column = {field.column: field.name for field in model._meta.concrete_fields}
    found: dict[str, None] = {}
    for name in names:
        columns = (constraints.get(name) or {}).get("columns") or [name]
        for column in columns:
            found[by_column.get(column, column)] = None
    return tuple(found)
