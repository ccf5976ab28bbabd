"""Section 6: row counts over one large SQLite table, on every scrape and scheduled."""

from __future__ import annotations

import os
import statistics
import time

from django.db import connections

from bench import exposition
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.shop.models import Invoice
from bench.table import ms, ratio, render, verdict
from metricdemo.models import MetricDefinition
from metricdemo.scheduler import ENVIRONMENT_VARIABLE, Refresher

COUNTS = 20
PREFIX = "bench_sched"


def fill(rows: int) -> None:
    """Give the invoice table `rows` rows in one statement (SQLite)."""
    table = Invoice._meta.db_table
    with connections["default"].cursor() as cursor:
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(
            f"WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n "
            f"WHERE x < %s) INSERT INTO {table} (status, flagged, amount, price) "
            "SELECT CASE x % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'open' "
            "WHEN 2 THEN 'done' ELSE 'lost' END, x % 3 = 0, x % 1000, "
            "(x % 100000) / 100.0 FROM n",
            [rows],
        )


def definitions(interval: int | None) -> list[MetricDefinition]:
    """Return COUNTS row counts over the invoice table, each a full scan."""
    made = []
    for i in range(COUNTS):
        definition = MetricDefinition(
            name=f"{PREFIX}.n{i}",
            source="row_count",
            model=Invoice._meta.label,
            filters={"amount__gte": i * 50},
            refresh_interval=interval,
            timeout=120 if interval else None,
        )
        definition.full_clean()
        made.append(definition)
    return made


def exported(body: bytes) -> int:
    """Return how many of the COUNTS series a scrape exported."""
    return exposition.sample_count(body, PREFIX)


def scrape_rounds(scrapes: Scrapes, rounds: int) -> tuple[list[float], list[int]]:
    """Scrape `rounds` times; return each scrape's seconds and series exported."""
    seconds, series = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        body = scrapes.endpoint()
        seconds.append(time.perf_counter() - started)
        series.append(exported(body))
    return seconds, series


def measure(config: Config, scrapes: Scrapes) -> str:
    """Measure both ways on SQLite and return the section."""
    rows = config.schedule_rows
    progress(f"scheduled row counts: {COUNTS} counts over {rows:,} rows")
    fill(rows)
    MetricDefinition.objects.all().delete()
    MetricDefinition.objects.bulk_create(definitions(None))
    every, every_series = scrape_rounds(scrapes, config.schedule_rounds)

    MetricDefinition.objects.all().delete()
    MetricDefinition.objects.bulk_create(definitions(300))
    # The scrapes must not start this process's own refresher: the one
    # below is timed alone.
    os.environ[ENVIRONMENT_VARIABLE] = "0"
    try:
        before, before_series = scrape_rounds(scrapes, 1)
        refresher = Refresher()
        started = time.perf_counter()
        refresher.tick()
        refresher.wait_idle(600)
        refresh = time.perf_counter() - started
        refresher.stop()
        served, served_series = scrape_rounds(scrapes, config.schedule_rounds)
    finally:
        del os.environ[ENVIRONMENT_VARIABLE]
        MetricDefinition.objects.all().delete()

    table = render(
        ["how", "scrape (median ms)", "series per scrape (min-max)", f"all {COUNTS}"],
        [
            [
                "evaluated in every scrape",
                ms(statistics.median(every)),
                f"{min(every_series)}-{max(every_series)}",
                verdict(min(every_series) == COUNTS),
            ],
            [
                "scheduled, before its first refresh",
                ms(before[0]),
                f"{before_series[0]}",
                "",
            ],
            [
                "scheduled, served from the store",
                ms(statistics.median(served)),
                f"{min(served_series)}-{max(served_series)}",
                verdict(min(served_series) == COUNTS),
            ],
        ],
    )
    speedup = statistics.median(every) / statistics.median(served)
    return (
        f"6. Scheduled row counts: {COUNTS} counts over one SQLite table of "
        f"{rows:,} rows, {config.schedule_rounds} scrapes each way\n"
        + table
        + f"\n\nOne background refresh of all {COUNTS} (one statement, off the "
        f"scrape): {ms(refresh)} ms. A served scrape is {ratio(speedup)} faster "
        "than one that evaluates; it reads one row per definition from the "
        "store. Every-scrape evaluation uses the default timeouts (TIMEOUT 5 s, "
        "SCRAPE_TIMEOUT 8 s)."
    )
