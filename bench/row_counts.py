"""Section 2: row-count definitions on each database, against bare OpenTelemetry."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db import connections

from bench import (
    exposition,
    references,
    row_count_breakdown,
    statements,
    timing,
    workload,
)
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.table import ms, ratio, render, verdict
from metricdemo.models import MetricDefinition

STATEMENTS = 2  # target: SQL statements per steady scrape of 100 row counts


@dataclass(frozen=True)
class RowCounts:
    """What one database measured: its table row, statements and breakdown."""

    row: list
    statements: str
    breakdown: str


def measure(alias: str, config: Config, scrapes: Scrapes) -> RowCounts:
    """Measure the row-count definitions on `alias`, the active database."""
    vendor = connections[alias].vendor
    progress(f"row counts on {vendor}: {config.row_counts} definitions")
    workload.fill_shop(config.rows_per_model)
    workload.replace_definitions(workload.row_count_definitions(config.row_counts))
    stored = list(MetricDefinition.objects.order_by("name"))
    endpoint_body = scrapes.endpoint()
    app_body = scrapes.app_collector()
    floor = references.otel_row_counts(stored)
    union = references.one_statement(stored)
    try:
        floor_body = floor.scrape()
        exposition.same_series(
            None, endpoint=endpoint_body, app=app_body, floor=floor_body
        )
        union_total = sum(n for _, _, n in union.all())
        floor_total = sum(
            value for (_, _, value), k in exposition.series(floor_body).items()
        )
        if union_total != floor_total:
            raise RuntimeError(
                f"The UNION ALL statement counts {union_total} rows in all, "
                f"the callbacks {floor_total}."
            )
        steady = statements.steady(scrapes.app_collector)
        medians = timing.interleaved(
            {
                "endpoint": scrapes.endpoint,
                "app": scrapes.app_collector,
                "floor": floor.scrape,
                "union": lambda: list(union.all()),
            },
            rounds=config.row_count_rounds,
            warmup=config.warmup,
        )
        breakdown = row_count_breakdown.measure(stored, alias, config, scrapes)
    finally:
        floor.close()
    models = len({d.model for d in stored})
    filtered = sum(bool(d.filters) for d in stored)
    grouped = sum(bool(d.group_by) for d in stored)
    row = [
        vendor,
        f"{len(stored)} ({models} models, {filtered} filtered, {grouped} grouped)",
        exposition.sample_count(app_body, "bench_series"),
        len(steady),
        ms(medians["endpoint"]),
        ms(medians["app"]),
        ms(medians["floor"]),
        ms(medians["union"]),
        ratio(medians.ratio("app", "floor")),
        verdict(len(steady) <= STATEMENTS),
    ]
    shapes = f"Statements of one steady scrape on {vendor}:\n" + "\n".join(
        f"  {count:4d} x {text}"
        for text, count in Counter(statements.shape(s) for s in steady).most_common()
    )
    return RowCounts(row, shapes, breakdown)


def section(config: Config, measured: list[RowCounts]) -> str:
    """Lay out the row-count measurements of every database."""
    table = render(
        [
            "database",
            "definitions",
            "series",
            "SQL",
            "endpoint",
            "app",
            "OTel + ORM callbacks",
            "one UNION ALL",
            "app/OTel",
            f"SQL <= {STATEMENTS}",
        ],
        [database.row for database in measured],
    )
    return (
        f"2. Row counts: {config.row_counts} row_count definitions, steady "
        "state, no cache (ms)\n"
        + table
        + "\n\nSQL: statements per steady app scrape, on every thread's "
        "connection. OTel + ORM callbacks: a bare MeterProvider whose callbacks "
        "each run the same ORM count in the scraping thread. one UNION ALL: "
        "every count in one statement through the ORM, no exporter.\n\n"
        + "\n\n".join(database.statements for database in measured)
    )
