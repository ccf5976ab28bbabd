"""Break the row-count scrape down by wall clock per database; profile it on SQLite."""

from __future__ import annotations

from django.db import connections

from bench import profiling, references, statements, timing
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.table import ms, render
from metricdemo import evaluation, policy, routing, sources
from metricdemo.models import MetricDefinition


def measure(
    stored: list[MetricDefinition], alias: str, config: Config, scrapes: Scrapes
) -> str:
    """Say where the row-count scrape's time goes on `alias`."""
    connection = connections[alias]
    progress(f"profiling row counts on {connection.vendor}")

    def observe_all() -> None:
        for definition in stored:
            sources.observe(definition)

    def check_all() -> None:
        for definition in stored:
            policy.row_count_refusals(
                routing.resolve_model(definition.model),
                definition.filters,
                definition.group_by,
            )

    union = references.one_statement(stored)
    counts_sql = statements.captured(
        connection, lambda: [references.count_rows(d) for d in stored]
    )
    union_sql = statements.captured(connection, lambda: list(union.all()))
    cases = {
        "app": scrapes.app_collector,
        "counts": lambda: [references.count_rows(d) for d in stored],
        "sql": lambda: statements.replay(connection, counts_sql),
        "union": lambda: list(union.all()),
        "union sql": lambda: statements.replay(connection, union_sql),
        "evaluate_many": lambda: evaluation.evaluate_many(stored),
        "observe": observe_all,
        "checks": check_all,
    }
    parts = timing.interleaved(
        cases, rounds=config.row_count_rounds, warmup=config.warmup
    )
    described = [
        ("app", "the app's collector: the scrape (table above)"),
        ("evaluate_many", "evaluation.evaluate_many(): worker threads, no OTel"),
        ("observe", "sources.observe() of each, one after another, this thread"),
        ("checks", "  of which the safe-source checks (row_count_refusals)"),
        ("counts", "the same counts with plain ORM calls, this thread"),
        ("sql", f"  their {len(counts_sql)} statements' SQL alone, precompiled"),
        ("union", "one UNION ALL statement through the ORM"),
        ("union sql", "  its SQL alone, precompiled"),
    ]
    rows = [
        [text, ms(parts[key]), f"{parts.ratio(key, 'app'):.0%}"]
        for key, text in described
    ]
    lines = [
        f"Where the row-count scrape's time goes, {len(stored)} definitions on "
        f"{connection.display_name} (wall clock, medians of "
        f"{config.row_count_rounds} interleaved runs)",
        render(["work", "ms", "of app"], rows),
    ]
    if alias != "default":
        return "\n".join(lines)
    lines.append(
        "\nThe scraping thread under cProfile (the counts run on worker "
        "threads, so it mostly waits):"
    )
    lines += profiling.report(scrapes.app_collector, config)
    lines.append(
        "\nWhat the worker threads run, profiled in this thread: "
        "sources.observe() of every definition:"
    )
    lines += profiling.report(observe_all, config)
    return "\n".join(lines)
